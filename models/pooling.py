"""Length-aware pooling of frame sequences: masked mean and attention pooling.

Both layers take frame features [batch, frames, D] and frame lengths [batch]
(e.g. from `Wav2Vec2Encoder`) and return one vector per example [batch, D].
Frames at and beyond an example's length get exactly zero weight: their
values are replaced by zeros before any arithmetic, so even inf/NaN padding
cannot reach the output or its gradients, and the result equals pooling the
unpadded sequence.
"""

import keras
import tensorflow as tf


def _frame_mask(inputs, lengths):
    """Boolean [batch, frames] mask of real frames, lengths clipped to
    [0, frames]."""
    frames = tf.shape(inputs)[1]
    lengths = tf.clip_by_value(tf.cast(lengths, tf.int32), 0, frames)
    return tf.sequence_mask(lengths, frames)


def _check_input_shape(layer, input_shape):
    if len(input_shape) != 3 or input_shape[-1] is None:
        raise ValueError(f"{type(layer).__name__} {layer.name!r} expects "
                         "inputs of shape [batch, frames, features] with a "
                         f"known feature size; found {tuple(input_shape)}.")


@keras.saving.register_keras_serializable(package="mse")
class MaskedMeanPooling(keras.layers.Layer):
    """Mean of each example's real frames.

    Inputs:
        inputs: float [batch, frames, D]. Frame features.
        lengths: int [batch]. Real frames per example; frames at and beyond it
            are padding and ignored (values clipped to [0, frames]).

    Output:
        float [batch, D]: sum of the real frames / their number. An example
        with length 0 gets a zero vector (not NaN).

    Args:
        **kwargs: base layer arguments (`name`, `dtype`).
    """

    def build(self, input_shape):
        _check_input_shape(self, input_shape)

    def call(self, inputs, lengths):
        mask = _frame_mask(inputs, lengths)
        inputs = tf.where(mask[:, :, None], inputs, tf.zeros_like(inputs))
        count = tf.reduce_sum(tf.cast(mask, inputs.dtype), axis=1)
        total = tf.reduce_sum(inputs, axis=1)
        return total / tf.maximum(count, 1.0)[:, None]

    def compute_output_shape(self, inputs_shape, lengths_shape):
        return (inputs_shape[0], inputs_shape[-1])


@keras.saving.register_keras_serializable(package="mse")
class AttentionPooling(keras.layers.Layer):
    """Attention-weighted mean of the real frames, with a learned query.

    Each frame h_t gets a score s_t = q · tanh(W h_t + b) (W: [D, units],
    q: the learned query [units]); the weights are a softmax of the scores
    over the real frames only, and the output is sum_t a_t h_t. Padded frames
    get a weight of exactly 0.0: their scores are excluded from the softmax
    and their values are zeroed first. An example with length 0 gets a zero
    vector and all-zero weights.

    Inputs:
        inputs: float [batch, frames, D]. Frame features.
        lengths: int [batch]. Real frames per example.
        return_weights: bool (call argument). Also return the weights.

    Output:
        float [batch, D]; with `return_weights=True` also the attention
        weights, float [batch, frames] (each row sums to 1 over the real
        frames, 0 elsewhere).

    Args:
        units: int or None. Width of the scoring projection; None means D.
        **kwargs: base layer arguments (`name`, `dtype`).
    """

    def __init__(self, units=None, **kwargs):
        super().__init__(**kwargs)
        if units is not None and units < 1:
            raise ValueError(f"AttentionPooling units must be a positive int "
                             f"or None; found {units!r}.")
        self.units = units

    def build(self, input_shape):
        _check_input_shape(self, input_shape)
        features = input_shape[-1]
        units = self.units or features
        self.projection_kernel = self.add_weight(
                name="projection_kernel", shape=(features, units),
                initializer="glorot_uniform")
        self.projection_bias = self.add_weight(
                name="projection_bias", shape=(units,), initializer="zeros")
        self.query = self.add_weight(name="query", shape=(units,),
                                     initializer="glorot_uniform")

    def call(self, inputs, lengths, return_weights=False):
        mask = _frame_mask(inputs, lengths)
        inputs = tf.where(mask[:, :, None], inputs, tf.zeros_like(inputs))
        keys = tf.tanh(tf.einsum("bfd,du->bfu", inputs,
                                 self.projection_kernel)
                       + self.projection_bias)
        scores = tf.einsum("bfu,u->bf", keys, self.query)
        # A max over real frames only keeps exp() in range; padded scores are
        # replaced before exp() and their weights multiplied by exactly 0.
        lowest = tf.fill(tf.shape(scores), scores.dtype.min)
        peak = tf.reduce_max(tf.where(mask, scores, lowest), axis=1,
                             keepdims=True)
        peak = tf.stop_gradient(tf.where(mask, peak, tf.zeros_like(peak)))
        weights = tf.exp(tf.where(mask, scores - peak,
                                  tf.zeros_like(scores)))
        weights *= tf.cast(mask, weights.dtype)
        total = tf.reduce_sum(weights, axis=1, keepdims=True)
        # Length 0: all weights are 0 and so is the output (no 0/0).
        weights /= tf.where(total > 0, total, tf.ones_like(total))
        pooled = tf.einsum("bf,bfd->bd", weights, inputs)
        if return_weights:
            return pooled, weights
        return pooled

    def compute_output_spec(self, inputs, lengths, return_weights=False):
        pooled = keras.KerasTensor((inputs.shape[0], inputs.shape[-1]),
                                   dtype=self.compute_dtype)
        if return_weights:
            return pooled, keras.KerasTensor(inputs.shape[:2],
                                             dtype=self.compute_dtype)
        return pooled

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units})
        return config


@keras.saving.register_keras_serializable(package="mse")
class MaskedMaxPooling(keras.layers.Layer):
    """Maximum of each example's real frames, per feature.

    Inputs:
        inputs: float [batch, frames, D].
        lengths: int [batch]. Real frames per example; frames at and beyond
            it never win (they are replaced by the dtype's lowest value).

    Output:
        float [batch, D]. An example with length 0 gets a zero vector.
    """

    def build(self, input_shape):
        _check_input_shape(self, input_shape)

    def call(self, inputs, lengths):
        mask = _frame_mask(inputs, lengths)
        lowest = tf.fill(tf.shape(inputs), inputs.dtype.min)
        peak = tf.reduce_max(tf.where(mask[:, :, None], inputs, lowest),
                             axis=1)
        has_frames = tf.reduce_any(mask, axis=1)[:, None]
        return tf.where(has_frames, peak, tf.zeros_like(peak))

    def compute_output_shape(self, inputs_shape, lengths_shape):
        return (inputs_shape[0], inputs_shape[-1])
