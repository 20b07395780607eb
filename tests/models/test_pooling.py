"""Tests for models/pooling.py: masked mean and attention pooling."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from models import pooling

LENGTHS = np.array([5, 2, 7, 0], np.int32)


def _frames(pad_value=0.0, seed=0):
    """[4, 7, 3] features whose padding holds `pad_value`."""
    values = np.random.default_rng(seed).normal(size=(4, 7, 3))
    values = values.astype(np.float32)
    for row, length in enumerate(LENGTHS):
        values[row, length:] = pad_value
    return values


@pytest.mark.parametrize("layer_class", [pooling.MaskedMeanPooling,
                                         pooling.AttentionPooling])
def test_output_shape_and_symbolic_use(layer_class):
    features = keras.Input((None, 3), name="features")
    lengths = keras.Input((), dtype="int32", name="lengths")
    pooled = layer_class(name="pool")(features, lengths)
    assert pooled.shape == (None, 3)
    model = keras.Model([features, lengths], pooled)
    assert model([_frames(), LENGTHS]).shape == (4, 3)


def test_masked_mean_matches_numpy():
    values = _frames(pad_value=123.0)
    pooled = pooling.MaskedMeanPooling()(values, LENGTHS).numpy()
    for row, length in enumerate(LENGTHS[:3]):
        np.testing.assert_allclose(pooled[row],
                                   values[row, :length].mean(axis=0),
                                   rtol=1e-6)
    assert np.all(pooled[3] == 0.0)  # length 0: zeros, not NaN


@pytest.mark.parametrize("layer_class", [pooling.MaskedMeanPooling,
                                         pooling.AttentionPooling])
def test_padding_is_exactly_irrelevant(layer_class):
    layer = layer_class(name="pool")
    clean = layer(_frames(pad_value=0.0), LENGTHS).numpy()
    for garbage in (1e6, -np.inf, np.nan):
        np.testing.assert_array_equal(
                layer(_frames(pad_value=garbage), LENGTHS).numpy(), clean)
    # Each example alone (no padding at all) gives the same vector.
    values = _frames()
    for row, length in enumerate(LENGTHS[:3]):
        alone = layer(values[row:row + 1, :length], LENGTHS[row:row + 1])
        np.testing.assert_allclose(alone.numpy()[0], clean[row], atol=1e-6)
    # Lengths beyond the number of frames are clipped, not an error.
    np.testing.assert_allclose(
            layer(values[:1], np.array([99], np.int32)).numpy(),
            layer(values[:1], np.array([7], np.int32)).numpy())


def test_attention_weights():
    layer = pooling.AttentionPooling(units=5, name="pool")
    values = _frames(pad_value=np.inf)
    pooled, weights = layer(values, LENGTHS, return_weights=True)
    weights = weights.numpy()
    assert weights.shape == (4, 7)
    for row, length in enumerate(LENGTHS):
        assert np.all(weights[row, length:] == 0.0)
        assert np.all(weights[row, :length] > 0.0)
    np.testing.assert_allclose(weights[:3].sum(axis=1), 1.0, rtol=1e-6)
    assert np.all(pooled.numpy()[3] == 0.0)
    # The output is the weighted sum of the real frames.
    finite = np.where(np.isfinite(values), values, 0.0)
    np.testing.assert_allclose(pooled.numpy(),
                               np.einsum("bf,bfd->bd", weights, finite),
                               rtol=1e-5, atol=1e-6)
    assert [w.shape for w in layer.weights] == [(3, 5), (5,), (5,)]


def test_attention_gradients_are_finite_and_skip_padding():
    layer = pooling.AttentionPooling(name="pool")
    values = tf.constant(_frames(pad_value=1e30))
    with tf.GradientTape() as tape:
        tape.watch(values)
        total = tf.reduce_sum(layer(values, LENGTHS))
    value_gradient, *weight_gradients = tape.gradient(
            total, [values] + layer.trainable_weights)
    value_gradient = value_gradient.numpy()
    assert np.all(np.isfinite(value_gradient))
    for row, length in enumerate(LENGTHS):
        assert np.all(value_gradient[row, length:] == 0.0)
    assert all(np.all(np.isfinite(g.numpy())) for g in weight_gradients)


@pytest.mark.parametrize("layer", [pooling.MaskedMeanPooling(name="mean"),
                                   pooling.AttentionPooling(units=4,
                                                            name="attn")])
def test_config_round_trip(layer):
    config = layer.get_config()
    rebuilt = type(layer).from_config(config)
    assert rebuilt.get_config() == config
    restored = keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer)
    assert restored.get_config() == config


def test_bad_arguments():
    with pytest.raises(ValueError, match="units must be a positive int"):
        pooling.AttentionPooling(units=0)
    with pytest.raises(ValueError, match=r"\[batch, frames, features\]"):
        pooling.AttentionPooling(name="pool")(np.zeros((2, 3), np.float32),
                                              np.array([1, 2], np.int32))
