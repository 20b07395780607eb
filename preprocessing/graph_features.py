"""The preprocessing features as TensorFlow ops, for serving from raw input.

Pure TensorFlow (tf.signal, tf.strings, tf.lookup; no numpy_function or
py_function), batched, and traceable with dynamic batch and sample
dimensions, so a SavedModel computes its own features and runs under the TF1
session loader (`saved_model_cli run`, TF Serving) as well as under
`tf.saved_model.load`. Each function reproduces one numpy path of
`preprocessing.audio_features` / `preprocessing.text_features`, step by
step and with the same constants; `tests/test_graph_features.py` compares
them on demo utterances and edge cases, within the tolerances below.

Padding: waveforms are float32 [B, S] in [-1, 1) at 16 kHz with a per-row
`waveform_length`; samples at or beyond a row's length are ignored (they
need not be zero), so a padded batch gives each row what the row alone
gives.
"""

from typing import Dict, Tuple

import numpy as np
import tensorflow as tf

from preprocessing import audio_features as af
from preprocessing import text_features

# Tolerances of the skew tests, |graph - numpy| per MFCC coefficient group
# (statics c1..c12, logE, deltas, accelerations), about 3x the largest
# error measured on them. float32 FFT/matmul against the numpy float64
# path: a cepstral coefficient sums 26 logs of band powers, some of them
# tiny next to the frame's peak (pure tones: 3.5e-4 at worst).
MFCC_ATOL = {"cepstra": 1e-3, "log_energy": 1e-5, "deltas": 2e-4,
             "accelerations": 1e-4}


def _mfcc_atol_vector() -> np.ndarray:
    """MFCC_ATOL as a float32 [39] vector in the feature order."""
    statics = [MFCC_ATOL["cepstra"]] * af.N_CEPS + [MFCC_ATOL["log_energy"]]
    return np.array(statics + [MFCC_ATOL["deltas"]] * (af.N_CEPS + 1)
                    + [MFCC_ATOL["accelerations"]] * (af.N_CEPS + 1),
                    np.float32)


MFCC_ATOL_VECTOR = _mfcc_atol_vector()


def _sample_mask(waveform: tf.Tensor, waveform_length: tf.Tensor
                 ) -> tf.Tensor:
    """The waveform with every sample at or beyond its row's length zeroed."""
    positions = tf.range(tf.shape(waveform)[1])
    keep = positions[None, :] < waveform_length[:, None]
    return tf.where(keep, waveform, tf.zeros_like(waveform))


def _frame_counts(waveform_length: tf.Tensor, frame_length: int,
                  frame_step: int) -> tf.Tensor:
    """int32 [B] frames of `frame_length` every `frame_step` (0 if short),
    as `audio_features._frames`."""
    count = 1 + (waveform_length - frame_length) // frame_step
    return tf.where(waveform_length < frame_length, 0, count)


def _frames(signal: tf.Tensor, frame_length: int, frame_step: int
            ) -> tf.Tensor:
    """[B, F, frame_length] frames starting at 0, step, ... of [B, S].

    F = 1 + (S - frame_length) // frame_step, or 0 when S < frame_length
    (tf.signal.frame needs S >= frame_length, so short input is padded to
    one frame, which the frame counts then mark as not real).
    """
    shortfall = tf.maximum(frame_length - tf.shape(signal)[1], 0)
    signal = tf.pad(signal, [[0, 0], [0, shortfall]])
    return tf.signal.frame(signal, frame_length, frame_step, pad_end=False)


def _deltas(features: tf.Tensor, lengths: tf.Tensor,
            window: int = af.DELTA_WINDOW) -> tf.Tensor:
    """HTK regression deltas along axis 1, edges repeated at each row's length.

    As `audio_features.deltas` on features[b, :lengths[b]]: frames at or
    beyond the length never enter a real frame's delta.

    Args:
        features: float [B, T, D].
        lengths: int32 [B], each <= T.

    Returns:
        float [B, T, D]; rows beyond their length hold values of no meaning.
    """
    steps = tf.range(tf.shape(features)[1])
    last = tf.maximum(lengths - 1, 0)[:, None]
    result = tf.zeros_like(features)
    for theta in range(1, window + 1):
        ahead = tf.minimum(steps[None, :] + theta, last)
        behind = tf.minimum(tf.maximum(steps[None, :] - theta, 0), last)
        result += theta * (tf.gather(features, ahead, batch_dims=1)
                           - tf.gather(features, behind, batch_dims=1))
    return result / (2.0 * sum(t * t for t in range(1, window + 1)))


def mfcc_e_d_a(waveform: tf.Tensor, waveform_length: tf.Tensor,
               max_frames: int = af.MAX_FRAMES
               ) -> Tuple[tf.Tensor, tf.Tensor]:
    """39-dim MFCC-E-D-A frames, as `audio_features.mfcc_e_d_a` per row.

    Same pipeline as the numpy path (16-bit scale, HTK raw log energy
    before the per-frame pre-emphasis, symmetric Hamming window, 512-point
    power spectrum, 26 HTK mel bands, log floor, DCT-II c1..c12 with lifter
    22, deltas and accelerations with edges repeated at the row's own last
    frame), in float32. Only the first `max_frames` frames are kept, as
    `audio_features.pad_frames` keeps them; they are computed from the whole
    utterance (the deltas of the last kept frames see the frames after
    them), while samples that only feed dropped frames are not read.

    Args:
        waveform: float32 [B, S] in [-1, 1) at 16 kHz.
        waveform_length: int32 [B] real samples per row (<= S).
        max_frames: int. Frames kept.

    Returns:
        (mfcc float32 [B, T, 39], length int32 [B]): T = the longest row's
        kept frames, at least 1 (so a model always gets a frame); length =
        min(frames, max_frames), frames = 1 + (length - 400) // 160 (0 below
        25 ms), the clipped `audio_length` the models are fed. Frames at or
        beyond a row's length are 0.
    """
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    waveform_length = tf.cast(waveform_length, tf.int32)
    # Frames after max_frames + 2 * DELTA_WINDOW cannot reach a kept frame
    # through the deltas of the deltas.
    needed_frames = max_frames + 2 * af.DELTA_WINDOW
    needed_samples = (needed_frames - 1) * af.FRAME_STEP + af.FRAME_LENGTH
    x = _sample_mask(waveform, waveform_length)[:, :needed_samples]
    x = x * af.SAMPLE_SCALE
    lengths = _frame_counts(waveform_length, af.FRAME_LENGTH, af.FRAME_STEP)
    frames = _frames(x, af.FRAME_LENGTH, af.FRAME_STEP)
    lengths_computed = tf.minimum(lengths, tf.shape(frames)[1])
    # HTK energy is taken from the raw frame, before pre-emphasis/window.
    log_energy = tf.math.log(tf.maximum(
        tf.reduce_sum(frames * frames, axis=-1), af.ENERGY_FLOOR))
    emphasised = tf.concat(
        [frames[..., :1] * (1.0 - af.PREEMPHASIS),
         frames[..., 1:] - af.PREEMPHASIS * frames[..., :-1]], axis=-1)
    windowed = emphasised * tf.constant(np.hamming(af.FRAME_LENGTH),
                                        tf.float32)
    power = tf.square(tf.abs(tf.signal.rfft(windowed, [af.N_FFT])))
    filters = af.mel_filters(af.N_FFT, 0.0, af.SAMPLE_RATE / 2)
    mel = tf.tensordot(power, tf.constant(filters.T, tf.float32), 1)
    cepstra = tf.tensordot(tf.math.log(tf.maximum(mel, af.MEL_FLOOR)),
                           tf.constant(af._dct_lifter_matrix(), tf.float32),
                           1)
    statics = tf.concat([cepstra, log_energy[..., None]], axis=-1)
    delta = _deltas(statics, lengths_computed)
    accel = _deltas(delta, lengths_computed)
    features = tf.concat([statics, delta, accel], axis=-1)
    kept = tf.minimum(lengths, max_frames)
    width = tf.maximum(tf.reduce_max(tf.concat([kept, [0]], 0)), 1)
    features = features[:, :width]
    # Rows of a batch with no frame at all still need width frames.
    features = tf.pad(features, [[0, 0], [0, width - tf.shape(features)[1]],
                                 [0, 0]])
    real = tf.range(width)[None, :] < kept[:, None]
    features = tf.where(real[..., None], features, tf.zeros_like(features))
    return features, kept
