"""Reference arrays → `tf.data` batches of `(features, label)`.

The arrays stay in host memory as numpy (float32); the dataset carries only
example indices and gathers one whole batch per step with a single
`tf.numpy_function` call, so nothing is copied into the graph as a constant
(IEMOCAP's MFCC arrays are ~0.65 GB as float32) and there is no per-example
Python work.

Features (names shared with `models/`, models/inputs.py; checked by
tests/models/test_contract.py):

| name            | shape       | dtype   | meaning                              |
|-----------------|-------------|---------|--------------------------------------|
| `audio_mfcc`    | [B, T, 39]  | float32 | frames, T = longest clipped length   |
| `audio_length`  | [B]         | int32   | min(seqN, audio_max_frames)          |
| `audio_prosody` | [B, 35]     | float32 | prosody functionals                  |
| `text_ids`      | [B, 128]    | int32   | token ids, 0-padded                  |
| `text_length`   | [B]         | int32   | index of the first 0 (or the width)  |

plus one feature per requested extra array, under its own name and dtype.
The label is int32 [B].

With `waveforms=True` (the wav2vec2 models), two more features come from the
split's `waveform` / `waveform_length` extras (int16 [n, S_max] zero-padded
PCM and int32 [n], as the demo corpus and `build_arrays --store_waveforms`
write them):

| name              | shape   | dtype   | meaning                              |
|-------------------|---------|---------|--------------------------------------|
| `waveform`        | [B, S]  | float32 | PCM / 32768, in [-1, 1); 0 past the  |
|                   |         |         | length; S = longest clipped length   |
| `waveform_length` | [B]     | int32   | min(length, waveform_max_samples)    |

With `log_mel=True` (`CNN_SPEC --cnn_input=logmel`), the log-mel
spectrogram is computed in the `tf.data` map (graph ops,
`spectrogram.log_mel_spectrogram`, in the parallel map; no per-example
Python) from the same `waveform` / `waveform_length` extras:

| name                  | shape      | dtype   | meaning                       |
|-----------------------|------------|---------|-------------------------------|
| `audio_logmel`        | [B, T, M]  | float32 | log-mel frames (25 ms / 10    |
|                       |            |         | ms, valid framing), 0 past    |
|                       |            |         | the length; M = `n_mels`      |
| `audio_logmel_length` | [B]        | int32   | min(frames, audio_max_frames) |

T is cropped like the MFCC (longest clipped length rounded up to
`crop_multiple`, at most `audio_max_frames`, at least 1). Only the samples
the first `audio_max_frames` frames read are gathered, and the frame count
of an utterance equals its MFCC frame count (same framing), so
`audio_logmel_length` = `audio_length` when the MFCC were made from the same
waveforms (as in the demo corpus and `build_arrays --store_waveforms`).

Only the batch is converted to float32: the corpus stays int16 (read from a
fold folder, it even stays memory-mapped, since `reference_arrays` loads a
contiguous .npy of the right dtype without copying it), so no float copy of
all waveforms is ever made. Like the MFCC, the batch is cropped to its
longest (clipped) waveform, rounded up to a multiple of
`waveform_crop_multiple` samples; the encoder masks and pads from there.

Audio is cropped per batch to its longest (clipped) utterance, rounded up to
a multiple of `crop_multiple` frames: the original's `dynamic_rnn` also
stopped at the batch's longest sequence, so results are unchanged while
short batches cost less. Text keeps its full width: the paper-era unmasked
MDREA attention depends on it.
"""

import numpy as np
import tensorflow as tf

from common.constants import MFCC_FRAMES
from preprocessing import augment
from preprocessing import spectrogram

FEATURE_NAMES = ("audio_mfcc", "audio_length", "audio_prosody", "text_ids",
                 "text_length")
WAVEFORM_FEATURES = ("waveform", "waveform_length")
LOG_MEL_FEATURES = ("audio_logmel", "audio_logmel_length")
MODES = ("eval", "sample", "epochs")
# Full scale of 16-bit PCM: int16 / 32768 lies in [-1, 1).
PCM16_SCALE = 32768.0


def text_lengths(text_ids):
    """Index of the first 0 in each row (the row width if there is none).

    Args:
        text_ids: int array [n, L].

    Returns:
        int32 array [n]. Matches the original, which stored no text length.
    """
    text_ids = np.asarray(text_ids)
    is_pad = text_ids == 0
    return np.where(is_pad.any(axis=1), is_pad.argmax(axis=1),
                    text_ids.shape[1]).astype(np.int32)


def check_waveforms(split):
    """Validates a split's `waveform` / `waveform_length` extras.

    Raises:
        ValueError: missing, wrongly shaped or typed waveform extras.
    """
    missing = [name for name in WAVEFORM_FEATURES if name not in split.extras]
    if missing:
        raise ValueError(f"The split has no {missing} extra arrays (it has "
                         f"{sorted(split.extras)}); raw-waveform models need "
                         "`waveform` int16 [n, samples] and "
                         "`waveform_length` int32 [n].")
    waveform = split.extras["waveform"]
    lengths = split.extras["waveform_length"]
    if waveform.ndim != 2 or not (waveform.dtype == np.int16
                                  or waveform.dtype.kind == "f"):
        raise ValueError("Extra array `waveform` must be int16 PCM (or float "
                         "in [-1, 1]) of shape [n, samples]; found "
                         f"{waveform.dtype} {list(waveform.shape)}.")
    if lengths.ndim != 1 or lengths.dtype.kind not in "iu":
        raise ValueError("Extra array `waveform_length` must be an integer "
                         f"array [n]; found {lengths.dtype} "
                         f"{list(lengths.shape)}.")
    if len(lengths) and (lengths.min() < 0
                         or lengths.max() > waveform.shape[1]):
        raise ValueError(f"`waveform_length` values must lie in 0.."
                         f"{waveform.shape[1]} (the waveform width); found "
                         f"{lengths.min()}..{lengths.max()}.")


class _WaveformGatherer:
    """Crops a batch of waveform rows and converts only it to float32."""

    def __init__(self, split, max_samples, crop_multiple):
        self.waveform = split.extras["waveform"]
        width = self.waveform.shape[1]
        self.max_samples = width if max_samples is None else min(
            int(max_samples), width)
        self.length = np.minimum(split.extras["waveform_length"],
                                 self.max_samples).astype(np.int32)
        self.crop_multiple = crop_multiple
        self.scale = (1.0 / PCM16_SCALE if self.waveform.dtype == np.int16
                      else 1.0)

    def __call__(self, indices):
        lengths = self.length[indices]
        samples = int(lengths.max(initial=1))
        if self.crop_multiple:
            samples = -(-samples // self.crop_multiple) * self.crop_multiple
        samples = max(1, min(samples, self.max_samples))
        # Fancy indexing copies just these rows (int16), then one float32
        # batch; np.multiply writes the float result in place.
        batch = self.waveform[indices, :samples].astype(np.float32)
        np.multiply(batch, np.float32(self.scale), out=batch)
        # Samples past a clipped length are zeroed, so the padding is 0.0
        # whatever the stored array holds there.
        batch[np.arange(samples)[None, :] >= lengths[:, None]] = 0.0
        return batch, lengths


class _BatchGatherer:
    """Gathers a batch of rows from in-memory arrays (runs in numpy_function)."""

    def __init__(self, split, audio_max_frames, crop_multiple, extras,
                 waveforms=None):
        self.mfcc = split.mfcc
        self.audio_length = np.minimum(split.seq_len, audio_max_frames,
                                       dtype=np.int64).astype(np.int32)
        self.audio_max_frames = min(audio_max_frames, split.mfcc.shape[1])
        self.crop_multiple = crop_multiple
        self.prosody = split.prosody
        self.text_ids = split.text_ids
        self.text_length = text_lengths(split.text_ids)
        self.label = split.label
        self.extras = [split.extras[name] for name in extras]
        self.waveforms = waveforms

    def __call__(self, indices):
        lengths = self.audio_length[indices]
        frames = int(lengths.max(initial=1))
        if self.crop_multiple:
            frames = -(-frames // self.crop_multiple) * self.crop_multiple
        frames = max(1, min(frames, self.audio_max_frames))
        waveform_values = (self.waveforms(indices) if self.waveforms
                           else ())
        return (self.mfcc[indices, :frames], lengths, self.prosody[indices],
                self.text_ids[indices], self.text_length[indices],
                self.label[indices],
                *(extra[indices] for extra in self.extras),
                *waveform_values)


def _log_mel_features(waveform, waveform_length, n_mels, max_samples,
                     max_frames, crop_multiple):
    """(audio_logmel [B, T, M], audio_logmel_length [B]) in the graph.

    The waveform is cut to `max_samples` (the samples of `max_frames`
    frames), so lengths come out clipped to `max_frames`; T is then padded
    (with 0) or cropped to the longest length rounded up to `crop_multiple`,
    within [1, max_frames], like the MFCC crop.
    """
    waveform = waveform[:, :max_samples]
    lengths = tf.minimum(waveform_length, max_samples)
    log_mel, frames = spectrogram.log_mel_spectrogram(waveform, lengths,
                                                      n_mels)
    steps = tf.maximum(tf.reduce_max(frames), 1)
    if crop_multiple:
        steps = -(-steps // crop_multiple) * crop_multiple
    steps = tf.clip_by_value(steps, 1, max(max_frames, 1))
    log_mel = log_mel[:, :steps]
    log_mel = tf.pad(log_mel,
                     [[0, 0], [0, steps - tf.shape(log_mel)[1]], [0, 0]])
    log_mel.set_shape([None, None, n_mels])
    return log_mel, frames


def _index_batches(n, batch_size, mode, seed, start_step, num_shards,
                   shard_index, eval_order=None):
    if mode == "eval":
        # Each example exactly once; the last batch may be short.
        indices = (tf.data.Dataset.range(n) if eval_order is None else
                   tf.data.Dataset.from_tensor_slices(eval_order))
        return indices.shard(num_shards, shard_index).batch(batch_size)
    if mode == "sample":
        # The original's sampler: every step draws `batch_size` examples
        # uniformly with replacement. Stateless draws keyed on the step make
        # a resumed run continue the exact same stream.
        def draw(step):
            return tf.random.stateless_uniform(
                [batch_size], seed=tf.stack([seed + 7919 * shard_index, step]),
                maxval=n, dtype=tf.int64)
        return tf.data.Dataset.counter(start_step).map(draw)
    # "epochs": a fresh seeded permutation per epoch, full batches only.
    def permutation(epoch):
        return tf.data.Dataset.from_tensor_slices(
            tf.random.experimental.stateless_shuffle(
                tf.range(n, dtype=tf.int64), seed=tf.stack([seed, epoch])))
    return (tf.data.Dataset.counter().flat_map(permutation)
            .shard(num_shards, shard_index)
            .batch(batch_size, drop_remainder=True).skip(start_step))


def make_dataset(split, batch_size, mode="eval", seed=0, start_step=0,
                 audio_max_frames=MFCC_FRAMES, crop_multiple=50, extras=(),
                 num_shards=1, shard_index=0, waveforms=False,
                 waveform_max_samples=None, waveform_crop_multiple=1600,
                 log_mel=False, n_mels=spectrogram.N_MELS,
                 augmentation=None, by_length=False):
    """Builds the `(features, label)` dataset of one split.

    Args:
        split: `reference_arrays.Split`.
        batch_size: int. Examples per batch (per input pipeline when sharded).
        mode: "eval" (ordered, each example exactly once, last batch short),
            "sample" (infinite; each batch drawn uniformly with replacement,
            as the original trainer) or "epochs" (infinite; seeded shuffled
            epochs, full batches).
        seed: int. Seed of the sampler (ignored for "eval").
        start_step: int. Batches to skip, to resume a training run exactly.
        audio_max_frames: int. Encoder size: lengths are clipped to it and
            frames beyond it are never fed.
        crop_multiple: int. Round the per-batch crop up to this many frames
            (bounds the number of distinct shapes, which matters for XLA); 0
            crops to the exact longest length.
        extras: sequence of str. Extra arrays of the split to add as features
            under their own names.
        num_shards: int. Input pipelines (workers) sharing the split.
        shard_index: int. This pipeline's index.
        waveforms: bool. Add the float32 `waveform` and int32
            `waveform_length` features (see the module docstring) from the
            split's extras of those names.
        waveform_max_samples: int or None. Clip waveform lengths to this
            many samples and never feed samples beyond it (e.g. a
            fixed-length encoder's input length); None keeps whole
            utterances.
        waveform_crop_multiple: int. Round the per-batch waveform crop up to
            this many samples (0: the exact longest length).
        log_mel: bool. Add the `audio_logmel` / `audio_logmel_length`
            features (see the module docstring), computed from the split's
            waveform extras; `audio_max_frames` and `crop_multiple` apply
            to them as to the MFCC.
        n_mels: int. Mel bands of `audio_logmel`.
        augmentation: `augment.Augmentation` or None. Training modes only
            (ignored for "eval"): SpecAugment masks on `audio_mfcc` and
            `audio_logmel`, waveform perturbation on `waveform` (and so on
            the log-mel computed from it), keyed on (seed, step).
        by_length: bool. With mode "eval", batch the examples in order of
            their clipped audio length (stable), not in split order: each
            batch is cropped to similar lengths and its GRU loops stop
            early, and sums over the split (loss, confusion matrix) are
            unchanged. Leave it False where the output order matters.

    Returns:
        `tf.data.Dataset` of `(dict name → tensor, label int32 [B])`.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    n = len(split)
    if n == 0:
        raise ValueError("Cannot build a dataset over an empty split.")
    missing = [name for name in extras if name not in split.extras]
    if missing:
        raise ValueError(f"Extra arrays {missing} are not in the split "
                         f"(it has {sorted(split.extras)}).")
    waveform_gatherer = None
    # The samples the first audio_max_frames log-mel frames read: nothing
    # beyond them is gathered (or transformed) for the spectrogram.
    log_mel_samples = spectrogram.samples_for_frames(max(audio_max_frames,
                                                         1))
    if waveforms or log_mel:
        clash = [name for name in extras
                 if name in WAVEFORM_FEATURES + LOG_MEL_FEATURES]
        if clash:
            raise ValueError(f"extras {clash} clash with the features "
                             "waveforms=True / log_mel=True add; request "
                             "them one way.")
        check_waveforms(split)
        if waveform_max_samples is not None and waveform_max_samples < 1:
            raise ValueError("waveform_max_samples must be >= 1 or None, "
                             f"got {waveform_max_samples}.")
        # One gather serves both: with waveforms=True the waveform feature
        # keeps its own limit and the spectrogram crops it in the graph.
        waveform_gatherer = _WaveformGatherer(
            split, waveform_max_samples if waveforms else log_mel_samples,
            waveform_crop_multiple)
    gather = _BatchGatherer(split, audio_max_frames, crop_multiple, extras,
                            waveform_gatherer)
    extra_arrays = [split.extras[name] for name in extras]
    dtypes = [tf.float32, tf.int32, tf.float32, tf.int32, tf.int32, tf.int32]
    dtypes += [tf.as_dtype(array.dtype) for array in extra_arrays]
    if waveform_gatherer:
        dtypes += [tf.float32, tf.int32]

    if mode == "eval" or not augmentation:
        augmentation = None

    def to_features(indices, step=None):
        values = tf.numpy_function(gather, [indices], dtypes, stateful=False)
        mfcc, audio_length, prosody, text_ids, text_length, label = values[:6]
        mfcc.set_shape([None, None, split.mfcc.shape[2]])
        prosody.set_shape([None, split.prosody.shape[1]])
        text_ids.set_shape([None, split.text_ids.shape[1]])
        for tensor in (audio_length, text_length, label):
            tensor.set_shape([None])
        features = dict(zip(FEATURE_NAMES, (mfcc, audio_length, prosody,
                                            text_ids, text_length)))
        for name, array, value in zip(extras, extra_arrays, values[6:]):
            value.set_shape([None] + list(array.shape[1:]))
            features[name] = value
        if waveform_gatherer:
            waveform, waveform_length = values[6 + len(extras):]
            waveform.set_shape([None, None])
            waveform_length.set_shape([None])
        if augmentation:
            wave_seed, mask_seed = tf.unstack(
                tf.random.experimental.stateless_split(augment.step_seed(
                    seed + 1000003 * shard_index, step), 2))
        if waveform_gatherer and augmentation and augmentation.waveform:
            waveform, waveform_length = augment.perturb_waveform(
                waveform, waveform_length, wave_seed, augmentation)
        if waveforms:
            features.update(waveform=waveform,
                            waveform_length=waveform_length)
        if log_mel:
            features.update(zip(LOG_MEL_FEATURES, _log_mel_features(
                waveform, waveform_length, n_mels, log_mel_samples,
                audio_max_frames, crop_multiple)))
        if augmentation and augmentation.masks:
            for name, length in (("audio_mfcc", "audio_length"),
                                 LOG_MEL_FEATURES):
                if name in features:
                    features[name] = augment.spec_masks(
                        features[name], features[length], mask_seed,
                        augmentation)
        return features, label

    eval_order = None
    if by_length and mode == "eval":
        eval_order = np.argsort(gather.audio_length, kind="stable").astype(
            np.int64)
    dataset = _index_batches(n, batch_size, mode, seed, start_step,
                             num_shards, shard_index, eval_order)
    if augmentation:
        # Each batch's draws are keyed on its step (+ shard), so a resumed
        # run replays them.
        dataset = dataset.enumerate(start_step)
        mapped = dataset.map(lambda step, indices: to_features(indices, step),
                             num_parallel_calls=tf.data.AUTOTUNE,
                             deterministic=True)
    else:
        mapped = dataset.map(to_features,
                             num_parallel_calls=tf.data.AUTOTUNE,
                             deterministic=True)
    mapped = mapped.prefetch(tf.data.AUTOTUNE)
    if mode == "eval":
        # tf.data's autotuner delays the end of a finite dataset by ~0.45 s
        # in about a third of the passes (TF 2.21, 2 cores): more than half
        # of an evaluation of 512 examples. Fixed sizes instead: two
        # gathers in flight, two batches ready (a gather is ~200× faster
        # than a batch's model step).
        options = tf.data.Options()
        options.autotune.enabled = False
        mapped = mapped.with_options(options)
    return mapped
