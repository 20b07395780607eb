"""Speech (wav2vec2) and speech + text (wav2vec2 + TRE) emotion models.

Three functional Keras models built on `Wav2Vec2Encoder` (a TF-Hub handle or
local SavedModel fine-tuned as a Keras layer, `models/wav2vec2_encoder.py`)
and on the text branch of `models/yoon.py`. Like the Yoon models they take a
dict of named inputs, output the class logits and have a config that is
exactly their constructor arguments (the TF-Hub handle, never weights).

| input             | shape      | dtype   | meaning                           |
|-------------------|------------|---------|-----------------------------------|
| `waveform`        | [B, S]     | float32 | 16 kHz audio in [-1, 1], 0-padded |
| `waveform_length` | [B]        | int32   | true number of samples            |
| `text_ids`        | [B, 128]   | int32   | token ids, right-padded with 0    |
| `text_length`     | [B]        | int32   | index of the first 0 (or 128)     |

(`text_*` only for `W2V2_TRE` and `W2V2_TREA`.) S may be any length: the
encoder zeroes samples at and beyond each length, crops/pads to a fixed
input length when the SavedModel (or `fixed_input_length`) has one, and the
pooling ignores frames past each example's frame length. When a padded batch
gives each example the same result as alone is documented in
`Wav2Vec2Encoder` (yes with an attention-mask SavedModel or a fixed input
length; not for a variable-length SavedModel without a mask).

The audio vector e_W [B, D] is the masked mean (`pooling="mean"`) or the
attention-weighted mean (`pooling="attention"`, one learned query) of the
encoder's real frames (D = 768 for wav2vec2-base).

Head layers: every linear layer that is new here is a `keras.layers.Dense`
(Glorot-uniform kernel, one bias per unit, no activation), not the Yoon
models' `ScalarBiasDense` (uniform ±0.25, one scalar bias). With D = 768
inputs of unit scale the latter starts with logits of standard deviation
≈ 4 and saturated sigmoids; Glorot keeps them near 1. The fusion itself is
linear, as in MDRE/MDREA. The text branch is TRE's exactly (embedding →
TF1-semantics GRU, keep-probability dropout).

The encoder layer is always named `wav2vec2` (`ENCODER_LAYER_NAME`);
`models/optimizers.py` uses it to give the encoder its own learning rate.
"""

import keras

from common import constants
from models import config_model
from models import encoders
from models import inputs as inputs_lib
from models import layers

# The encoder layer's name and the poolings (`models/encoders.py`).
ENCODER_LAYER_NAME = encoders.WAV2VEC2_LAYER_NAME
POOLINGS = encoders.WAV2VEC2_POOLINGS

_glorot = config_model.glorot
_seed = config_model.offset_seed


@keras.saving.register_keras_serializable(package="mse")
class W2V2(config_model.ConfigModel):
    """wav2vec2 → masked mean or attention pooling → linear classifier.

    logits = e_W·W + b with e_W the pooled frames (see the module docstring).

    Args:
        hub_handle: str. A TF-Hub URL (e.g.
            "https://tfhub.dev/vasudevgupta7/wav2vec2/1", downloaded once into
            $TFHUB_CACHE_DIR) or a local TF2 SavedModel directory (e.g. the
            stand-in of tools/make_wav2vec2_standin.py). Stored in the config;
            rebuilding the model (from_config, evaluate.py) loads it again.
        encoder_trainable: bool. Fine-tune the encoder (else it is frozen and
            runs in inference mode).
        freeze_feature_extractor: bool. Keep the convolutional feature
            extractor frozen while the rest of the encoder trains (the usual
            wav2vec2 recipe). Ignored when the encoder is frozen.
        fixed_input_length: int or None. Samples fed to the SavedModel per
            example (None: the SavedModel's own fixed length, e.g. 246,000
            for the public model, else variable).
        pooling: str. "mean" or "attention".
        num_classes: int.
        seed: int or None. Seeds the head initialisers.
    """

    def __init__(self, hub_handle, encoder_trainable=True,
                 freeze_feature_extractor=True, fixed_input_length=None,
                 pooling="mean", num_classes=constants.NUM_CLASSES, seed=None,
                 name="W2V2", **kwargs):
        config = config_model.constructor_arguments(locals())
        inputs = inputs_lib.waveform_inputs()
        audio = encoders.wav2vec2_vector(
            inputs, hub_handle, encoder_trainable, freeze_feature_extractor,
            fixed_input_length, pooling, seed)
        logits = keras.layers.Dense(
            num_classes, kernel_initializer=_glorot(_seed(seed, 1)),
            name="logits")(audio)
        self._finish(inputs, logits, config, name, kwargs)


@keras.saving.register_keras_serializable(package="mse")
class W2V2_TRE(config_model.ConfigModel):  # noqa: N801 (the model's registry name)
    """wav2vec2 audio vector + TRE text state, fused as in MDRE.

    a = e_W·M_A[D, D // 2] + b; t = h_T·M_T[text_units, text_units // 2] + b;
    logits = concat(a, t)·M + b (h_T: the final state of the text GRU at
    each example's text length). Linear throughout, as MDRE.

    Args: `W2V2`'s, plus TRE's (vocab_size, embedding_dim,
        embedding_trainable, text_units, text_layers, text_keep_prob,
        text_length).
    """

    def __init__(self, hub_handle, vocab_size, encoder_trainable=True,
                 freeze_feature_extractor=True, fixed_input_length=None,
                 pooling="mean", embedding_dim=300, embedding_trainable=True,
                 text_units=200, text_layers=1, text_keep_prob=0.3,
                 text_length=constants.TEXT_LENGTH,
                 num_classes=constants.NUM_CLASSES, seed=None, name="W2V2_TRE",
                 **kwargs):
        config = config_model.constructor_arguments(locals())
        inputs = {**inputs_lib.waveform_inputs(),
                  **inputs_lib.text_inputs(text_length)}
        audio = encoders.wav2vec2_vector(
            inputs, hub_handle, encoder_trainable, freeze_feature_extractor,
            fixed_input_length, pooling, seed)
        _, text = encoders.text_branch(inputs, vocab_size, embedding_dim,
                                       embedding_trainable, text_units,
                                       text_layers, text_keep_prob, seed)
        audio = keras.layers.Dense(
            audio.shape[-1] // 2,
            kernel_initializer=_glorot(_seed(seed, 2)),
            name="audio_projection")(audio)
        text = keras.layers.Dense(
            text_units // 2, kernel_initializer=_glorot(_seed(seed, 3)),
            name="text_projection")(text)
        fused = keras.layers.Concatenate(name="fused")([audio, text])
        logits = keras.layers.Dense(
            num_classes, kernel_initializer=_glorot(_seed(seed, 1)),
            name="logits")(fused)
        self._finish(inputs, logits, config, name, kwargs)


@keras.saving.register_keras_serializable(package="mse")
class W2V2_TREA(config_model.ConfigModel):  # noqa: N801 (the model's registry name)
    """The wav2vec2 audio vector queries the TRE text outputs, as in MDREA.

    q = e_W·W_q[D, text_units] + b; H = Luong dot attention of q over the
    text GRU OUTPUT sequence (zero past the text length; padded words masked
    with `mask_attention`); logits = concat(H, q)·M + b.

    Args: `W2V2_TRE`'s, plus
        mask_attention: bool. True (default) gives padded words zero
            attention weight; False lets them absorb softmax mass, as the
            paper-era MDREA code.
    """

    def __init__(self, hub_handle, vocab_size, encoder_trainable=True,
                 freeze_feature_extractor=True, fixed_input_length=None,
                 pooling="mean", embedding_dim=300, embedding_trainable=True,
                 text_units=200, text_layers=1, text_keep_prob=0.3,
                 text_length=constants.TEXT_LENGTH,
                 num_classes=constants.NUM_CLASSES, mask_attention=True,
                 seed=None, name="W2V2_TREA", **kwargs):
        config = config_model.constructor_arguments(locals())
        inputs = {**inputs_lib.waveform_inputs(),
                  **inputs_lib.text_inputs(text_length)}
        audio = encoders.wav2vec2_vector(
            inputs, hub_handle, encoder_trainable, freeze_feature_extractor,
            fixed_input_length, pooling, seed)
        text_outputs, _ = encoders.text_branch(
            inputs, vocab_size, embedding_dim, embedding_trainable,
            text_units, text_layers, text_keep_prob, seed)
        query = keras.layers.Dense(
            text_units, kernel_initializer=_glorot(_seed(seed, 2)),
            name="audio_query")(audio)
        context, _ = layers.LuongDotAttention(
            mask_attention=mask_attention, name="text_attention")(
                [text_outputs, query, inputs["text_length"]])
        fused = keras.layers.Concatenate(name="fused")([context, query])
        logits = keras.layers.Dense(
            num_classes, kernel_initializer=_glorot(_seed(seed, 1)),
            name="logits")(fused)
        self._finish(inputs, logits, config, name, kwargs)


MODELS = {"W2V2": W2V2, "W2V2_TRE": W2V2_TRE, "W2V2_TREA": W2V2_TREA}
