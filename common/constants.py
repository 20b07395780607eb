"""The reference shapes and units of Yoon et al. (2018), stated once.

Every default that mentions a frame count, a text width or a sample rate
reads it from here (models' input widths, preprocessing's padding, the
serving signatures), so a corpus with other shapes changes one argument,
not a scattered literal.
"""

from typing import Tuple

SAMPLE_RATE: int = 16000
"""Hz. Waveforms are resampled to this rate before any feature."""

MFCC_FRAMES: int = 750
"""Frames of `audio_mfcc` (10 ms hop: 7.5 s); longer clips are cut."""

MFCC_DIM: int = 39
"""MFCC-E-D-A: 12 cepstra + log energy, with deltas and accelerations."""

PROSODY_DIM: int = 35
"""Utterance-level prosody functionals (`audio_prosody`)."""

TEXT_LENGTH: int = 128
"""Token ids per transcript (`text_ids`), right-padded with 0."""

NUM_CLASSES: int = 4

LABEL_NAMES: Tuple[str, ...] = ("angry", "happy", "sad", "neutral")
"""Label ids 0..3; IEMOCAP's "excited" is merged into "happy"."""
