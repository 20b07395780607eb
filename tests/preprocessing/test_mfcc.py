"""Tests for preprocessing/mfcc.py on synthetic signals."""

import librosa
import numpy as np
import pytest
import scipy.fft
import scipy.signal

from preprocessing import audio_io
from preprocessing import mfcc as mfcc_lib
from tests.preprocessing import signals


def _reference_statics(frame):
    """c1..c12 and logE of one 400-sample frame, computed step by step."""
    frame = np.asarray(frame, dtype=np.float64) * 32768.0
    log_energy = np.log(np.sum(frame ** 2))
    emphasised = np.array([frame[0] - 0.97 * frame[0]] + [
        frame[i] - 0.97 * frame[i - 1] for i in range(1, len(frame))])
    windowed = emphasised * scipy.signal.get_window("hamming", 400,
                                                    fftbins=False)
    power = np.abs(scipy.fft.rfft(windowed, 512)) ** 2
    filters = librosa.filters.mel(sr=signals.SR, n_fft=512, n_mels=26, fmin=0,
                                  fmax=8000, htk=True, norm=None)
    log_mel = np.log(filters @ power)
    cepstra = scipy.fft.dct(log_mel, type=2, norm="ortho")[1:13]
    lifter = 1 + 11 * np.sin(np.pi * np.arange(1, 13) / 22)
    return np.concatenate([cepstra * lifter, [log_energy]])


@pytest.mark.parametrize("samples, frames", [
    (16000, 98), (400, 1), (399, 0), (559, 1), (560, 2), (0, 0)])
def test_mfcc_frame_counts(samples, frames):
    mfcc = mfcc_lib.mfcc_e_d_a(signals.noise(1.0)[:samples] if samples else np.zeros(0))
    assert mfcc.shape == (frames, 39)
    assert mfcc.dtype == np.float32
    assert audio_io.num_frames(samples) == frames


def test_mfcc_statics_match_step_by_step_computation():
    x = signals.noise(0.5) * np.linspace(0.1, 1.0, 8000)
    mfcc = mfcc_lib.mfcc_e_d_a(x)
    for t in (0, 7, 20, len(mfcc) - 1):
        expected = _reference_statics(x[t * 160:t * 160 + 400])
        np.testing.assert_allclose(mfcc[t, :13], expected, rtol=1e-4,
                                   atol=1e-3)


def test_deltas_follow_htk_regression():
    mfcc = mfcc_lib.mfcc_e_d_a(signals.noise(0.3, seed=3)).astype(np.float64)
    statics, delta, accel = mfcc[:, :13], mfcc[:, 13:26], mfcc[:, 26:]
    n = len(statics)

    def at(c, t):  # HTK replicates the edge frames.
        return c[min(max(t, 0), n - 1)]

    def regression(c, t):
        return (1 * (at(c, t + 1) - at(c, t - 1))
                + 2 * (at(c, t + 2) - at(c, t - 2))) / 10.0

    for t in (0, 1, 5, n - 2, n - 1):
        np.testing.assert_allclose(delta[t], regression(statics, t),
                                   rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(accel[t], regression(delta, t),
                                   rtol=1e-4, atol=1e-4)


def test_log_energy_of_constant_signal():
    mfcc = mfcc_lib.mfcc_e_d_a(np.full(800, 0.25))
    expected = np.log(400 * (0.25 * 32768.0) ** 2)
    np.testing.assert_allclose(mfcc[:, 12], expected, rtol=1e-6)
    np.testing.assert_allclose(mfcc[:, 25], 0.0, atol=1e-5)


def test_mfcc_resamples_other_rates():
    x8k = signals.noise(1.0)[:8000]
    assert mfcc_lib.mfcc_e_d_a(x8k, sample_rate=8000).shape == (98, 39)


def test_silence_is_finite():
    silent = np.zeros(signals.SR)
    mfcc = mfcc_lib.mfcc_e_d_a(silent)
    assert np.isfinite(mfcc).all()
    np.testing.assert_allclose(mfcc[:, :12], 0.0, atol=1e-9)


@pytest.mark.parametrize("fmin", [0.0, 20.0])
def test_mel_filters_equal_librosa_htk(fmin):
    ours = mfcc_lib.mel_filters(512, fmin, 8000.0)
    theirs = librosa.filters.mel(sr=signals.SR, n_fft=512, n_mels=26, fmin=fmin,
                                 fmax=8000.0, htk=True, norm=None)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
