"""The original's openSMILE 2.3.0 configs run by the optional `opensmile`
package: the exact feature pipelines of Yoon et al. (2018), where `mfcc` and
`prosody` follow their definitions with numpy.
"""

import os
import sys

import joblib.executor
import numpy as np

from common.constants import MFCC_DIM, PROSODY_DIM, SAMPLE_RATE
from preprocessing.audio_io import FRAME_LENGTH, as_waveform

_CACHE = {}

# The original's openSMILE 2.3.0 configs (`modified_MFCC12_E_D_A.conf`,
# `modified_prosodyShsViterbiLoudness.conf`), with their file sources and
# sinks swapped for the opensmile package's external ones; the prosody
# config's 35 functionals come out as its `func` level.
OPENSMILE_CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(
    __file__)), "opensmile_configs")


def _opensmile_smile(file_name, feature_level):
    """An `opensmile.Smile` running one of the original's configs."""
    try:
        import opensmile  # Optional dependency (the [opensmile] extra).
    except ImportError as error:
        raise ImportError(
            "the openSMILE variants need the `opensmile` package (pip "
            "install opensmile, or the toolkit's [opensmile] extra)."
        ) from error
    return opensmile.Smile(
        feature_set=os.path.join(OPENSMILE_CONFIG_DIR, file_name),
        feature_level=feature_level)


def _isolated(function, *args):
    """Runs `function(*args)` here, or in a worker process if TF is loaded.

    openSMILE's native library crashes the process (`malloc(): invalid
    size`) when TensorFlow was imported first; a loky worker is a fresh
    process without TensorFlow.
    """
    if "tensorflow" not in sys.modules:
        return function(*args)
    # joblib's wrapper of loky's reusable executor: the same worker pool
    # extract_many's joblib.Parallel uses, so the two can be mixed.
    executor = joblib.executor.get_memmapping_executor(1)
    return executor.submit(function, *args).result()


def _opensmile_extractor():
    if "opensmile" not in _CACHE:
        _CACHE["opensmile"] = _opensmile_smile("MFCC12_E_D_A.conf", "lld")
    return _CACHE["opensmile"]


def opensmile_mfcc_e_d_a(waveform: np.ndarray,
                         sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """MFCC-E-D-A computed by openSMILE with the original's exact config.

    Needs the optional `opensmile` package. Same layout as `mfcc.mfcc_e_d_a`
    ([c1..c12, logE] + deltas + accelerations); use it to match the
    released arrays more closely.

    Args:
        waveform: float array [samples] in [-1, 1]; any sample rate.
        sample_rate: int.

    Returns:
        float32 [frames, 39].
    """
    x = as_waveform(waveform, sample_rate).astype(np.float32)
    if len(x) < FRAME_LENGTH:
        return np.zeros((0, MFCC_DIM), dtype=np.float32)
    return _isolated(_opensmile_mfcc, x)


def _opensmile_mfcc(x):
    frame = _opensmile_extractor().process_signal(x, SAMPLE_RATE)
    values = frame.to_numpy(dtype=np.float32)
    if values.shape[1] != MFCC_DIM:
        raise ValueError(f"openSMILE MFCC config gave {values.shape[1]} "
                         f"columns ({list(frame.columns)[:5]}...), expected "
                         f"{MFCC_DIM}.")
    return values


def opensmile_prosody_functionals(waveform: np.ndarray,
                                  sample_rate: int = SAMPLE_RATE
                                  ) -> np.ndarray:
    """The 35 prosody functionals computed by openSMILE, original config.

    Needs the optional `opensmile` package. Same order as
    `prosody.prosody_functionals` (`PROSODY_NAMES`: 7 functionals per LLD, the 4
    pitch LLDs then loudness), which is also openSMILE's output order.

    Args:
        waveform: float array [samples] in [-1, 1]; any sample rate.
        sample_rate: int.

    Returns:
        float32 [35].
    """
    x = as_waveform(waveform, sample_rate).astype(np.float32)
    return _isolated(_opensmile_prosody, x)


def _opensmile_prosody(x):
    if "opensmile_prosody" not in _CACHE:
        _CACHE["opensmile_prosody"] = _opensmile_smile(
            "prosodyShsViterbiLoudness.conf", "func")
    frame = _CACHE["opensmile_prosody"].process_signal(x, SAMPLE_RATE)
    values = frame.to_numpy(dtype=np.float32).reshape(-1)
    if values.shape != (PROSODY_DIM,):
        raise ValueError(f"openSMILE prosody config gave {values.shape} "
                         f"values, expected {PROSODY_DIM}.")
    return np.nan_to_num(values)
