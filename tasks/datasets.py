"""tf.data datasets of a fold split as a given model reads them: which
features it is fed (raw waveforms, log-mel spectrograms, fold extras), for
training (a distributed, resumable `(input_context, start_step)` function)
and for evaluation (each example once)."""

from typing import Any, Callable, Dict, Optional, Sequence

import keras
import tensorflow as tf

from models import wav2vec2_models
from preprocessing import augment
from preprocessing import input_pipeline
from preprocessing import reference_arrays
from preprocessing import spectrogram
from tasks import folds


def _has_waveforms(split, waveforms):
    if waveforms is None:
        return all(name in split.extras for name in folds.WAVEFORM_EXTRAS)
    return waveforms


def waveform_max_samples(model: keras.Model) -> Optional[int]:
    """Samples a model's wav2vec2 encoder reads per example (None: any).

    The input pipeline crops to it up front: a fixed-length encoder (the
    public TF-Hub model takes 246,000 samples) would crop anyway. The
    encoder may sit in a nested model (an ensemble member); with several,
    the longest input wins.
    """
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


def dataset_options(model: keras.Model) -> Dict[str, Any]:
    """Keyword arguments of `train_dataset_fn` / `eval_dataset` for a model,
    from its input names (raw waveforms only when it reads them; every
    other input that is not a pipeline feature, e.g. a side input `mocap`,
    as a fold extra of that name)."""
    names = {tensor.name: tensor for tensor in model.inputs}
    standard = (input_pipeline.FEATURE_NAMES + folds.WAVEFORM_EXTRAS
                + input_pipeline.LOG_MEL_FEATURES)
    options = dict(waveforms="waveform" in names,
                   waveform_max_samples=waveform_max_samples(model),
                   extras=tuple(name for name in names
                                if name not in standard))
    if "audio_logmel" in names:
        options.update(log_mel=True,
                       n_mels=int(names["audio_logmel"].shape[-1]))
    return options


def train_dataset_fn(split: reference_arrays.Split, batch_size: int,
                     sampling: str, seed: int, audio_max_frames: int,
                     waveforms: Optional[bool] = None,
                     waveform_max_samples: Optional[int] = None,
                     log_mel: bool = False, n_mels: int = spectrogram.N_MELS,
                     extras: Sequence[str] = (),
                     augmentation: Optional[augment.Augmentation] = None
                     ) -> Callable[[tf.distribute.InputContext, int],
                                   tf.data.Dataset]:
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


def eval_dataset(split: reference_arrays.Split, batch_size: int,
                 audio_max_frames: int, waveforms: Optional[bool] = None,
                 waveform_max_samples: Optional[int] = None,
                 log_mel: bool = False, n_mels: int = spectrogram.N_MELS,
                 extras: Sequence[str] = (),
                 by_length: bool = False) -> tf.data.Dataset:
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
