"""Tests for preprocessing/prosody.py on synthetic signals."""

import numpy as np
import pytest

from preprocessing import prosody as prosody_lib
from tests.preprocessing import signals


def test_silence_prosody_is_zero():
    silent = np.zeros(signals.SR)
    prosody = prosody_lib.prosody_functionals(silent)
    assert prosody.shape == (35,) and prosody.dtype == np.float32
    np.testing.assert_array_equal(prosody, 0.0)
    np.testing.assert_array_equal(prosody_lib.prosody_functionals(np.zeros(100)), 0.0)


@pytest.mark.parametrize("f0", [150.0, 300.0])
@pytest.mark.parametrize("harmonics", [1, 5])
def test_prosody_recovers_f0(f0, harmonics):
    prosody = prosody_lib.prosody_functionals(signals.tone(f0, harmonics=harmonics))
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
    prosody = prosody_lib.prosody_functionals(signals.noise(1.0))
    # F0, log F0 and HNR are zero; voicing (unclipped) and loudness are not.
    np.testing.assert_array_equal(prosody[:14], 0.0)
    np.testing.assert_array_equal(prosody[21:28], 0.0)
    assert 0.0 < prosody[15] < 0.5
    assert prosody[29] > 0.0


def test_functionals_by_hand():
    track = np.array([1.0, 2.0, 3.0, 6.0])
    stddev, mean, slope, centroid, p10, p90, rng = prosody_lib.functionals(track)
    assert mean == pytest.approx(3.0)
    assert stddev == pytest.approx(np.sqrt(np.mean((track - 3.0) ** 2)))
    assert slope == pytest.approx(np.polyfit(np.arange(4), track, 1)[0])
    assert centroid == pytest.approx((0 + 2 + 6 + 18) / 12.0 / 4)
    assert p10 == pytest.approx(1.3) and p90 == pytest.approx(5.1)
    assert rng == pytest.approx(3.8)
