"""Glue between `preprocessing` and `models`, shared by the binaries.

`models/` and `preprocessing/` never import each other; this module is where
a fold folder meets a model: datasets for training and evaluation, and model
keyword arguments derived from the fold (vocabulary size, embedding).

The wav2vec2 models (`WAVEFORM_MODELS`) read raw audio: their folds must hold
the `waveform` (int16 [n, S]) and `waveform_length` (int32 [n]) extra arrays,
which are loaded only for them (they are large: about 2 bytes per sample).
"""

import hashlib
import os

import numpy as np

from models import registry
from preprocessing import input_pipeline
from preprocessing import reference_arrays

TEXT_MODELS = {"TRE", "MDRE", "MDREA", "W2V2_TRE", "W2V2_TREA"}
# The seed-system models (models/seed_models.py): which read text, and
# which standardise their audio with --normalize_audio.
SEED_TEXT_MODELS = {"BLSTM_SA_TEXT", "MMMF", "TRANSFORMER_FUSION"}
TEXT_MODELS |= SEED_TEXT_MODELS
NORMALIZED_AUDIO_MODELS = {"ARE", "MDRE", "MDREA", "CNN_SPEC", "MMMF",
                           "TRANSFORMER_FUSION"}
# Models whose audio input is the raw waveform (and never MFCC/prosody).
WAVEFORM_MODELS = {"W2V2", "W2V2_TRE", "W2V2_TREA"}
WAVEFORM_EXTRAS = input_pipeline.WAVEFORM_FEATURES


def _waveform_help(data_dir):
    return (f"{data_dir}: no raw waveforms in this fold folder (its "
            f"manifest.json lists no 'extras' {list(WAVEFORM_EXTRAS)}); the "
            "wav2vec2 models (W2V2, W2V2_TRE, W2V2_TREA) need them. Build "
            "the fold with `python -m preprocessing.build_arrays ... "
            "--store_waveforms`, or make the demo corpus with `python -m "
            "preprocessing.demo_corpus --output_dir=...`, which stores them.")


def load_fold(data_dir, model_name=None):
    """Loads and validates a fold folder, reading only what the model needs.

    The embedding is read for text models; the waveform extras only for
    `WAVEFORM_MODELS` (other extras are never read for a named model).
    `model_name=None` reads everything.

    Raises:
        reference_arrays.DataError: a bad fold folder, or one without the
            waveform extras for a wav2vec2 model (naming the folder and how
            to produce them).
    """
    needs_text = model_name is None or model_name in TEXT_MODELS
    if model_name is None:
        return reference_arrays.load_fold(data_dir, load_embedding=needs_text)
    # The fold without splits: validated manifest, vocabulary, embedding.
    fold = reference_arrays.load_fold(data_dir, splits=(),
                                      load_embedding=needs_text)
    extras = fold.manifest.get("extras", {})
    wanted = {}
    if model_name in WAVEFORM_MODELS:
        if not all(name in extras for name in WAVEFORM_EXTRAS):
            raise reference_arrays.DataError(_waveform_help(data_dir))
        wanted = {name: extras[name] for name in WAVEFORM_EXTRAS}
    fold.splits = {
        split: reference_arrays.load_split(
            data_dir, split, len(fold.vocabulary), fold.num_classes, wanted)
        for split in reference_arrays.SPLITS}
    if wanted:
        for name, split in fold.splits.items():
            try:
                input_pipeline.check_waveforms(split)
            except ValueError as error:
                raise reference_arrays.DataError(
                    f"{data_dir}: {name} split: {error}") from error
    return fold


def manifest_digest(data_dir):
    """sha256 of the fold's manifest.json and dic.pkl (identifies the data)."""
    digest = hashlib.sha256()
    for name in (reference_arrays.MANIFEST_NAME, reference_arrays.VOCAB_NAME):
        path = os.path.join(data_dir, name)
        if os.path.exists(path):
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


def audio_statistics(split):
    """Train-split mean/std of MFCC (real frames only) and prosody."""
    lengths = np.minimum(split.seq_len, split.mfcc.shape[1])
    mask = np.arange(split.mfcc.shape[1])[None, :] < lengths[:, None]
    count = max(int(mask.sum()), 1)
    frames = split.mfcc * mask[:, :, None]
    mean = frames.sum(axis=(0, 1)) / count
    variance = (np.square(frames).sum(axis=(0, 1)) / count) - mean ** 2
    return {
        "mfcc_mean": mean.tolist(),
        "mfcc_std": np.sqrt(np.maximum(variance, 0.0)).tolist(),
        "prosody_mean": split.prosody.mean(axis=0).tolist(),
        "prosody_std": split.prosody.std(axis=0).tolist(),
    }


def model_kwargs(model_name, fold, use_glove, embedding_dim,
                 normalize_audio=False, **hparams):
    """Constructor arguments for `registry.build_model` from a fold.

    Args:
        model_name: str.
        fold: `reference_arrays.Fold`.
        use_glove: bool. Initialise the embedding from W_embedding.npy; its
            width then sets embedding_dim.
        embedding_dim: int. Width without GloVe (the original used 100).
        normalize_audio: bool. Standardise audio inputs with train-split
            statistics (stored in the model config).
        **hparams: the remaining model arguments (units, keep probs...).
    """
    kwargs = dict(hparams, num_classes=fold.num_classes)
    if normalize_audio and model_name in NORMALIZED_AUDIO_MODELS:
        kwargs["audio_normalization"] = audio_statistics(
            fold.splits["train"])
    if model_name in TEXT_MODELS:
        kwargs["vocab_size"] = len(fold.vocabulary)
        kwargs["embedding_dim"] = (fold.embedding.shape[1] if use_glove
                                   else embedding_dim)
    return registry.model_arguments(model_name, **kwargs)


def build_model(model_name, kwargs, fold=None, use_glove=False):
    """Builds a model; with `use_glove`, copies W_embedding.npy into it."""
    model = registry.build_model(model_name, **kwargs)
    if use_glove and model_name in TEXT_MODELS:
        layer = model.get_layer("word_embedding")
        layer.embeddings.assign(np.asarray(fold.embedding, np.float32))
    return model


def _has_waveforms(split, waveforms):
    if waveforms is None:
        return all(name in split.extras for name in WAVEFORM_EXTRAS)
    return waveforms


def waveform_max_samples(model):
    """Samples a model's wav2vec2 encoder reads per example (None: any).

    The input pipeline crops to it up front: a fixed-length encoder (the
    public TF-Hub model takes 246,000 samples) would crop anyway.
    """
    from models import wav2vec2_models

    try:
        encoder = model.get_layer(wav2vec2_models.ENCODER_LAYER_NAME)
    except ValueError:
        return None
    return getattr(encoder, "input_length", None)


def train_dataset_fn(split, batch_size, sampling, seed, audio_max_frames,
                     waveforms=None, waveform_max_samples=None):
    """A `(input_context, start_step) → dataset` function for the Trainer.

    Args:
        waveforms: bool or None. Add the float32 `waveform` /
            `waveform_length` features; None: whenever the split holds the
            waveform extras (`load_fold` loads them only for wav2vec2
            models).
        waveform_max_samples: int or None. See `waveform_max_samples()`.
    """
    waveforms = _has_waveforms(split, waveforms)

    def make(input_context, start_step):
        per_replica = input_context.get_per_replica_batch_size(batch_size)
        return input_pipeline.make_dataset(
            split, per_replica, mode=sampling, seed=seed,
            start_step=start_step, audio_max_frames=audio_max_frames,
            num_shards=input_context.num_input_pipelines,
            shard_index=input_context.input_pipeline_id,
            waveforms=waveforms, waveform_max_samples=waveform_max_samples)
    return make


def eval_dataset(split, batch_size, audio_max_frames, waveforms=None,
                 waveform_max_samples=None):
    """Ordered batches of a split, each example exactly once.

    `waveforms` and `waveform_max_samples` as in `train_dataset_fn`.
    """
    return input_pipeline.make_dataset(
        split, batch_size, mode="eval", audio_max_frames=audio_max_frames,
        waveforms=_has_waveforms(split, waveforms),
        waveform_max_samples=waveform_max_samples)


def load_trained_model(run_dir):
    """Rebuilds a trained model from `run_dir/config.json` and its weights.

    Returns:
        (keras.Model, config dict).

    Raises:
        FileNotFoundError: no config.json or model.weights.h5 in run_dir.
        ValueError: the restored weights did not change the model's outputs
            (they would then not be the trained ones).
    """
    from models import run_files

    config = run_files.read_json(os.path.join(run_dir, "config.json"))
    weights = os.path.join(run_dir, "model.weights.h5")
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"{weights}: missing (the run did not "
                                "finish; resume it with train.py "
                                f"--run_dir={run_dir}).")
    model = registry.build_model(config["model"]["name"],
                                 **config["model"]["kwargs"])
    probe = _probe_batch(model)
    before = model(probe, training=False).numpy()
    model.load_weights(weights)
    after = model(probe, training=False).numpy()
    if np.allclose(before, after):
        raise ValueError(f"{weights}: loading it did not change the "
                         "model's outputs; these are not trained weights.")
    return model, config


# Probe sizes of variable dimensions per input; 20 otherwise. A waveform
# needs more than the 400-sample receptive field of wav2vec2 to give frames.
_PROBE_SIZES = {"waveform": 4000}
_PROBE_LENGTHS = {"waveform_length": [4000, 1500]}


def _probe_batch(model):
    """A small deterministic batch matching the model's inputs."""
    rng = np.random.default_rng(0)
    batch = {}
    for tensor in model.inputs:
        size = _PROBE_SIZES.get(tensor.name, 20)
        shape = [2] + [d or size for d in tensor.shape[1:]]
        if tensor.name in _PROBE_LENGTHS:
            batch[tensor.name] = np.array(_PROBE_LENGTHS[tensor.name],
                                          np.int32)
        elif tensor.dtype == "int32" and len(shape) == 1:
            batch[tensor.name] = np.array([20, 7], np.int32)
        elif tensor.dtype == "int32":
            batch[tensor.name] = rng.integers(1, 3, shape).astype(np.int32)
        else:
            batch[tensor.name] = rng.standard_normal(shape).astype(
                tensor.dtype)
    return batch
