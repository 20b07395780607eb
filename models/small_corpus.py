"""An audio model for small real corpora (a few hundred utterances).

`ARE_POOL` keeps ARE's inputs (MFCC frames, their lengths, the prosody
functionals), so it trains, evaluates, exports and predicts from the same
fold folders, but is sized and pooled for little data: a small
(bidirectional) Keras GRU over the standardised frames, utterance-level
statistics pooling of ALL its outputs (masked mean and max, or attention)
rather than the last state, the standardised prosody vector, heavy dropout,
one hidden layer. The faithful ARE (models/yoon.py) is unchanged.
"""

import keras
import tensorflow as tf

from common import constants
from models import config_model
from models import inputs as inputs_lib
from models import layers
from models import pooling as pooling_lib

POOLINGS = ("mean_max", "mean_std", "mean", "attention")


@keras.saving.register_keras_serializable(package="mse")
class ARE_POOL(config_model.ConfigModel):
    """MFCC → GRU → pooled outputs ⊕ prosody → hidden → logits.

    Inputs: `audio_mfcc` float [B, T, mfcc_dim] (padded frames are ignored:
    the GRU is masked and the pooling gives them zero weight, so a padded
    batch equals each example alone), `audio_length` int [B],
    `audio_prosody` float [B, prosody_dim]. Output: logits [B, num_classes].

    Args:
        audio_units: int. GRU units (per direction).
        audio_layers: int. Stacked GRU layers; 0 pools the (standardised,
            strided) frames themselves: with "mean_std" that is a neural
            model over the utterance functionals a classical baseline uses.
        audio_keep_prob: float. Keep probability of the pooled vector, and
            of the input frames (per element) when there is a GRU: without
            one the frames are pooled as they are (dropped frames would
            change their standard deviation between training and
            evaluation).
        bidirectional: bool. A backward GRU too (outputs concatenated).
        pooling: "mean_max" (masked mean ⊕ masked max), "mean_std" (masked
            mean ⊕ standard deviation), "mean" or
            "attention" (learned query, `pooling.AttentionPooling`).
        hidden_units: int. Hidden ReLU layer before the logits (0: none).
        frame_stride: int. Average each `frame_stride` consecutive real
            frames before the GRU (1: none; 2 = 20 ms frames, half the
            recurrent steps).
        use_prosody: bool. Concatenate the prosody functionals.
        vector_norm: bool. Batch-normalise the pooled vector (⊕ prosody)
            before its dropout: the masked means of standardised frames
            spread far less than 1 and unevenly, which a small corpus and
            weight decay learn slowly from.
        mfcc_dim, prosody_dim, num_classes: ints.
        audio_normalization: dict or None. Standardise the frames and the
            prosody with these train statistics (mfcc_mean, mfcc_std,
            prosody_mean, prosody_std), as ARE's.
        seed: int or None.
    """

    def __init__(self, audio_units=64, audio_layers=1, audio_keep_prob=0.5,
                 bidirectional=True, pooling="mean_max", hidden_units=64,
                 frame_stride=1, use_prosody=True, vector_norm=False,
                 mfcc_dim=constants.MFCC_DIM,
                 prosody_dim=constants.PROSODY_DIM,
                 num_classes=constants.NUM_CLASSES, audio_normalization=None,
                 seed=None,
                 name="ARE_POOL", **kwargs):
        config = config_model.constructor_arguments(locals())
        if pooling not in POOLINGS:
            raise ValueError(f"ARE_POOL pooling must be one of {POOLINGS}; "
                             f"found {pooling!r}.")
        seed_at = config_model.offset_seed
        inputs = inputs_lib.audio_inputs(mfcc_dim, prosody_dim)
        frames, prosody = layers.standardize_audio(
            inputs["audio_mfcc"], inputs["audio_prosody"],
            audio_normalization)
        lengths = inputs["audio_length"]
        rate = 1.0 - audio_keep_prob
        if frame_stride > 1:
            frames, lengths = FrameStride(frame_stride, name="frame_stride")(
                [frames, lengths])
        if audio_layers:
            frames = keras.layers.Dropout(rate, seed=seed_at(seed, 1),
                                          name="frame_dropout")(frames)
        mask = _LengthMask(name="frame_mask")([frames, lengths])
        for index in range(audio_layers):
            gru = keras.layers.GRU(audio_units, return_sequences=True,
                                   seed=seed_at(seed, 10 + index),
                                   name=f"audio_gru_{index}")
            if bidirectional:
                gru = keras.layers.Bidirectional(
                    gru, name=f"audio_bigru_{index}")
            frames = gru(frames, mask=mask)
        # The pooling layers take the lengths; the Keras mask ends here.
        frames = _DropMask(name="drop_mask")(frames)
        if pooling == "attention":
            pooled = pooling_lib.AttentionPooling(name="attention_pooling")(
                frames, lengths)
        else:
            pooled = pooling_lib.MaskedMeanPooling(name="mean_pooling")(
                frames, lengths)
            if pooling == "mean_std":
                squares = pooling_lib.MaskedMeanPooling(
                    name="square_pooling")(
                        keras.layers.Multiply(name="squares")(
                            [frames, frames]), lengths)
                deviation = _StandardDeviation(name="std_pooling")(
                    [pooled, squares])
                pooled = keras.layers.Concatenate(name="pooled")(
                    [pooled, deviation])
            if pooling == "mean_max":
                peak = pooling_lib.MaskedMaxPooling(name="max_pooling")(
                    frames, lengths)
                pooled = keras.layers.Concatenate(name="pooled")(
                    [pooled, peak])
        parts = [pooled, prosody] if use_prosody else [pooled]
        vector = (keras.layers.Concatenate(name="audio_vector")(parts)
                  if len(parts) > 1 else pooled)
        if vector_norm:
            vector = keras.layers.BatchNormalization(name="vector_norm")(
                vector)
        vector = keras.layers.Dropout(rate, seed=seed_at(seed, 2),
                                      name="vector_dropout")(vector)
        if hidden_units:
            vector = keras.layers.Dense(
                hidden_units, activation="relu",
                kernel_initializer=config_model.glorot(seed_at(seed, 3)),
                name="hidden")(vector)
        logits = keras.layers.Dense(
            num_classes, kernel_initializer=config_model.glorot(
                seed_at(seed, 4)), name="logits")(vector)
        self._finish(inputs, logits, config, name, kwargs)


@keras.saving.register_keras_serializable(package="mse")
class FrameStride(keras.layers.Layer):
    """Means of `stride` consecutive real frames: [B, T, F] → [B, ⌈T/s⌉, F].

    Padded frames are left out of every mean (a group at the end averages
    only its real frames), so the result does not depend on the padding;
    lengths become ⌈length / stride⌉, groups past them are 0.
    """

    def __init__(self, stride, **kwargs):
        super().__init__(**kwargs)
        self.stride = int(stride)

    def call(self, inputs):
        frames, lengths = inputs
        stride = self.stride
        steps = tf.shape(frames)[1]
        lengths = tf.clip_by_value(tf.cast(lengths, tf.int32), 0, steps)
        groups = (steps + stride - 1) // stride
        mask = tf.sequence_mask(lengths, groups * stride, dtype=frames.dtype)
        padded = tf.pad(frames, [[0, 0], [0, groups * stride - steps],
                                 [0, 0]]) * mask[:, :, None]
        features = frames.shape[-1]
        total = tf.reduce_sum(tf.reshape(
            padded, [-1, groups, stride, features]), axis=2)
        count = tf.reduce_sum(tf.reshape(mask, [-1, groups, stride]), axis=2)
        return (total / tf.maximum(count, 1.0)[:, :, None],
                (lengths + stride - 1) // stride)

    def compute_output_spec(self, inputs):
        frames, lengths = inputs
        return (keras.KerasTensor((frames.shape[0], None, frames.shape[-1]),
                                  dtype=frames.dtype),
                keras.KerasTensor(lengths.shape, dtype="int32"))

    def get_config(self):
        return {**super().get_config(), "stride": self.stride}


@keras.saving.register_keras_serializable(package="mse")
class _StandardDeviation(keras.layers.Layer):
    """sqrt(max(E[x²] − E[x]², 0) + 1e-6) from [mean, mean of squares]."""

    def call(self, inputs):
        mean, squares = inputs
        return tf.sqrt(tf.nn.relu(squares - tf.square(mean)) + 1e-6)

    def compute_output_shape(self, input_shape):
        return input_shape[0]


@keras.saving.register_keras_serializable(package="mse")
class _DropMask(keras.layers.Layer):
    """Identity that consumes an incoming Keras mask (returns none)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        return inputs

    def compute_mask(self, inputs, mask=None):
        return None


@keras.saving.register_keras_serializable(package="mse")
class _LengthMask(keras.layers.Layer):
    """[B, T] bool mask of the real frames of [B, T, F] given lengths [B]."""

    def call(self, inputs):
        frames, lengths = inputs
        return tf.sequence_mask(lengths, tf.shape(frames)[1])

    def compute_output_spec(self, inputs):
        frames, _ = inputs
        return keras.KerasTensor(frames.shape[:2], dtype="bool")


MODELS = {"ARE_POOL": ARE_POOL}
