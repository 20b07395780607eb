"""The fast TF1GRU recurrence against Keras' masked GRU on the same weights."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from models import gru_recurrence
from models import layers
from models import registry
from models import training
from tests import helpers


def _reference(gru, sequence, lengths):
    # Keras' masked GRU on `gru`'s own variables: any difference is the
    # formulation's.
    return layers.reference_tf1_gru(gru, sequence, lengths)


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
# (XLA-compiled loop) and evaluation-size inference (rows sorted), and the
# sorted paths split into streams (3 streams of 2 rows; 4 streams of 2, 2,
# 1 and 1 rows).
PATHS = {"train": (True, False, 16, 1), "train_jit": (True, True, 16, 1),
         "serve": (False, False, 16, 1), "eval": (False, False, 0, 1),
         "train_streams": (True, False, 16, 3),
         "eval_streams": (False, False, 0, 4)}


@pytest.mark.parametrize("path,return_sequences", [
    ("train", True), ("train", False), ("train_jit", True), ("serve", True),
    ("eval", True), ("eval", False), ("train_streams", True),
    ("train_streams", False), ("eval_streams", True),
    ("eval_streams", False)])
def test_outputs_and_gradients_match_keras_masked_gru(path, return_sequences,
                                                      monkeypatch):
    training, jit_compile, max_batch, streams = PATHS[path]
    monkeypatch.setattr(layers, "COMPILED_INFERENCE_MAX_BATCH", max_batch)
    monkeypatch.setattr(gru_recurrence, "stream_count", lambda: streams)
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


# The sorted paths (which never read padding) and the two where every row
# steps (which zero it first).
@pytest.mark.parametrize("path", ["train", "eval_streams", "train_jit",
                                  "serve"])
def test_non_finite_padding_does_not_leak(path, monkeypatch):
    training, jit_compile, max_batch, streams = PATHS[path]
    monkeypatch.setattr(layers, "COMPILED_INFERENCE_MAX_BATCH", max_batch)
    monkeypatch.setattr(gru_recurrence, "stream_count", lambda: streams)
    gru = _gru()
    sequence, lengths = _case()
    mask = layers.sequence_mask(lengths, sequence)[:, :, None]
    poisoned = tf.where(mask, sequence, np.nan)

    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs, state = gru([x, lengths], training=training)
            loss = _loss((outputs, state))
        return outputs, state, tape.gradient(
            loss, [x, gru.gru.cell.recurrent_kernel])

    run = tf.function(run, jit_compile=jit_compile)
    outputs, state, _ = run(sequence)
    poisoned_outputs, poisoned_state, gradients = run(poisoned)
    np.testing.assert_allclose(poisoned_outputs, outputs, atol=1e-6)
    np.testing.assert_allclose(poisoned_state, state, atol=1e-6)
    d_input, d_kernel = (gradient.numpy() for gradient in gradients)
    assert np.all(np.isfinite(d_kernel))
    # Finite inside the lengths, exactly zero on the padding.
    assert np.all(np.isfinite(d_input))
    assert np.all(d_input[~mask.numpy()[:, :, 0]] == 0)


@pytest.mark.parametrize("name,expected", [
    ("ARE", lambda v: 145541), ("MDREA", lambda v: 300 * v + 494402)])
def test_cudnn_option_parameter_counts(name, expected):
    # reset_after=True: 3H more biases per GRU layer than the original.
    model = registry.build_model(name, **registry.model_arguments(
        name, vocab_size=3747, gru_impl="cudnn"))
    assert helpers.count_trainable(model) == expected(3747)
    assert isinstance(model.get_layer("audio_gru_0"), layers.CudnnGRU)


def test_cudnn_option_is_padding_invariant_and_learns():
    kwargs = dict(helpers.tiny_model_kwargs(model="ARE"), gru_impl="cudnn")
    model = registry.build_model("ARE", **kwargs)
    lengths = [12, 5, 1, 0]
    batch = helpers.padded_batch(lengths, [3] * 4, 12,
                                 names=[t.name for t in model.inputs])
    assert model(batch).shape == (4, 4)
    helpers.assert_padded_batch_equals_alone(model, batch, lengths)
    helpers.assert_config_round_trip(model)
    labels = tf.constant([0, 1, 2, 3])
    optimizer = keras.optimizers.Adam(0.01)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(training.sigmoid_cross_entropy(
                model(batch, training=True), labels, 4))
        optimizer.apply_gradients(zip(
            tape.gradient(loss, model.trainable_variables),
            model.trainable_variables))
        return loss

    first = float(step())
    for _ in range(30):
        last = float(step())
    assert last < 0.5 * first


@pytest.mark.parametrize("intra,inter,cores,expected", [
    (0, 0, 2, 1),   # TF's default threading: one stream
    (2, 2, 2, 1),
    (1, 0, 3, 3),   # single-threaded ops: one stream per core ...
    (1, 2, 8, 2)])  # ... or per inter-op thread when set
def test_stream_count_follows_the_threading(monkeypatch, intra, inter,
                                            cores, expected):
    threading = tf.config.threading
    monkeypatch.setattr(threading, "get_intra_op_parallelism_threads",
                        lambda: intra)
    monkeypatch.setattr(threading, "get_inter_op_parallelism_threads",
                        lambda: inter)
    monkeypatch.setattr(gru_recurrence, "_cores", lambda: cores)
    assert gru_recurrence.stream_count() == expected


def test_cpu_threads_cannot_change_once_tf_runs():
    # This process already runs TF ops with TF's default threading: the
    # settings stay, and the recurrence keeps one stream.
    tf.constant(1.0) + 1.0
    line = gru_recurrence.configure_cpu_threads()
    assert line.startswith("CPU threading:")
    assert gru_recurrence.stream_count() == 1


@pytest.mark.parametrize("training", [True, False])
def test_a_batch_of_empty_sequences_gives_zeros(training, monkeypatch):
    monkeypatch.setattr(layers, "COMPILED_INFERENCE_MAX_BATCH", 0)
    gru = _gru()
    sequence, _ = _case()
    outputs, state = gru([sequence, tf.zeros([6], tf.int32)],
                         training=training)
    assert outputs.shape == (6, 9, 5) and state.shape == (6, 5)
    assert not np.any(outputs.numpy()) and not np.any(state.numpy())


def test_tf_thread_variables_in_the_environment_win(monkeypatch):
    monkeypatch.setenv("TF_NUM_INTEROP_THREADS", "1")
    line = gru_recurrence.configure_cpu_threads()
    assert line.startswith("CPU threading: as set by TF_NUM_INTEROP_THREADS")
