"""Reference arrays → `tf.data` batches of `(features, label)`.

The arrays stay in host memory as numpy (float32); the dataset carries only
example indices and gathers one whole batch per step with a single
`tf.numpy_function` call, so nothing is copied into the graph as a constant
(IEMOCAP's MFCC arrays are ~0.65 GB as float32) and there is no per-example
Python work.

Features (names shared with `models/`; checked by tests/test_contract.py):

| name            | shape       | dtype   | meaning                              |
|-----------------|-------------|---------|--------------------------------------|
| `audio_mfcc`    | [B, T, 39]  | float32 | frames, T = longest clipped length   |
| `audio_length`  | [B]         | int32   | min(seqN, audio_max_frames)          |
| `audio_prosody` | [B, 35]     | float32 | prosody functionals                  |
| `text_ids`      | [B, 128]    | int32   | token ids, 0-padded                  |
| `text_length`   | [B]         | int32   | index of the first 0 (or the width)  |

plus one feature per requested extra array (e.g. waveforms). The label is
int32 [B].

Audio is cropped per batch to its longest (clipped) utterance, rounded up to
a multiple of `crop_multiple` frames: the original's `dynamic_rnn` also
stopped at the batch's longest sequence, so results are unchanged while
short batches cost less. Text keeps its full width: the paper-era unmasked
MDREA attention depends on it.
"""

import numpy as np
import tensorflow as tf

FEATURE_NAMES = ("audio_mfcc", "audio_length", "audio_prosody", "text_ids",
                 "text_length")
MODES = ("eval", "sample", "epochs")


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


class _BatchGatherer:
    """Gathers a batch of rows from in-memory arrays (runs in numpy_function)."""

    def __init__(self, split, audio_max_frames, crop_multiple, extras):
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

    def __call__(self, indices):
        lengths = self.audio_length[indices]
        frames = int(lengths.max(initial=1))
        if self.crop_multiple:
            frames = -(-frames // self.crop_multiple) * self.crop_multiple
        frames = max(1, min(frames, self.audio_max_frames))
        return (self.mfcc[indices, :frames], lengths, self.prosody[indices],
                self.text_ids[indices], self.text_length[indices],
                self.label[indices],
                *(extra[indices] for extra in self.extras))


def _index_batches(n, batch_size, mode, seed, start_step, num_shards,
                   shard_index):
    if mode == "eval":
        # Ordered, each example exactly once; the last batch may be short.
        return (tf.data.Dataset.range(n).shard(num_shards, shard_index)
                .batch(batch_size))
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
                 audio_max_frames=750, crop_multiple=50, extras=(),
                 num_shards=1, shard_index=0):
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
    gather = _BatchGatherer(split, audio_max_frames, crop_multiple, extras)
    extra_arrays = [split.extras[name] for name in extras]
    dtypes = [tf.float32, tf.int32, tf.float32, tf.int32, tf.int32, tf.int32]
    dtypes += [tf.as_dtype(array.dtype) for array in extra_arrays]

    def to_features(indices):
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
        return features, label

    dataset = _index_batches(n, batch_size, mode, seed, start_step,
                             num_shards, shard_index)
    return (dataset.map(to_features, num_parallel_calls=tf.data.AUTOTUNE,
                        deterministic=True)
            .prefetch(tf.data.AUTOTUNE))
