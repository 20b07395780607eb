"""Synthetic test signals at 16 kHz, shared by the audio-feature tests."""

import numpy as np

from common.constants import SAMPLE_RATE as SR


def tone(f0, seconds=1.0, harmonics=1, amplitude=0.3):
    """A harmonic tone: `harmonics` partials of amplitude `amplitude / k`."""
    t = np.arange(int(seconds * SR)) / SR
    return sum(amplitude / k * np.sin(2 * np.pi * k * f0 * t)
               for k in range(1, harmonics + 1))


def noise(seconds=1.0, seed=0):
    """Uniform white noise in [-0.5, 0.5)."""
    return np.random.RandomState(seed).uniform(-0.5, 0.5, int(seconds * SR))
