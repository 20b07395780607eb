"""39-dim MFCC-E-D-A per 10 ms frame with numpy, following the original's
openSMILE 2.3.0 config `MFCC12_E_D_A` (yoon_spec.md §2.1).

25 ms frames every 10 ms starting at sample 0 (`audio_io` frame grid),
per-frame HTK pre-emphasis 0.97, Hamming window, power spectrum, 26 HTK mel
bands 0–8000 Hz, log, DCT-II c1..c12, cepstral lifter 22, HTK raw log
energy; deltas and accelerations with an HTK regression window of 2. Order
per frame: [c1..c12, logE], deltas, accelerations. This follows the config's
definition; it is not bit-identical to openSMILE (floors, float precision,
edge frames of the deltas), see `opensmile_features.opensmile_mfcc_e_d_a`
for the exact original pipeline.
"""

from typing import Any, Dict

import numpy as np

from common.constants import MFCC_DIM, MFCC_FRAMES, SAMPLE_RATE
from preprocessing.audio_io import (FRAME_LENGTH, FRAME_STEP, as_waveform,
                                    frame_view)

N_FFT = 512
N_MELS = 26
N_CEPS = 12
LIFTER = 22
PREEMPHASIS = 0.97
DELTA_WINDOW = 2
# HTK / openSMILE (htkcompatible) work on 16-bit sample values.
SAMPLE_SCALE = 32768.0
# Floors for the logs so that digital silence gives finite values. openSMILE's
# cMfcc floors mel energies at 1e-8; the energy floor is our choice.
MEL_FLOOR = 1e-8
ENERGY_FLOOR = 1e-8

_CACHE = {}


def parameters() -> Dict[str, Any]:
    """The MFCC parameters as a JSON-able dict (for manifests)."""
    return {
        "frame_length": FRAME_LENGTH, "frame_step": FRAME_STEP,
        "n_fft": N_FFT, "n_mels": N_MELS, "fmin": 0.0,
        "fmax": SAMPLE_RATE / 2, "n_ceps": N_CEPS, "lifter": LIFTER,
        "preemphasis": PREEMPHASIS, "window": "hamming",
        "energy": "htk raw log energy, 16-bit scale",
        "delta_window": DELTA_WINDOW, "order": "c1..c12,logE,D,A",
        "max_frames": MFCC_FRAMES, "implementation": "numpy/librosa",
    }


def _hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)


def _mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)


def mel_filters(n_fft: int, fmin: float, fmax: float, n_mels: int = N_MELS,
                sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """HTK-mel triangular filters on FFT bins, unnormalised (peak 1).

    The same matrix as `librosa.filters.mel(htk=True, norm=None)` (tested),
    built here so that workers need not import librosa (~1.5 s each).

    Returns:
        float64 [n_mels, n_fft // 2 + 1].
    """
    key = ("mel", n_fft, fmin, fmax, n_mels, sample_rate)
    if key not in _CACHE:
        fft_freqs = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
        edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax),
                                       n_mels + 2))
        widths = np.diff(edges)
        ramps = edges[:, None] - fft_freqs[None, :]
        lower = -ramps[:-2] / widths[:-1, None]
        upper = ramps[2:] / widths[1:, None]
        _CACHE[key] = np.maximum(0.0, np.minimum(lower, upper))
    return _CACHE[key]


def dct_lifter_matrix() -> np.ndarray:
    """[26, 12] orthonormal DCT-II rows c1..c12 times the HTK lifter."""
    if "dct" not in _CACHE:
        k = np.arange(1, N_CEPS + 1)[:, None]
        j = np.arange(N_MELS)[None, :]
        dct = np.sqrt(2.0 / N_MELS) * np.cos(np.pi * k * (j + 0.5) / N_MELS)
        lifter = 1.0 + (LIFTER / 2.0) * np.sin(np.pi * k / LIFTER)
        _CACHE["dct"] = (dct * lifter).T
    return _CACHE["dct"]


def deltas(features: np.ndarray, window: int = DELTA_WINDOW) -> np.ndarray:
    """HTK regression deltas along axis 0, edges padded by repetition.

    d_t = Σ_{θ=1..W} θ (c_{t+θ} − c_{t−θ}) / (2 Σ_{θ=1..W} θ²).

    Args:
        features: float array [frames, dims].
        window: int W.

    Returns:
        float array [frames, dims].
    """
    features = np.asarray(features, dtype=np.float64)
    n = len(features)
    if n == 0:
        return features.copy()
    padded = np.concatenate([np.repeat(features[:1], window, axis=0),
                             features,
                             np.repeat(features[-1:], window, axis=0)])
    result = np.zeros_like(features)
    for theta in range(1, window + 1):
        result += theta * (padded[window + theta:window + theta + n]
                           - padded[window - theta:window - theta + n])
    return result / (2.0 * sum(t * t for t in range(1, window + 1)))


def mfcc_e_d_a(waveform: np.ndarray,
               sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """39-dim MFCC-E-D-A per 10 ms frame (the original's MFCC12_E_D_A).

    Args:
        waveform: float array [samples] in [-1, 1]; any sample rate
            (resampled to 16 kHz).
        sample_rate: int. Sample rate of `waveform`.

    Returns:
        float32 array [frames, 39], frames = 1 + (len − 400) // 160 at 16 kHz
        (0 if shorter than 25 ms): [c1..c12, logE, their deltas, their
        accelerations].
    """
    x = as_waveform(waveform, sample_rate) * SAMPLE_SCALE
    frames = frame_view(x, FRAME_LENGTH)
    if len(frames) == 0:
        return np.zeros((0, MFCC_DIM), dtype=np.float32)
    # HTK energy is taken from the raw frame, before pre-emphasis/window.
    log_energy = np.log(np.maximum(np.einsum("ij,ij->i", frames, frames),
                                   ENERGY_FLOOR))
    # HTK pre-emphasis inside each frame: the first sample uses itself.
    emphasised = np.empty_like(frames)
    emphasised[:, 1:] = frames[:, 1:] - PREEMPHASIS * frames[:, :-1]
    emphasised[:, 0] = frames[:, 0] * (1.0 - PREEMPHASIS)
    windowed = emphasised * np.hamming(FRAME_LENGTH)
    power = np.abs(np.fft.rfft(windowed, n=N_FFT, axis=1)) ** 2
    mel = power @ mel_filters(N_FFT, 0.0, SAMPLE_RATE / 2).T
    cepstra = np.log(np.maximum(mel, MEL_FLOOR)) @ dct_lifter_matrix()
    statics = np.concatenate([cepstra, log_energy[:, None]], axis=1)
    delta = deltas(statics)
    accel = deltas(delta)
    return np.concatenate([statics, delta, accel], axis=1).astype(np.float32)
