"""Tests for preprocessing/audio_io.py: reading audio files, frames."""

import numpy as np
import pytest
import soundfile

from preprocessing import audio_io
from preprocessing.reference_arrays import DataError
from tests.preprocessing import signals


def test_load_wav_mixes_down_and_resamples(tmp_path):
    stereo = np.stack([signals.tone(200.0, 0.5), np.zeros(8000)], axis=1)[::2]
    path = tmp_path / "stereo8k.wav"
    soundfile.write(path, stereo, 8000, subtype="FLOAT")
    waveform = audio_io.load_wav(path)
    assert waveform.dtype == np.float32 and waveform.ndim == 1
    assert abs(len(waveform) - 8000) <= 2
    assert np.abs(waveform).max() == pytest.approx(0.15, abs=0.02)


def test_load_wav_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="missing.wav"):
        audio_io.load_wav(tmp_path / "missing.wav")
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"not a wav file at all")
    with pytest.raises(DataError, match="garbage.wav: unreadable"):
        audio_io.load_wav(garbage)
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0), signals.SR)
    with pytest.raises(DataError, match="empty.wav: empty"):
        audio_io.load_wav(empty)


@pytest.mark.parametrize("samples", [0, 399, 400, 559, 560, 16000])
def test_frame_view_and_num_frames_agree(samples):
    x = np.arange(samples, dtype=np.float64)
    frames = audio_io.frame_view(x, audio_io.FRAME_LENGTH)
    assert frames.shape == (audio_io.num_frames(samples),
                            audio_io.FRAME_LENGTH)
    for t in range(len(frames)):
        np.testing.assert_array_equal(
            frames[t], x[t * audio_io.FRAME_STEP:
                         t * audio_io.FRAME_STEP + audio_io.FRAME_LENGTH])


def test_as_waveform_validates_and_resamples():
    with pytest.raises(ValueError, match=r"1-D waveform, found shape \[2, 3\]"):
        audio_io.as_waveform(np.zeros((2, 3)), 16000)
    with pytest.raises(ValueError, match="numeric waveform"):
        audio_io.as_waveform(np.array(["a", "b"]), 16000)
    x = audio_io.as_waveform(np.ones(100, np.int16), 16000)
    assert x.dtype == np.float64 and len(x) == 100
    assert len(audio_io.as_waveform(signals.noise(0.5)[:4000], 8000)) == 8000


def test_file_problem_reads_only_the_header(tmp_path):
    assert audio_io.file_problem(str(tmp_path / "absent.wav")) == (
        f"missing wav file {tmp_path / 'absent.wav'}")
    good = str(tmp_path / "good.wav")
    soundfile.write(good, signals.tone(200.0, 0.1), signals.SR,
                    subtype="PCM_16")
    assert audio_io.file_problem(good) is None
    assert audio_io.wav_truncation(good) is None
    short = str(tmp_path / "short.wav")
    soundfile.write(short, np.zeros(100), signals.SR, subtype="PCM_16")
    assert audio_io.file_problem(short).startswith("audio too short: 100 ")
    cut = str(tmp_path / "cut.wav")
    with open(good, "rb") as f:
        data = f.read()
    with open(cut, "wb") as f:
        f.write(data[:44 + 2 * 800])
    assert audio_io.wav_truncation(cut) == (
        "truncated audio: its header declares 1600 samples (3200 bytes), "
        "the file holds 800 (1600 bytes)")
    assert audio_io.file_problem(cut).endswith(f": {cut}")
