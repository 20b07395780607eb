"""The TF1 `GRUCell` recurrence (reset_after=False), written for speed.

`TF1GRU` (models/layers.py) computes, per step t and with Keras' kernel
layout (columns [z, r, h]):

    z, r = σ(x_t·W_zr + b_zr + h_{t−1}·U_zr)
    c    = tanh(x_t·W_h + b_h + (r ⊙ h_{t−1})·U_h)
    h_t  = z ⊙ h_{t−1} + (1 − z) ⊙ c

`keras.layers.GRU` with a mask runs a generic per-step cell: the input
matmul, the two recurrent matmuls and masking selects at every step, and a
backward pass that accumulates the weight gradients one step at a time.
Here (same equations, same variables):

* the caller projects all steps at once (x·W + b, one matmul) and passes
  the time-major result [T, B, 3H];
* the loop holds only the two recurrent matmuls and runs `steps` times
  (the batch's longest length), however wide the padded input is;
* with `active` (batch sorted by length, longest first), step t updates
  only the rows still inside their sequence, a contiguous prefix, so a
  batch costs Σ lengths rather than B · max length; the other rows keep
  their state;
* the gradient is hand-written (`tf.custom_gradient`): the backward loop
  holds only the two transposed recurrent matmuls; the gradients of U
  and of the projected inputs are one large matmul each after the loop.

The caller reads the final state at each row's true length and masks the
outputs (`TF1GRU.call`), so rows past their length never matter: their
gradient is exactly zero.
"""

import tensorflow as tf


def step_counts(sorted_lengths, steps):
    """int32 [steps]: rows still inside their sequence at each step.

    Args:
        sorted_lengths: int32 [B], sorted in decreasing order.
        steps: int32 scalar, the number of steps run.
    """
    return tf.reduce_sum(tf.cast(
        sorted_lengths[None, :] > tf.range(steps)[:, None], tf.int32),
        axis=1)


def _split_kernel(recurrent_kernel):
    units = recurrent_kernel.shape[0]
    return recurrent_kernel[:, :2 * units], recurrent_kernel[:, 2 * units:]


def _forward(projected, recurrent_kernel, steps, active, keep_gates):
    """The forward loop; returns states [T, B, H] (+ gate TensorArrays).

    Steps >= `steps` are never run: their states are zeros.
    """
    units = recurrent_kernel.shape[0]
    gate_kernel, candidate_kernel = _split_kernel(recurrent_kernel)
    dtype = projected.dtype
    size = tf.shape(projected)[0]
    inputs = tf.TensorArray(dtype, size=size, element_shape=[None, 3 * units]
                            ).unstack(projected)

    def gate_array():
        # Shrinking batches give steps of different row counts.
        return tf.TensorArray(dtype, size=size, infer_shape=False,
                              element_shape=[None, units])

    def body(t, state, outputs, z_gates, r_gates, candidates):
        x = inputs.read(t)
        previous = state
        if active is not None:
            rows = active[t]
            x, previous = x[:rows], state[:rows]
        zr = tf.sigmoid(x[:, :2 * units] + tf.matmul(previous, gate_kernel))
        z, r = zr[:, :units], zr[:, units:]
        candidate = tf.tanh(x[:, 2 * units:]
                            + tf.matmul(r * previous, candidate_kernel))
        new = candidate + z * (previous - candidate)
        if active is not None:
            new = tf.concat([new, state[rows:]], axis=0)
            new.set_shape(state.shape)
        if keep_gates:
            z_gates = z_gates.write(t, z)
            r_gates = r_gates.write(t, r)
            candidates = candidates.write(t, candidate)
        return t + 1, new, outputs.write(t, new), z_gates, r_gates, candidates

    initial = tf.zeros([tf.shape(projected)[1], units], dtype)
    outputs = tf.TensorArray(dtype, size=size, element_shape=[None, units])
    _, _, outputs, z_gates, r_gates, candidates = tf.while_loop(
        lambda t, *_: t < steps, body,
        (tf.constant(0), initial, outputs, gate_array(), gate_array(),
         gate_array()),
        maximum_iterations=size)
    return outputs.stack(), (z_gates, r_gates, candidates)


def _backward(projected, recurrent_kernel, steps, active, states, gates,
              d_states):
    """Gradients of (projected, recurrent_kernel) given d(states)."""
    units = recurrent_kernel.shape[0]
    gate_kernel, candidate_kernel = _split_kernel(recurrent_kernel)
    gate_kernel_t = tf.transpose(gate_kernel)
    candidate_kernel_t = tf.transpose(candidate_kernel)
    dtype = projected.dtype
    size = tf.shape(projected)[0]
    batch = tf.shape(projected)[1]
    z_gates, r_gates, candidates = gates
    previous_states = tf.concat([tf.zeros_like(states[:1]), states[:-1]], 0)

    def array(width):
        return tf.TensorArray(dtype, size=size, element_shape=[None, width])

    def padded(value, rows):
        return tf.pad(value, [[0, batch - rows], [0, 0]])

    def body(t, d_state, d_zr_all, d_c_all, reset_all):
        d_state = d_state + d_states[t]
        previous = previous_states[t]
        d_new = d_state
        if active is not None:
            rows = active[t]
            previous, d_new = previous[:rows], d_state[:rows]
        z, r, candidate = z_gates.read(t), r_gates.read(t), candidates.read(t)
        d_z = d_new * (previous - candidate) * z * (1.0 - z)
        d_c = d_new * (1.0 - z) * (1.0 - candidate * candidate)
        d_reset = tf.matmul(d_c, candidate_kernel_t)
        d_r = d_reset * previous * r * (1.0 - r)
        d_zr = tf.concat([d_z, d_r], axis=1)
        d_previous = (d_new * z + d_reset * r
                      + tf.matmul(d_zr, gate_kernel_t))
        reset = r * previous
        if active is not None:
            d_previous = tf.concat([d_previous, d_state[rows:]], axis=0)
            d_previous.set_shape(d_state.shape)
            d_zr, d_c, reset = (padded(d_zr, rows), padded(d_c, rows),
                                padded(reset, rows))
        return (t - 1, d_previous, d_zr_all.write(t, d_zr),
                d_c_all.write(t, d_c), reset_all.write(t, reset))

    _, _, d_zr_all, d_c_all, reset_all = tf.while_loop(
        lambda t, *_: t >= 0, body,
        (steps - 1, tf.zeros_like(states[0]), array(2 * units), array(units),
         array(units)),
        maximum_iterations=size)
    # Steps >= `steps` were not written: they stack as zeros.
    d_zr, d_c = d_zr_all.stack(), d_c_all.stack()
    reset = reset_all.stack()

    def flat(value, width):
        return tf.reshape(value, [-1, width])

    d_gate_kernel = tf.matmul(flat(previous_states, units),
                              flat(d_zr, 2 * units), transpose_a=True)
    d_candidate_kernel = tf.matmul(flat(reset, units), flat(d_c, units),
                                   transpose_a=True)
    return (tf.concat([d_zr, d_c], axis=2),
            tf.concat([d_gate_kernel, d_candidate_kernel], axis=1))


def recurrence(projected, recurrent_kernel, steps, active=None):
    """All GRU states of a time-major, pre-projected batch.

    Args:
        projected: float [T, B, 3H]. x_t·W + b for every step.
        recurrent_kernel: float [H, 3H], Keras layout [z, r, h].
        steps: int32 scalar in [1, T]. Steps to run (steps >= it stay 0).
        active: int32 [steps] or None. With a batch sorted by decreasing
            length, `step_counts(...)`: step t updates only the first
            active[t] rows, the others keep their state. None updates every
            row (static shapes, as XLA needs).

    Returns:
        float [T, B, H]: state after each step. Rows past their length hold
        values that the caller must not use (their gradient is zero anyway).
    """

    @tf.custom_gradient
    def run(projected, recurrent_kernel):
        states, gates = _forward(projected, recurrent_kernel, steps, active,
                                 keep_gates=True)

        def gradient(d_states):
            return _backward(projected, recurrent_kernel, steps, active,
                             states, gates, d_states)

        return states, gradient

    return run(projected, recurrent_kernel)


def inference_recurrence(projected, recurrent_kernel, steps, active=None):
    """`recurrence` without keeping the gates; differentiated by TF.

    For inference: nothing is stored for a backward pass, and a gradient
    (e.g. for attributions) still exists.
    """
    states, _ = _forward(projected, recurrent_kernel, steps, active,
                         keep_gates=False)
    return states


_FUNCTIONS = {}


def _function(fn, recurrent_kernel, **kwargs):
    """One tf.function of `fn` per (H, dtype), retracing on batch and time.

    `reduce_retracing` relaxes the batch and frame sizes after a second
    shape; keying on H keeps the units static (the loop needs them).
    """
    key = (fn, recurrent_kernel.shape[0], recurrent_kernel.dtype,
           tuple(sorted(kwargs)))
    if key not in _FUNCTIONS:
        _FUNCTIONS[key] = tf.function(fn, reduce_retracing=True, **kwargs)
    return _FUNCTIONS[key]


def graph_inference_recurrence(projected, recurrent_kernel, steps, active):
    """`inference_recurrence` as a function grappler does not inline.

    A while loop inlined into a `tf.cond` branch makes grappler's dependency
    optimizer log "topological sort failed" errors (harmless, but alarming).
    """
    return _function(inference_recurrence, recurrent_kernel,
                     experimental_attributes={"_noinline": True})(
                         projected, recurrent_kernel, steps, active)


# Frames are padded to a multiple of this before the compiled loop, so that
# serving requests of any length share a few compiled programs (the loop
# still stops at `steps`).
COMPILE_FRAME_MULTIPLE = 64


def compiled_inference_recurrence(projected, recurrent_kernel, steps):
    """`inference_recurrence` over all rows, XLA-compiled.

    At batch 1 a step is a few tiny ops, so graph-mode per-op overhead
    dominates; XLA compiles the whole loop into one program. Its gradient
    (for attributions) recomputes the gates in graph mode, since the
    compiled loop keeps nothing for a backward pass.
    """

    @tf.custom_gradient
    def run(projected, recurrent_kernel):
        frames = tf.shape(projected)[0]
        padded = -(-frames // COMPILE_FRAME_MULTIPLE) * COMPILE_FRAME_MULTIPLE
        states = _function(inference_recurrence, recurrent_kernel,
                           jit_compile=True)(
            tf.pad(projected, [[0, padded - frames], [0, 0], [0, 0]]),
            recurrent_kernel, steps)[:frames]

        def gradient(d_states):
            again, gates = _forward(projected, recurrent_kernel, steps, None,
                                    keep_gates=True)
            return _backward(projected, recurrent_kernel, steps, None, again,
                             gates, d_states)

        return states, gradient

    return run(projected, recurrent_kernel)
