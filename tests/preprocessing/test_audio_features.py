"""Tests for preprocessing/audio_features.py: the facade names the one
definition of each fact (no second copy that could drift)."""

from common import constants
from preprocessing import audio_features
from preprocessing import audio_io
from preprocessing import extraction
from preprocessing import prosody


def test_facade_names_are_the_definitions():
    assert audio_features.SAMPLE_RATE == constants.SAMPLE_RATE == 16000
    assert audio_features.FRAME_STEP == audio_io.FRAME_STEP
    assert audio_features.PROSODY_NAMES is prosody.PROSODY_NAMES
    assert len(audio_features.PROSODY_NAMES) == constants.PROSODY_DIM
    assert audio_features.BACKENDS is extraction.BACKENDS
    for name in ("extract_features", "extract_many", "feature_parameters",
                 "pad_frames"):
        assert getattr(audio_features, name) is getattr(extraction, name)
    for name in ("load_wav", "file_problem"):
        assert getattr(audio_features, name) is getattr(audio_io, name)
    assert sorted(audio_features.__all__) == sorted(
        name for name in vars(audio_features)
        if not name.startswith("_") and name != "constants")
