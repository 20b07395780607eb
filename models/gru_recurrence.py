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

* each step multiplies concat([x_t, h]) by the gate kernel and
  concat([x_t, r ⊙ h]) by the candidate kernel, TF1's own two matmuls
  (`joint_kernels`); the bias is a kernel row fed by a column of ones that
  the caller appends to the time-major input [T, B, I];
* the loop runs `steps` times (the batch's longest length), however wide
  the padded input is;
* with `active` (batch sorted by length, longest first), step t updates
  only the rows still inside their sequence, a contiguous prefix, so a
  batch costs Σ lengths rather than B · max length; the other rows keep
  their state;
* the gradient is hand-written (`tf.custom_gradient`): the forward
  records the rows it stepped, the backward loop carries d(state) through
  the two transposed recurrent matmuls only, and the kernels' and the
  inputs' gradients are one matmul each over the recorded rows after it;
* the batch may come as several independent row groups ("streams") that
  one loop steps side by side, so that with single-threaded ops each core
  runs one (`stream_count`, `configure_cpu_threads`).

The caller reads the final state at each row's true length and masks the
outputs (`TF1GRU.call`), so rows past their length never matter: their
gradient is exactly zero.
"""

import os

import tensorflow as tf
from tensorflow.python.ops import control_flow_util


def _cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else (os.cpu_count() or 1)


def stream_count():
    """Row groups (streams) one loop steps side by side: 1, or one per core.

    A step of one GRU row group is ~15 small ops around two small matmuls
    ([B, I+H]·[I+H, 2H], [B, I+H]·[I+H, H]); with TF's default threading
    each op is split over all cores and the loop is bound by their
    synchronisation, not by arithmetic. With single-threaded ops (intra-op
    threads 1, set by `configure_cpu_threads`) the executor instead runs
    independent streams concurrently, one per inter-op thread: 1.9× the
    forward and 1.7× the forward + backward speed of one stream on 2 cores
    (bench/README.md). Read when a graph is traced.
    """
    if tf.config.threading.get_intra_op_parallelism_threads() != 1:
        return 1
    inter = tf.config.threading.get_inter_op_parallelism_threads()
    return max(1, inter if inter > 0 else _cores())


# TF's own environment variables for its thread pools: when set, they win.
THREAD_ENVIRONMENT = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def configure_cpu_threads():
    """Sets TF's CPU threading for the recurrence: one thread per op, one
    inter-op thread per core (so `stream_count` is the number of cores).

    Only on a CPU-only machine with several cores, without
    TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS in the environment,
    and only before TF's runtime starts (the settings cannot change
    later). Returns a line saying what was done, for the run's log.
    """
    chosen = [name for name in THREAD_ENVIRONMENT if os.environ.get(name)]
    if chosen:
        # The user sized TF's pools (e.g. to run jobs side by side).
        return (f"CPU threading: as set by {', '.join(chosen)}; GRU "
                f"streams: {stream_count()}.")
    cores = _cores()
    if cores < 2:
        return "CPU threading: TF default (1 core)."
    if tf.config.list_physical_devices("GPU"):
        return "CPU threading: TF default (a GPU is visible)."
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(cores)
    except RuntimeError as error:
        # TF's runtime already started in this process (e.g. a second run
        # in one Python session): it keeps the threading it started with.
        return (f"CPU threading: unchanged ({error}); GRU streams: "
                f"{stream_count()}.")
    return (f"CPU threading: 1 thread per op, {cores} inter-op threads; "
            f"GRU streams: {cores}.")


def step_counts(sorted_lengths, steps):
    """int32 [steps]: rows still inside their sequence at each step.

    Args:
        sorted_lengths: int32 [B], sorted in decreasing order.
        steps: int32 scalar, the number of steps run.
    """
    return tf.reduce_sum(tf.cast(
        sorted_lengths[None, :] > tf.range(steps)[:, None], tf.int32),
        axis=1)


def joint_kernels(kernel, recurrent_kernel):
    """(gate kernel [I+H, 2H], candidate kernel [I+H, H]), as TF1 holds them.

    TF1's `GRUCell` multiplies concat([x_t, h]) by one gate kernel and
    concat([x_t, r ⊙ h]) by one candidate kernel; Keras splits the same
    numbers into an input kernel [I, 3H] and a recurrent kernel [H, 3H].
    Differentiable: the gradients flow back to the two Keras kernels.
    """
    units = recurrent_kernel.shape[0]
    return (tf.concat([kernel[:, :2 * units],
                       recurrent_kernel[:, :2 * units]], axis=0),
            tf.concat([kernel[:, 2 * units:],
                       recurrent_kernel[:, 2 * units:]], axis=0))


def in_xla_context():
    """True while tracing inside an XLA-compiled (jit_compile) function.

    XLA needs static shapes, so `TF1GRU` then updates every row at every
    step instead of only the rows still inside their sequence.
    """
    return control_flow_util.GraphOrParentsInXlaContext(
        tf.compat.v1.get_default_graph())


def _record_size(inputs, steps):
    # Records of a shrinking batch are concatenated, so every entry must be
    # written: `steps` of them. XLA needs a static size: the input's frames
    # (unwritten entries are zeros there).
    return tf.shape(inputs)[0] if in_xla_context() else steps


def _rows(array, ragged):
    """A TensorArray of [rows_t, C] records as one [Σ rows_t, C] tensor."""
    if ragged:
        return array.concat()
    stacked = array.stack()
    return tf.reshape(stacked, [-1, stacked.shape[-1]])


def _forward(inputs, gate_kernel, candidate_kernel, steps, active,
             keep_records, keep_states=True):
    """The forward loop over independent streams (lists, one per stream).

    Returns the states [T, B_i, H] of each stream and, with
    `keep_records`, what the backward pass reads: TensorArrays (one per
    stream) of each step's gate input [x, h], candidate input [x, r ⊙ h],
    gates [z, r] and candidate, rows as stepped. Steps >= `steps` are never
    run: their states are zeros. Without `keep_states`, returns the last
    carried states [B_i, H] instead.
    """
    width, units = inputs[0].shape[2], candidate_kernel.shape[1]
    dtype = inputs[0].dtype
    size = tf.shape(inputs[0])[0]
    record_size = _record_size(inputs[0], steps)
    streams = range(len(inputs))

    def arrays(columns, count):
        # Shrinking batches give steps of different row counts. The
        # backward pass reads gate inputs twice (eager reads would clear).
        return [tf.TensorArray(dtype, size=count, infer_shape=False,
                               element_shape=[None, columns],
                               clear_after_read=False)
                for _ in streams]

    def step(i, t, state):
        # A slice of the captured input, no per-step copy.
        x = inputs[i][t]
        previous = state
        if active is not None:
            rows = active[i][t]
            x, previous = x[:rows], state[:rows]
        # The input is multiplied here, step by step, as in TF1:
        # projecting all steps before the loop writes (and reads back) a
        # [T, B, 3H] tensor, which cost more than the loop's matmuls grow
        # by (bench/README.md).
        gate_input = tf.concat([x, previous], axis=1)
        gates = tf.sigmoid(tf.matmul(gate_input, gate_kernel))
        z, r = tf.split(gates, 2, axis=1)
        candidate_input = tf.concat([x, r * previous], axis=1)
        candidate = tf.tanh(tf.matmul(candidate_input, candidate_kernel))
        new = candidate + z * (previous - candidate)
        if active is not None:
            new = tf.concat([new, state[rows:]], axis=0)
            new.set_shape(state.shape)
        return new, (gate_input, candidate_input, gates, candidate)

    def body(t, states, outputs, records):
        # The streams share no op: the executor runs them side by side.
        results = [step(i, t, states[i]) for i in streams]
        new_states = [result[0] for result in results]
        if keep_states:
            outputs = [outputs[i].write(t, new_states[i]) for i in streams]
        if keep_records:
            records = tuple(
                [array[i].write(t, results[i][1][k]) for i in streams]
                for k, array in enumerate(records))
        return t + 1, new_states, outputs, records

    initial = [tf.zeros([tf.shape(stream)[1], units], dtype)
               for stream in inputs]
    # Only what is kept travels through the loop.
    _, last, outputs, records = tf.while_loop(
        lambda t, *_: t < steps, body,
        (tf.constant(0), initial, arrays(units, size) if keep_states else [],
         tuple(arrays(columns, record_size) for columns in (
             width + units, width + units, 2 * units, units))
         if keep_records else ()),
        maximum_iterations=size)
    if not keep_states:
        return last, None
    return [output.stack() for output in outputs], records


def _backward(inputs, gate_kernel, candidate_kernel, steps, active, records,
              d_states):
    """Gradients of (inputs (list), gate kernel, candidate kernel).

    The loop carries d(state) back through the recurrent halves of the
    kernels only; the kernels' gradients and the inputs' gradient are
    matmuls over all recorded rows after it (TF prunes the inputs' one
    when nothing uses it, e.g. for MFCC).
    """
    width, units = inputs[0].shape[2], candidate_kernel.shape[1]
    ragged = active is not None
    gate_recurrent_t = tf.transpose(gate_kernel[width:])
    candidate_recurrent_t = tf.transpose(candidate_kernel[width:])
    dtype = inputs[0].dtype
    size = tf.shape(inputs[0])[0]
    record_size = _record_size(inputs[0], steps)
    streams = range(len(inputs))
    gate_inputs, candidate_inputs, gate_records, candidates = records

    def arrays(columns):
        return [tf.TensorArray(dtype, size=record_size, infer_shape=False,
                               element_shape=[None, columns])
                for _ in streams]

    def step(i, t, d_state):
        d_state = d_state + d_states[i][t]
        d_new = d_state
        if ragged:
            rows = active[i][t]
            d_new = d_state[:rows]
        gates = gate_records[i].read(t)
        z, r = tf.split(gates, 2, axis=1)
        candidate = candidates[i].read(t)
        previous = gate_inputs[i].read(t)[:, width:]
        # d(pre-activations), through σ' and tanh' from their outputs.
        d_candidate = tf.raw_ops.TanhGrad(y=candidate, dy=d_new - d_new * z)
        d_reset = tf.matmul(d_candidate, candidate_recurrent_t)
        d_gates = tf.raw_ops.SigmoidGrad(y=gates, dy=tf.concat(
            [d_new * (previous - candidate), d_reset * previous], axis=1))
        d_previous = (d_new * z + d_reset * r
                      + tf.matmul(d_gates, gate_recurrent_t))
        if ragged:
            d_previous = tf.concat([d_previous, d_state[rows:]], axis=0)
            d_previous.set_shape(d_state.shape)
        return d_previous, d_gates, d_candidate

    def body(t, d_state, written):
        results = [step(i, t, d_state[i]) for i in streams]
        return (t - 1, [result[0] for result in results],
                tuple([array[i].write(t, results[i][k]) for i in streams]
                      for k, array in enumerate(written, 1)))

    _, _, (d_gates_all, d_candidates_all) = tf.while_loop(
        lambda t, *_: t >= 0, body,
        (steps - 1, [tf.zeros_like(d_stream[0]) for d_stream in d_states],
         (arrays(2 * units), arrays(units))),
        maximum_iterations=size)

    d_inputs, d_gate_kernels, d_candidate_kernels = [], [], []
    for i in streams:
        d_gates = _rows(d_gates_all[i], ragged)
        d_candidate = _rows(d_candidates_all[i], ragged)
        d_gate_kernels.append(tf.matmul(
            _rows(gate_inputs[i], ragged), d_gates, transpose_a=True))
        d_candidate_kernels.append(tf.matmul(
            _rows(candidate_inputs[i], ragged), d_candidate,
            transpose_a=True))
        d_x = (tf.matmul(d_gates, gate_kernel[:width], transpose_b=True)
               + tf.matmul(d_candidate, candidate_kernel[:width],
                           transpose_b=True))
        batch = tf.shape(inputs[i])[1]
        if ragged:
            # Rows of step t are its first active[t] rows, in order.
            d_inputs.append(tf.scatter_nd(
                tf.cast(tf.where(tf.sequence_mask(active[i], batch)),
                        tf.int32), d_x,
                tf.stack([size, batch, width])))
        else:
            d_x = tf.reshape(d_x, [record_size, batch, width])
            d_inputs.append(tf.pad(d_x, [[0, size - record_size], [0, 0],
                                         [0, 0]]))
    return d_inputs, tf.add_n(d_gate_kernels), tf.add_n(d_candidate_kernels)


def _as_streams(inputs, active):
    """(list of streams, list of actives or None, whether it was a list)."""
    if isinstance(inputs, (list, tuple)):
        return list(inputs), None if active is None else list(active), True
    return [inputs], None if active is None else [active], False


def _like(states, several):
    return states if several else states[0]


def recurrence(inputs, kernel, recurrent_kernel, steps, active=None):
    """All GRU states of a time-major batch.

    Args:
        inputs: float [T, B, I]. Or a list of such tensors, one per
            stream: independent row groups that one loop steps side by
            side (see `stream_count`).
        kernel: float [I, 3H], Keras layout [z, r, h]. A bias is a kernel
            row fed by a column of ones in `inputs` (one matmul for both).
        recurrent_kernel: float [H, 3H], Keras layout [z, r, h].
        steps: int32 scalar in [1, T]. Steps to run (steps >= it stay 0).
        active: int32 [steps] or None (a list of them with streams). With a
            batch sorted by decreasing length, `step_counts(...)`: step t
            updates only the first active[t] rows, the others keep their
            state. None updates every row (static shapes, as XLA needs).

    Returns:
        float [T, B, H] (a list with streams): state after each step. Rows
        past their length hold values that the caller must not use (their
        gradient is zero anyway).
    """
    streams, actives, several = _as_streams(inputs, active)
    count = len(streams)

    @tf.custom_gradient
    def run(*arguments):
        inputs, (gate_kernel, candidate_kernel) = (
            list(arguments[:count]), arguments[count:])
        states, records = _forward(inputs, gate_kernel, candidate_kernel,
                                   steps, actives, keep_records=True)

        def gradient(*d_states):
            d_inputs, d_gate, d_candidate = _backward(
                inputs, gate_kernel, candidate_kernel, steps, actives,
                records, list(d_states))
            return d_inputs + [d_gate, d_candidate]

        return states, gradient

    return _like(run(*streams, *joint_kernels(kernel, recurrent_kernel)),
                 several)


def inference_recurrence(inputs, kernel, recurrent_kernel, steps,
                         active=None, final_only=False):
    """`recurrence` without keeping the gates; differentiated by TF.

    For inference: nothing is stored for a backward pass, and a gradient
    (e.g. for attributions) still exists. With `final_only` (needs
    `active`: rows stop at their length and keep their state), returns
    each row's final state [B, H] (a list with streams) and stores no
    per-step states.
    """
    if final_only and active is None:
        raise ValueError("final_only needs `active`: without it rows step "
                         "past their length.")
    streams, actives, several = _as_streams(inputs, active)
    states, _ = _forward(streams, *joint_kernels(kernel, recurrent_kernel),
                         steps, actives, keep_records=False,
                         keep_states=not final_only)
    return _like(states, several)


_FUNCTIONS = {}


def _function(fn, kernel, recurrent_kernel, **kwargs):
    """One tf.function of `fn` per (I, H, dtype), retracing on batch and time.

    `reduce_retracing` relaxes the batch and frame sizes after a second
    shape; keying on I and H keeps the feature sizes static (the loop
    needs them).
    """
    key = (fn, tuple(kernel.shape), recurrent_kernel.shape[0],
           recurrent_kernel.dtype, tuple(sorted(kwargs)))
    if key not in _FUNCTIONS:
        _FUNCTIONS[key] = tf.function(fn, reduce_retracing=True, **kwargs)
    return _FUNCTIONS[key]


def graph_inference_recurrence(inputs, kernel, recurrent_kernel, steps,
                               active, final_only=False):
    """`inference_recurrence` as a function grappler does not inline.

    A while loop inlined into a `tf.cond` branch makes grappler's dependency
    optimizer log "topological sort failed" errors (harmless, but alarming).
    """
    return _function(inference_recurrence, kernel, recurrent_kernel,
                     experimental_attributes={"_noinline": True})(
                         inputs, kernel, recurrent_kernel, steps, active,
                         final_only)


# Frames are padded to a multiple of this before the compiled loop, so that
# serving requests of any length share a few compiled programs (the loop
# still stops at `steps`).
COMPILE_FRAME_MULTIPLE = 64


def compiled_inference_recurrence(inputs, kernel, recurrent_kernel, steps):
    """`inference_recurrence` over all rows, XLA-compiled.

    At batch 1 a step is a few tiny ops, so graph-mode per-op overhead
    dominates; XLA compiles the whole loop into one program. The input's
    share of the kernels is applied before the loop, in one matmul over
    all frames: a step of one row is bound by reading its kernels, and
    the recurrent halves alone are what stays in cache (MDREA at batch 1:
    4.3 instead of 8.1 ms p50, bench/README.md). Its gradient (for
    attributions) recomputes the gates in graph mode, since the compiled
    loop keeps nothing for a backward pass.
    """

    @tf.custom_gradient
    def run(inputs, gate_kernel, candidate_kernel):
        frames = tf.shape(inputs)[0]
        padded = -(-frames // COMPILE_FRAME_MULTIPLE) * COMPILE_FRAME_MULTIPLE
        states = _function(_projected_states, gate_kernel, candidate_kernel,
                           jit_compile=True)(
            tf.pad(inputs, [[0, padded - frames], [0, 0], [0, 0]]),
            gate_kernel, candidate_kernel, steps)[:frames]

        def gradient(d_states):
            _, records = _forward([inputs], gate_kernel, candidate_kernel,
                                  steps, None, keep_records=True)
            (d_inputs,), d_gate, d_candidate = _backward(
                [inputs], gate_kernel, candidate_kernel, steps, None,
                records, [d_states])
            return d_inputs, d_gate, d_candidate

        return states, gradient

    return run(inputs, *joint_kernels(kernel, recurrent_kernel))


def _projected_states(inputs, gate_kernel, candidate_kernel, steps):
    """States [T, B, H] of every row, the inputs projected before the loop.

    The same step as `_forward`'s, with x_t·W added to h·U rather than
    [x_t, h] multiplied by [W; U].
    """
    width, units = inputs.shape[2], candidate_kernel.shape[1]
    projected = tf.tensordot(inputs, tf.concat(
        [gate_kernel[:width], candidate_kernel[:width]], axis=1), 1)
    gate_recurrent = gate_kernel[width:]
    candidate_recurrent = candidate_kernel[width:]
    size = tf.shape(inputs)[0]

    def body(t, state, outputs):
        x = projected[t]
        z, r = tf.split(tf.sigmoid(x[:, :2 * units]
                                   + tf.matmul(state, gate_recurrent)),
                        2, axis=1)
        candidate = tf.tanh(x[:, 2 * units:]
                            + tf.matmul(r * state, candidate_recurrent))
        new = candidate + z * (state - candidate)
        return t + 1, new, outputs.write(t, new)

    _, _, outputs = tf.while_loop(
        lambda t, *_: t < steps, body,
        (tf.constant(0), tf.zeros([tf.shape(inputs)[1], units], inputs.dtype),
         tf.TensorArray(inputs.dtype, size=size)),
        maximum_iterations=size)
    return outputs.stack()
