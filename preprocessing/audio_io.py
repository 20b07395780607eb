"""Audio in: files and arrays as validated 16 kHz waveforms, and the frame grid.

Every feature of this package (MFCC, prosody, openSMILE, log-mel) reads its
waveform through `as_waveform` or `load_wav` and counts frames on the same
grid: a frame every `FRAME_STEP` samples (10 ms) starting at sample 0, "valid"
framing only (no frame reads past the end). `FRAME_LENGTH` (25 ms, the MFCC
window) is also the shortest clip the toolkit accepts.
"""

import os
from typing import Optional, Union

import numpy as np
import soundfile

from common.constants import SAMPLE_RATE
from preprocessing.reference_arrays import DataError

FRAME_LENGTH = 400  # 25 ms at 16 kHz.
FRAME_STEP = 160  # 10 ms at 16 kHz.


def as_waveform(waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    """A waveform as float64 [samples] at 16 kHz.

    Args:
        waveform: 1-D numeric array [samples] (float in [-1, 1]).
        sample_rate: int. Its rate; resampled (librosa) when not 16 kHz.

    Raises:
        ValueError: not 1-D, or not numbers.
    """
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
        import librosa  # Heavy (~1.5 s): only when resampling.
        waveform = librosa.resample(waveform, orig_sr=sample_rate,
                                    target_sr=SAMPLE_RATE)
    return waveform


def frame_view(waveform: np.ndarray, length: int,
               step: int = FRAME_STEP) -> np.ndarray:
    """[n, length] frames starting at 0, step, ...; n = 1 + (len-length)//step.

    A view (no copy) of `waveform`; 0 frames if it is shorter than `length`.
    """
    if len(waveform) < length:
        return np.zeros((0, length), dtype=waveform.dtype)
    return np.lib.stride_tricks.sliding_window_view(waveform, length)[::step]


def num_frames(num_samples: int) -> int:
    """Number of MFCC frames for `num_samples` samples at 16 kHz."""
    if num_samples < FRAME_LENGTH:
        return 0
    return 1 + (num_samples - FRAME_LENGTH) // FRAME_STEP



def wav_truncation(path: str) -> Optional[str]:
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


def _short_audio(num_samples: int) -> str:
    return (f"audio too short: {num_samples} samples "
            f"({1000 * num_samples / SAMPLE_RATE:.1f} ms at 16 kHz); "
            f"expected at least one {1000 * FRAME_LENGTH // SAMPLE_RATE} ms "
            f"analysis window ({FRAME_LENGTH} samples)")


def file_problem(path: str) -> Optional[str]:
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


def load_wav(path: Union[str, os.PathLike],
             sample_rate: int = SAMPLE_RATE) -> np.ndarray:
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
        import librosa  # Heavy (~1.5 s): only when resampling.
        waveform = librosa.resample(waveform, orig_sr=file_rate,
                                    target_sr=sample_rate)
    if len(waveform) * SAMPLE_RATE < FRAME_LENGTH * sample_rate:
        raise DataError(f"{path}: {_short_audio(len(waveform))}.")
    return np.ascontiguousarray(waveform, dtype=np.float32)

