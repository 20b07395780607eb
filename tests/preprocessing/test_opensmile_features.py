"""Tests for preprocessing/opensmile_features.py against the numpy features (needs
the optional opensmile package)."""

import numpy as np
import pytest

from preprocessing import mfcc as mfcc_lib
from preprocessing import opensmile_features
from preprocessing import prosody as prosody_lib
from tests.preprocessing import signals


def test_opensmile_config_matches_numpy_implementation():
    pytest.importorskip("opensmile")
    t = np.arange(2 * signals.SR) / signals.SR
    x = (0.3 * np.sin(2 * np.pi * np.cumsum(150 + 50 * np.sin(2 * np.pi * t))
                      / signals.SR) * np.hanning(len(t)) + 0.01 * signals.noise(2.0, seed=4))
    reference = opensmile_features.opensmile_mfcc_e_d_a(x)
    ours = mfcc_lib.mfcc_e_d_a(x)
    assert reference.shape == ours.shape == (198, 39)
    for column in range(39):
        # Accelerations amplify the small cepstral differences most.
        minimum = 0.995 if column < 26 else 0.98
        assert np.corrcoef(reference[:, column],
                           ours[:, column])[0, 1] > minimum, column
    # Log energy is identical; cepstra differ by the mel filter details.
    np.testing.assert_allclose(ours[:, 12], reference[:, 12], atol=0.01)
    np.testing.assert_allclose(ours[:, :12], reference[:, :12], atol=1.0)


def test_opensmile_prosody_config_agrees_on_f0_and_hnr():
    pytest.importorskip("opensmile")
    x = signals.tone(150.0, seconds=1.0, harmonics=5)
    reference = opensmile_features.opensmile_prosody_functionals(x)
    ours = prosody_lib.prosody_functionals(x)
    assert reference.shape == ours.shape == (35,)
    assert ours[1] == pytest.approx(reference[1], rel=0.01)  # F0 mean.
    assert ours[8] == pytest.approx(reference[8], abs=0.2)  # Semitones.
    assert ours[22] == pytest.approx(reference[22], abs=0.5)  # HNR dB.
    assert ours[29] == pytest.approx(reference[29], rel=0.2)  # Loudness.
