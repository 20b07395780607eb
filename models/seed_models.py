"""The other seed systems as toolkit models: BLSTM_SA_TEXT, CNN_SPEC, MMMF and
TRANSFORMER_FUSION.

Like the Yoon models (`models/yoon.py`) every model here is a functional
Keras graph over a dict of named inputs (the same names and shapes as the
input pipeline delivers), outputs the class logits (the Trainer applies a
sigmoid cross-entropy to them; the export adds a softmax) and has a config
that is exactly its constructor arguments.

| model               | inputs                                  | after      |
|---------------------|-----------------------------------------|------------|
| `BLSTM_SA_TEXT`     | text_ids, text_length                   | Sobczak    |
| `CNN_SPEC`          | audio_mfcc, audio_length (+ prosody),   | Sobczak    |
|                     | or audio_logmel, audio_logmel_length    |            |
| `MMMF`              | audio_mfcc, audio_length, text_*        | MMMF       |
| `TRANSFORMER_FUSION`| audio_* or waveform*, text_* (+ side:   | Patamia    |
|                     | prosody or a fold extra, e.g. mocap)    |            |

Differences from the seeds, stated once:

* `CNN_SPEC` reads a log-mel spectrogram (`audio_input="logmel"`: 64 mel
  bands by default, 25 ms / 10 ms frames, computed from the raw waveform by
  the input pipeline and by the serving code, `preprocessing/spectrogram.py`)
  or the 39-d MFCC-E-D-A frames (`audio_input="mfcc"`, the default, for
  folds without waveforms such as the released arrays); the seed used a
  linear spectrogram.
* `MMMF` runs its acoustic BLSTM over the same MFCC frames (the seed used
  openSMILE LLDs).
* `TRANSFORMER_FUSION` trains its small transformer text encoder from
  scratch by default (the seed fine-tuned BERT); with
  `text_encoder_handle` it fine-tunes (or freezes) a BERT-style TF-Hub
  handle / SavedModel directory instead (`models/bert_text_encoder.py`:
  our word ids are mapped to the handle's WordPiece ids inside the model,
  so the model and its export still take `text_ids`). Its audio encoder
  is ARE's GRU, CNN_SPEC's CNN or, as the seed, a wav2vec2 handle
  (`audio_encoder="wav2vec2"`); its optional dense side input is the
  prosody vector by default, or any per-utterance float extra of the fold
  (`side_features`, e.g. the seed's motion-capture features).

Padding: every model is exact under padding. Frames at or beyond
`audio_length` and tokens at or beyond `text_length` never reach the output:
recurrent layers are masked (and their outputs zeroed there), convolutions
see zeros there (zeroed after every convolution, as the "same" padding of an
unpadded example would), attention and pooling give them weight 0. A padded
batch therefore gives each example the output it gets alone.

Head layers are `keras.layers.Dense` (Glorot-uniform, one bias per unit),
not the Yoon models' `ScalarBiasDense`. The word embedding is always the
layer `word_embedding` so that `experiment.build_model` can load GloVe.
"""

import keras
import tensorflow as tf

from models import bert_text_encoder
from models import config_model
from models import layers
from models import pooling as pooling_lib
from models import wav2vec2_models
from models import yoon

MMMF_POOLINGS = ("last", "mean", "attention")
CNN_AUDIO_INPUTS = ("mfcc", "logmel")
FUSIONS = ("concat", "pairwise")
AUDIO_ENCODERS = ("gru", "cnn", "wav2vec2")
PROSODY_INPUT = "audio_prosody"
# Inputs the pipeline delivers under fixed names: a side input named after
# a fold extra must not clash with them.
STANDARD_INPUTS = ("audio_mfcc", "audio_length", "audio_prosody", "text_ids",
                   "text_length", "waveform", "waveform_length",
                   "audio_logmel", "audio_logmel_length")


_seed = config_model.offset_seed
_glorot = config_model.glorot


def _check_keep(name, value):
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be a keep probability in (0, 1]; "
                         f"found {value}.")


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}; found {value!r}.")


# --------------------------------------------------------------- layers ---


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
class ModalityAttentionFusion(keras.layers.Layer):
    """Attention over modalities (MMMF's attention-based modality fusion).

    Each modality vector h_m [B, D] gets a score s_m = v · tanh(W h_m + b)
    (W [D, units], b [units], v [units] shared by the modalities); the
    weights a = softmax_m(s) and the output is Σ_m a_m h_m [B, D]. All
    modality vectors must have the same size D.

    Args:
        units: int. Width of the scoring projection.
        seed: int or None.

    Inputs: a list of M >= 2 tensors [B, D]. Output [B, D] (with
    `return_weights=True` also the weights [B, M]).
    Trainable parameters: D·units + 2·units.
    """

    def __init__(self, units, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.seed = seed

    def build(self, input_shape):
        sizes = {tuple(shape)[-1] for shape in input_shape}
        if len(input_shape) < 2 or len(sizes) != 1 or None in sizes:
            raise ValueError(f"{self.name}: expects >= 2 modality vectors of "
                             f"one known size; found {input_shape}.")
        (size,) = sizes
        self.kernel = self.add_weight(name="kernel", shape=(size, self.units),
                                      initializer=_glorot(self.seed))
        self.bias = self.add_weight(name="bias", shape=(self.units,),
                                    initializer="zeros")
        self.context = self.add_weight(
            name="context", shape=(self.units,),
            initializer=_glorot(_seed(self.seed, 1)))

    def call(self, inputs, return_weights=False):
        stacked = tf.stack(inputs, axis=1)  # [B, M, D]
        keys = tf.tanh(tf.einsum("bmd,du->bmu", stacked, self.kernel)
                       + self.bias)
        weights = tf.nn.softmax(tf.einsum("bmu,u->bm", keys, self.context),
                                axis=-1)
        fused = tf.einsum("bm,bmd->bd", weights, stacked)
        if return_weights:
            return fused, weights
        return fused

    def compute_output_spec(self, inputs, return_weights=False):
        fused = keras.KerasTensor(inputs[0].shape, dtype=self.compute_dtype)
        if return_weights:
            return fused, keras.KerasTensor(
                (inputs[0].shape[0], len(inputs)), dtype=self.compute_dtype)
        return fused

    def get_config(self):
        return {**super().get_config(), "units": self.units,
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


# --------------------------------------------------------------- models ---


class _SeedModel(config_model.ConfigModel):
    """A seed-system model: its output layer is a Dense map (`logits`)."""

    def _build_with_hidden(self, inputs, features, keep_prob, config, name,
                           kwargs):
        """Adds the hidden ReLU layer (`hidden`, `hidden_units` wide) and
        its dropout (keep `keep_prob`) before `_build`."""
        seed = config["seed"]
        hidden = keras.layers.Dense(
            config["hidden_units"], activation="relu",
            kernel_initializer=_glorot(_seed(seed, 4)), name="hidden")(
                features)
        hidden = keras.layers.Dropout(1.0 - keep_prob, seed=_seed(seed, 5),
                                      name="hidden_dropout")(hidden)
        self._build(inputs, hidden, config, name, kwargs)

    def _build(self, inputs, features, config, name, kwargs):
        """Adds the Dense output layer (`logits`) and builds the graph."""
        logits = keras.layers.Dense(
            config["num_classes"],
            kernel_initializer=_glorot(_seed(config["seed"], 1)),
            name="logits")(features)
        self._finish(inputs, logits, config, name, kwargs)


def _embedded_text(inputs, vocab_size, embedding_dim, embedding_trainable,
                   seed):
    """Word embedding `word_embedding` of the ids: [B, 128, E]."""
    return keras.layers.Embedding(
        vocab_size, embedding_dim,
        embeddings_initializer=keras.initializers.RandomNormal(
            0.0, 0.01, seed=seed),
        trainable=embedding_trainable, name="word_embedding")(
            inputs["text_ids"])


def _standardized(inputs, normalization, use_prosody=True):
    """MFCC (zeroed past the length) and prosody, standardised if asked."""
    prosody = inputs.get("audio_prosody")
    mfcc, scaled = layers.standardize_audio(
        inputs["audio_mfcc"], prosody if use_prosody else None,
        normalization)
    prosody = scaled if use_prosody else prosody
    mfcc = MaskSequence(name="mfcc_mask")(mfcc, inputs["audio_length"])
    return mfcc, prosody


def _standardized_log_mel(inputs, normalization, use_prosody):
    """Log-mel frames (standardised per band if asked, then zeroed past
    `audio_logmel_length`) and prosody (standardised if asked)."""
    frames, prosody = inputs["audio_logmel"], inputs.get("audio_prosody")
    if normalization:
        missing = [key for key in ("logmel_mean", "logmel_std")
                   if key not in normalization]
        if missing:
            raise ValueError(
                f"audio_normalization lacks {missing}: a log-mel CNN_SPEC "
                "standardises with per-band log-mel statistics (have "
                f"{sorted(normalization)}).")
        bands = frames.shape[-1]
        if len(normalization["logmel_mean"]) != bands:
            raise ValueError(
                f"audio_normalization['logmel_mean'] has "
                f"{len(normalization['logmel_mean'])} bands; the input has "
                f"{bands} (n_mels).")
        frames = layers.Standardize(normalization["logmel_mean"],
                                    normalization["logmel_std"],
                                    name="logmel_standardize")(frames)
        if use_prosody:
            prosody = layers.Standardize(normalization["prosody_mean"],
                                         normalization["prosody_std"],
                                         name="prosody_standardize")(prosody)
    frames = MaskSequence(name="logmel_mask")(frames,
                                              inputs["audio_logmel_length"])
    return frames, prosody


def _cnn_encoder(mfcc, lengths, filters, kernel_size, seed):
    """2-D CNN over the [T, F] image (F = 39 MFCC or the mel bands) → masked
    mean over time.

    Each block: Conv2D("same", ReLU) → zero the frames >= length → 2×2 max
    pool ("same", stride 2; lengths become ceil(L/2)). ReLU outputs are >= 0,
    so a pool window holding a real frame and a zeroed padded one gives the
    real frame's value, as the unpadded example's edge window does. The last
    block's [T', F', C] frames are flattened to [T', F'·C] and averaged over
    the real frames. Returns [B, F'·C].
    """
    image = keras.layers.Reshape((-1, mfcc.shape[-1], 1),
                                 name="cnn_image")(mfcc)
    freq = mfcc.shape[-1]
    for index, width in enumerate(filters):
        image = keras.layers.Conv2D(
            width, kernel_size, padding="same", activation="relu",
            kernel_initializer=_glorot(_seed(seed, 20 + index)),
            name=f"cnn_conv_{index}")(image)
        image = MaskSequence(name=f"cnn_mask_{index}")(image, lengths)
        image = keras.layers.MaxPooling2D(2, padding="same",
                                          name=f"cnn_pool_{index}")(image)
        lengths = HalveLengths(name=f"cnn_lengths_{index}")(lengths)
        freq = (freq + 1) // 2
    frames = keras.layers.Reshape((-1, freq * filters[-1]),
                                  name="cnn_frames")(image)
    return pooling_lib.MaskedMeanPooling(name="cnn_time_pool")(frames,
                                                               lengths)


@keras.saving.register_keras_serializable(package="mse")
class BLSTM_SA_TEXT(_SeedModel):
    """Text: embedding → bidirectional LSTM → self-attention pooling → logits.

    (Sobczak's text model.) The attention pooling (`AttentionPooling`,
    s_t = q·tanh(W h_t + b)) weighs the real tokens only; tokens at or
    beyond `text_length` get weight 0. A hidden ReLU layer with dropout
    precedes the logits.

    Args:
        vocab_size: int. Rows of the embedding.
        embedding_dim: int. E (300 with GloVe).
        embedding_trainable: bool.
        text_units: int. LSTM units per direction (H).
        text_keep_prob: float. Keep probability on the LSTM input/output.
        attention_units: int. Width of the attention projection (A).
        hidden_units: int. Width of the hidden layer before the logits (D).
        text_length: int. Width of the id input (128).
        num_classes: int.
        seed: int or None.

    Trainable parameters: V·E + 8H(E+H+1) + 2H·A + 2A + (2H+1)·D
    + (D+1)·C (V·E only with `embedding_trainable`).
    """

    def __init__(self, vocab_size, embedding_dim=300, embedding_trainable=True,
                 text_units=128, text_keep_prob=0.7, attention_units=64,
                 hidden_units=64, text_length=128, num_classes=4, seed=None,
                 name="BLSTM_SA_TEXT", **kwargs):
        config = config_model.constructor_arguments(locals())
        inputs = yoon._text_inputs(text_length)
        embedded = _embedded_text(inputs, vocab_size, embedding_dim,
                                  embedding_trainable, seed)
        outputs, _ = MaskedBiLSTM(
            text_units, text_keep_prob, text_keep_prob, seed=_seed(seed, 100),
            name="text_blstm")([embedded, inputs["text_length"]])
        pooled = pooling_lib.AttentionPooling(
            attention_units, name="text_self_attention")(
                outputs, inputs["text_length"])
        self._build_with_hidden(inputs, pooled, text_keep_prob, config, name,
                                kwargs)


@keras.saving.register_keras_serializable(package="mse")
class CNN_SPEC(_SeedModel):
    """Acoustic 2-D CNN over a time-frequency image → logits.

    (Sobczak's acoustic model; the seed used a linear spectrogram.) The
    image is, by `audio_input`:

    * "mfcc": `audio_mfcc` [B, T, 39] with `audio_length` [B] (the fold's
      MFCC-E-D-A frames; works on every fold, e.g. the released arrays);
    * "logmel": `audio_logmel` [B, T, n_mels] with `audio_logmel_length`
      [B], the log-mel spectrogram the input pipeline computes from the raw
      waveform (`preprocessing/spectrogram.py`; the fold needs the waveform
      extras).

    Frames at or beyond the length are zeroed (after standardisation) and
    kept out of every block; see `_cnn_encoder` for the blocks. The pooled
    vector (joined with the prosody vector `audio_prosody` [B, 35] when
    `use_prosody`) feeds a hidden ReLU layer with dropout.

    Args:
        cnn_filters: tuple of int. Channels per conv block (C_1..C_n).
        cnn_kernel_size: int. Square kernel size k.
        hidden_units: int. D.
        audio_keep_prob: float. Keep probability before the logits.
        use_prosody: bool. Also feed the 35 prosody functionals.
        audio_input: "mfcc" or "logmel".
        n_mels: int. Mel bands of the log-mel input ("logmel" only).
        mfcc_dim, prosody_dim, num_classes, seed: as ARE.
        audio_normalization: dict or None. Train-split statistics:
            mfcc_mean/mfcc_std (39) for "mfcc", logmel_mean/logmel_std
            (n_mels, per band) for "logmel", and prosody_mean/prosody_std.

    Trainable parameters: Σ_i (k²·C_{i−1} + 1)·C_i (C_0 = 1)
    + (F'·C_n [+35] + 1)·D + (D+1)·C, F' = F halved (ceil) n times, F = 39
    ("mfcc") or n_mels ("logmel"); e.g. "logmel" with the defaults
    (n_mels 64, C 32/64, k 3, D 64, C 4): 320 + 18,496 + (16·64 + 1)·64
    + 260 = 84,676.
    """

    def __init__(self, cnn_filters=(32, 64), cnn_kernel_size=3,
                 hidden_units=64, audio_keep_prob=0.7, use_prosody=False,
                 audio_input="mfcc", n_mels=64,
                 mfcc_dim=39, prosody_dim=35, num_classes=4,
                 audio_normalization=None, seed=None, name="CNN_SPEC",
                 **kwargs):
        cnn_filters = tuple(int(f) for f in cnn_filters)
        config = config_model.constructor_arguments(locals())
        config["cnn_filters"] = list(cnn_filters)
        _check_keep("audio_keep_prob", audio_keep_prob)
        _check_choice("audio_input", audio_input, CNN_AUDIO_INPUTS)
        inputs = yoon._audio_inputs(mfcc_dim, prosody_dim)
        if audio_input == "logmel":
            del inputs["audio_mfcc"], inputs["audio_length"]
            inputs["audio_logmel"] = keras.Input((None, n_mels),
                                                 name="audio_logmel")
            inputs["audio_logmel_length"] = keras.Input(
                (), dtype="int32", name="audio_logmel_length")
        if not use_prosody:
            del inputs["audio_prosody"]
        if audio_input == "logmel":
            image, prosody = _standardized_log_mel(
                inputs, audio_normalization, use_prosody)
            lengths = inputs["audio_logmel_length"]
        else:
            image, prosody = _standardized(inputs, audio_normalization,
                                           use_prosody)
            lengths = inputs["audio_length"]
        features = _cnn_encoder(image, lengths, cnn_filters,
                                cnn_kernel_size, seed)
        if use_prosody:
            features = keras.layers.Concatenate(name="audio_vector")(
                [features, prosody])
        self._build_with_hidden(inputs, features, audio_keep_prob, config,
                                name, kwargs)


def _pool(outputs, last, lengths, pooling, attention_units, prefix):
    """MMMF's temporal aggregate of one modality's BLSTM, [B, 2H]."""
    if pooling == "last":
        return last
    if pooling == "mean":
        return pooling_lib.MaskedMeanPooling(name=f"{prefix}_mean_pool")(
            outputs, lengths)
    return pooling_lib.AttentionPooling(
        attention_units, name=f"{prefix}_context_attention")(outputs, lengths)


@keras.saving.register_keras_serializable(package="mse")
class MMMF(_SeedModel):
    """Multi-Modal Multi-Focus: BLSTM per modality, context-attention pooling,
    attention-based modality fusion, softmax classifier.

    audio: MFCC frames → BLSTM(H_A); text: word embedding → BLSTM(H_T).
    Each BLSTM's outputs are pooled over the real steps (`pooling`: "last" =
    [forward state at the last real step; backward state at step 0],
    "mean" = masked mean, "attention" = context attention with a learned
    context vector, `AttentionPooling`), projected to `fusion_units` (tanh)
    and fused by `ModalityAttentionFusion`; a Dense layer gives the logits
    (the seed's linear softmax layer; the softmax is in the loss/export).

    Args:
        vocab_size, embedding_dim, embedding_trainable: text embedding.
        audio_units, text_units: BLSTM units per direction (H_A, H_T).
        audio_keep_prob, text_keep_prob: keep probabilities of the BLSTMs.
        pooling: "last", "mean" or "attention".
        attention_units: width of the context attention projections (A).
        fusion_units: common size of the modality vectors (U).
        mfcc_dim, prosody_dim (unused: no prosody input), text_length,
        num_classes, audio_normalization, seed.

    Trainable parameters: V·E + 8H_A(39+H_A+1) + 8H_T(E+H_T+1)
    [+ Σ_m (2H_m·A + 2A) with attention] + (2H_A+1)·U + (2H_T+1)·U
    + U·A + 2A + (U+1)·C.
    """

    def __init__(self, vocab_size, embedding_dim=300, embedding_trainable=True,
                 audio_units=64, text_units=64, audio_keep_prob=0.8,
                 text_keep_prob=0.7, pooling="attention", attention_units=64,
                 fusion_units=64, mfcc_dim=39, prosody_dim=35,
                 text_length=128, num_classes=4, audio_normalization=None,
                 seed=None, name="MMMF", **kwargs):
        config = config_model.constructor_arguments(locals())
        _check_choice("pooling", pooling, MMMF_POOLINGS)
        inputs = {**yoon._audio_inputs(mfcc_dim, prosody_dim),
                  **yoon._text_inputs(text_length)}
        del inputs["audio_prosody"]
        mfcc, _ = _standardized(inputs, audio_normalization, False)
        vectors = []
        embedded = _embedded_text(inputs, vocab_size, embedding_dim,
                                  embedding_trainable, seed)
        for prefix, sequence, lengths, units, keep, offset in (
                ("audio", mfcc, inputs["audio_length"], audio_units,
                 audio_keep_prob, 200),
                ("text", embedded, inputs["text_length"], text_units,
                 text_keep_prob, 100)):
            outputs, last = MaskedBiLSTM(
                units, keep, keep, seed=_seed(seed, offset),
                name=f"{prefix}_blstm")([sequence, lengths])
            pooled = _pool(outputs, last, lengths, pooling, attention_units,
                           prefix)
            vectors.append(keras.layers.Dense(
                fusion_units, activation="tanh",
                kernel_initializer=_glorot(_seed(seed, offset + 7)),
                name=f"{prefix}_projection")(pooled))
        fused = ModalityAttentionFusion(attention_units, seed=_seed(seed, 6),
                                        name="modality_fusion")(vectors)
        self._build(inputs, fused, config, name, kwargs)


def _transformer_text(inputs, config):
    """Embedding → projection → positions → N post-LN transformer blocks,
    keys masked past the text length → masked mean over real tokens."""
    seed, width = config["seed"], config["transformer_units"]
    rate = config["transformer_dropout"]
    embedded = _embedded_text(inputs, config["vocab_size"],
                              config["embedding_dim"],
                              config["embedding_trainable"], seed)
    sequence = keras.layers.Dense(
        width, kernel_initializer=_glorot(_seed(seed, 30)),
        name="text_projection")(embedded)
    sequence = PositionEmbedding(config["text_length"], seed=_seed(seed, 31),
                                 name="text_positions")(sequence)
    sequence = keras.layers.Dropout(rate, seed=_seed(seed, 32),
                                    name="text_embedding_dropout")(sequence)
    mask = KeyPaddingMask(config["text_length"], name="text_attention_mask")(
        inputs["text_length"])
    heads = config["transformer_heads"]
    if width % heads:
        raise ValueError(f"transformer_units ({width}) must be divisible by "
                         f"transformer_heads ({heads}).")
    for index in range(config["transformer_layers"]):
        prefix = f"transformer_{index}"
        attended = keras.layers.MultiHeadAttention(
            heads, width // heads, dropout=rate,
            kernel_initializer=_glorot(_seed(seed, 40 + index)),
            name=f"{prefix}_attention")(sequence, sequence,
                                        attention_mask=mask)
        sequence = keras.layers.LayerNormalization(
            epsilon=1e-6, name=f"{prefix}_norm_1")(
                keras.layers.Add(name=f"{prefix}_residual_1")(
                    [sequence, attended]))
        hidden = keras.layers.Dense(
            config["transformer_ff_units"], activation="gelu",
            kernel_initializer=_glorot(_seed(seed, 50 + index)),
            name=f"{prefix}_ff_1")(sequence)
        hidden = keras.layers.Dense(
            width, kernel_initializer=_glorot(_seed(seed, 60 + index)),
            name=f"{prefix}_ff_2")(hidden)
        hidden = keras.layers.Dropout(rate, seed=_seed(seed, 70 + index),
                                      name=f"{prefix}_dropout")(hidden)
        sequence = keras.layers.LayerNormalization(
            epsilon=1e-6, name=f"{prefix}_norm_2")(
                keras.layers.Add(name=f"{prefix}_residual_2")(
                    [sequence, hidden]))
    return pooling_lib.MaskedMeanPooling(name="text_pool")(
        sequence, inputs["text_length"])


def _pretrained_text(inputs, config):
    """The BERT-style handle's vector of the real words, [B, H]."""
    pieces = config["text_encoder_pieces"]
    if pieces is None:
        raise ValueError(
            "TRANSFORMER_FUSION: text_encoder_handle="
            f"{config['text_encoder_handle']!r} needs text_encoder_pieces, "
            "the table from our word ids to the handle's WordPiece ids "
            "(experiment.model_kwargs builds it from the fold's dic.pkl and "
            "the handle's vocab.txt).")
    rows = len(pieces.get("pieces") or ()) if isinstance(pieces, dict) else 0
    if rows != config["vocab_size"]:
        raise ValueError(
            f"TRANSFORMER_FUSION: text_encoder_pieces has {rows} rows, but "
            f"vocab_size is {config['vocab_size']}; expected one row per "
            "word id of the fold's vocabulary.")
    return bert_text_encoder.text_vector(
        inputs["text_ids"], inputs["text_length"],
        config["text_encoder_handle"], pieces,
        trainable=config["text_encoder_trainable"],
        pooling=config["text_encoder_pooling"],
        max_length=config["text_encoder_seq_length"])


def _side_input(side_features, side_dim, prosody_dim):
    """The dense side input: the prosody vector, or a fold extra [B, D]."""
    if side_features == PROSODY_INPUT:
        return keras.Input((prosody_dim,), dtype="float32",
                           name=PROSODY_INPUT)
    if not isinstance(side_features, str) or not side_features or (
            side_features in STANDARD_INPUTS):
        raise ValueError(
            f"TRANSFORMER_FUSION: side_features={side_features!r}; expected "
            f"{PROSODY_INPUT!r} or the name of a per-utterance float extra "
            "array of the fold (e.g. 'mocap'), not one of the pipeline's "
            f"own features {STANDARD_INPUTS}.")
    if side_dim is None or int(side_dim) < 1:
        raise ValueError(
            f"TRANSFORMER_FUSION: side_features={side_features!r} needs "
            f"side_dim, the width D of the fold's [n, D] array "
            f"(experiment.model_kwargs reads it from the fold); found "
            f"{side_dim!r}.")
    return keras.Input((int(side_dim),), dtype="float32", name=side_features)


def _standardized_side(side, side_features, normalization):
    """The side vector, standardised with the train-split statistics when
    `normalization` has them (prosody_* for the prosody vector, side_* for
    a fold extra)."""
    prefix = "prosody" if side_features == PROSODY_INPUT else "side"
    if normalization and f"{prefix}_mean" in normalization:
        return layers.Standardize(normalization[f"{prefix}_mean"],
                                  normalization[f"{prefix}_std"],
                                  name=f"{prefix}_standardize")(side)
    return side


@keras.saving.register_keras_serializable(package="mse")
class TRANSFORMER_FUSION(_SeedModel):
    """A small transformer text encoder fused with an audio encoder and an
    optional dense side input (after Patamia et al. 2021).

    text: `word_embedding` (E) → Dense(W) → + learned positions → N
    transformer blocks (MultiHeadAttention with keys past `text_length`
    masked, residual + LayerNorm, GELU feed-forward of F units, residual +
    LayerNorm) → mean over the real tokens: t [B, W], all trained from
    scratch. Or, with `text_encoder_handle`, a pretrained BERT-style encoder
    (`bert_text_encoder.text_vector`): each word id → its WordPiece ids
    (`text_encoder_pieces`), `[CLS] pieces… [SEP]` (at most
    `text_encoder_seq_length`, longer texts truncated; words past
    `text_length` ignored) → the SavedModel (layer `text_encoder`, padded
    positions masked) → its pooled_output or masked mean: t [B, H]. The
    word embedding and transformer arguments are then unused.
    audio (`audio_encoder`): "gru" = ARE's TF1GRU final state [B, H_A] over
    the (standardised) MFCC; "cnn" = CNN_SPEC's encoder; "wav2vec2" = the
    pooled frames of a wav2vec2 handle (`wav2vec2_models._audio_vector`,
    layer `wav2vec2`, as the seed): a [B, D_W], read from `waveform` /
    `waveform_length` instead of the MFCC inputs.
    side (`use_side_features`): the model input named `side_features` →
    Dense(S, ReLU): "audio_prosody" (the 35 prosody functionals, default)
    or any per-utterance float extra array of the fold, e.g. the seed's
    motion-capture features `mocap` [n, D] (input [B, D], D = `side_dim`).
    Standardised when `audio_normalization` has prosody_mean/prosody_std
    (prosody) or side_mean/side_std (an extra).

    Inputs: text_ids [B, 128], text_length [B]; audio_mfcc [B, T, 39] and
    audio_length [B] ("gru", "cnn") or waveform [B, S] and waveform_length
    [B] ("wav2vec2"); with side features, the side input [B, D]. Padding:
    frames/samples past the audio length and words past the text length
    never reach the output (with "wav2vec2" as exact as the handle is, see
    `Wav2Vec2Encoder`); the side input has no padding.

    Fusion: "concat" = [t; a; s]; "pairwise" = each modality projected to
    `fusion_units` (U, tanh) p_m, then [p_1; ..; p_M; p_i ⊙ p_j for i < j]
    (the unimodal vectors and every pairwise interaction). Then Dense(D,
    ReLU) → dropout (keep `fusion_keep_prob`) → logits.

    Args:
        vocab_size, embedding_dim, embedding_trainable: text embedding.
        transformer_units (W), transformer_heads, transformer_layers (N),
        transformer_ff_units (F), transformer_dropout (a RATE).
        audio_encoder: "gru", "cnn" or "wav2vec2".
        audio_units, audio_layers, audio_keep_prob: the GRU encoder.
        cnn_filters, cnn_kernel_size: the CNN encoder.
        hub_handle, encoder_trainable, freeze_feature_extractor, pooling
            ("mean" or "attention"), fixed_input_length: the wav2vec2
            encoder, as `wav2vec2_models.W2V2` (its learning rate: train.py
            --encoder_lr).
        use_side_features: bool. side_units: S.
        side_features: str. The side input's name: "audio_prosody" or the
            name of a float extra array [n, D] in the fold's manifest.json
            "extras" (loaded and fed by experiment.py).
        side_dim: int or None. D of such an extra (experiment.model_kwargs
            reads it from the fold); unused for the prosody vector.
        fusion: "concat" or "pairwise". fusion_units: U.
        hidden_units: D. fusion_keep_prob: keep probability before logits.
        mfcc_dim, prosody_dim, text_length, num_classes,
        audio_normalization, seed.
        text_encoder_handle: str or None. A BERT-style TF-Hub URL or local
            SavedModel directory (see README, "BERT text encoder"); None
            keeps the from-scratch transformer.
        text_encoder_trainable: bool. Fine-tune the handle's variables (its
            learning rate: train.py --encoder_lr) or keep them frozen.
        text_encoder_pooling: "pooled" (pooled_output, the [CLS] vector) or
            "mean" (masked mean of sequence_output).
        text_encoder_pieces: dict from
            `preprocessing.text_features.wordpiece_table` (our word id →
            WordPiece ids of the handle's vocabulary, [CLS]/[SEP]/[UNK]
            ids); required with a handle (experiment.model_kwargs builds
            it from the fold), stored in the config.
        text_encoder_seq_length: int. Longest WordPiece sequence fed to the
            handle, [CLS] and [SEP] included.

    Trainable parameters (gru, concat): V·E + (E+1)W + 128W
    + N·(4W² + 4W + 2WF + F + W + 4W) + 3H_A(39+H_A+1)
    [+ (35+1)S, or (D+1)S for an extra of width D]
    + (W + H_A [+ S] + 1)·D_h + (D_h+1)·C  (D_h = hidden_units).
    """

    def __init__(self, vocab_size, embedding_dim=300, embedding_trainable=True,
                 transformer_units=64, transformer_heads=4,
                 transformer_layers=2, transformer_ff_units=128,
                 transformer_dropout=0.1, audio_encoder="gru",
                 audio_units=64, audio_layers=1, audio_keep_prob=0.8,
                 cnn_filters=(16, 32), cnn_kernel_size=3,
                 use_side_features=True, side_units=32, fusion="concat",
                 fusion_units=64, hidden_units=64, fusion_keep_prob=0.7,
                 mfcc_dim=39, prosody_dim=35, text_length=128,
                 num_classes=4, audio_normalization=None, seed=None,
                 text_encoder_handle=None, text_encoder_trainable=True,
                 text_encoder_pooling="pooled", text_encoder_pieces=None,
                 text_encoder_seq_length=128, side_features=PROSODY_INPUT,
                 side_dim=None, hub_handle=None, encoder_trainable=True,
                 freeze_feature_extractor=True, pooling="mean",
                 fixed_input_length=None,
                 name="TRANSFORMER_FUSION", **kwargs):
        cnn_filters = tuple(int(f) for f in cnn_filters)
        config = config_model.constructor_arguments(locals())
        config["cnn_filters"] = list(cnn_filters)
        _check_choice("audio_encoder", audio_encoder, AUDIO_ENCODERS)
        _check_choice("fusion", fusion, FUSIONS)
        _check_keep("fusion_keep_prob", fusion_keep_prob)
        if audio_encoder == "wav2vec2":
            if not hub_handle:
                raise ValueError(
                    "TRANSFORMER_FUSION: audio_encoder='wav2vec2' needs "
                    "hub_handle, a TF-Hub URL or local wav2vec2 SavedModel "
                    "directory (an offline stand-in: "
                    "tools/make_wav2vec2_standin.py).")
            inputs = dict(wav2vec2_models._waveform_inputs())
        else:
            inputs = yoon._audio_inputs(mfcc_dim, prosody_dim)
            del inputs[PROSODY_INPUT]
        if use_side_features:
            inputs[side_features] = _side_input(side_features, side_dim,
                                                prosody_dim)
        inputs.update(yoon._text_inputs(text_length))
        if text_encoder_handle is None:
            vectors = [_transformer_text(inputs, config)]
        else:
            vectors = [_pretrained_text(inputs, config)]
        if audio_encoder == "wav2vec2":
            audio = wav2vec2_models._audio_vector(
                inputs, hub_handle, encoder_trainable,
                freeze_feature_extractor, fixed_input_length, pooling, seed)
        else:
            mfcc, _ = _standardized(inputs, audio_normalization, False)
            if audio_encoder == "gru":
                _, audio = yoon._gru_stack(mfcc, inputs["audio_length"],
                                           audio_units, audio_layers,
                                           audio_keep_prob, _seed(seed, 200),
                                           "audio")
            else:
                audio = _cnn_encoder(mfcc, inputs["audio_length"],
                                     cnn_filters, cnn_kernel_size, seed)
        vectors.append(audio)
        if use_side_features:
            side = _standardized_side(inputs[side_features], side_features,
                                      audio_normalization)
            vectors.append(keras.layers.Dense(
                side_units, activation="relu",
                kernel_initializer=_glorot(_seed(seed, 8)),
                name="side_projection")(side))
        names = ("text", "audio", "side")
        if fusion == "concat":
            fused = keras.layers.Concatenate(name="fused")(vectors)
        else:
            projected = [keras.layers.Dense(
                fusion_units, activation="tanh",
                kernel_initializer=_glorot(_seed(seed, 9 + index)),
                name=f"{names[index]}_fusion_projection")(vector)
                for index, vector in enumerate(vectors)]
            products = [
                keras.layers.Multiply(
                    name=f"{names[i]}_{names[j]}_interaction")(
                        [projected[i], projected[j]])
                for i in range(len(projected))
                for j in range(i + 1, len(projected))]
            fused = keras.layers.Concatenate(name="fused")(
                projected + products)
        self._build_with_hidden(inputs, fused, fusion_keep_prob, config, name,
                                kwargs)


MODELS = {
    "BLSTM_SA_TEXT": BLSTM_SA_TEXT,
    "CNN_SPEC": CNN_SPEC,
    "MMMF": MMMF,
    "TRANSFORMER_FUSION": TRANSFORMER_FUSION,
}
