"""Log-mel spectrograms of waveform batches, in TensorFlow (`tf.signal`).

The input of `CNN_SPEC --cnn_input=logmel`: computed from the raw 16 kHz
waveform by the input pipeline (in the parallel `tf.data` map) and, with the
very same function, by `inference.ServingAssets` from a wav file, so
training and serving features cannot drift apart.

Per utterance (waveform x in [-1, 1), PCM16 / 32768):

* frames of 400 samples (25 ms) every 160 samples (10 ms), "valid" only:
  frame t covers samples [160·t, 160·t + 400) and exists iff
  160·t + 400 <= length, i.e. 1 + (length − 400) // 160 frames (0 below 400
  samples). That is the framing of the MFCC frames
  (`audio_io.num_frames`), so an utterance has as many log-mel frames
  as MFCC frames;
* periodic Hann window, |rfft|² over n_fft = 512 points (the frame
  zero-padded from 400), 257 bins;
* mel filterbank `librosa.filters.mel(sr=16000, n_fft=512, n_mels=M,
  fmin=0, fmax=8000)` (Slaney mel scale and area normalisation, librosa's
  defaults), held as a constant [257, M];
* natural log of max(mel power, 1e-6) (the floor keeps digital silence at
  log(1e-6) ≈ −13.8 instead of −inf).

Padding: no frame reads past its utterance's length (no end padding), so in
a padded batch each utterance's real frames t < frame_length are exactly its
unpadded spectrogram; frames at or beyond frame_length are set to 0.
"""

import numpy as np
import tensorflow as tf

from common import constants
from preprocessing import audio_io

# Read by inference.py (export metadata) as this module's own names.
SAMPLE_RATE = constants.SAMPLE_RATE
FRAME_LENGTH = audio_io.FRAME_LENGTH  # 25 ms.
FRAME_STEP = audio_io.FRAME_STEP  # 10 ms.
N_FFT = 512
N_MELS = 64
FMIN = 0.0
FMAX = SAMPLE_RATE / 2.0
LOG_FLOOR = 1e-6

_MEL_CACHE = {}


def parameters(n_mels=N_MELS):
    """The log-mel parameters as a JSON-able dict (export metadata)."""
    return {
        "sample_rate": SAMPLE_RATE, "frame_length": FRAME_LENGTH,
        "frame_step": FRAME_STEP, "n_fft": N_FFT, "n_mels": int(n_mels),
        "fmin": FMIN, "fmax": FMAX, "window": "hann (periodic)",
        "power": 2.0, "mel": "librosa.filters.mel (slaney scale and norm)",
        "log": "natural log of max(mel power, floor)",
        "log_floor": LOG_FLOOR, "framing": "valid (no end padding)",
        "input_scale": "PCM16 / 32768, in [-1, 1)",
        "implementation": "tf.signal",
    }


def mel_matrix(n_mels=N_MELS):
    """float32 [n_fft // 2 + 1, n_mels]: librosa's mel filterbank, transposed.

    Computed once per n_mels (librosa is imported here only).
    """
    if n_mels < 1:
        raise ValueError(f"n_mels must be >= 1; found {n_mels}.")
    if n_mels not in _MEL_CACHE:
        import librosa  # Heavy (~1.5 s): once per n_mels.

        _MEL_CACHE[n_mels] = np.ascontiguousarray(librosa.filters.mel(
            sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=n_mels, fmin=FMIN,
            fmax=FMAX).T.astype(np.float32))
    return _MEL_CACHE[n_mels]


def num_frames(num_samples):
    """Frames of `num_samples` samples (int or int array): valid framing."""
    num_samples = np.asarray(num_samples)
    return np.where(num_samples >= FRAME_LENGTH,
                    1 + (num_samples - FRAME_LENGTH) // FRAME_STEP, 0)


def samples_for_frames(frames):
    """Samples that give exactly `frames` frames (>= 1): the waveform crop
    beyond which no frame of the first `frames` reads."""
    return FRAME_LENGTH + FRAME_STEP * (int(frames) - 1)


def frame_lengths(lengths):
    """int32 [B] frames of each length [B] (tensor version of num_frames)."""
    lengths = tf.cast(lengths, tf.int32)
    return tf.where(lengths >= FRAME_LENGTH,
                    1 + (lengths - FRAME_LENGTH) // FRAME_STEP, 0)


def log_mel_spectrogram(waveform, lengths, n_mels=N_MELS):
    """Log-mel spectrogram of a right-padded waveform batch.

    Args:
        waveform: float32 [B, S], in [-1, 1), anything past each length.
        lengths: int [B]. Real samples per row (clipped to [0, S]).
        n_mels: int. Mel bands M.

    Returns:
        (log_mel float32 [B, T, M], frame_lengths int32 [B]) with
        T = 1 + (S − 400) // 160 (0 when S < 400) and frame_lengths =
        1 + (length − 400) // 160 (0 below 400 samples). Frames at or beyond
        a row's frame length are 0.
    """
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    samples = tf.shape(waveform)[1]
    lengths = tf.clip_by_value(tf.cast(lengths, tf.int32), 0, samples)
    # tf.signal.frame cannot make frames from fewer than 400 samples; pad
    # such a batch to one frame width (its frame lengths are all 0 anyway).
    waveform = tf.pad(waveform,
                      [[0, 0], [0, tf.maximum(FRAME_LENGTH - samples, 0)]])
    stft = tf.signal.stft(waveform, FRAME_LENGTH, FRAME_STEP, N_FFT,
                          window_fn=tf.signal.hann_window, pad_end=False)
    # ... and keep only the frames the unpadded width gives (0 if < 400).
    stft = stft[:, :frame_lengths(samples[None])[0]]
    power = tf.math.square(tf.math.real(stft)) + tf.math.square(
        tf.math.imag(stft))
    mel = tf.einsum("btf,fm->btm", power, tf.constant(mel_matrix(n_mels)))
    log_mel = tf.math.log(tf.maximum(mel, LOG_FLOOR))
    frames = frame_lengths(lengths)
    mask = tf.sequence_mask(frames, tf.shape(log_mel)[1], dtype=tf.float32)
    return log_mel * mask[:, :, None], frames
