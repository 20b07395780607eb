"""Audio features of Yoon et al. (2018) with numpy + librosa (no openSMILE).

Two feature sets, both at a 10 ms frame rate, following the original's
openSMILE 2.3.0 configs (yoon_spec.md §2.1, §2.2):

* `mfcc_e_d_a`: 39-dim MFCC-E-D-A per frame (`MFCC12_E_D_A`): 25 ms frames
  every 10 ms starting at sample 0, per-frame HTK pre-emphasis 0.97, Hamming
  window, power spectrum, 26 HTK mel bands 0–8000 Hz, log, DCT-II c1..c12,
  cepstral lifter 22, HTK raw log energy; deltas and accelerations with an
  HTK regression window of 2. Order per frame: [c1..c12, logE], deltas,
  accelerations. This follows the config's definition; it is not
  bit-identical to openSMILE (floors, float precision, edge frames of the
  deltas), see `opensmile_mfcc_e_d_a` for the exact original pipeline.
* `prosody_functionals`: 35 utterance-level values, 5 LLDs × 7 functionals.
  The LLDs are [F0 (Hz), F0 on the openSMILE semitone scale, voicing
  probability, HNR (dB), loudness]; the functionals per LLD are [stddev,
  mean, linregc1, centroid, pctl10, pctl90, pctlrange10-90].

Where the prosody differs from openSMILE's `prosodyShsViterbiLoudness`
(`opensmile_prosody_functionals` runs that config itself, if the optional
`opensmile` package is installed):
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

import os
import sys
import time

import numpy as np
import soundfile

from preprocessing.reference_arrays import DataError

SAMPLE_RATE = 16000
FRAME_LENGTH = 400  # 25 ms at 16 kHz.
FRAME_STEP = 160  # 10 ms at 16 kHz.
N_FFT = 512
N_MELS = 26
N_CEPS = 12
LIFTER = 22
PREEMPHASIS = 0.97
DELTA_WINDOW = 2
MFCC_DIM = 39
MAX_FRAMES = 750
# HTK / openSMILE (htkcompatible) work on 16-bit sample values.
SAMPLE_SCALE = 32768.0
# Floors for the logs so that digital silence gives finite values. openSMILE's
# cMfcc floors mel energies at 1e-8; the energy floor is our choice.
MEL_FLOOR = 1e-8
ENERGY_FLOOR = 1e-8

PROSODY_DIM = 35
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


def feature_parameters():
    """Returns the feature parameters as a JSON-able dict (for manifests)."""
    return {
        "sample_rate": SAMPLE_RATE,
        "mfcc": {
            "frame_length": FRAME_LENGTH, "frame_step": FRAME_STEP,
            "n_fft": N_FFT, "n_mels": N_MELS, "fmin": 0.0,
            "fmax": SAMPLE_RATE / 2, "n_ceps": N_CEPS, "lifter": LIFTER,
            "preemphasis": PREEMPHASIS, "window": "hamming",
            "energy": "htk raw log energy, 16-bit scale",
            "delta_window": DELTA_WINDOW, "order": "c1..c12,logE,D,A",
            "max_frames": MAX_FRAMES, "implementation": "numpy/librosa",
        },
        "prosody": {
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
        },
    }


def _hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)


def _mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)


def mel_filters(n_fft, fmin, fmax, n_mels=N_MELS, sample_rate=SAMPLE_RATE):
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


def _mel_filters(n_fft, fmin, fmax):
    return mel_filters(n_fft, fmin, fmax)


def _dct_lifter_matrix():
    """[26, 12] orthonormal DCT-II rows c1..c12 times the HTK lifter."""
    if "dct" not in _CACHE:
        k = np.arange(1, N_CEPS + 1)[:, None]
        j = np.arange(N_MELS)[None, :]
        dct = np.sqrt(2.0 / N_MELS) * np.cos(np.pi * k * (j + 0.5) / N_MELS)
        lifter = 1.0 + (LIFTER / 2.0) * np.sin(np.pi * k / LIFTER)
        _CACHE["dct"] = (dct * lifter).T
    return _CACHE["dct"]


def _as_waveform(waveform, sample_rate):
    """Validates a waveform and resamples it to 16 kHz, as float64 [samples]."""
    waveform = np.asarray(waveform)
    if waveform.ndim != 1:
        raise ValueError(f"expected a 1-D waveform, found shape "
                         f"{list(waveform.shape)}.")
    if waveform.dtype.kind not in "fiu":
        raise ValueError(f"expected a numeric waveform, found "
                         f"{waveform.dtype}.")
    waveform = waveform.astype(np.float64)
    if sample_rate != SAMPLE_RATE:
        if len(waveform) == 0:
            return waveform
        import librosa
        waveform = librosa.resample(waveform, orig_sr=sample_rate,
                                    target_sr=SAMPLE_RATE)
    return waveform


def _frames(waveform, length, step=FRAME_STEP):
    """[n, length] frames starting at 0, step, ...; n = 1 + (len-length)//step.

    A view (no copy) of `waveform`; 0 frames if it is shorter than `length`.
    """
    if len(waveform) < length:
        return np.zeros((0, length), dtype=waveform.dtype)
    return np.lib.stride_tricks.sliding_window_view(waveform, length)[::step]


def num_frames(num_samples):
    """Number of MFCC frames for `num_samples` samples at 16 kHz."""
    if num_samples < FRAME_LENGTH:
        return 0
    return 1 + (num_samples - FRAME_LENGTH) // FRAME_STEP


def deltas(features, window=DELTA_WINDOW):
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


def mfcc_e_d_a(waveform, sample_rate=SAMPLE_RATE):
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
    x = _as_waveform(waveform, sample_rate) * SAMPLE_SCALE
    frames = _frames(x, FRAME_LENGTH)
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
    mel = power @ _mel_filters(N_FFT, 0.0, SAMPLE_RATE / 2).T
    cepstra = np.log(np.maximum(mel, MEL_FLOOR)) @ _dct_lifter_matrix()
    statics = np.concatenate([cepstra, log_energy[:, None]], axis=1)
    delta = deltas(statics)
    accel = deltas(delta)
    return np.concatenate([statics, delta, accel], axis=1).astype(np.float32)


def _gauss_window(length, sigma):
    """openSMILE's `gauss` window: exp(-0.5 ((i - c) / (sigma c))^2)."""
    centre = (length - 1) / 2.0
    i = np.arange(length)
    return np.exp(-0.5 * ((i - centre) / (sigma * centre)) ** 2)


def pitch_window():
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


def loudness_weights():
    """The loudness frame's Hamming window and its weighted band filters.

    Returns:
        (float64 [LOUDNESS_WINDOW], float64 [N_FFT // 2 + 1, N_MELS]): the
        mel filters 20-8000 Hz times the equal-loudness curve, transposed.
    """
    if "loudness" not in _CACHE:
        filters = _mel_filters(N_FFT, LOUDNESS_FMIN, LOUDNESS_FMAX)
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


def _pitch_tracks(x):
    """F0, voicing and HNR per 10 ms frame.

    Args:
        x: float64 [samples] at 16 kHz.

    Returns:
        (f0 [n], voicing [n], hnr [n]) float64, n = pitch frame count. F0
        and HNR are 0 where unvoiced; voicing is the (unclipped) ACF peak
        wherever the frame is not silent, like `voicingFinalUnclipped`.
    """
    frames = _frames(x, PITCH_WINDOW)
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
    frames = _frames(x, LOUDNESS_WINDOW)
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


def functionals(track):
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


def prosody_lld(waveform, sample_rate=SAMPLE_RATE):
    """The 5 smoothed prosody LLD tracks (see module docstring).

    Args:
        waveform: float array [samples] in [-1, 1].
        sample_rate: int.

    Returns:
        dict LLD name → float64 [frames] (pitch tracks 0 where unvoiced).
    """
    x = _as_waveform(waveform, sample_rate)
    f0, voicing, hnr = _pitch_tracks(x)
    # openSMILE's semitone scale: 12·log2(F0 / 27.5 Hz), at least 1 when
    # voiced because 0 means unvoiced.
    log_f0 = np.where(f0 > 0, np.maximum(
        12.0 * np.log2(np.maximum(f0, 1e-12) / 27.5), 1.0), 0.0)
    tracks = (f0, log_f0, voicing, hnr)
    result = {name: _smooth(track, skip_zeros=True)
              for name, track in zip(LLD_NAMES[:4], tracks)}
    result[LLD_NAMES[4]] = _smooth(_loudness(x), skip_zeros=False)
    return result


def prosody_functionals(waveform, sample_rate=SAMPLE_RATE):
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


BACKENDS = ("numpy", "opensmile")


def extract_features(waveform, sample_rate=SAMPLE_RATE, backend="numpy"):
    """Both feature sets of one clip.

    Args:
        waveform: float array [samples] in [-1, 1]; any sample rate.
        sample_rate: int.
        backend: `"numpy"` (this module) or `"opensmile"` (the original's
            configs run by the optional opensmile package).

    Returns:
        (mfcc float32 [frames, 39], prosody float32 [35]).
    """
    x = _as_waveform(waveform, sample_rate)
    if backend == "numpy":
        return mfcc_e_d_a(x), prosody_functionals(x)
    if backend == "opensmile":
        return opensmile_mfcc_e_d_a(x), opensmile_prosody_functionals(x)
    raise ValueError(f"backend={backend!r}: expected one of {BACKENDS}.")


def wav_truncation(path):
    """Checks a RIFF/WAVE file's data chunk against its header.

    libsndfile silently reads what is there when a wav file was cut short
    (a copy that stopped, a full disk); the header still says how much
    audio there should be.

    Returns:
        None (complete, or not a RIFF/WAVE file, or a header that leaves
        the size open), or a one-line description of what is missing.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        header = f.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or (
                header[8:12] != b"WAVE"):
            return None
        block_align = None
        position = 12
        # A wav file has a handful of chunks; the bound only stops a loop
        # over garbage.
        for _ in range(1000):
            f.seek(position)
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            name, length = chunk[:4], int.from_bytes(chunk[4:], "little")
            if name == b"fmt " and length >= 14:
                block_align = int.from_bytes(f.read(14)[12:14], "little")
            if name == b"data":
                present = size - position - 8
                # 0 and 0xFFFFFFFF: a streamed file whose writer never
                # filled in the size.
                if length in (0, 0xFFFFFFFF) or present >= length:
                    return None
                unit = block_align or 1
                return (f"truncated audio: its header declares "
                        f"{length // unit} samples ({length} bytes), the "
                        f"file holds {present // unit} ({present} bytes)")
            position += 8 + length + (length & 1)
    return None


def _short_audio(num_samples):
    return (f"audio too short: {num_samples} samples "
            f"({1000 * num_samples / SAMPLE_RATE:.1f} ms at 16 kHz); "
            f"expected at least one {1000 * FRAME_LENGTH // SAMPLE_RATE} ms "
            f"analysis window ({FRAME_LENGTH} samples)")


def file_problem(path):
    """Why an audio file cannot be used, from its header alone; or None.

    Missing, unreadable, empty, truncated (`wav_truncation`), or shorter
    than one analysis window.
    """
    if not os.path.isfile(path):
        return f"missing wav file {path}"
    try:
        info = soundfile.info(path)
    except (RuntimeError, soundfile.LibsndfileError, TypeError,
            ValueError) as error:
        return f"unreadable audio {path} ({error})"
    if info.frames <= 0:
        return f"empty audio {path} (0 samples)"
    truncation = wav_truncation(path)
    if truncation:
        return f"{truncation}: {path}"
    if info.frames * SAMPLE_RATE < FRAME_LENGTH * info.samplerate:
        return (f"{_short_audio(info.frames * SAMPLE_RATE // info.samplerate)}"
                f": {path}")
    return None


def load_wav(path, sample_rate=SAMPLE_RATE):
    """Reads an audio file as mono float32 at `sample_rate`.

    Args:
        path: str. Any format libsndfile reads (wav, flac, ogg, ...).
        sample_rate: int. Target rate (resampled if the file differs).

    Returns:
        float32 [samples] in [-1, 1].

    Raises:
        DataError: missing, unreadable, empty or truncated file, one
            shorter than one 25 ms analysis window, or with NaN/Inf samples
            (naming it).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"{path}: missing audio file.")
    try:
        data, file_rate = soundfile.read(path, dtype="float32",
                                         always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError, TypeError,
            ValueError) as error:
        raise DataError(f"{path}: unreadable audio ({error}).") from error
    if data.size == 0:
        raise DataError(f"{path}: empty audio (0 samples).")
    truncation = wav_truncation(path)
    if truncation:
        raise DataError(f"{path}: {truncation}.")
    if not np.isfinite(data).all():
        raise DataError(f"{path}: expected finite samples, found NaN or Inf "
                        f"at sample {int(np.argmin(np.isfinite(data).all(1)))}"
                        ".")
    waveform = data.mean(axis=1)
    if file_rate != sample_rate:
        import librosa
        waveform = librosa.resample(waveform, orig_sr=file_rate,
                                    target_sr=sample_rate)
    if len(waveform) * SAMPLE_RATE < FRAME_LENGTH * sample_rate:
        raise DataError(f"{path}: {_short_audio(len(waveform))}.")
    return np.ascontiguousarray(waveform, dtype=np.float32)


def _extract_item(item, return_errors, backend):
    try:
        source = "a waveform"
        if isinstance(item, (str, bytes, os.PathLike)):
            source = os.fspath(item)
            item = load_wav(item)
        mfcc, prosody = extract_features(item, SAMPLE_RATE, backend)
        for name, values in (("MFCC", mfcc), ("prosody", prosody)):
            if not np.isfinite(values).all():
                raise DataError(f"{source}: its {name} features hold NaN or "
                                "Inf; expected finite numbers.")
        return mfcc, prosody
    except DataError as error:
        if return_errors:
            return error
        raise


class _Progress:
    """A `<label>: done/total (pct, elapsed)` line on stderr, throttled."""

    def __init__(self, total, enabled, interval=0.25, label="features"):
        self.total = total
        self.label = label
        self.enabled = enabled
        # A terminal gets one line rewritten in place; a log file gets a
        # new line every few seconds instead of hundreds of updates.
        self.tty = sys.stderr.isatty()
        self.interval = interval if self.tty else 5.0
        self.start = time.monotonic()
        self.last = -interval

    def update(self, done):
        if not self.enabled:
            return
        now = time.monotonic()
        if done < self.total and now - self.last < self.interval:
            return
        self.last = now
        sys.stderr.write(f"{chr(13) if self.tty else ''}{self.label}: "
                         f"{done}/{self.total} "
                         f"({100.0 * done / max(self.total, 1):.0f}%, "
                         f"{now - self.start:.1f} s)")
        if done == self.total or not self.tty:
            sys.stderr.write("\n")
        sys.stderr.flush()


def extract_many(items, num_workers=2, progress=True, on_error="raise",
                 backend="numpy"):
    """Extracts (mfcc, prosody) for many clips in parallel, in input order.

    Args:
        items: list of 1-D float waveforms at 16 kHz, or of audio file paths
            (any rate; resampled).
        num_workers: int. Worker processes; <= 1 runs in this process.
        progress: bool. Show a progress line on stderr.
        on_error: `"raise"`, or `"return"`: the slot of an item whose file
            is missing or unreadable holds its `DataError` instead.
        backend: see `extract_features`.

    Returns:
        list of (float32 [frames, 39], float32 [35]), one per item. The
        features do not depend on the number of workers.

    Raises:
        DataError: an unreadable/missing file (naming it), with
            `on_error="raise"`.
    """
    if on_error not in ("raise", "return"):
        raise ValueError(f"on_error={on_error!r}: expected 'raise' or "
                         "'return'.")
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r}: expected one of {BACKENDS}.")
    return_errors = on_error == "return"
    items = list(items)
    total = len(items)
    results = [None] * total
    progress = _Progress(total, progress)
    if num_workers <= 1 or total <= 1:
        for index, item in enumerate(items):
            results[index] = _extract_item(item, return_errors, backend)
            progress.update(index + 1)
        return results
    # joblib's loky workers are fresh processes (safe when this process runs
    # TensorFlow or BLAS threads, unlike fork) that, unlike multiprocessing's
    # spawn, do not re-run the caller's __main__ script; they are reused
    # between calls. The generator yields results in input order.
    import joblib
    outputs = joblib.Parallel(n_jobs=min(num_workers, total),
                              backend="loky", return_as="generator",
                              batch_size=1)(
        joblib.delayed(_extract_item)(item, return_errors, backend)
        for item in items)
    for index, output in enumerate(outputs):
        results[index] = output
        progress.update(index + 1)
    return results


def pad_frames(frame_arrays, max_frames=MAX_FRAMES):
    """Keeps the first `max_frames` frames of each clip, zero-pads the end.

    Args:
        frame_arrays: sequence of float arrays [frames_i, dim].
        max_frames: int.

    Returns:
        (float32 [n, max_frames, dim], int32 [n] original frame counts, NOT
        clipped to max_frames, as the original's seqN).
    """
    frame_arrays = list(frame_arrays)
    dim = frame_arrays[0].shape[1] if frame_arrays else MFCC_DIM
    padded = np.zeros((len(frame_arrays), max_frames, dim), dtype=np.float32)
    lengths = np.zeros(len(frame_arrays), dtype=np.int32)
    for row, frames in enumerate(frame_arrays):
        frames = np.asarray(frames)
        if frames.ndim != 2 or frames.shape[1] != dim:
            raise ValueError(f"pad_frames: item {row} has shape "
                             f"{list(frames.shape)}, expected [frames, "
                             f"{dim}].")
        lengths[row] = len(frames)
        kept = frames[:max_frames]
        padded[row, :len(kept)] = kept
    return padded, lengths




# The original's openSMILE 2.3.0 configs (`modified_MFCC12_E_D_A.conf`,
# `modified_prosodyShsViterbiLoudness.conf`), with their file sources and
# sinks swapped for the opensmile package's external ones; the prosody
# config's 35 functionals come out as its `func` level.
OPENSMILE_CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(
    __file__)), "opensmile_configs")


def _opensmile_smile(file_name, feature_level):
    """An `opensmile.Smile` running one of the original's configs."""
    try:
        import opensmile
    except ImportError as error:
        raise ImportError(
            "the openSMILE variants need the `opensmile` package (pip "
            "install opensmile, or the toolkit's [opensmile] extra)."
        ) from error
    return opensmile.Smile(
        feature_set=os.path.join(OPENSMILE_CONFIG_DIR, file_name),
        feature_level=feature_level)


def _isolated(function, *args):
    """Runs `function(*args)` here, or in a worker process if TF is loaded.

    openSMILE's native library crashes the process (`malloc(): invalid
    size`) when TensorFlow was imported first; a loky worker is a fresh
    process without TensorFlow.
    """
    if "tensorflow" not in sys.modules:
        return function(*args)
    # joblib's wrapper of loky's reusable executor: the same worker pool
    # extract_many's joblib.Parallel uses, so the two can be mixed.
    from joblib.executor import get_memmapping_executor
    return get_memmapping_executor(1).submit(function, *args).result()


def _opensmile_extractor():
    if "opensmile" not in _CACHE:
        _CACHE["opensmile"] = _opensmile_smile("MFCC12_E_D_A.conf", "lld")
    return _CACHE["opensmile"]


def opensmile_mfcc_e_d_a(waveform, sample_rate=SAMPLE_RATE):
    """MFCC-E-D-A computed by openSMILE with the original's exact config.

    Needs the optional `opensmile` package. Same layout as `mfcc_e_d_a`
    ([c1..c12, logE] + deltas + accelerations); use it to match the
    released arrays more closely.

    Args:
        waveform: float array [samples] in [-1, 1]; any sample rate.
        sample_rate: int.

    Returns:
        float32 [frames, 39].
    """
    x = _as_waveform(waveform, sample_rate).astype(np.float32)
    if len(x) < FRAME_LENGTH:
        return np.zeros((0, MFCC_DIM), dtype=np.float32)
    return _isolated(_opensmile_mfcc, x)


def _opensmile_mfcc(x):
    frame = _opensmile_extractor().process_signal(x, SAMPLE_RATE)
    values = frame.to_numpy(dtype=np.float32)
    if values.shape[1] != MFCC_DIM:
        raise ValueError(f"openSMILE MFCC config gave {values.shape[1]} "
                         f"columns ({list(frame.columns)[:5]}...), expected "
                         f"{MFCC_DIM}.")
    return values




def opensmile_prosody_functionals(waveform, sample_rate=SAMPLE_RATE):
    """The 35 prosody functionals computed by openSMILE, original config.

    Needs the optional `opensmile` package. Same order as
    `prosody_functionals` (`PROSODY_NAMES`: 7 functionals per LLD, the 4
    pitch LLDs then loudness), which is also openSMILE's output order.

    Args:
        waveform: float array [samples] in [-1, 1]; any sample rate.
        sample_rate: int.

    Returns:
        float32 [35].
    """
    x = _as_waveform(waveform, sample_rate).astype(np.float32)
    return _isolated(_opensmile_prosody, x)


def _opensmile_prosody(x):
    if "opensmile_prosody" not in _CACHE:
        _CACHE["opensmile_prosody"] = _opensmile_smile(
            "prosodyShsViterbiLoudness.conf", "func")
    frame = _CACHE["opensmile_prosody"].process_signal(x, SAMPLE_RATE)
    values = frame.to_numpy(dtype=np.float32).reshape(-1)
    if values.shape != (PROSODY_DIM,):
        raise ValueError(f"openSMILE prosody config gave {values.shape} "
                         f"values, expected {PROSODY_DIM}.")
    return np.nan_to_num(values)
