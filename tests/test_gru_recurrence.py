"""The fast TF1GRU recurrence against Keras' masked GRU on the same weights."""

import numpy as np
import pytest
import tensorflow as tf

from models import layers


def _reference(gru, sequence, lengths):
    """The former TF1GRU.call: keras.layers.GRU(reset_after=False) + mask.

    Uses `gru`'s own variables (its inner Keras GRU owns them), so any
    difference is the formulation's.
    """
    mask = layers.sequence_mask(lengths, sequence)
    outputs, state = gru.gru(sequence, mask=mask)
    if not gru.return_sequences:
        return state
    return outputs * tf.cast(mask, outputs.dtype)[:, :, None], state


def _case(frames=9, seed=0):
    rng = np.random.default_rng(seed)
    # Unsorted, with a 0 and a batch maximum below the padded width.
    lengths = np.array([3, 7, 0, 1, 7, 5], np.int32)
    sequence = rng.standard_normal((6, frames, 4)).astype(np.float32)
    sequence *= np.arange(frames)[None, :, None] < lengths[:, None, None]
    return tf.constant(sequence), tf.constant(lengths)


def _gru(return_sequences=True):
    gru = layers.TF1GRU(5, return_sequences=return_sequences, seed=1)
    sequence, lengths = _case()
    gru([sequence, lengths])
    return gru


def _loss(result):
    # Weights every output position and the state differently, so that a
    # gradient routed to the wrong step or row shows up.
    if isinstance(result, tuple):
        outputs, state = result
        positions = tf.range(1, 1 + tf.size(outputs), dtype=tf.float32)
        return (tf.reduce_sum(tf.reshape(outputs, [-1]) * positions / 100.0)
                + tf.reduce_sum(state ** 2))
    return tf.reduce_sum(result ** 2 * tf.range(1.0, 6.0))


def _value_and_gradients(fn, gru, sequence):
    with tf.GradientTape() as tape:
        tape.watch(sequence)
        loss = _loss(fn(sequence))
    variables = [gru.gru.cell.kernel, gru.gru.cell.recurrent_kernel,
                 gru.gru.cell.bias]
    return loss, tape.gradient(loss, [sequence] + variables)


# Each of TF1GRU's code paths: training (rows sorted, hand-written
# gradient), training under XLA (every row steps), serving-size inference
# (XLA-compiled loop) and evaluation-size inference (rows sorted).
PATHS = {"train": (True, False, 16), "train_jit": (True, True, 16),
         "serve": (False, False, 16), "eval": (False, False, 0)}


@pytest.mark.parametrize("path,return_sequences", [
    ("train", True), ("train", False), ("train_jit", True), ("serve", True),
    ("eval", True), ("eval", False)])
def test_outputs_and_gradients_match_keras_masked_gru(path, return_sequences,
                                                      monkeypatch):
    training, jit_compile, max_batch = PATHS[path]
    monkeypatch.setattr(layers, "COMPILED_INFERENCE_MAX_BATCH", max_batch)
    gru = _gru(return_sequences)
    sequence, lengths = _case()

    def ours_fn(x):
        return gru([x, lengths], training=training)

    ours = tf.function(lambda x: _value_and_gradients(ours_fn, gru, x),
                       jit_compile=jit_compile)
    reference = tf.function(lambda x: _value_and_gradients(
        lambda s: _reference(gru, s, lengths), gru, x))
    loss, gradients = ours(sequence)
    expected_loss, expected_gradients = reference(sequence)
    for ours_value, expected_value in zip(
            tf.nest.flatten(tf.function(ours_fn)(sequence)),
            tf.nest.flatten(_reference(gru, sequence, lengths))):
        np.testing.assert_allclose(ours_value, expected_value, atol=1e-6)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-6)
    for gradient, expected_gradient in zip(gradients, expected_gradients):
        np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-5,
                                   atol=1e-6)


def test_loop_runs_only_to_the_longest_length():
    gru = _gru()
    sequence, lengths = _case(frames=9)
    wide = tf.pad(sequence, [[0, 0], [0, 31], [0, 0]])
    outputs, state = gru([sequence, lengths])
    wide_outputs, wide_state = gru([wide, lengths])
    np.testing.assert_allclose(wide_outputs[:, :9], outputs, atol=1e-6)
    assert np.all(wide_outputs.numpy()[:, 9:] == 0)
    np.testing.assert_allclose(wide_state, state, atol=1e-6)


def test_non_finite_padding_does_not_leak():
    gru = _gru()
    sequence, lengths = _case()
    mask = layers.sequence_mask(lengths, sequence)[:, :, None]
    poisoned = tf.where(mask, sequence, np.nan)
    outputs, state = gru([sequence, lengths])
    with tf.GradientTape() as tape:
        tape.watch(poisoned)
        poisoned_outputs, poisoned_state = gru([poisoned, lengths],
                                               training=True)
        loss = _loss((poisoned_outputs, poisoned_state))
    np.testing.assert_allclose(poisoned_outputs, outputs, atol=1e-6)
    np.testing.assert_allclose(poisoned_state, state, atol=1e-6)
    gradient = tape.gradient(loss, gru.gru.cell.recurrent_kernel)
    assert np.all(np.isfinite(gradient.numpy()))
