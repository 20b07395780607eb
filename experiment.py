"""Glue between `preprocessing` and `models`, shared by the binaries.

`models/` and `preprocessing/` never import each other; this module is where
a fold folder meets a model: datasets for training and evaluation, and model
keyword arguments derived from the fold (vocabulary size, embedding).
"""

import hashlib
import os

import numpy as np

from models import registry
from preprocessing import input_pipeline
from preprocessing import reference_arrays

TEXT_MODELS = {"TRE", "MDRE", "MDREA"}


def load_fold(data_dir, model_name=None):
    """Loads and validates a fold folder (the embedding only if needed)."""
    needs_text = model_name is None or model_name in TEXT_MODELS
    return reference_arrays.load_fold(data_dir, load_embedding=needs_text)


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
    if normalize_audio and model_name not in ("TRE",):
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


def train_dataset_fn(split, batch_size, sampling, seed, audio_max_frames):
    """A `(input_context, start_step) → dataset` function for the Trainer."""
    def make(input_context, start_step):
        per_replica = input_context.get_per_replica_batch_size(batch_size)
        return input_pipeline.make_dataset(
            split, per_replica, mode=sampling, seed=seed,
            start_step=start_step, audio_max_frames=audio_max_frames,
            num_shards=input_context.num_input_pipelines,
            shard_index=input_context.input_pipeline_id)
    return make


def eval_dataset(split, batch_size, audio_max_frames):
    """Ordered batches of a split, each example exactly once."""
    return input_pipeline.make_dataset(split, batch_size, mode="eval",
                                       audio_max_frames=audio_max_frames)


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


def _probe_batch(model):
    """A small deterministic batch matching the model's inputs."""
    rng = np.random.default_rng(0)
    batch = {}
    for tensor in model.inputs:
        shape = [2] + [d or 20 for d in tensor.shape[1:]]
        if tensor.dtype == "int32" and len(shape) == 1:
            batch[tensor.name] = np.array([20, 7], np.int32)
        elif tensor.dtype == "int32":
            batch[tensor.name] = rng.integers(1, 3, shape).astype(np.int32)
        else:
            batch[tensor.name] = rng.standard_normal(shape).astype(
                tensor.dtype)
    return batch
