"""models/layers.py: exact padding behaviour, parameter counts, configs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from models import layers


def _round_trip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config


def test_mask_sequence_zeroes_exactly_the_steps_past_each_length():
    sequence = np.ones((3, 4, 2, 2), np.float32)
    masked = layers.MaskSequence()(sequence, np.array([0, 2, 9])).numpy()
    assert masked[0].sum() == 0
    np.testing.assert_array_equal(masked[1, :2], 1.0)
    np.testing.assert_array_equal(masked[1, 2:], 0.0)
    np.testing.assert_array_equal(masked[2], 1.0)  # clipped to T


def test_halve_lengths_is_the_ceil_of_a_stride_two_pool():
    lengths = np.array([0, 1, 2, 3, 750], np.int32)
    np.testing.assert_array_equal(layers.HalveLengths()(lengths).numpy(),
                                  [0, 1, 1, 2, 375])


def _bilstm(seed=0):
    layer = layers.MaskedBiLSTM(3, seed=seed)
    layer.build([(None, None, 2), (None,)])
    return layer


def test_masked_bilstm_counts_and_padding_invariance():
    layer = _bilstm()
    assert sum(np.prod(w.shape) for w in layer.trainable_weights) == (
        2 * 4 * 3 * (2 + 3 + 1))
    rng = np.random.default_rng(0)
    alone = rng.standard_normal((1, 3, 2)).astype(np.float32)
    padded = np.concatenate(
        [alone, rng.standard_normal((1, 4, 2)).astype(np.float32)], axis=1)
    out_alone, last_alone = layer([alone, np.array([3])])
    out_padded, last_padded = layer([padded, np.array([3])])
    np.testing.assert_allclose(out_padded[:, :3], out_alone, atol=1e-6)
    np.testing.assert_array_equal(out_padded[:, 3:], 0.0)
    np.testing.assert_allclose(last_padded, last_alone, atol=1e-6)
    # The backward half starts at the last real step: its output at step 0
    # after reading 3 steps differs from reading 1 step only.
    one, _ = layer([alone[:, :1], np.array([1])])
    assert not np.allclose(one[0, 0, 3:], out_alone[0, 0, 3:])
    _, empty = layer([padded, np.array([0])])
    np.testing.assert_array_equal(empty, 0.0)
    _round_trip(layer)


def test_masked_bilstm_rejects_a_bad_keep_probability():
    with pytest.raises(ValueError, match="keep probability"):
        layers.MaskedBiLSTM(3, input_keep_prob=0.0)


def test_position_embedding_adds_the_first_steps_positions():
    layer = layers.PositionEmbedding(6, seed=1)
    inputs = np.zeros((2, 4, 3), np.float32)
    outputs = layer(inputs).numpy()
    assert layer.count_params() == 6 * 3
    np.testing.assert_allclose(outputs[0], layer.positions.numpy()[:4])
    np.testing.assert_allclose(outputs[0], outputs[1])
    _round_trip(layer)


def test_key_padding_mask_hides_padded_keys_from_every_query():
    mask = layers.KeyPaddingMask(3)(np.array([2, 0])).numpy()
    assert mask.shape == (2, 3, 3)
    np.testing.assert_array_equal(mask[0], [[True, True, False]] * 3)
    assert not mask[1].any()
    _round_trip(layers.KeyPaddingMask(3))


def test_scalar_bias_dense_has_one_bias():
    layer = layers.ScalarBiasDense(4, seed=0)
    assert layer(np.ones((2, 5), np.float32)).shape == (2, 4)
    assert layer.count_params() == 5 * 4 + 1
    _round_trip(layer)


def test_standardize_uses_fixed_statistics_and_treats_zero_std_as_one():
    layer = layers.Standardize([1.0, 2.0], [2.0, 0.0])
    np.testing.assert_allclose(layer(np.array([[3.0, 5.0]], np.float32)),
                               [[1.0, 3.0]])
    assert not layer.trainable_weights
    _round_trip(layer)


def test_luong_attention_gives_padded_steps_no_weight():
    sequence = tf.constant(np.random.default_rng(0).standard_normal(
        (1, 4, 3)).astype(np.float32))
    query = tf.ones((1, 3))
    layer = layers.LuongDotAttention(mask_attention=True)
    context, weights = layer([sequence, query, tf.constant([2])])
    np.testing.assert_array_equal(weights.numpy()[0, 2:], 0.0)
    np.testing.assert_allclose(weights.numpy().sum(), 1.0, rtol=1e-6)
    expected = (weights.numpy()[0, :, None] * sequence.numpy()[0]).sum(0)
    np.testing.assert_allclose(context.numpy()[0], expected, rtol=1e-5)


def test_layers_work_inside_a_functional_model():
    frames = keras.Input((None, 2))
    lengths = keras.Input((), dtype="int32")
    outputs, last = layers.MaskedBiLSTM(2, name="blstm")([frames, lengths])
    masked = layers.MaskSequence(name="mask")(outputs, lengths)
    model = keras.Model([frames, lengths], [masked, last])
    out, state = model([np.ones((2, 5, 2), np.float32),
                        np.array([5, 2], np.int32)])
    assert out.shape == (2, 5, 4) and state.shape == (2, 4)
