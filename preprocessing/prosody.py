"""35 utterance-level prosody functionals with numpy: 5 LLDs × 7 functionals,
following the original's openSMILE 2.3.0 config `prosodyShsViterbiLoudness`
(yoon_spec.md §2.2), on the 10 ms frame grid of `audio_io`.

The LLDs are [F0 (Hz), F0 on the openSMILE semitone scale, voicing
probability, HNR (dB), loudness]; the functionals per LLD are [stddev,
mean, linregc1, centroid, pctl10, pctl90, pctlrange10-90].

Where this differs from openSMILE's `prosodyShsViterbiLoudness`
(`opensmile_features.opensmile_prosody_functionals` runs that config itself,
if the optional `opensmile` package is installed):
  - Pitch is a normalised autocorrelation (Boersma 1993 style, the window's
    own autocorrelation divided out) of the same 55 ms Gaussian (σ 0.4)
    frame, not subharmonic summation (SHS) on an octave-scale spectrum plus a
    Viterbi smoother. Octave errors are limited by taking the shortest-lag
    ACF peak within 90% of the best one instead of a Viterbi path, so a
    frame-to-frame octave jump is possible where openSMILE would smooth it.
    On clean tones F0 agrees within 0.3% (150/300/500 Hz, a 120 Hz sweep).
  - Voicing probability is the ACF peak height (0..1), not the SHS score, so
    its scale differs (clean tones: ~1.0 here vs 0.8–0.94; white noise: 0.14
    vs 0.44). As in openSMILE (`voicingFinalUnclipped`) it is kept for every
    frame with RMS >= 0.0008 (of the windowed frame), voiced or not; a frame
    is voiced (F0, log F0, HNR non-zero) when the peak is >= 0.5 (openSMILE's
    SHS voicing cutoff is 0.7 on its own scale).
  - HNR = 10·log10(r / (1 − r)) with r the plain normalised ACF of the
    windowed frame at the period (r clipped to [1e-4, 1 − 1e-4]), which is
    what openSMILE's `HarmonicsToNoiseRatioACFLogdB` computes: within
    ~0.1 dB of openSMILE on clean tones.
  - Loudness: 20 ms Hamming frames, 26 HTK mel power bands 20–8000 Hz,
    Hermansky's equal-loudness weighting and 0.33 power compression (as
    cPlp with doAud=1), summed (L1), times an empirical 1/16 that puts it on
    openSMILE's scale (ratio 0.92–1.10 on tones and noise).
  - Smoothing: 3-frame moving average; for the pitch LLDs only over
    non-zero neighbours and zeros stay 0 (as openSMILE's `noZeroSma`).
  - Functionals: as configured there (population stddev, mean, linregc1 per
    frame, centroid normalised by segment length, percentiles with linear
    interpolation), on the non-zero frames for the 4 pitch LLDs.
  - A tone above the pitch range (e.g. 4 kHz) can get a spurious F0 here
    where SHS finds none.
"""

from typing import Any, Dict, Tuple

import numpy as np

from common.constants import SAMPLE_RATE
from preprocessing.audio_io import as_waveform, frame_view
from preprocessing.mfcc import N_FFT, N_MELS, mel_filters

PITCH_WINDOW = 880  # 55 ms, the window length of openSMILE's SHS pitch.
PITCH_SIGMA = 0.4  # openSMILE's Gaussian pitch window.
PITCH_FFT = 2048  # >= window + max lag, so the FFT ACF is not circular.
HNR_R_MIN = 1e-4  # ACF clipped to [1e-4, 1 - 1e-4]: HNR within ±40 dB.
F0_MIN = 52.0
F0_MAX = 620.0
VOICING_THRESHOLD = 0.5
RMS_THRESHOLD = 0.0008
OCTAVE_TOLERANCE = 0.9
LOUDNESS_WINDOW = 320  # 20 ms.
LOUDNESS_FMIN = 20.0
LOUDNESS_FMAX = 8000.0
LOUDNESS_COMPRESSION = 0.33
# Empirical: openSMILE's loudness is 1/14.7 (tones) to 1/17.7 (white noise)
# of ours; its FFT/band scaling could not be pinned down from here, so
# this only puts the values on the same scale as the original's.
LOUDNESS_SCALE = 1.0 / 16.0
LLD_NAMES = ("F0final_sma", "F0finalLog_sma", "voicingFinalUnclipped_sma",
             "HarmonicsToNoiseRatioACFLogdB_sma", "loudness_sma")
FUNCTIONAL_NAMES = ("stddev", "amean", "linregc1", "centroid", "percentile10",
                    "percentile90", "pctlrange0-1")
PROSODY_NAMES = tuple(f"{lld}_{functional}" for lld in LLD_NAMES
                      for functional in FUNCTIONAL_NAMES)

_CACHE = {}


def parameters() -> Dict[str, Any]:
    """The prosody parameters as a JSON-able dict (for manifests)."""
    return {
        "llds": list(LLD_NAMES), "functionals": list(FUNCTIONAL_NAMES),
        "pitch": "normalised ACF", "pitch_window": PITCH_WINDOW,
        "f0_range": [F0_MIN, F0_MAX],
        "voicing_threshold": VOICING_THRESHOLD,
        "rms_threshold": RMS_THRESHOLD,
        "loudness_window": LOUDNESS_WINDOW,
        "loudness_bands": [N_MELS, LOUDNESS_FMIN, LOUDNESS_FMAX],
        "loudness_compression": LOUDNESS_COMPRESSION,
        "loudness_scale": LOUDNESS_SCALE,
        "pitch_window_sigma": PITCH_SIGMA,
    }


def _gauss_window(length, sigma):
    """openSMILE's `gauss` window: exp(-0.5 ((i - c) / (sigma c))^2)."""
    centre = (length - 1) / 2.0
    i = np.arange(length)
    return np.exp(-0.5 * ((i - centre) / (sigma * centre)) ** 2)


def pitch_window() -> Tuple[np.ndarray, np.ndarray]:
    """The pitch frame's Gaussian window and its ACF normalised to lag 0.

    Returns:
        (float64 [PITCH_WINDOW], float64 [PITCH_FFT]).
    """
    if "pitch_window" not in _CACHE:
        window = _gauss_window(PITCH_WINDOW, PITCH_SIGMA)
        window_acf = np.fft.irfft(np.abs(np.fft.rfft(window, PITCH_FFT)) ** 2,
                                  PITCH_FFT)
        _CACHE["pitch_window"] = (window, window_acf / window_acf[0])
    return _CACHE["pitch_window"]


def loudness_weights() -> Tuple[np.ndarray, np.ndarray]:
    """The loudness frame's Hamming window and its weighted band filters.

    Returns:
        (float64 [LOUDNESS_WINDOW], float64 [N_FFT // 2 + 1, N_MELS]): the
        mel filters 20-8000 Hz times the equal-loudness curve, transposed.
    """
    if "loudness" not in _CACHE:
        filters = mel_filters(N_FFT, LOUDNESS_FMIN, LOUDNESS_FMAX)
        # Hermansky's equal-loudness curve at each band's centre frequency
        # (rastamat/PLP `postaud`, which cPlp's doAud follows).
        fft_freqs = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
        centres = (filters @ fft_freqs) / np.maximum(filters.sum(axis=1),
                                                     1e-12)
        fsq = centres ** 2
        equal_loudness = ((fsq / (fsq + 1.6e5)) ** 2
                          * ((fsq + 1.44e6) / (fsq + 9.61e6)))
        _CACHE["loudness"] = (np.hamming(LOUDNESS_WINDOW),
                              filters.T * equal_loudness[None, :])
    return _CACHE["loudness"]


def pitch_tracks(x: np.ndarray
                 ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """F0, voicing and HNR per 10 ms frame.

    Args:
        x: float64 [samples] at 16 kHz.

    Returns:
        (f0 [n], voicing [n], hnr [n]) float64, n = pitch frame count. F0
        and HNR are 0 where unvoiced; voicing is the (unclipped) ACF peak
        wherever the frame is not silent, like `voicingFinalUnclipped`.
    """
    frames = frame_view(x, PITCH_WINDOW)
    n = len(frames)
    if n == 0:
        empty = np.zeros(0)
        return empty, empty, empty
    window, window_acf = pitch_window()
    windowed = frames * window
    # openSMILE takes this RMS from the windowed frame too.
    rms = np.sqrt(np.mean(windowed ** 2, axis=1))
    centred = windowed - frames.mean(axis=1, keepdims=True) * window
    spectrum = np.fft.rfft(centred, PITCH_FFT, axis=1)
    acf = np.fft.irfft(np.abs(spectrum) ** 2, PITCH_FFT, axis=1)
    lag_min = int(np.floor(SAMPLE_RATE / F0_MAX))
    lag_max = int(np.ceil(SAMPLE_RATE / F0_MIN))
    # lags lag_min-1 .. lag_max+1 so that every lag in range has neighbours.
    lags = np.arange(lag_min - 1, lag_max + 2)
    raw = acf[:, lags] / np.maximum(acf[:, :1], 1e-20)
    # Pitch search on the ACF with the window's ACF divided out (Boersma
    # 1993), which makes peaks of a periodic signal ~1 at every period.
    norm = raw / window_acf[lags]
    inner = norm[:, 1:-1]
    is_peak = (inner > norm[:, :-2]) & (inner >= norm[:, 2:])
    peaks = np.where(is_peak, inner, -np.inf)
    best = peaks.max(axis=1)
    # Shortest-lag peak close to the best one: avoids sub-octave picks, since
    # a periodic signal has near-equal peaks at every multiple of its period.
    good = is_peak & (inner >= OCTAVE_TOLERANCE * best[:, None])
    index = np.argmax(good, axis=1)
    rows = np.arange(n)
    offset, peak = _parabolic_peak(norm, rows, index)
    lag = lags[index + 1] + offset
    _, raw_peak = _parabolic_peak(raw, rows, index, offset)
    voicing = np.clip(np.nan_to_num(peak, neginf=0.0), 0.0, 1.0)
    audible = (rms >= RMS_THRESHOLD) & np.isfinite(best)
    voiced = audible & (voicing >= VOICING_THRESHOLD)
    f0 = np.where(voiced, SAMPLE_RATE / lag, 0.0)
    # HNR from the plain (window-weighted) ACF at the period, as openSMILE's
    # cHarmonics computes HarmonicsToNoiseRatioACFLogdB.
    r = np.clip(raw_peak, HNR_R_MIN, 1.0 - HNR_R_MIN)
    hnr = np.where(voiced, 10.0 * np.log10(r / (1.0 - r)), 0.0)
    voicing = np.where(audible, voicing, 0.0)
    return f0, voicing, hnr


def _parabolic_peak(values, rows, index, offset=None):
    """Parabolic interpolation around values[rows, index + 1].

    Returns:
        (offset in [-0.5, 0.5], interpolated value); with `offset` given,
        the parabola's value at that offset instead of its vertex.
    """
    left = values[rows, index]
    centre = values[rows, index + 1]
    right = values[rows, index + 2]
    curvature = left - 2.0 * centre + right
    flat = np.abs(curvature) <= 1e-12
    if offset is None:
        offset = np.where(flat, 0.0, 0.5 * (left - right)
                          / np.where(flat, -1.0, curvature))
        offset = np.clip(offset, -0.5, 0.5)
    value = (centre + 0.5 * (right - left) * offset
             + 0.5 * curvature * offset ** 2)
    return offset, value


def _loudness(x):
    """Loudness per 10 ms frame (20 ms frames), float64 [n]."""
    frames = frame_view(x, LOUDNESS_WINDOW)
    if len(frames) == 0:
        return np.zeros(0)
    window, weighted_filters = loudness_weights()
    power = np.abs(np.fft.rfft(frames * window, N_FFT, axis=1)) ** 2
    bands = power @ weighted_filters
    return LOUDNESS_SCALE * np.sum(bands ** LOUDNESS_COMPRESSION, axis=1)


def _smooth(track, skip_zeros):
    """3-frame moving average; with `skip_zeros`, zeros stay and are ignored."""
    if len(track) == 0:
        return track
    valid = (track != 0) if skip_zeros else np.ones(len(track), dtype=bool)
    values = np.where(valid, track, 0.0)
    padded_values = np.pad(values, 1)
    padded_valid = np.pad(valid.astype(np.float64), 1)
    total = padded_values[:-2] + padded_values[1:-1] + padded_values[2:]
    count = padded_valid[:-2] + padded_valid[1:-1] + padded_valid[2:]
    smoothed = total / np.maximum(count, 1.0)
    return np.where(valid, smoothed, 0.0) if skip_zeros else smoothed


def functionals(track: np.ndarray) -> np.ndarray:
    """The 7 functionals of one LLD track (zeros if the track is empty).

    Args:
        track: float array [n] (for pitch LLDs: voiced frames only).

    Returns:
        float64 [7]: stddev, mean, linregc1 (slope per frame), centroid
        (Σ i·x_i / Σ x_i / n), pctl10, pctl90, pctl90 − pctl10.
    """
    track = np.asarray(track, dtype=np.float64)
    n = len(track)
    if n == 0:
        return np.zeros(len(FUNCTIONAL_NAMES))
    mean = track.mean()
    stddev = track.std()
    index = np.arange(n, dtype=np.float64)
    if n > 1:
        centred_index = index - index.mean()
        slope = (centred_index @ (track - mean)) / (centred_index @
                                                    centred_index)
    else:
        slope = 0.0
    total = track.sum()
    centroid = (index @ track) / total / n if total != 0 else 0.0
    p10, p90 = np.percentile(track, [10, 90])
    return np.array([stddev, mean, slope, centroid, p10, p90, p90 - p10])


def prosody_lld(waveform: np.ndarray,
                sample_rate: int = SAMPLE_RATE) -> Dict[str, np.ndarray]:
    """The 5 smoothed prosody LLD tracks (see module docstring).

    Args:
        waveform: float array [samples] in [-1, 1].
        sample_rate: int.

    Returns:
        dict LLD name → float64 [frames] (pitch tracks 0 where unvoiced).
    """
    x = as_waveform(waveform, sample_rate)
    f0, voicing, hnr = pitch_tracks(x)
    # openSMILE's semitone scale: 12·log2(F0 / 27.5 Hz), at least 1 when
    # voiced because 0 means unvoiced.
    log_f0 = np.where(f0 > 0, np.maximum(
        12.0 * np.log2(np.maximum(f0, 1e-12) / 27.5), 1.0), 0.0)
    tracks = (f0, log_f0, voicing, hnr)
    result = {name: _smooth(track, skip_zeros=True)
              for name, track in zip(LLD_NAMES[:4], tracks)}
    result[LLD_NAMES[4]] = _smooth(_loudness(x), skip_zeros=False)
    return result


def prosody_functionals(waveform: np.ndarray,
                        sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """35 utterance prosody functionals (5 LLDs × 7, LLD-major).

    Args:
        waveform: float array [samples] in [-1, 1]; any sample rate.
        sample_rate: int.

    Returns:
        float32 [35], order `PROSODY_NAMES`. Pitch LLD functionals use voiced
        (non-zero) frames only and are 0 when nothing is voiced.
    """
    tracks = prosody_lld(waveform, sample_rate)
    values = []
    for name in LLD_NAMES:
        track = tracks[name]
        if name != LLD_NAMES[4]:
            track = track[track != 0]
        values.append(functionals(track))
    return np.nan_to_num(np.concatenate(values)).astype(np.float32)
