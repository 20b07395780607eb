"""Training-time augmentation in the `tf.data` map (graph ops, seeded).

Two families, each off unless asked for (`Augmentation`):

* SpecAugment-style masks (Park et al., 2019) on time-frequency frames
  [B, T, F] (`audio_mfcc`, `audio_logmel`): `freq_masks` bands of up to
  `freq_width` consecutive features and `time_masks` spans of up to
  `time_width` frames (never more than `time_ratio` of an utterance's real
  frames), each replaced by that utterance's mean over its real frames, so a
  mask carries no information whatever the feature scale (raw,
  standardised or per-speaker normalised). Padded frames stay as they were.
* Waveform perturbation [B, S] (`waveform`, and the log-mel computed from
  it): a random gain in ±`gain_db`, Gaussian noise at a random SNR in
  [`snr_db_min`, `snr_db_max`] (relative to each utterance's RMS), and speed
  perturbation by a random factor in [1 − `speed`, 1 + `speed`] (linear
  interpolation; the length changes with it, as sox's `speed` does).

Every draw is stateless, keyed on (seed, step), so a resumed run replays
the same augmented batches. Evaluation batches are never augmented (the
input pipeline applies this to the training modes only).
"""

import dataclasses

import tensorflow as tf


@dataclasses.dataclass
class Augmentation:
    """What to perturb (defaults: nothing)."""

    freq_masks: int = 0
    freq_width: int = 0
    time_masks: int = 0
    time_width: int = 0
    time_ratio: float = 0.2
    gain_db: float = 0.0
    snr_db_min: float = 0.0
    snr_db_max: float = 0.0
    speed: float = 0.0

    @property
    def masks(self):
        return bool((self.freq_masks and self.freq_width)
                    or (self.time_masks and self.time_width))

    @property
    def waveform(self):
        return bool(self.gain_db or self.snr_db_max or self.speed)

    def __bool__(self):
        return self.masks or self.waveform


def _seeds(seed, count):
    return tf.unstack(tf.random.experimental.stateless_split(seed, count))


def _spans(seed, size, limit, max_width, batch):
    """[B, size] bool: one span of width 0..max_width inside [0, limit)."""
    width_seed, start_seed = _seeds(seed, 2)
    width = tf.random.stateless_uniform([batch], width_seed, 0, max_width + 1,
                                        dtype=tf.int32)
    width = tf.minimum(width, limit)
    start = tf.cast(tf.random.stateless_uniform([batch], start_seed)
                    * tf.cast(limit - width + 1, tf.float32), tf.int32)
    start = tf.minimum(start, tf.maximum(limit - width, 0))
    positions = tf.range(size)[None, :]
    return (positions >= start[:, None]) & (
        positions < (start + width)[:, None])


def spec_masks(frames, lengths, seed, augmentation):
    """SpecAugment masks on [B, T, F] frames with real lengths [B].

    Args:
        frames: float [B, T, F].
        lengths: int [B]. Real frames (clipped to T here).
        seed: int [2] stateless seed.
        augmentation: `Augmentation`.

    Returns:
        float [B, T, F]: masked cells replaced by the utterance's mean over
        its real frames; padded frames unchanged.
    """
    batch, steps, features = (tf.shape(frames)[0], tf.shape(frames)[1],
                              frames.shape[-1])
    lengths = tf.clip_by_value(tf.cast(lengths, tf.int32), 0, steps)
    real = tf.sequence_mask(lengths, steps, dtype=frames.dtype)[:, :, None]
    fill = tf.reduce_sum(frames * real, axis=1, keepdims=True) / tf.maximum(
        tf.reduce_sum(real, axis=1, keepdims=True), 1.0)
    masked = tf.zeros([batch, steps, features], tf.bool)
    seeds = _seeds(seed, augmentation.freq_masks + augmentation.time_masks
                   + 1)
    for index in range(augmentation.freq_masks if augmentation.freq_width
                       else 0):
        band = _spans(seeds[index], features,
                      tf.fill([batch], features), augmentation.freq_width,
                      batch)
        masked |= band[:, None, :]
    time_limit = tf.cast(tf.cast(lengths, tf.float32)
                         * augmentation.time_ratio, tf.int32)
    for index in range(augmentation.time_masks if augmentation.time_width
                       else 0):
        span = _spans(seeds[augmentation.freq_masks + index], steps,
                      lengths, augmentation.time_width, batch)
        # A span no wider than time_ratio of the utterance.
        span &= tf.reduce_sum(tf.cast(span, tf.int32), axis=1,
                              keepdims=True) <= time_limit[:, None]
        masked |= span[:, :, None]
    masked &= tf.cast(real, tf.bool)
    return tf.where(masked, tf.broadcast_to(fill, tf.shape(frames)), frames)


def perturb_waveform(waveform, lengths, seed, augmentation):
    """Gain, noise and speed perturbation of [B, S] float waveforms.

    Args:
        waveform: float [B, S], 0 past each length.
        lengths: int [B].
        seed: int [2] stateless seed.
        augmentation: `Augmentation`.

    Returns:
        (waveform float [B, S'], lengths int32 [B]); S' changes with speed
        perturbation; samples past each new length are 0.
    """
    gain_seed, snr_seed, noise_seed, speed_seed = _seeds(seed, 4)
    batch = tf.shape(waveform)[0]
    lengths = tf.cast(lengths, tf.int32)
    if augmentation.speed:
        factor = tf.random.stateless_uniform(
            [batch], speed_seed, 1.0 - augmentation.speed,
            1.0 + augmentation.speed)
        # Output sample j reads source position j · factor (factor > 1 is
        # faster, hence shorter).
        new_lengths = tf.cast(tf.math.floor(
            tf.cast(lengths, tf.float32) / factor), tf.int32)
        width = tf.maximum(tf.reduce_max(new_lengths), 1)
        source = tf.cast(tf.range(width), tf.float32)[None, :] * factor[:,
                                                                         None]
        low = tf.cast(tf.math.floor(source), tf.int32)
        last = tf.maximum(lengths - 1, 0)[:, None]
        fraction = source - tf.cast(low, tf.float32)
        low_clipped = tf.minimum(low, last)
        high = tf.minimum(low + 1, last)
        waveform = (tf.gather(waveform, low_clipped, batch_dims=1)
                    * (1.0 - fraction)
                    + tf.gather(waveform, high, batch_dims=1) * fraction)
        lengths = new_lengths
    real = tf.sequence_mask(lengths, tf.shape(waveform)[1],
                            dtype=waveform.dtype)
    if augmentation.gain_db:
        gain_db = tf.random.stateless_uniform(
            [batch, 1], gain_seed, -augmentation.gain_db,
            augmentation.gain_db)
        waveform *= tf.pow(10.0, gain_db / 20.0)
    if augmentation.snr_db_max:
        snr_db = tf.random.stateless_uniform(
            [batch, 1], snr_seed, augmentation.snr_db_min,
            augmentation.snr_db_max)
        power = tf.reduce_sum(tf.square(waveform) * real, axis=1,
                              keepdims=True) / tf.maximum(
            tf.reduce_sum(real, axis=1, keepdims=True), 1.0)
        noise = tf.random.stateless_normal(tf.shape(waveform), noise_seed)
        waveform += noise * tf.sqrt(power / tf.pow(10.0, snr_db / 10.0))
    waveform = tf.clip_by_value(waveform, -1.0, 1.0) * real
    return waveform, lengths


def step_seed(seed, step):
    """The stateless seed of one training step's augmentation."""
    return tf.stack([tf.cast(seed, tf.int64) * 7 + 104729,
                     tf.cast(step, tf.int64)])

