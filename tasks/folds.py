"""A fold folder as a model reads it: which arrays each model needs, loaded
and validated (the lowest module of `tasks/`).

`models/` and `preprocessing/` never import each other; this module is where
a fold folder meets a model name and its arguments.

The wav2vec2 models read raw audio: their folds must hold
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
from typing import Any, Dict, Optional

import numpy as np

from common import constants
from models import registry
from preprocessing import input_pipeline
from preprocessing import reference_arrays
from preprocessing import speaker_norm

# Which models read text, standardise their audio or read waveforms: their
# `registry.spec(name)` (reads_text, normalizes_audio, reads_waveforms).
WAVEFORM_EXTRAS = input_pipeline.WAVEFORM_FEATURES


# The model name of ensemble runs (tasks/ensemble_run.py, not in the
# registry).
ENSEMBLE_MODEL = "ENSEMBLE"


def _waveform_help(data_dir, model_name=None, model_kwargs=None):
    if model_name is None or registry.spec(model_name).family == "wav2vec2":
        who = "the wav2vec2 models (W2V2, W2V2_TRE, W2V2_TREA) need them"
    elif model_argument(model_name, model_kwargs,
                        "audio_encoder") == "wav2vec2":
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


def model_argument(model_name: Optional[str],
                   model_kwargs: Optional[Dict[str, Any]], key: str) -> Any:
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


def side_extra(model_name: Optional[str],
               model_kwargs: Optional[Dict[str, Any]] = None) -> Optional[str]:
    """The fold extra a model reads as its side input (None: none).

    `TRANSFORMER_FUSION` with `use_side_features` and `side_features`
    other than "audio_prosody" reads that extra array.
    """
    name = model_argument(model_name, model_kwargs, "side_features")
    if (name is None or name in input_pipeline.FEATURE_NAMES
            or not model_argument(model_name, model_kwargs,
                                  "use_side_features")):
        return None
    return name


def missing_side_extra(data_dir: str, name: str,
                       extras: Dict[str, Any]) -> reference_arrays.DataError:
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


def log_mel_bands(model_name: Optional[str],
                  model_kwargs: Optional[Dict[str, Any]]) -> Optional[int]:
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


def needs_waveforms(model_name: Optional[str],
                    model_kwargs: Optional[Dict[str, Any]] = None) -> bool:
    """Whether a model with these arguments needs the fold's waveforms."""
    return registry.spec(model_name).reads_waveforms(model_kwargs or {})


def load_fold(data_dir: str, model_name: Optional[str] = None,
              model_kwargs: Optional[Dict[str, Any]] = None
              ) -> reference_arrays.Fold:
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
    needs_text = model_name is None or registry.spec(model_name).reads_text
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
            raise missing_side_extra(data_dir, side, extras)
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


def normalize_speakers(fold: reference_arrays.Fold,
                       max_frames: int = constants.MFCC_FRAMES
                       ) -> reference_arrays.Fold:
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


def manifest_digest(data_dir: str) -> str:
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
