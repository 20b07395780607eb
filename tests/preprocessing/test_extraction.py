"""Tests for preprocessing/extraction.py: one clip, many clips, padding."""

import json

import numpy as np
import pytest
import soundfile

from common import constants
from preprocessing import audio_io
from preprocessing import extraction
from preprocessing.reference_arrays import DataError
from tests.preprocessing import signals


def test_deterministic_and_extract_features():
    x = signals.tone(200.0, seconds=0.5, harmonics=3) + 0.01 * signals.noise(0.5)
    mfcc1, prosody1 = extraction.extract_features(x)
    mfcc2, prosody2 = extraction.extract_features(x.copy())
    np.testing.assert_array_equal(mfcc1, mfcc2)
    np.testing.assert_array_equal(prosody1, prosody2)


def test_extract_many_keeps_order_with_two_workers(tmp_path):
    items = [signals.tone(f, seconds=0.3 + 0.05 * i)
             for i, f in enumerate((120.0, 180.0, 240.0, 310.0))]
    path = tmp_path / "clip.wav"
    soundfile.write(path, items[1], signals.SR, subtype="PCM_16")
    items.append(str(path))
    serial = extraction.extract_many(items, num_workers=1, progress=False)
    parallel = extraction.extract_many(items, num_workers=2, progress=True)
    assert len(parallel) == len(items)
    for (m1, p1), (m2, p2) in zip(serial, parallel):
        np.testing.assert_array_equal(m1, m2)
        np.testing.assert_array_equal(p1, p2)
    assert [len(m) for m, _ in parallel[:4]] == [
        audio_io.num_frames(len(x)) for x in items[:4]]


def test_pad_frames_truncates_and_keeps_lengths():
    arrays = [np.ones((800, 39)), np.full((3, 39), 2.0), np.zeros((0, 39))]
    padded, lengths = extraction.pad_frames(arrays, max_frames=750)
    assert padded.shape == (3, 750, 39) and padded.dtype == np.float32
    assert lengths.dtype == np.int32
    np.testing.assert_array_equal(lengths, [800, 3, 0])
    np.testing.assert_array_equal(padded[0], 1.0)
    np.testing.assert_array_equal(padded[1, :3], 2.0)
    np.testing.assert_array_equal(padded[1, 3:], 0.0)
    np.testing.assert_array_equal(padded[2], 0.0)
    with pytest.raises(ValueError, match="item 1"):
        extraction.pad_frames([np.ones((2, 39)), np.ones((2, 13))])


def test_extract_many_returns_errors_on_request(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"garbage")
    results = extraction.extract_many([signals.tone(150.0, 0.1), str(bad)], num_workers=1,
                              progress=False, on_error="return")
    assert results[0][0].shape == (8, 39)
    assert isinstance(results[1], DataError) and "bad.wav" in str(results[1])
    with pytest.raises(DataError, match="bad.wav"):
        extraction.extract_many([str(bad)], num_workers=1, progress=False)


def test_unknown_backend_rejected():
    with pytest.raises(ValueError, match="backend='praat'"):
        extraction.extract_features(signals.tone(150.0, 0.1), backend="praat")
    with pytest.raises(ValueError, match="on_error='ignore'"):
        extraction.extract_many([], on_error="ignore")


def test_feature_parameters_are_json_and_state_the_constants():
    parameters = extraction.feature_parameters()
    assert json.loads(json.dumps(parameters)) == parameters
    assert list(parameters) == ["sample_rate", "mfcc", "prosody"]
    assert parameters["sample_rate"] == constants.SAMPLE_RATE
    assert parameters["mfcc"]["max_frames"] == constants.MFCC_FRAMES
    assert parameters["mfcc"]["frame_step"] == audio_io.FRAME_STEP
    assert (len(parameters["prosody"]["llds"])
            * len(parameters["prosody"]["functionals"])
            == constants.PROSODY_DIM)
