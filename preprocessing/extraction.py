"""Both feature sets of one clip or many clips, the features of a corpus.

`extract_features` gives (MFCC-E-D-A [frames, 39], prosody [35]) of one
waveform by either backend (numpy: `mfcc` + `prosody`; openSMILE:
`opensmile_features`); `extract_many` runs it over waveforms or audio files
in worker processes, in input order; `pad_frames` makes the zero-padded
[n, 750, 39] array of the reference layout.
"""

import os
from typing import Any, Dict, List, Sequence, Tuple, Union

import joblib
import numpy as np

from common.constants import MFCC_DIM, MFCC_FRAMES, SAMPLE_RATE
from preprocessing import mfcc as mfcc_lib
from preprocessing import opensmile_features
from preprocessing import prosody as prosody_lib
from preprocessing.audio_io import as_waveform, load_wav
from preprocessing.progress import Progress
from preprocessing.reference_arrays import DataError

BACKENDS = ("numpy", "opensmile")


def feature_parameters() -> Dict[str, Any]:
    """Returns the feature parameters as a JSON-able dict (for manifests)."""
    return {"sample_rate": SAMPLE_RATE, "mfcc": mfcc_lib.parameters(),
            "prosody": prosody_lib.parameters()}


def extract_features(waveform: np.ndarray, sample_rate: int = SAMPLE_RATE,
                     backend: str = "numpy"
                     ) -> Tuple[np.ndarray, np.ndarray]:
    """Both feature sets of one clip.

    Args:
        waveform: float array [samples] in [-1, 1]; any sample rate.
        sample_rate: int.
        backend: `"numpy"` (`mfcc`, `prosody`) or `"opensmile"` (the
            original's configs run by the optional opensmile package).

    Returns:
        (mfcc float32 [frames, 39], prosody float32 [35]).
    """
    x = as_waveform(waveform, sample_rate)
    if backend == "numpy":
        return mfcc_lib.mfcc_e_d_a(x), prosody_lib.prosody_functionals(x)
    if backend == "opensmile":
        return (opensmile_features.opensmile_mfcc_e_d_a(x),
                opensmile_features.opensmile_prosody_functionals(x))
    raise ValueError(f"backend={backend!r}: expected one of {BACKENDS}.")


def _extract_item(item, return_errors, backend):
    try:
        source = "a waveform"
        if isinstance(item, (str, bytes, os.PathLike)):
            source = os.fspath(item)
            item = load_wav(item)
        mfcc, prosody = extract_features(item, SAMPLE_RATE, backend)
        for name, values in (("MFCC", mfcc), ("prosody", prosody)):
            if not np.isfinite(values).all():
                raise DataError(f"{source}: its {name} features hold NaN or "
                                "Inf; expected finite numbers.")
        return mfcc, prosody
    except DataError as error:
        if return_errors:
            return error
        raise


def extract_many(items: Sequence[Union[np.ndarray, str, os.PathLike]],
                 num_workers: int = 2, progress: bool = True,
                 on_error: str = "raise", backend: str = "numpy"
                 ) -> List[Union[Tuple[np.ndarray, np.ndarray], DataError]]:
    """Extracts (mfcc, prosody) for many clips in parallel, in input order.

    Args:
        items: list of 1-D float waveforms at 16 kHz, or of audio file paths
            (any rate; resampled).
        num_workers: int. Worker processes; <= 1 runs in this process.
        progress: bool. Show a progress line on stderr.
        on_error: `"raise"`, or `"return"`: the slot of an item whose file
            is missing or unreadable holds its `DataError` instead.
        backend: see `extract_features`.

    Returns:
        list of (float32 [frames, 39], float32 [35]), one per item. The
        features do not depend on the number of workers.

    Raises:
        DataError: an unreadable/missing file (naming it), with
            `on_error="raise"`.
    """
    if on_error not in ("raise", "return"):
        raise ValueError(f"on_error={on_error!r}: expected 'raise' or "
                         "'return'.")
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r}: expected one of {BACKENDS}.")
    return_errors = on_error == "return"
    items = list(items)
    total = len(items)
    results = [None] * total
    progress = Progress(total, progress)
    if num_workers <= 1 or total <= 1:
        for index, item in enumerate(items):
            results[index] = _extract_item(item, return_errors, backend)
            progress.update(index + 1)
        return results
    # joblib's loky workers are fresh processes (safe when this process runs
    # TensorFlow or BLAS threads, unlike fork) that, unlike multiprocessing's
    # spawn, do not re-run the caller's __main__ script; they are reused
    # between calls. The generator yields results in input order.
    outputs = joblib.Parallel(n_jobs=min(num_workers, total),
                              backend="loky", return_as="generator",
                              batch_size=1)(
        joblib.delayed(_extract_item)(item, return_errors, backend)
        for item in items)
    for index, output in enumerate(outputs):
        results[index] = output
        progress.update(index + 1)
    return results


def pad_frames(frame_arrays: Sequence[np.ndarray],
               max_frames: int = MFCC_FRAMES) -> Tuple[np.ndarray, np.ndarray]:
    """Keeps the first `max_frames` frames of each clip, zero-pads the end.

    Args:
        frame_arrays: sequence of float arrays [frames_i, dim].
        max_frames: int.

    Returns:
        (float32 [n, max_frames, dim], int32 [n] original frame counts, NOT
        clipped to max_frames, as the original's seqN).
    """
    frame_arrays = list(frame_arrays)
    dim = frame_arrays[0].shape[1] if frame_arrays else MFCC_DIM
    padded = np.zeros((len(frame_arrays), max_frames, dim), dtype=np.float32)
    lengths = np.zeros(len(frame_arrays), dtype=np.int32)
    for row, frames in enumerate(frame_arrays):
        frames = np.asarray(frames)
        if frames.ndim != 2 or frames.shape[1] != dim:
            raise ValueError(f"pad_frames: item {row} has shape "
                             f"{list(frames.shape)}, expected [frames, "
                             f"{dim}].")
        lengths[row] = len(frames)
        kept = frames[:max_frames]
        padded[row, :len(kept)] = kept
    return padded, lengths
