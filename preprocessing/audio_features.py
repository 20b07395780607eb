"""The audio-feature API for code outside `preprocessing/`.

The application layer (prediction, serving, explanation, benchmarks) reads
clips and features through these names. Each is defined once, in the module
of its concept, which code inside `preprocessing/` imports directly:

* `audio_io`: reading and validating audio, the 10 ms frame grid;
* `mfcc`: 39-dim MFCC-E-D-A per frame;
* `prosody`: 35 utterance prosody functionals;
* `opensmile_features`: the original's openSMILE configs (optional);
* `extraction`: both feature sets of one clip or many, padding.
"""

from common import constants
from preprocessing.audio_io import FRAME_STEP, file_problem, load_wav
from preprocessing.extraction import (BACKENDS, extract_features,
                                      extract_many, feature_parameters,
                                      pad_frames)
from preprocessing.prosody import PROSODY_NAMES

SAMPLE_RATE = constants.SAMPLE_RATE

__all__ = ["BACKENDS", "FRAME_STEP", "PROSODY_NAMES", "SAMPLE_RATE",
           "extract_features", "extract_many", "feature_parameters",
           "file_problem", "load_wav", "pad_frames"]
