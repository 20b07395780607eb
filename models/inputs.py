"""The named model inputs: the one place that spells their names and shapes.

Every model of the toolkit is a functional graph over a dict of these
`keras.Input`s, named exactly like the features the input pipeline
(`preprocessing/input_pipeline.py`) and the serving code deliver; the
contract test (tests/models/test_contract.py) keeps the two in step.

| input                 | shape          | dtype   | meaning                    |
|-----------------------|----------------|---------|----------------------------|
| `audio_mfcc`          | [B, T, 39]     | float32 | MFCC-E-D-A frames, 0-padded|
| `audio_length`        | [B]            | int32   | true frames (<= 750)       |
| `audio_prosody`       | [B, 35]        | float32 | utterance prosody          |
| `text_ids`            | [B, 128]       | int32   | token ids, right-padded, 0 |
| `text_length`         | [B]            | int32   | index of the first 0       |
| `waveform`            | [B, S]         | float32 | 16 kHz audio in [-1, 1]    |
| `waveform_length`     | [B]            | int32   | true number of samples     |
| `audio_logmel`        | [B, T, n_mels] | float32 | log-mel frames, 0-padded   |
| `audio_logmel_length` | [B]            | int32   | true log-mel frames        |

Time axes (T, S) are `None`: padded steps are masked by every model, so a
batch may be cropped to its longest example.
"""

from typing import Dict

import keras

from common import constants

MFCC = "audio_mfcc"
AUDIO_LENGTH = "audio_length"
PROSODY = "audio_prosody"
TEXT_IDS = "text_ids"
TEXT_LENGTH = "text_length"
WAVEFORM = "waveform"
WAVEFORM_LENGTH = "waveform_length"
LOGMEL = "audio_logmel"
LOGMEL_LENGTH = "audio_logmel_length"

AUDIO_INPUTS = (MFCC, AUDIO_LENGTH, PROSODY)
TEXT_INPUTS = (TEXT_IDS, TEXT_LENGTH)
WAVEFORM_INPUTS = (WAVEFORM, WAVEFORM_LENGTH)
LOGMEL_INPUTS = (LOGMEL, LOGMEL_LENGTH)
# Inputs the pipeline delivers under fixed names (a model input named after
# a fold extra, e.g. TRANSFORMER_FUSION's side input, must not clash).
STANDARD_INPUTS = (AUDIO_INPUTS + TEXT_INPUTS + WAVEFORM_INPUTS
                   + LOGMEL_INPUTS)

Inputs = Dict[str, keras.KerasTensor]


def audio_inputs(mfcc_dim: int = constants.MFCC_DIM,
                 prosody_dim: int = constants.PROSODY_DIM) -> Inputs:
    """`audio_mfcc` [B, T, mfcc_dim], `audio_length` [B] int32 and
    `audio_prosody` [B, prosody_dim]."""
    return {
        MFCC: keras.Input((None, mfcc_dim), name=MFCC),
        AUDIO_LENGTH: keras.Input((), dtype="int32", name=AUDIO_LENGTH),
        PROSODY: keras.Input((prosody_dim,), name=PROSODY),
    }


def text_inputs(text_length: int = constants.TEXT_LENGTH) -> Inputs:
    """`text_ids` [B, text_length] int32 and `text_length` [B] int32."""
    return {
        TEXT_IDS: keras.Input((text_length,), dtype="int32", name=TEXT_IDS),
        TEXT_LENGTH: keras.Input((), dtype="int32", name=TEXT_LENGTH),
    }


def waveform_inputs() -> Inputs:
    """`waveform` [B, S] float32 and `waveform_length` [B] int32."""
    return {
        WAVEFORM: keras.Input((None,), dtype="float32", name=WAVEFORM),
        WAVEFORM_LENGTH: keras.Input((), dtype="int32",
                                     name=WAVEFORM_LENGTH),
    }


def logmel_inputs(n_mels: int) -> Inputs:
    """`audio_logmel` [B, T, n_mels] and `audio_logmel_length` [B] int32."""
    return {
        LOGMEL: keras.Input((None, n_mels), name=LOGMEL),
        LOGMEL_LENGTH: keras.Input((), dtype="int32", name=LOGMEL_LENGTH),
    }


def vector_input(name: str, width: int) -> keras.KerasTensor:
    """A per-utterance float32 vector input [B, width] (e.g. a fold extra)."""
    return keras.Input((width,), dtype="float32", name=name)
