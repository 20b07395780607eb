"""Building blocks with the original TF1 semantics (yoon_spec.md §3).

Keras defaults differ from TF1's `GRUCell` + `DropoutWrapper` and from the
original's linear layers in ways that change parameter counts and training;
these layers reproduce the original exactly:

* `ScalarBiasDense`: x·W + b with ONE scalar bias and uniform(±0.25) weights.
* `TF1GRU`: GRU with reset_after=False, orthogonal joint kernels, gate bias
  1.0, per-element input/output dropout, final state at the true length and
  exactly-zero outputs past it.
* `LuongDotAttention`: a query vector attends over a sequence by dot product,
  optionally masking padded steps.

and the generic sequence layers of the other models (seed systems, ARE_POOL),
each exact under right padding:

* `MaskSequence`: zeroes the steps at and beyond each length.
* `HalveLengths`: the lengths left by a stride-2 "same" pooling.
* `MaskedBiLSTM`: a bidirectional LSTM over the real steps only.
* `PositionEmbedding`: a learned position embedding.
* `KeyPaddingMask`: the attention mask that hides padded keys.
"""

import keras
import numpy as np
import tensorflow as tf

from models import config_model
from models import gru_recurrence

# Scores of masked positions; finite (like the original's -FLT_MAX) so that a
# length-0 sequence gives uniform weights instead of NaN.
_MASK_SCORE = -1e30


# Inference batches up to this size (serving) run TF1GRU's recurrence
# XLA-compiled; larger ones (evaluation) run faster in graph mode, where
# each step updates only the unfinished rows (bench/README.md). 0: never.
COMPILED_INFERENCE_MAX_BATCH = 16


def sequence_mask(lengths, sequence):
    """bool [B, T]: True for steps < length, for a [B, T, ...] sequence."""
    return tf.sequence_mask(lengths, maxlen=tf.shape(sequence)[1])


@keras.saving.register_keras_serializable(package="mse")
class ScalarBiasDense(keras.layers.Layer):
    """Linear map with a single shared scalar bias: y = x·W + b.

    Matches every linear layer of the original code: W ~ uniform(−0.25, 0.25)
    of shape [in, units], b of shape [1] initialised to 0 and broadcast over
    all outputs. No activation.

    Args:
        units: int. Output size.
        seed: int or None. Seed of the weight initialiser.

    Input [B, in] → output [B, units].
    """

    def __init__(self, units, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.seed = seed

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(input_shape[-1], self.units),
            initializer=keras.initializers.RandomUniform(-0.25, 0.25,
                                                         seed=self.seed))
        self.bias = self.add_weight(name="bias", shape=(1,),
                                    initializer="zeros")

    def call(self, inputs):
        return tf.matmul(inputs, self.kernel) + self.bias

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "seed": self.seed}


@keras.saving.register_keras_serializable(package="mse")
class Standardize(keras.layers.Layer):
    """(x − mean) / std over the last axis, with fixed (non-trained) stats.

    Not part of the original (which fed raw MFCC and prosody, F0 in Hz);
    an option so that models train quickly on new data. The statistics live
    in the config, so an exported model standardises its own inputs.

    Args:
        mean: list of float, one per feature.
        std: list of float, one per feature (zeros are treated as 1).
    """

    def __init__(self, mean, std, **kwargs):
        super().__init__(**kwargs)
        self.mean = [float(v) for v in mean]
        self.std = [float(v) for v in std]
        self._mean = np.asarray(self.mean, np.float32)
        self._scale = np.asarray(
            [1.0 / v if v > 0 else 1.0 for v in self.std], np.float32)

    def call(self, inputs):
        return (inputs - self._mean) * self._scale

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std}


@keras.saving.register_keras_serializable(package="mse")
def standardize_audio(mfcc, prosody, normalization):
    """MFCC frames and prosody standardised with fixed statistics.

    Args:
        mfcc: float [B, T, D] (padded frames become non-zero; callers keep
            them masked by length).
        prosody: float [B, P] or None (left as is).
        normalization: dict of mfcc_mean/mfcc_std/prosody_mean/prosody_std
            lists, or None/empty for no standardisation.

    Returns:
        (mfcc, prosody), through layers named `mfcc_standardize` and
        `prosody_standardize`.
    """
    if not normalization:
        return mfcc, prosody
    mfcc = Standardize(normalization["mfcc_mean"], normalization["mfcc_std"],
                       name="mfcc_standardize")(mfcc)
    if prosody is not None:
        prosody = Standardize(normalization["prosody_mean"],
                              normalization["prosody_std"],
                              name="prosody_standardize")(prosody)
    return mfcc, prosody


class TF1GRU(keras.layers.Layer):
    """One GRU layer behaving like TF1 `DropoutWrapper(GRUCell)` + `dynamic_rnn`.

    * GRU with `reset_after=False` (reset gate applied before the recurrent
      matmul, one bias vector of 3H). Kernels initialised as in TF1: the gate
      kernel [I+H, 2H] and the candidate kernel [I+H, H] are each orthogonal
      as a whole, then split into Keras' input and recurrent kernels. Gate
      biases start at 1.0, candidate bias at 0.
    * Dropout with keep probabilities, like the original flags: the input
      sequence is dropped per element and step (not variationally); the
      output SEQUENCE is dropped too; the final state is not.
    * Padding: steps at index >= length are padding. The final state is the
      state after step length−1 (zeros for length 0); outputs at padded
      steps are exactly 0, so nothing past the length leaks downstream.

    Args:
        units: int. Hidden size H.
        input_keep_prob: float in (0, 1]. Keep probability on the inputs.
        output_keep_prob: float in (0, 1]. Keep probability on the outputs.
        return_sequences: bool. False returns only the final state (which
            output dropout never touches): the same result, without storing
            the [B, T, H] outputs.
        seed: int or None. Seeds initialisers and dropout.

    Inputs: `(sequence [B, T, I] float, lengths [B] int)`.
    Outputs: `(outputs [B, T, H], final_state [B, H])`, or `final_state`
    alone with `return_sequences=False`.
    """

    # The original's cell; CudnnGRU switches it.
    reset_after = False

    def __init__(self, units, input_keep_prob=1.0, output_keep_prob=1.0,
                 return_sequences=True, seed=None, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("input_keep_prob", input_keep_prob),
                            ("output_keep_prob", output_keep_prob)):
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must be in (0, 1] (a keep "
                                 f"probability, as in the original), got "
                                 f"{value}.")
        self.units = units
        self.input_keep_prob = input_keep_prob
        self.output_keep_prob = output_keep_prob
        self.return_sequences = return_sequences
        self.seed = seed
        self.gru = keras.layers.GRU(
            units, reset_after=self.reset_after,
            return_sequences=return_sequences, return_state=True, name="gru")
        self.input_dropout = keras.layers.Dropout(
            1.0 - input_keep_prob, seed=seed, name="input_dropout")
        self.output_dropout = keras.layers.Dropout(
            1.0 - output_keep_prob, seed=None if seed is None else seed + 1,
            name="output_dropout")

    def build(self, input_shape):
        sequence_shape = tuple(input_shape[0])
        self.gru.build(sequence_shape)
        input_dim, units = sequence_shape[-1], self.units
        rng = np.random.default_rng(self.seed)
        gate = _orthogonal(rng, (input_dim + units, 2 * units))
        candidate = _orthogonal(rng, (input_dim + units, units))
        # TF1 gate columns are [r, u]; Keras kernel columns are [z, r, h]
        # with z ≡ u.
        full = np.concatenate(
            [gate[:, units:], gate[:, :units], candidate], axis=1)
        cell = self.gru.cell
        cell.kernel.assign(full[:input_dim])
        cell.recurrent_kernel.assign(full[input_dim:])
        gate_bias = np.concatenate([np.ones(2 * units), np.zeros(units)])
        if self.reset_after:
            # [input bias, recurrent bias]: the gate bias 1 once.
            gate_bias = np.stack([gate_bias, np.zeros(3 * units)])
        cell.bias.assign(gate_bias.astype(np.float32))

    def call(self, inputs, training=None):
        sequence, lengths = inputs
        full_shape = sequence.shape
        frames = tf.shape(sequence)[1]
        lengths = tf.clip_by_value(tf.cast(lengths, tf.int32), 0, frames)
        if not gru_recurrence.in_xla_context():
            # Nothing past the batch's longest length is read: dropping it
            # first saves most of the work on wide padding (text ids are
            # 128 wide, most sentences under 40 tokens). XLA needs static
            # shapes.
            sequence = sequence[:, :tf.maximum(tf.reduce_max(lengths), 1)]
        sequence = self.input_dropout(sequence, training=training)
        states, state = self._states(sequence, lengths, training)
        state = tf.where((lengths > 0)[:, None], state,
                         tf.zeros_like(state))
        if not self.return_sequences:
            return state
        width = tf.shape(sequence)[1]
        outputs = tf.where(sequence_mask(lengths, sequence)[:, :, None],
                           tf.transpose(states, [1, 0, 2]),
                           tf.zeros_like(sequence[:, :, :1]))
        outputs = self.output_dropout(outputs, training=training)
        # Zeros again past the crop, up to the input's width.
        outputs = tf.pad(outputs, [[0, 0], [0, frames - width], [0, 0]])
        outputs.set_shape(full_shape[:2] + (self.units,))
        return outputs, state

    def _in_batch_order(self, streams, rows, lengths):
        """(states [T, B, H] or None, final state [B, H]), rows as given.

        `streams`: states [T, B_i, H] of row groups whose batch rows are
        `rows` (int32 [B_i] each). The final state is read in place at each
        row's length − 1 (no per-step selects); the [T, B, H] states are
        assembled only with `return_sequences`.
        """
        finals = [tf.gather_nd(states, tf.stack(
            [tf.maximum(tf.gather(lengths, stream_rows) - 1, 0),
             tf.range(tf.shape(stream_rows)[0])], axis=1))
            for states, stream_rows in zip(streams, rows)]
        # Position of each batch row among the streams' rows.
        positions = tf.math.invert_permutation(tf.concat(rows, axis=0))
        state = tf.gather(tf.concat(finals, axis=0), positions)
        if not self.return_sequences:
            return None, state
        return tf.gather(tf.concat(streams, axis=1), positions, axis=1), state

    def _states(self, sequence, lengths, training):
        """(Time-major states [T, B, H] or None, final state [B, H]).

        T is `sequence`'s width; steps past the longest length hold zeros.
        The states are None without `return_sequences`. The loop runs over
        row groups, one per stream (`gru_recurrence.stream_count`):

        * Training sorts the batch by decreasing length, so that each step
          updates only the rows still inside their sequence, and deals the
          sorted rows round-robin to the streams (similar lengths in each).
        * Inference (training=False) of a batch of at most
          `COMPILED_INFERENCE_MAX_BATCH` rows (serving) runs an
          XLA-compiled loop over all rows, where graph-mode per-step
          overhead would dominate; larger batches (evaluation) shrink and
          split into streams like training.
        * Inside an XLA-compiled function (`jit_compile`) every row steps,
          one stream, since XLA needs static shapes.
        """
        cell = self.gru.cell
        dtype = sequence.dtype
        kernel = tf.cast(cell.kernel, dtype)
        bias = tf.cast(cell.bias, dtype)
        recurrent_kernel = tf.cast(cell.recurrent_kernel, dtype)
        frames = tf.shape(sequence)[1]
        steps = tf.clip_by_value(tf.reduce_max(lengths), 1,
                                 tf.maximum(frames, 1))
        all_rows = [tf.range(tf.shape(lengths)[0])]

        # The bias as one more kernel row, fed by a column of ones: the
        # input's matmul and its bias in one (and one gradient).
        kernel_and_bias = tf.concat([kernel, bias[None]], axis=0)

        def time_major(sequence):
            sequence = tf.transpose(sequence, [1, 0, 2])
            return tf.concat([sequence, tf.ones_like(sequence[:, :, :1])],
                             axis=2)

        def every_row(sequence):
            # Where every row steps to the longest length, padded frames
            # enter the (discarded) rows' arithmetic: zeros keep non-finite
            # padding out of it. The sorted paths never read them.
            return time_major(tf.where(
                sequence_mask(lengths, sequence)[:, :, None], sequence,
                tf.zeros_like(sequence)))

        def sorted_streams():
            order = tf.argsort(lengths, direction="DESCENDING", stable=True)
            count = gru_recurrence.stream_count()
            rows = [order[i::count] for i in range(count)]
            inputs = [time_major(tf.gather(sequence, stream_rows))
                      for stream_rows in rows]
            active = [gru_recurrence.step_counts(
                tf.gather(lengths, stream_rows), steps)
                for stream_rows in rows]
            return rows, inputs, active

        if gru_recurrence.in_xla_context():
            return self._in_batch_order(
                [gru_recurrence.recurrence(every_row(sequence),
                                           kernel_and_bias, recurrent_kernel,
                                           steps)],
                all_rows, lengths)
        if training:
            rows, inputs, active = sorted_streams()
            return self._in_batch_order(
                gru_recurrence.recurrence(inputs, kernel_and_bias,
                                          recurrent_kernel, steps, active),
                rows, lengths)

        # `tf.cond` picks a branch by the batch size at run time; both
        # return the same structure (no states without return_sequences).
        def pack(result):
            return result if self.return_sequences else result[1]

        def unpack(result):
            return result if self.return_sequences else (None, result)

        def shrinking():
            rows, inputs, active = sorted_streams()
            if not self.return_sequences:
                # Rows stop at their length: the loop's last states are
                # the final states; no per-step states are stored.
                finals = gru_recurrence.graph_inference_recurrence(
                    inputs, kernel_and_bias, recurrent_kernel, steps, active,
                    final_only=True)
                return tf.gather(tf.concat(finals, axis=0),
                                 tf.math.invert_permutation(
                                     tf.concat(rows, axis=0)))
            return self._in_batch_order(
                gru_recurrence.graph_inference_recurrence(
                    inputs, kernel_and_bias, recurrent_kernel, steps,
                    active),
                rows, lengths)

        def compiled():
            return pack(self._in_batch_order(
                [gru_recurrence.compiled_inference_recurrence(
                    every_row(sequence), kernel_and_bias, recurrent_kernel,
                    steps)],
                all_rows, lengths))

        if not COMPILED_INFERENCE_MAX_BATCH:
            return unpack(shrinking())
        return unpack(tf.cond(
            tf.shape(sequence)[0] <= COMPILED_INFERENCE_MAX_BATCH,
            compiled, shrinking))

    def compute_output_shape(self, input_shape):
        sequence_shape = tuple(input_shape[0])
        state_shape = (sequence_shape[0], self.units)
        if not self.return_sequences:
            return state_shape
        return sequence_shape[:2] + (self.units,), state_shape

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "input_keep_prob": self.input_keep_prob,
                "output_keep_prob": self.output_keep_prob,
                "return_sequences": self.return_sequences,
                "seed": self.seed}


@keras.saving.register_keras_serializable(package="mse")
class CudnnGRU(TF1GRU):
    """TF1GRU's interface on a cuDNN-eligible Keras GRU: NOT the original cell.

    `keras.layers.GRU(reset_after=True)` (the reset gate applied after the
    recurrent matmul, separate input and recurrent biases) with a
    right-padded mask, which Keras runs with cuDNN on a GPU. Everything
    else is TF1GRU's: orthogonal joint kernels, gate bias 1 (input bias),
    keep-probability dropout on the inputs and the output sequence, final
    state at the true length, zero outputs past it. Parameters 3H(I+H+2):
    3H more than TF1GRU (144,600 for the reference audio GRU, I = 39,
    H = 200). On CPU it is slower than TF1GRU.
    """

    reset_after = True

    def call(self, inputs, training=None):
        sequence, lengths = inputs
        return reference_tf1_gru(self, sequence, lengths, training=training)


GRU_IMPLEMENTATIONS = {"tf1": TF1GRU, "cudnn": CudnnGRU}


def reference_tf1_gru(layer, sequence, lengths, training=None):
    """`layer` (a TF1GRU) computed the former way: Keras' masked GRU.

    `keras.layers.GRU(reset_after=False)` with a mask, on the layer's own
    variables: the same results as `TF1GRU.call` to float32 rounding,
    several times slower. Kept as the reference the tests and
    bench/benchmark.py compare against.
    """
    mask = sequence_mask(lengths, sequence)
    sequence = layer.input_dropout(sequence, training=training)
    outputs, state = layer.gru(sequence, mask=mask, training=training)
    if not layer.return_sequences:
        return state
    outputs = outputs * tf.cast(mask, outputs.dtype)[:, :, None]
    return layer.output_dropout(outputs, training=training), state


def _orthogonal(rng, shape):
    """An orthogonal matrix of `shape`, as TF1's orthogonal_initializer."""
    rows, cols = shape
    flat = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return q.astype(np.float32)


@keras.saving.register_keras_serializable(package="mse")
class LuongDotAttention(keras.layers.Layer):
    """Single-hop dot-product attention of a query over a sequence.

    scores_t = <sequence_t, query>; weights = softmax over t; context =
    Σ_t weights_t · sequence_t.

    Padding: with `mask_attention=True` steps at index >= length get zero
    weight (the original's 2020 fix). With `mask_attention=False` all T steps
    take part, as in the paper-era code: padded steps (whose GRU outputs are
    0) score 0 and absorb softmax mass, shrinking the context.

    Args:
        mask_attention: bool. Mask padded steps.

    Inputs: `(sequence [B, T, H], query [B, H], lengths [B] int)`.
    Outputs: `(context [B, H], weights [B, T])`.
    """

    def __init__(self, mask_attention=True, **kwargs):
        super().__init__(**kwargs)
        self.mask_attention = mask_attention

    def call(self, inputs):
        sequence, query, lengths = inputs
        # The softmax runs in float32: under mixed precision the mask score
        # would overflow float16 to -inf and give NaN for empty texts.
        scores = tf.cast(tf.einsum("bth,bh->bt", sequence, query),
                         tf.float32)
        if self.mask_attention:
            scores = tf.where(sequence_mask(lengths, sequence), scores,
                              _MASK_SCORE)
        weights = tf.cast(tf.nn.softmax(scores, axis=-1), sequence.dtype)
        context = tf.einsum("bt,bth->bh", weights, sequence)
        return context, weights

    def compute_output_shape(self, input_shape):
        sequence_shape = tuple(input_shape[0])
        return ((sequence_shape[0], sequence_shape[2]),
                (sequence_shape[0], sequence_shape[1]))

    def get_config(self):
        return {**super().get_config(),
                "mask_attention": self.mask_attention}


# ------------------------------------------------ generic sequence layers ---

_seed = config_model.offset_seed
_glorot = config_model.glorot
_check_keep = config_model.check_keep_prob


@keras.saving.register_keras_serializable(package="mse")
class MaskSequence(keras.layers.Layer):
    """Zeroes the steps at and beyond each length.

    Inputs: `(sequence [B, T, ...], lengths [B] int)`; output: the sequence
    with steps t >= length set to exactly 0 (lengths clipped to [0, T]).
    """

    def call(self, sequence, lengths):
        steps = tf.shape(sequence)[1]
        lengths = tf.clip_by_value(tf.cast(lengths, tf.int32), 0, steps)
        mask = tf.sequence_mask(lengths, steps, dtype=sequence.dtype)
        mask = tf.reshape(mask, tf.concat(
            [tf.shape(mask), tf.ones([tf.rank(sequence) - 2], tf.int32)], 0))
        return sequence * mask

    def compute_output_shape(self, sequence_shape, lengths_shape):
        return sequence_shape


@keras.saving.register_keras_serializable(package="mse")
class HalveLengths(keras.layers.Layer):
    """lengths → ceil(lengths / 2): the steps left by a stride-2 "same" pool."""

    def call(self, lengths):
        lengths = tf.cast(lengths, tf.int32)
        return (lengths + 1) // 2

    def compute_output_shape(self, lengths_shape):
        return lengths_shape


@keras.saving.register_keras_serializable(package="mse")
class MaskedBiLSTM(keras.layers.Layer):
    """A bidirectional LSTM over the real steps of right-padded sequences.

    The forward LSTM reads steps 0..length−1; the backward LSTM reads the
    same steps reversed (`tf.reverse_sequence` by length, so it starts at the
    last REAL step, not at the padding). Outputs are [forward; backward] per
    step, exactly 0 at steps >= length. Dropout (keep probabilities, as the
    Yoon flags) on the input and output sequences, in training only.

    Args:
        units: int. Hidden size per direction (output 2·units).
        input_keep_prob, output_keep_prob: float in (0, 1].
        seed: int or None.

    Inputs: `(sequence [B, T, I], lengths [B] int)`.
    Outputs: `(outputs [B, T, 2·units], last [B, 2·units])`: `last` is the
    forward state after step length−1 joined with the backward state after
    step 0 (both 0 for length 0).
    Trainable parameters: 2 · 4·units·(I + units + 1).
    """

    def __init__(self, units, input_keep_prob=1.0, output_keep_prob=1.0,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        _check_keep("input_keep_prob", input_keep_prob)
        _check_keep("output_keep_prob", output_keep_prob)
        self.units = units
        self.input_keep_prob = input_keep_prob
        self.output_keep_prob = output_keep_prob
        self.seed = seed
        self.forward = keras.layers.LSTM(
            units, return_sequences=True, return_state=True,
            kernel_initializer=_glorot(seed), name="forward")
        self.backward = keras.layers.LSTM(
            units, return_sequences=True, return_state=True,
            kernel_initializer=_glorot(_seed(seed, 1)), name="backward")
        self.input_dropout = keras.layers.Dropout(
            1.0 - input_keep_prob, seed=_seed(seed, 2), name="input_dropout")
        self.output_dropout = keras.layers.Dropout(
            1.0 - output_keep_prob, seed=_seed(seed, 3),
            name="output_dropout")

    def build(self, input_shape):
        sequence_shape = tuple(input_shape[0])
        self.forward.build(sequence_shape)
        self.backward.build(sequence_shape)

    def call(self, inputs, training=None):
        sequence, lengths = inputs
        steps = tf.shape(sequence)[1]
        lengths = tf.clip_by_value(tf.cast(lengths, tf.int32), 0, steps)
        mask = tf.sequence_mask(lengths, steps)
        sequence = self.input_dropout(sequence, training=training)
        sequence = sequence * tf.cast(mask, sequence.dtype)[:, :, None]
        forward, forward_state, _ = self.forward(sequence, mask=mask,
                                                 training=training)
        reversed_ = tf.reverse_sequence(sequence, lengths, seq_axis=1,
                                        batch_axis=0)
        backward, backward_state, _ = self.backward(reversed_, mask=mask,
                                                    training=training)
        backward = tf.reverse_sequence(backward, lengths, seq_axis=1,
                                       batch_axis=0)
        outputs = tf.concat([forward, backward], axis=-1)
        outputs *= tf.cast(mask, outputs.dtype)[:, :, None]
        has_steps = tf.cast(lengths > 0, outputs.dtype)[:, None]
        last = tf.concat([forward_state, backward_state], -1) * has_steps
        outputs = self.output_dropout(outputs, training=training)
        return outputs, last

    def compute_output_shape(self, input_shape):
        sequence_shape = tuple(input_shape[0])
        return (sequence_shape[:2] + (2 * self.units,),
                (sequence_shape[0], 2 * self.units))

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "input_keep_prob": self.input_keep_prob,
                "output_keep_prob": self.output_keep_prob,
                "seed": self.seed}


@keras.saving.register_keras_serializable(package="mse")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned position embedding [max_length, D] to [B, T, D].

    T may be at most `max_length`. Trainable parameters: max_length · D.
    """

    def __init__(self, max_length, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.max_length = max_length
        self.seed = seed

    def build(self, input_shape):
        self.positions = self.add_weight(
            name="positions", shape=(self.max_length, input_shape[-1]),
            initializer=keras.initializers.RandomNormal(0.0, 0.02,
                                                        seed=self.seed))

    def call(self, inputs):
        steps = tf.shape(inputs)[1]
        return inputs + self.positions[None, :steps]

    def get_config(self):
        return {**super().get_config(), "max_length": self.max_length,
                "seed": self.seed}


@keras.saving.register_keras_serializable(package="mse")
class KeyPaddingMask(keras.layers.Layer):
    """lengths [B] → bool attention mask [B, T, T]: key s is visible iff
    s < length (every query row sees the real keys only)."""

    def __init__(self, steps, **kwargs):
        super().__init__(**kwargs)
        self.steps = steps

    def call(self, lengths):
        keys = tf.sequence_mask(tf.cast(lengths, tf.int32), self.steps)
        return tf.tile(keys[:, None, :], [1, self.steps, 1])

    def compute_output_spec(self, lengths):
        return keras.KerasTensor((lengths.shape[0], self.steps, self.steps),
                                 dtype="bool")

    def get_config(self):
        return {**super().get_config(), "steps": self.steps}
