"""Glue between `preprocessing` and `models`, shared by the binaries.

`models/` and `preprocessing/` never import each other; this module is where
a fold folder meets a model: datasets for training and evaluation, and model
keyword arguments derived from the fold (vocabulary size, embedding).

The wav2vec2 models (`WAVEFORM_MODELS`) read raw audio: their folds must hold
the `waveform` (int16 [n, S]) and `waveform_length` (int32 [n]) extra arrays,
which are loaded only for them (they are large: about 2 bytes per sample).
So does `CNN_SPEC` with `audio_input="logmel"` (train.py `--cnn_input=logmel`),
whose log-mel spectrogram the input pipeline computes from those waveforms:
whether a fold's waveforms are read depends on the model's arguments, not
only its name (`needs_waveforms`); so does `TRANSFORMER_FUSION` with
`audio_encoder="wav2vec2"`. A `TRANSFORMER_FUSION` whose side input is a
fold extra (`side_features="mocap"`) gets that float [n, D] array loaded
(`side_extra`), D as its `side_dim`, and fed under its own name.
"""

import hashlib
import inspect
import os

import numpy as np

from models import registry
from preprocessing import input_pipeline
from preprocessing import reference_arrays
from preprocessing import speaker_norm
from preprocessing import spectrogram
from preprocessing import text_features

TEXT_MODELS = {"TRE", "MDRE", "MDREA", "W2V2_TRE", "W2V2_TREA"}
# The seed-system models (models/seed_models.py): which read text, and
# which standardise their audio with --normalize_audio.
SEED_TEXT_MODELS = {"BLSTM_SA_TEXT", "MMMF", "TRANSFORMER_FUSION"}
TEXT_MODELS |= SEED_TEXT_MODELS
NORMALIZED_AUDIO_MODELS = {"ARE", "MDRE", "MDREA", "CNN_SPEC", "MMMF",
                           "TRANSFORMER_FUSION", "ARE_POOL"}
# Models whose audio input is the raw waveform (and never MFCC/prosody).
WAVEFORM_MODELS = {"W2V2", "W2V2_TRE", "W2V2_TREA"}
WAVEFORM_EXTRAS = input_pipeline.WAVEFORM_FEATURES
# The model name of ensemble runs (ensemble_runs.py, not in the registry).
ENSEMBLE_MODEL = "ENSEMBLE"


def _waveform_help(data_dir, model_name=None, model_kwargs=None):
    if model_name in WAVEFORM_MODELS or model_name is None:
        who = "the wav2vec2 models (W2V2, W2V2_TRE, W2V2_TREA) need them"
    elif _argument(model_name, model_kwargs, "audio_encoder") == "wav2vec2":
        who = (f"{model_name} with the wav2vec2 audio encoder "
               "(--audio_encoder=wav2vec2) reads them")
    else:
        who = (f"{model_name} with the log-mel input (--cnn_input=logmel) "
               "computes its spectrogram from them (--cnn_input=mfcc trains "
               "it on the fold's MFCC frames instead)")
    return (f"{data_dir}: no raw waveforms in this fold folder (its "
            f"manifest.json lists no 'extras' {list(WAVEFORM_EXTRAS)}); "
            f"{who}. Build the fold with `python -m preprocessing.build_arrays"
            " ... --store_waveforms`, or make the demo corpus with `python -m "
            "preprocessing.demo_corpus --output_dir=...`, which stores them.")


def _argument(model_name, model_kwargs, key):
    """The value of argument `key` a model would be built with (the given
    one, else the constructor's default; None if it takes no such
    argument or is not a registered model)."""
    if model_name not in registry.model_names():
        return None
    arguments = registry.model_arguments(model_name, **(model_kwargs or {}))
    if key in arguments:
        return arguments[key]
    parameter = inspect.signature(registry.MODELS[model_name]).parameters.get(
        key)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return None
    return parameter.default


def side_extra(model_name, model_kwargs=None):
    """The fold extra a model reads as its side input (None: none).

    `TRANSFORMER_FUSION` with `use_side_features` and `side_features`
    other than "audio_prosody" reads that extra array.
    """
    name = _argument(model_name, model_kwargs, "side_features")
    if (name is None or name in input_pipeline.FEATURE_NAMES
            or not _argument(model_name, model_kwargs, "use_side_features")):
        return None
    return name


def _missing_side_extra(data_dir, name, extras):
    return reference_arrays.DataError(
        f"{data_dir}: the model's side input {name!r} (side_features) is "
        f"not an extra array of this fold folder; its manifest.json "
        f"'extras' are {sorted(extras)}. Expected per-utterance float "
        f"arrays <split>_{name}.npy of shape [n, D] listed there (e.g. "
        "written by reference_arrays.write_fold with Split.extras).")


def _check_side_extra(data_dir, fold, name):
    """Validates a side-input extra: float [n, D], one D in every split;
    converts it to float32 in place."""
    widths = set()
    for split_name, split in fold.splits.items():
        array = split.extras[name]
        if array.ndim != 2 or array.dtype.kind != "f":
            raise reference_arrays.DataError(
                f"{os.path.join(data_dir, f'{split_name}_{name}.npy')}: the "
                f"side input {name!r} must be a float array [n, D] (one "
                f"vector per utterance); found {array.dtype} "
                f"{list(array.shape)}.")
        widths.add(array.shape[1])
        split.extras[name] = np.asarray(array, np.float32)
    if len(widths) > 1:
        raise reference_arrays.DataError(
            f"{data_dir}: the side input {name!r} has widths "
            f"{sorted(widths)} across the splits; expected one width D.")


def log_mel_bands(model_name, model_kwargs):
    """Mel bands of a model that reads `audio_logmel` (None: it does not).

    Decided from the arguments the model takes (`audio_input="logmel"`,
    `n_mels`, with the constructor's defaults), so it works before the
    model is built (e.g. to load the fold it trains on).
    """
    if model_name not in registry.model_names():
        return None
    arguments = registry.model_arguments(model_name, **(model_kwargs or {}))
    defaults = {name: parameter.default for name, parameter in
                inspect.signature(registry.MODELS[model_name])
                .parameters.items()}
    if arguments.get("audio_input", defaults.get("audio_input")) != "logmel":
        return None
    return int(arguments.get("n_mels", defaults.get("n_mels")))


def needs_waveforms(model_name, model_kwargs=None):
    """Whether a model with these arguments needs the fold's waveforms."""
    return (model_name in WAVEFORM_MODELS
            or _argument(model_name, model_kwargs,
                         "audio_encoder") == "wav2vec2"
            or log_mel_bands(model_name, model_kwargs) is not None)


def load_fold(data_dir, model_name=None, model_kwargs=None):
    """Loads and validates a fold folder, reading only what the model needs.

    The embedding is read for text models; the waveform extras only when
    `needs_waveforms(model_name, model_kwargs)` (the wav2vec2 models, a
    log-mel CNN_SPEC, a wav2vec2 TRANSFORMER_FUSION); a side-input extra
    (`side_extra`) for a model that reads one; other extras are never read
    for a named model. `model_name=None` reads everything.

    Raises:
        reference_arrays.DataError: a bad fold folder, one without the
            waveform extras for a model that needs them (naming the folder
            and how to produce them), or without the model's side-input
            extra, or with one that is not float [n, D].
    """
    if model_name == ENSEMBLE_MODEL:
        # The members' needs are not known here: read everything.
        model_name = None
    needs_text = model_name is None or model_name in TEXT_MODELS
    if model_name is None:
        return reference_arrays.load_fold(data_dir, load_embedding=needs_text)
    # The fold without splits: validated manifest, vocabulary, embedding.
    fold = reference_arrays.load_fold(data_dir, splits=(),
                                      load_embedding=needs_text)
    extras = fold.manifest.get("extras", {})
    wanted = {}
    if needs_waveforms(model_name, model_kwargs):
        if not all(name in extras for name in WAVEFORM_EXTRAS):
            raise reference_arrays.DataError(_waveform_help(
                data_dir, model_name, model_kwargs))
        wanted = {name: extras[name] for name in WAVEFORM_EXTRAS}
    side = side_extra(model_name, model_kwargs)
    if side is not None:
        if side not in extras:
            raise _missing_side_extra(data_dir, side, extras)
        wanted[side] = extras[side]
    fold.splits = {
        split: reference_arrays.load_split(
            data_dir, split, len(fold.vocabulary), fold.num_classes, wanted)
        for split in reference_arrays.SPLITS}
    if side is not None:
        _check_side_extra(data_dir, fold, side)
    if any(name in wanted for name in WAVEFORM_EXTRAS):
        for name, split in fold.splits.items():
            try:
                input_pipeline.check_waveforms(split)
            except ValueError as error:
                raise reference_arrays.DataError(
                    f"{data_dir}: {name} split: {error}") from error
    return fold


def normalize_speakers(fold, max_frames=750):
    """Per-speaker normalisation of every split's MFCC and prosody, in place
    (`preprocessing.speaker_norm`): each utterance standardised with its
    speaker's statistics within its split; utterances of unknown speaker
    with the training split's global statistics.

    Raises:
        reference_arrays.DataError: the fold manifest has no row-aligned
            `split_speakers` (built before it was stored).
    """
    speakers = fold.manifest.get("split_speakers")
    if not isinstance(speakers, dict) or any(
            len(speakers.get(name) or ()) != len(split)
            for name, split in fold.splits.items()):
        raise reference_arrays.DataError(
            f"{os.path.join(fold.path, reference_arrays.MANIFEST_NAME)}: "
            "per-speaker normalisation needs 'split_speakers' (one speaker "
            "per row of each split); this fold has none or the wrong "
            "number. Rebuild it with `python -m preprocessing.build_arrays "
            "... --force`, which stores them, or train with "
            "--nospeaker_norm (global statistics only).")
    train = fold.splits["train"]
    fallback = speaker_norm.global_statistics(
        train.mfcc, train.seq_len, train.prosody, max_frames)
    for name, split in list(fold.splits.items()):
        fold.splits[name] = speaker_norm.normalize_split(
            split, speakers[name], fallback, max_frames)
    return fold


def manifest_digest(data_dir):
    """sha256 of the fold's manifest.json and dic.pkl (and dic.json, if
    any; identifies the data)."""
    digest = hashlib.sha256()
    for name in (reference_arrays.MANIFEST_NAME, reference_arrays.VOCAB_NAME,
                 reference_arrays.VOCAB_JSON_NAME):
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


def log_mel_statistics(split, n_mels, audio_max_frames=750,
                       batch_size=64):
    """Train-split per-band mean/std of the log-mel spectrogram over real
    frames (the first `audio_max_frames` of each utterance, as the MFCC
    statistics cover the stored 750 frames), computed by the input
    pipeline itself, so exactly what the model is fed.

    Returns:
        dict: logmel_mean, logmel_std (lists of n_mels floats).
    """
    dataset = input_pipeline.make_dataset(
        split, batch_size, mode="eval", audio_max_frames=audio_max_frames,
        crop_multiple=0, log_mel=True, n_mels=n_mels)
    total = np.zeros(n_mels, np.float64)
    squares = np.zeros(n_mels, np.float64)
    count = 0
    for features, _ in dataset:
        # Frames past each length are exactly 0: summing all is summing the
        # real ones.
        frames = features["audio_logmel"].numpy().astype(np.float64)
        total += frames.sum(axis=(0, 1))
        squares += np.square(frames).sum(axis=(0, 1))
        count += int(features["audio_logmel_length"].numpy().sum())
    count = max(count, 1)
    mean = total / count
    variance = squares / count - mean ** 2
    return {"logmel_mean": mean.tolist(),
            "logmel_std": np.sqrt(np.maximum(variance, 0.0)).tolist()}


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
            statistics (stored in the model config), and a side-input
            extra (side_mean, side_std).
        **hparams: the remaining model arguments (units, keep probs...).

    A model reading a side-input extra (`side_extra`) gets `side_dim` from
    the fold's array (the fold must be loaded by `load_fold` for it).
    """
    kwargs = dict(hparams, num_classes=fold.num_classes)
    side = side_extra(model_name, kwargs)
    side_values = None
    if side is not None:
        train_extras = fold.splits["train"].extras
        if side not in train_extras:
            raise _missing_side_extra(fold.path, side, train_extras)
        side_values = np.asarray(train_extras[side], np.float64)
        if kwargs.get("side_dim") is None:
            kwargs["side_dim"] = int(side_values.shape[1])
    if normalize_audio and model_name in NORMALIZED_AUDIO_MODELS:
        kwargs["audio_normalization"] = audio_statistics(
            fold.splits["train"])
        if side_values is not None:
            kwargs["audio_normalization"].update(
                side_mean=side_values.mean(axis=0).tolist(),
                side_std=side_values.std(axis=0).tolist())
        n_mels = log_mel_bands(model_name, kwargs)
        if n_mels is not None:
            kwargs["audio_normalization"].update(log_mel_statistics(
                fold.splits["train"], n_mels))
    if model_name in TEXT_MODELS:
        kwargs["vocab_size"] = len(fold.vocabulary)
        kwargs["embedding_dim"] = (fold.embedding.shape[1] if use_glove
                                   else embedding_dim)
    if kwargs.get("text_encoder_handle") and (
            kwargs.get("text_encoder_pieces") is None):
        kwargs["text_encoder_pieces"] = wordpiece_pieces(
            fold.vocabulary, kwargs["text_encoder_handle"])
    return registry.model_arguments(model_name, **kwargs)


def wordpiece_pieces(vocabulary, handle):
    """The model kwarg `text_encoder_pieces` for a BERT-style handle: each
    of our word ids (dic.pkl) → the handle's WordPiece ids, tokenised with
    its vocab.txt and do_lower_case (plus its [CLS]/[SEP]/[UNK] ids)."""
    # Imported here: it loads tensorflow_hub, which only this path needs.
    from models import bert_text_encoder

    info = bert_text_encoder.handle_vocabulary(handle)
    table = text_features.wordpiece_table(
        vocabulary, text_features.load_wordpiece_vocabulary(
            info["vocab_file"]), info["do_lower_case"])
    return {key: table[key] for key in ("pieces", "cls_id", "sep_id",
                                        "unk_id")}


def build_model(model_name, kwargs, fold=None, use_glove=False):
    """Builds a model; with `use_glove`, copies W_embedding.npy into it
    (not for a pretrained text encoder: it has its own embedding)."""
    model = registry.build_model(model_name, **kwargs)
    if use_glove and model_name in TEXT_MODELS and not kwargs.get(
            "text_encoder_handle"):
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
    public TF-Hub model takes 246,000 samples) would crop anyway. The
    encoder may sit in a nested model (an ensemble member); with several,
    the longest input wins.
    """
    from models import wav2vec2_models

    lengths = []
    for layer in model.layers:
        if layer.name == wav2vec2_models.ENCODER_LAYER_NAME:
            length = getattr(layer, "input_length", None)
        elif hasattr(layer, "layers"):
            length = waveform_max_samples(layer)
        else:
            continue
        if length is None:
            return None
        lengths.append(length)
    return max(lengths) if lengths else None


def dataset_options(model):
    """Keyword arguments of `train_dataset_fn` / `eval_dataset` for a model,
    from its input names (raw waveforms only when it reads them; every
    other input that is not a pipeline feature, e.g. a side input `mocap`,
    as a fold extra of that name)."""
    names = {tensor.name: tensor for tensor in model.inputs}
    standard = (input_pipeline.FEATURE_NAMES + WAVEFORM_EXTRAS
                + input_pipeline.LOG_MEL_FEATURES)
    options = dict(waveforms="waveform" in names,
                   waveform_max_samples=waveform_max_samples(model),
                   extras=tuple(name for name in names
                                if name not in standard))
    if "audio_logmel" in names:
        options.update(log_mel=True,
                       n_mels=int(names["audio_logmel"].shape[-1]))
    return options


# Settings (the binaries' flag names) and the values they accept; checked
# by `check_settings` before anything is read or written.
_AT_LEAST_ONE = (
    "batch_size", "num_train_steps", "encoder_size_audio", "hidden_dim_audio", "num_layer_text", "hidden_dim_text", "embedding_dim",
    "attention_units", "hidden_units", "fusion_units", "cnn_kernel_size",
    "n_mels", "transformer_units", "transformer_heads", "transformer_layers",
    "transformer_ff_units", "side_units", "text_encoder_seq_length",
    "grid_steps", "fixed_input_length",
    # evaluate.py, explain.py
    "steps", "max_examples", "top_k", "min_count")
# num_layer_audio: 0 only for ARE_POOL (an MLP over pooled frames).
_AT_LEAST_ZERO = ("patience", "index", "num_layer_audio")
_POSITIVE = ("lr", "encoder_lr")
_KEEP_PROBABILITIES = ("dr_audio", "dr_text", "fusion_keep_prob")
_RATES = ("transformer_dropout",)


def check_settings(**settings):
    """Refuses settings no run can use, before any output or expensive work.

    Args:
        **settings: train.py flag names → values (any subset; None = unset
            for optional ones). `graph_prefix` must be a plain name (the
            run folder stays inside --output_dir); `cnn_filters` a list of
            integers >= 1.

    Raises:
        run_files.RunError: naming the flag, what it accepts and its value.
    """
    from models import run_files

    def refuse(name, expected):
        raise run_files.RunError(f"--{name}={settings[name]!r}: expected "
                                 f"{expected}.")

    def number(value, kinds):
        return isinstance(value, kinds) and not isinstance(value, bool)

    for name, value in settings.items():
        if value is None:
            continue
        if name in _AT_LEAST_ONE and not (number(value, int) and value >= 1):
            refuse(name, "an integer >= 1")
        if name in _AT_LEAST_ZERO and not (number(value, int) and value >= 0):
            refuse(name, "an integer >= 0")
        if name in _POSITIVE and not (number(value, (int, float))
                                      and 0 < value < float("inf")):
            refuse(name, "a finite number > 0")
        if name in _KEEP_PROBABILITIES and not (
                number(value, (int, float)) and 0 < value <= 1):
            refuse(name, "a keep probability in (0, 1]")
        if name in _RATES and not (number(value, (int, float))
                                   and 0 <= value < 1):
            refuse(name, "a dropout rate in [0, 1)")
    if settings.get("num_layer_audio") == 0 and settings.get(
            "model") not in (None, "ARE_POOL"):
        refuse("num_layer_audio", "an integer >= 1 (0 only for ARE_POOL)")
    filters = settings.get("cnn_filters")
    if filters is not None and not all(
            str(f).strip().isdigit() and int(f) >= 1 for f in filters):
        refuse("cnn_filters", "comma-separated integers >= 1")
    if settings.get("graph_prefix") is not None:
        run_files.check_run_name(settings["graph_prefix"], "--graph_prefix")


def finished_run(run_dir, result_file, log=print):
    """The result line of `run_dir` if that run already finished (it is
    then not trained or finished again), else None; see
    `run_files.finished_result`."""
    from models import run_files

    line = run_files.finished_result(run_dir, result_file)
    if line is not None:
        log(f"[Info] {run_dir}: this run has already finished; nothing to "
            "do (its result line is already in the result file; train "
            "again with a new --run_dir):")
        log(line)
    return line


def count_parameters(weights):
    """Number of scalars in a list of variables."""
    return int(sum(np.prod(weight.shape) for weight in weights))


def finish_run(run_dir, model, result, dataset, name, result_file,
               export=True, log=print, parameters=None):
    """Writes what a finished run leaves: `model.weights.h5` (when it has
    trainable weights), `metrics.json`, `saved_model/` (with `export`),
    `result.json` and its line in `result_file`; returns that line.

    Args:
        run_dir: str. The run folder (config.json already written).
        model: keras.Model. The trained model (best weights restored).
        result: `models.training.TrainResult`.
        dataset: str. Fold name. name: str. Run name.
        parameters: int or None. Parameters the prediction uses (default:
            the model's trainable ones; an ensemble adds its members').
    """
    import inference
    from models import run_files

    if model.trainable_weights:
        model.save_weights(os.path.join(run_dir, "model.weights.h5"))
    run_files.write_json(
        os.path.join(run_dir, "metrics.json"),
        {
            "dev": result.final_dev,
            "test": result.final_test,
            "steps": result.steps,
            "best_step": result.best_step,
            "best_dev_loss": result.best_dev_loss,
            "best_dev_accuracy": result.best_dev_accuracy,
            "test_accuracy_at_best": result.test_accuracy_at_best,
            "stopped_early": result.stopped_early,
            "train_seconds": result.train_seconds,
            "trainable_parameters": count_parameters(
                model.trainable_weights),
            "parameters": (count_parameters(model.trainable_weights)
                           if parameters is None else int(parameters)),
            "inputs": [tensor.name for tensor in model.inputs],
        },
    )
    if export:
        # A self-contained export: it also carries the vocabulary, feature
        # parameters and label names, so predict.py needs nothing else.
        inference.export_run(run_dir, model=model)
    line = run_files.result_line(
        dataset, name, result.best_dev_accuracy,
        result.test_accuracy_at_best, result.final_test["ua"])
    # Once per run folder, ever (a re-run finds it in result.json).
    run_files.record_result(run_dir, result_file, line)
    log(
        f"[Result] best step {result.best_step}: dev WA "
        f"{result.best_dev_accuracy:.3f}, test WA "
        f"{result.test_accuracy_at_best:.3f}; restored best weights: test WA "
        f"{result.final_test['wa']:.3f} UA {result.final_test['ua']:.3f} "
        f"({result.train_seconds:.0f} s)"
    )
    return line


def train_dataset_fn(split, batch_size, sampling, seed, audio_max_frames,
                     waveforms=None, waveform_max_samples=None,
                     log_mel=False, n_mels=spectrogram.N_MELS, extras=(),
                     augmentation=None):
    """A `(input_context, start_step) → dataset` function for the Trainer.

    Args:
        waveforms: bool or None. Add the float32 `waveform` /
            `waveform_length` features; None: whenever the split holds the
            waveform extras (`load_fold` loads them only for wav2vec2
            models).
        waveform_max_samples: int or None. See `waveform_max_samples()`.
        log_mel: bool. Add `audio_logmel` / `audio_logmel_length` (n_mels
            bands), computed from the waveform extras.
        extras: sequence of str. Extra arrays of the split to add as
            features under their own names (e.g. a side input `mocap`).
        augmentation: `preprocessing.augment.Augmentation` or None.
    """
    waveforms = _has_waveforms(split, waveforms)

    def make(input_context, start_step):
        per_replica = input_context.get_per_replica_batch_size(batch_size)
        return input_pipeline.make_dataset(
            split, per_replica, mode=sampling, seed=seed,
            start_step=start_step, audio_max_frames=audio_max_frames,
            num_shards=input_context.num_input_pipelines,
            shard_index=input_context.input_pipeline_id,
            waveforms=waveforms, waveform_max_samples=waveform_max_samples,
            log_mel=log_mel, n_mels=n_mels, extras=extras,
            augmentation=augmentation)
    return make


def eval_dataset(split, batch_size, audio_max_frames, waveforms=None,
                 waveform_max_samples=None, log_mel=False,
                 n_mels=spectrogram.N_MELS, extras=(), by_length=False):
    """Batches of a split, each example exactly once.

    `waveforms`, `waveform_max_samples`, `log_mel`, `n_mels` and `extras`
    as in `train_dataset_fn`. By default in the split's order; with
    `by_length` the batches group examples of similar audio length
    (faster evaluation: shorter crops, GRU loops that stop early; sums over
    the split such as the loss and the confusion matrix are unchanged).
    """
    return input_pipeline.make_dataset(
        split, batch_size, mode="eval", audio_max_frames=audio_max_frames,
        waveforms=_has_waveforms(split, waveforms),
        waveform_max_samples=waveform_max_samples, log_mel=log_mel,
        n_mels=n_mels, extras=extras, by_length=by_length)


def load_trained_model(run_dir):
    """Rebuilds a trained model from `run_dir/config.json` and its weights.

    Returns:
        (keras.Model, config dict).

    An ensemble run (train.py --ensemble_members) is rebuilt from its
    member runs; a decision-level one has no weights file of its own.

    Raises:
        FileNotFoundError: no config.json or model.weights.h5 in run_dir.
        ValueError: the restored weights did not change the model's outputs
            (they would then not be the trained ones).
    """
    import ensemble_runs
    from models import run_files

    config = run_files.read_json(os.path.join(run_dir, "config.json"))
    model_name, kwargs = config["model"]["name"], config["model"]["kwargs"]
    is_ensemble = model_name == ENSEMBLE_MODEL
    if is_ensemble and kwargs["method"] != "feature":
        # A decision-level ensemble has no weights of its own.
        return ensemble_runs.build_from_config(
            kwargs, len(config["data"]["label_names"])), config
    weights = os.path.join(run_dir, "model.weights.h5")
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"{weights}: missing (the run did not "
                                "finish; resume it with train.py "
                                f"--run_dir={run_dir}).")
    if is_ensemble:
        model = ensemble_runs.build_from_config(
            kwargs, len(config["data"]["label_names"]))
    else:
        model = registry.build_model(model_name, **kwargs)
    probe = _probe_batch(model)
    before = model(probe, training=False).numpy()
    model.load_weights(weights)
    after = model(probe, training=False).numpy()
    if np.allclose(before, after):
        raise run_files.RunError(
            f"{weights}: loading it did not change the model's outputs; "
            "these are not trained weights.")
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
