"""ARE, TRE, MDRE and MDREA of Yoon, Byun & Jung (SLT 2018), as the code behaves.

Every model is a functional Keras graph over a dict of named inputs and
outputs the 4 class logits (trained with sigmoid cross-entropy against the
one-hot label, as the original; see `models/training.py`). The input names
are shared with `preprocessing/input_pipeline.py`:

| input           | shape          | dtype   | meaning                          |
|-----------------|----------------|---------|----------------------------------|
| `audio_mfcc`    | [B, T, 39]     | float32 | MFCC-E-D-A frames, zero-padded   |
| `audio_length`  | [B]            | int32   | true frames (clipped to 750)     |
| `audio_prosody` | [B, 35]        | float32 | utterance prosody functionals    |
| `text_ids`      | [B, 128]       | int32   | token ids, right-padded with 0   |
| `text_length`   | [B]            | int32   | index of the first 0 (or 128)    |

T may be any length: padded frames are masked, so cropping a batch to its
longest utterance (what TF1's `dynamic_rnn` effectively did) changes nothing.
`dr`/keep arguments are KEEP probabilities, as in the original flags.
With the reference settings the trainable parameter counts equal the
original's exactly (yoon_spec.md §6): ARE 144,941; TRE 300·V + 301,401;
MDRE 300·V + 492,966; MDREA 300·V + 493,202. `gru_impl="cudnn"` (a GPU
option, `layers.CudnnGRU`, not the original's cell) adds 3H = 600 per GRU
layer: ARE 145,541; TRE 300·V + 302,001; MDRE 300·V + 494,166; MDREA
300·V + 494,402.
"""

import keras

from common import constants
from models import config_model
from models import encoders
from models import inputs as inputs_lib
from models import layers

def _multimodal_encoders(config):
    """Inputs, e_A [B, 235] and the text GRU (outputs, state) of MDRE(A)."""
    inputs = {**inputs_lib.audio_inputs(config["mfcc_dim"],
                                        config["prosody_dim"]),
              **inputs_lib.text_inputs(config["text_length"])}
    audio = encoders.audio_branch(inputs, config["audio_units"],
                          config["audio_layers"], config["audio_keep_prob"],
                          config["seed"], config["audio_normalization"],
                          config["gru_impl"])
    text_outputs, text_state = encoders.text_branch(
        inputs, config["vocab_size"], config["embedding_dim"],
        config["embedding_trainable"], config["text_units"],
        config["text_layers"], config["text_keep_prob"], config["seed"],
        config["gru_impl"])
    return inputs, audio, text_outputs, text_state


_constructor_arguments = config_model.constructor_arguments
_seed = config_model.offset_seed


class _YoonModel(config_model.ConfigModel):
    """A Yoon model: its output layer is a scalar-bias linear map."""

    def _build(self, inputs, features, config, name, kwargs):
        """Adds the scalar-bias output layer and builds the graph."""
        logits = layers.ScalarBiasDense(
            config["num_classes"], seed=_seed(config["seed"], 1),
            name="logits")(features)
        self._finish(inputs, logits, config, name, kwargs)


@keras.saving.register_keras_serializable(package="mse")
class ARE(_YoonModel):
    """Audio Recurrent Encoder: GRU over MFCC + prosody → 4 logits.

    Args:
        audio_units: int. GRU hidden size (reference 200).
        audio_layers: int. Stacked GRU layers (reference 1).
        audio_keep_prob: float. Keep probability (reference 0.7).
        mfcc_dim: int. Frame feature size (39).
        prosody_dim: int. Prosody vector size (35).
        num_classes: int. Output classes (4).
        audio_normalization: dict or None. Standardise MFCC and prosody
            with these train-split statistics (keys mfcc_mean, mfcc_std,
            prosody_mean, prosody_std). None (default) feeds raw features,
            as the original.
        seed: int or None. Seeds initialisers and dropout.
        gru_impl: str. "tf1" (default): the original's GRU cell
            (`layers.TF1GRU`). "cudnn": `layers.CudnnGRU`, a reset_after
            cell that Keras runs with cuDNN on a GPU; not the original's
            cell, 3H more parameters per GRU layer (ARE: 145,541).
    """

    def __init__(self, audio_units=200, audio_layers=1, audio_keep_prob=0.7,
                 mfcc_dim=constants.MFCC_DIM,
                 prosody_dim=constants.PROSODY_DIM,
                 num_classes=constants.NUM_CLASSES,
                 audio_normalization=None, seed=None, gru_impl="tf1",
                 name="ARE", **kwargs):
        config = _constructor_arguments(locals())
        inputs = inputs_lib.audio_inputs(mfcc_dim, prosody_dim)
        audio = encoders.audio_branch(inputs, audio_units, audio_layers,
                                      audio_keep_prob, seed,
                                      audio_normalization, gru_impl)
        self._build(inputs, audio, config, name, kwargs)


@keras.saving.register_keras_serializable(package="mse")
class TRE(_YoonModel):
    """Text Recurrent Encoder: embedding → GRU → 4 logits.

    Args:
        vocab_size: int. V, rows of the embedding (size of dic.pkl).
        embedding_dim: int. 300 with GloVe (reference), 100 without.
        embedding_trainable: bool. Fine-tune the embedding (reference True).
        text_units: int. GRU hidden size (reference 200).
        text_layers: int. Stacked GRU layers (reference 1).
        text_keep_prob: float. Keep probability (reference 0.3).
        text_length: int. Width of the id input (128).
        num_classes: int. Output classes (4).
        seed: int or None.
        gru_impl: str. "tf1" or "cudnn", as in `ARE`.
    """

    def __init__(self, vocab_size, embedding_dim=300, embedding_trainable=True,
                 text_units=200, text_layers=1, text_keep_prob=0.3,
                 text_length=constants.TEXT_LENGTH,
                 num_classes=constants.NUM_CLASSES, seed=None, gru_impl="tf1",
                 name="TRE", **kwargs):
        config = _constructor_arguments(locals())
        inputs = inputs_lib.text_inputs(text_length)
        _, state = encoders.text_branch(inputs, vocab_size, embedding_dim,
                                        embedding_trainable, text_units,
                                        text_layers, text_keep_prob, seed,
                                        gru_impl)
        self._build(inputs, state, config, name, kwargs)


@keras.saving.register_keras_serializable(package="mse")
class MDRE(_YoonModel):
    """Multimodal Dual Recurrent Encoder: ARE and TRE vectors, fused linearly.

    a = e_A·M_A[235, 117] + b (117 = 235 // 2, the original's Python 2
    division); t = h_T·M_T[200, 100] + b; logits = concat(a, t)·M + b. No
    activations: the whole head is linear, as in the code.

    Args: the union of `ARE`'s and `TRE`'s.
    """

    def __init__(self, vocab_size, embedding_dim=300, embedding_trainable=True,
                 audio_units=200, audio_layers=1, audio_keep_prob=0.7,
                 text_units=200, text_layers=1, text_keep_prob=0.3,
                 mfcc_dim=constants.MFCC_DIM,
                 prosody_dim=constants.PROSODY_DIM,
                 text_length=constants.TEXT_LENGTH,
                 num_classes=constants.NUM_CLASSES,
                 audio_normalization=None, seed=None, gru_impl="tf1",
                 name="MDRE", **kwargs):
        config = _constructor_arguments(locals())
        inputs, audio, _, text = _multimodal_encoders(config)
        audio = layers.ScalarBiasDense(
            (audio_units + prosody_dim) // 2, seed=_seed(seed, 2),
            name="audio_projection")(audio)
        text = layers.ScalarBiasDense(
            text_units // 2, seed=_seed(seed, 3),
            name="text_projection")(text)
        fused = keras.layers.Concatenate(name="fused")([audio, text])
        self._build(inputs, fused, config, name, kwargs)


@keras.saving.register_keras_serializable(package="mse")
class MDREA(_YoonModel):
    """MDRE with attention: the projected audio vector queries the text outputs.

    q = e_A·W_q[235, text_units] + b; scores over the text GRU OUTPUT
    sequence (output-dropped in training, zero past the text length);
    H = attention context; logits = concat(H, q)·M + b.

    Args: the union of `ARE`'s and `TRE`'s, plus
        mask_attention: bool. True (default) masks padded words (the
            original's 2020 fix); False reproduces the paper-era code.
    """

    def __init__(self, vocab_size, embedding_dim=300, embedding_trainable=True,
                 audio_units=200, audio_layers=1, audio_keep_prob=0.7,
                 text_units=200, text_layers=1, text_keep_prob=0.3,
                 mfcc_dim=constants.MFCC_DIM,
                 prosody_dim=constants.PROSODY_DIM,
                 text_length=constants.TEXT_LENGTH,
                 num_classes=constants.NUM_CLASSES,
                 mask_attention=True, audio_normalization=None, seed=None,
                 gru_impl="tf1", name="MDREA", **kwargs):
        config = _constructor_arguments(locals())
        inputs, audio, text_outputs, _ = _multimodal_encoders(config)
        query = layers.ScalarBiasDense(text_units, seed=_seed(seed, 2),
                                       name="audio_query")(audio)
        context, _ = layers.LuongDotAttention(
            mask_attention=mask_attention, name="text_attention")(
                [text_outputs, query, inputs["text_length"]])
        fused = keras.layers.Concatenate(name="fused")([context, query])
        self._build(inputs, fused, config, name, kwargs)
