"""The other seed systems as toolkit models: BLSTM_SA_TEXT, CNN_SPEC and MMMF
(TRANSFORMER_FUSION, the fourth, is `models/transformer_fusion.py`).

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

Differences from the seeds, stated once:

* `CNN_SPEC` reads a log-mel spectrogram (`audio_input="logmel"`: 64 mel
  bands by default, 25 ms / 10 ms frames, computed from the raw waveform by
  the input pipeline and by the serving code, `preprocessing/spectrogram.py`)
  or the 39-d MFCC-E-D-A frames (`audio_input="mfcc"`, the default, for
  folds without waveforms such as the released arrays); the seed used a
  linear spectrogram.
* `MMMF` runs its acoustic BLSTM over the same MFCC frames (the seed used
  openSMILE LLDs).

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

from common import constants
from models import config_model
from models import encoders
from models import fusion
from models import inputs as inputs_lib
from models import layers
from models import pooling as pooling_lib

MMMF_POOLINGS = ("last", "mean", "attention")
CNN_AUDIO_INPUTS = ("mfcc", "logmel")

_seed = config_model.offset_seed
_glorot = config_model.glorot
_check_keep = config_model.check_keep_prob
_check_choice = config_model.check_choice


class SeedModel(config_model.ConfigModel):
    """A seed-system model: its output layer is a Dense map (`logits`),
    optionally after a hidden ReLU layer (`hidden`, `hidden_dropout`)."""

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


@keras.saving.register_keras_serializable(package="mse")
class BLSTM_SA_TEXT(SeedModel):
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
                 hidden_units=64, text_length=constants.TEXT_LENGTH,
                 num_classes=constants.NUM_CLASSES, seed=None,
                 name="BLSTM_SA_TEXT", **kwargs):
        config = config_model.constructor_arguments(locals())
        inputs = inputs_lib.text_inputs(text_length)
        embedded = encoders.embedded_text(inputs, vocab_size, embedding_dim,
                                          embedding_trainable, seed)
        outputs, _ = layers.MaskedBiLSTM(
            text_units, text_keep_prob, text_keep_prob, seed=_seed(seed, 100),
            name="text_blstm")([embedded, inputs["text_length"]])
        pooled = pooling_lib.AttentionPooling(
            attention_units, name="text_self_attention")(
                outputs, inputs["text_length"])
        self._build_with_hidden(inputs, pooled, text_keep_prob, config, name,
                                kwargs)


@keras.saving.register_keras_serializable(package="mse")
class CNN_SPEC(SeedModel):
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
    kept out of every block; see `encoders.cnn_encoder` for the blocks.
    The pooled vector (joined with the prosody vector `audio_prosody`
    [B, 35] when `use_prosody`) feeds a hidden ReLU layer with dropout.

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
                 mfcc_dim=constants.MFCC_DIM,
                 prosody_dim=constants.PROSODY_DIM,
                 num_classes=constants.NUM_CLASSES,
                 audio_normalization=None, seed=None, name="CNN_SPEC",
                 **kwargs):
        cnn_filters = tuple(int(f) for f in cnn_filters)
        config = config_model.constructor_arguments(locals())
        config["cnn_filters"] = list(cnn_filters)
        _check_keep("audio_keep_prob", audio_keep_prob)
        _check_choice("audio_input", audio_input, CNN_AUDIO_INPUTS)
        inputs = inputs_lib.audio_inputs(mfcc_dim, prosody_dim)
        if audio_input == "logmel":
            del inputs["audio_mfcc"], inputs["audio_length"]
            inputs.update(inputs_lib.logmel_inputs(n_mels))
        if not use_prosody:
            del inputs["audio_prosody"]
        if audio_input == "logmel":
            image, prosody = encoders.standardized_log_mel(
                inputs, audio_normalization, use_prosody)
            lengths = inputs["audio_logmel_length"]
        else:
            image, prosody = encoders.standardized_audio(
                inputs, audio_normalization, use_prosody)
            lengths = inputs["audio_length"]
        features = encoders.cnn_encoder(image, lengths, cnn_filters,
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
class MMMF(SeedModel):
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
                 fusion_units=64, mfcc_dim=constants.MFCC_DIM,
                 prosody_dim=constants.PROSODY_DIM,
                 text_length=constants.TEXT_LENGTH,
                 num_classes=constants.NUM_CLASSES, audio_normalization=None,
                 seed=None, name="MMMF", **kwargs):
        config = config_model.constructor_arguments(locals())
        _check_choice("pooling", pooling, MMMF_POOLINGS)
        inputs = {**inputs_lib.audio_inputs(mfcc_dim, prosody_dim),
                  **inputs_lib.text_inputs(text_length)}
        del inputs["audio_prosody"]
        mfcc, _ = encoders.standardized_audio(inputs, audio_normalization,
                                              False)
        vectors = []
        embedded = encoders.embedded_text(inputs, vocab_size, embedding_dim,
                                          embedding_trainable, seed)
        for prefix, sequence, lengths, units, keep, offset in (
                ("audio", mfcc, inputs["audio_length"], audio_units,
                 audio_keep_prob, 200),
                ("text", embedded, inputs["text_length"], text_units,
                 text_keep_prob, 100)):
            outputs, last = layers.MaskedBiLSTM(
                units, keep, keep, seed=_seed(seed, offset),
                name=f"{prefix}_blstm")([sequence, lengths])
            pooled = _pool(outputs, last, lengths, pooling, attention_units,
                           prefix)
            vectors.append(keras.layers.Dense(
                fusion_units, activation="tanh",
                kernel_initializer=_glorot(_seed(seed, offset + 7)),
                name=f"{prefix}_projection")(pooled))
        fused = fusion.ModalityAttentionFusion(
            attention_units, seed=_seed(seed, 6),
            name="modality_fusion")(vectors)
        self._build(inputs, fused, config, name, kwargs)


MODELS = {
    "BLSTM_SA_TEXT": BLSTM_SA_TEXT,
    "CNN_SPEC": CNN_SPEC,
    "MMMF": MMMF,
}
