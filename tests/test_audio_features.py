"""Tests for preprocessing/audio_features.py on synthetic signals."""

import librosa
import numpy as np
import pytest
import scipy.fft
import scipy.signal
import soundfile

from preprocessing import audio_features as af
from preprocessing.reference_arrays import DataError

SR = 16000


def _tone(f0, seconds=1.0, harmonics=1, amplitude=0.3):
    t = np.arange(int(seconds * SR)) / SR
    return sum(amplitude / k * np.sin(2 * np.pi * k * f0 * t)
               for k in range(1, harmonics + 1))


def _noise(seconds=1.0, seed=0):
    return np.random.RandomState(seed).uniform(-0.5, 0.5, int(seconds * SR))


def _reference_statics(frame):
    """c1..c12 and logE of one 400-sample frame, computed step by step."""
    frame = np.asarray(frame, dtype=np.float64) * 32768.0
    log_energy = np.log(np.sum(frame ** 2))
    emphasised = np.array([frame[0] - 0.97 * frame[0]] + [
        frame[i] - 0.97 * frame[i - 1] for i in range(1, len(frame))])
    windowed = emphasised * scipy.signal.get_window("hamming", 400,
                                                    fftbins=False)
    power = np.abs(scipy.fft.rfft(windowed, 512)) ** 2
    filters = librosa.filters.mel(sr=SR, n_fft=512, n_mels=26, fmin=0,
                                  fmax=8000, htk=True, norm=None)
    log_mel = np.log(filters @ power)
    cepstra = scipy.fft.dct(log_mel, type=2, norm="ortho")[1:13]
    lifter = 1 + 11 * np.sin(np.pi * np.arange(1, 13) / 22)
    return np.concatenate([cepstra * lifter, [log_energy]])


@pytest.mark.parametrize("samples, frames", [
    (16000, 98), (400, 1), (399, 0), (559, 1), (560, 2), (0, 0)])
def test_mfcc_frame_counts(samples, frames):
    mfcc = af.mfcc_e_d_a(_noise(1.0)[:samples] if samples else np.zeros(0))
    assert mfcc.shape == (frames, 39)
    assert mfcc.dtype == np.float32
    assert af.num_frames(samples) == frames


def test_mfcc_statics_match_step_by_step_computation():
    x = _noise(0.5) * np.linspace(0.1, 1.0, 8000)
    mfcc = af.mfcc_e_d_a(x)
    for t in (0, 7, 20, len(mfcc) - 1):
        expected = _reference_statics(x[t * 160:t * 160 + 400])
        np.testing.assert_allclose(mfcc[t, :13], expected, rtol=1e-4,
                                   atol=1e-3)


def test_deltas_follow_htk_regression():
    mfcc = af.mfcc_e_d_a(_noise(0.3, seed=3)).astype(np.float64)
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
    mfcc = af.mfcc_e_d_a(np.full(800, 0.25))
    expected = np.log(400 * (0.25 * 32768.0) ** 2)
    np.testing.assert_allclose(mfcc[:, 12], expected, rtol=1e-6)
    np.testing.assert_allclose(mfcc[:, 25], 0.0, atol=1e-5)


def test_mfcc_resamples_other_rates():
    x8k = _noise(1.0)[:8000]
    assert af.mfcc_e_d_a(x8k, sample_rate=8000).shape == (98, 39)


def test_silence_is_finite_and_prosody_zero():
    silent = np.zeros(SR)
    mfcc = af.mfcc_e_d_a(silent)
    assert np.isfinite(mfcc).all()
    np.testing.assert_allclose(mfcc[:, :12], 0.0, atol=1e-9)
    prosody = af.prosody_functionals(silent)
    assert prosody.shape == (35,) and prosody.dtype == np.float32
    np.testing.assert_array_equal(prosody, 0.0)
    np.testing.assert_array_equal(af.prosody_functionals(np.zeros(100)), 0.0)


@pytest.mark.parametrize("f0", [150.0, 300.0])
@pytest.mark.parametrize("harmonics", [1, 5])
def test_prosody_recovers_f0(f0, harmonics):
    prosody = af.prosody_functionals(_tone(f0, harmonics=harmonics))
    mean_f0, pctl10, pctl90 = prosody[1], prosody[4], prosody[5]
    assert abs(mean_f0 - f0) / f0 < 0.02
    assert abs(pctl10 - f0) / f0 < 0.03 and abs(pctl90 - f0) / f0 < 0.03
    semitones = 12 * np.log2(f0 / 27.5)
    assert abs(prosody[8] - semitones) < 0.3
    assert prosody[15] > 0.9  # Voicing of a clean tone.
    assert prosody[22] > 10.0  # HNR (dB).
    assert prosody[29] > 0.0  # Loudness.
    assert np.isfinite(prosody).all()


def test_noise_is_unvoiced_but_loud():
    prosody = af.prosody_functionals(_noise(1.0))
    # F0, log F0 and HNR are zero; voicing (unclipped) and loudness are not.
    np.testing.assert_array_equal(prosody[:14], 0.0)
    np.testing.assert_array_equal(prosody[21:28], 0.0)
    assert 0.0 < prosody[15] < 0.5
    assert prosody[29] > 0.0


def test_functionals_by_hand():
    track = np.array([1.0, 2.0, 3.0, 6.0])
    stddev, mean, slope, centroid, p10, p90, rng = af.functionals(track)
    assert mean == pytest.approx(3.0)
    assert stddev == pytest.approx(np.sqrt(np.mean((track - 3.0) ** 2)))
    assert slope == pytest.approx(np.polyfit(np.arange(4), track, 1)[0])
    assert centroid == pytest.approx((0 + 2 + 6 + 18) / 12.0 / 4)
    assert p10 == pytest.approx(1.3) and p90 == pytest.approx(5.1)
    assert rng == pytest.approx(3.8)


def test_deterministic_and_extract_features():
    x = _tone(200.0, seconds=0.5, harmonics=3) + 0.01 * _noise(0.5)
    mfcc1, prosody1 = af.extract_features(x)
    mfcc2, prosody2 = af.extract_features(x.copy())
    np.testing.assert_array_equal(mfcc1, mfcc2)
    np.testing.assert_array_equal(prosody1, prosody2)


def test_extract_many_keeps_order_with_two_workers(tmp_path):
    items = [_tone(f, seconds=0.3 + 0.05 * i)
             for i, f in enumerate((120.0, 180.0, 240.0, 310.0))]
    path = tmp_path / "clip.wav"
    soundfile.write(path, items[1], SR, subtype="PCM_16")
    items.append(str(path))
    serial = af.extract_many(items, num_workers=1, progress=False)
    parallel = af.extract_many(items, num_workers=2, progress=True)
    assert len(parallel) == len(items)
    for (m1, p1), (m2, p2) in zip(serial, parallel):
        np.testing.assert_array_equal(m1, m2)
        np.testing.assert_array_equal(p1, p2)
    assert [len(m) for m, _ in parallel[:4]] == [
        af.num_frames(len(x)) for x in items[:4]]


def test_load_wav_mixes_down_and_resamples(tmp_path):
    stereo = np.stack([_tone(200.0, 0.5), np.zeros(8000)], axis=1)[::2]
    path = tmp_path / "stereo8k.wav"
    soundfile.write(path, stereo, 8000, subtype="FLOAT")
    waveform = af.load_wav(path)
    assert waveform.dtype == np.float32 and waveform.ndim == 1
    assert abs(len(waveform) - 8000) <= 2
    assert np.abs(waveform).max() == pytest.approx(0.15, abs=0.02)


def test_load_wav_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="missing.wav"):
        af.load_wav(tmp_path / "missing.wav")
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"not a wav file at all")
    with pytest.raises(DataError, match="garbage.wav: unreadable"):
        af.load_wav(garbage)
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0), SR)
    with pytest.raises(DataError, match="empty.wav: empty"):
        af.load_wav(empty)


def test_pad_frames_truncates_and_keeps_lengths():
    arrays = [np.ones((800, 39)), np.full((3, 39), 2.0), np.zeros((0, 39))]
    padded, lengths = af.pad_frames(arrays, max_frames=750)
    assert padded.shape == (3, 750, 39) and padded.dtype == np.float32
    assert lengths.dtype == np.int32
    np.testing.assert_array_equal(lengths, [800, 3, 0])
    np.testing.assert_array_equal(padded[0], 1.0)
    np.testing.assert_array_equal(padded[1, :3], 2.0)
    np.testing.assert_array_equal(padded[1, 3:], 0.0)
    np.testing.assert_array_equal(padded[2], 0.0)
    with pytest.raises(ValueError, match="item 1"):
        af.pad_frames([np.ones((2, 39)), np.ones((2, 13))])


def test_opensmile_config_matches_numpy_implementation():
    pytest.importorskip("opensmile")
    t = np.arange(2 * SR) / SR
    x = (0.3 * np.sin(2 * np.pi * np.cumsum(150 + 50 * np.sin(2 * np.pi * t))
                      / SR) * np.hanning(len(t)) + 0.01 * _noise(2.0, seed=4))
    reference = af.opensmile_mfcc_e_d_a(x)
    ours = af.mfcc_e_d_a(x)
    assert reference.shape == ours.shape == (198, 39)
    for column in range(39):
        # Accelerations amplify the small cepstral differences most.
        minimum = 0.995 if column < 26 else 0.98
        assert np.corrcoef(reference[:, column],
                           ours[:, column])[0, 1] > minimum, column
    # Log energy is identical; cepstra differ by the mel filter details.
    np.testing.assert_allclose(ours[:, 12], reference[:, 12], atol=0.01)
    np.testing.assert_allclose(ours[:, :12], reference[:, :12], atol=1.0)


@pytest.mark.parametrize("fmin", [0.0, 20.0])
def test_mel_filters_equal_librosa_htk(fmin):
    ours = af.mel_filters(512, fmin, 8000.0)
    theirs = librosa.filters.mel(sr=SR, n_fft=512, n_mels=26, fmin=fmin,
                                 fmax=8000.0, htk=True, norm=None)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_extract_many_returns_errors_on_request(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"garbage")
    results = af.extract_many([_tone(150.0, 0.1), str(bad)], num_workers=1,
                              progress=False, on_error="return")
    assert results[0][0].shape == (8, 39)
    assert isinstance(results[1], DataError) and "bad.wav" in str(results[1])
    with pytest.raises(DataError, match="bad.wav"):
        af.extract_many([str(bad)], num_workers=1, progress=False)


def test_opensmile_prosody_config_agrees_on_f0_and_hnr():
    pytest.importorskip("opensmile")
    x = _tone(150.0, seconds=1.0, harmonics=5)
    reference = af.opensmile_prosody_functionals(x)
    ours = af.prosody_functionals(x)
    assert reference.shape == ours.shape == (35,)
    assert ours[1] == pytest.approx(reference[1], rel=0.01)  # F0 mean.
    assert ours[8] == pytest.approx(reference[8], abs=0.2)  # Semitones.
    assert ours[22] == pytest.approx(reference[22], abs=0.5)  # HNR dB.
    assert ours[29] == pytest.approx(reference[29], rel=0.2)  # Loudness.


def test_unknown_backend_rejected():
    with pytest.raises(ValueError, match="backend='praat'"):
        af.extract_features(_tone(150.0, 0.1), backend="praat")
    with pytest.raises(ValueError, match="on_error='ignore'"):
        af.extract_many([], on_error="ignore")
