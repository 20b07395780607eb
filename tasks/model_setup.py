"""From a fold and settings to a built model: the constructor arguments a
fold implies (class count, vocabulary size, embedding width, train-split
audio statistics, a side input's width, WordPiece tables) and the model with
its GloVe embedding copied in."""

from typing import Any, Callable, Dict, Optional

import keras
import numpy as np

from common import constants
from common.errors import RunError
from models import bert_text_encoder
from models import gru_recurrence
from models import registry
from preprocessing import input_pipeline
from preprocessing import reference_arrays
from preprocessing import text_features
from tasks import folds


def audio_statistics(split: reference_arrays.Split) -> Dict[str, list]:
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


def log_mel_statistics(split: reference_arrays.Split, n_mels: int,
                       audio_max_frames: int = constants.MFCC_FRAMES,
                       batch_size: int = 64) -> Dict[str, list]:
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


def model_kwargs(model_name: str, fold: reference_arrays.Fold,
                 use_glove: bool, embedding_dim: int,
                 normalize_audio: bool = False,
                 **hparams: Any) -> Dict[str, Any]:
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

    A model reading a side-input extra (`folds.side_extra`) gets `side_dim`
    from the fold's array (the fold must be loaded by `load_fold` for it).
    """
    kwargs = dict(hparams, num_classes=fold.num_classes)
    side = folds.side_extra(model_name, kwargs)
    side_values = None
    if side is not None:
        train_extras = fold.splits["train"].extras
        if side not in train_extras:
            raise folds.missing_side_extra(fold.path, side, train_extras)
        side_values = np.asarray(train_extras[side], np.float64)
        if kwargs.get("side_dim") is None:
            kwargs["side_dim"] = int(side_values.shape[1])
    if normalize_audio and registry.spec(model_name).normalizes_audio:
        kwargs["audio_normalization"] = audio_statistics(
            fold.splits["train"])
        if side_values is not None:
            kwargs["audio_normalization"].update(
                side_mean=side_values.mean(axis=0).tolist(),
                side_std=side_values.std(axis=0).tolist())
        n_mels = folds.log_mel_bands(model_name, kwargs)
        if n_mels is not None:
            kwargs["audio_normalization"].update(log_mel_statistics(
                fold.splits["train"], n_mels))
    if registry.spec(model_name).reads_text:
        kwargs["vocab_size"] = len(fold.vocabulary)
        kwargs["embedding_dim"] = (fold.embedding.shape[1] if use_glove
                                   else embedding_dim)
    if kwargs.get("text_encoder_handle") and (
            kwargs.get("text_encoder_pieces") is None):
        kwargs["text_encoder_pieces"] = wordpiece_pieces(
            fold.vocabulary, kwargs["text_encoder_handle"])
    return registry.model_arguments(model_name, **kwargs)


def wordpiece_pieces(vocabulary: Dict[str, int],
                     handle: str) -> Dict[str, Any]:
    """The model kwarg `text_encoder_pieces` for a BERT-style handle: each
    of our word ids (dic.pkl) → the handle's WordPiece ids, tokenised with
    its vocab.txt and do_lower_case (plus its [CLS]/[SEP]/[UNK] ids)."""
    info = bert_text_encoder.handle_vocabulary(handle)
    table = text_features.wordpiece_table(
        vocabulary, text_features.load_wordpiece_vocabulary(
            info["vocab_file"]), info["do_lower_case"])
    return {key: table[key] for key in ("pieces", "cls_id", "sep_id",
                                        "unk_id")}


def build_model(model_name: str, kwargs: Dict[str, Any],
                fold: Optional[reference_arrays.Fold] = None,
                use_glove: bool = False) -> keras.Model:
    """Builds a model; with `use_glove`, copies W_embedding.npy into it
    (not for a pretrained text encoder: it has its own embedding)."""
    model = registry.build_model(model_name, **kwargs)
    if use_glove and registry.spec(model_name).reads_text and not kwargs.get(
            "text_encoder_handle"):
        layer = model.get_layer("word_embedding")
        layer.embeddings.assign(np.asarray(fold.embedding, np.float32))
    return model


# "auto": TF1GRU models (the Yoon family) on a CPU-only machine run one
# thread per op and one GRU stream per core
# (`gru_recurrence.configure_cpu_threads`); "tf_default": TF's own
# threading (e.g. to share the machine with other processes).
CPU_THREADS = ("auto", "tf_default")


def configure_cpu_threads(model_name: str, mode: str,
                          log: Callable[[str], None]) -> None:
    """Applies `mode` (CPU_THREADS) for `model_name`; before TF starts.

    Raises:
        RunError: an unknown mode.
    """
    if mode not in CPU_THREADS:
        raise RunError(f"cpu_threads must be one of {CPU_THREADS}, got "
                       f"{mode!r}.")
    if (mode == "auto" and model_name in registry.model_names()
            and registry.spec(model_name).family == "yoon"):
        log("[Info] " + gru_recurrence.configure_cpu_threads())
