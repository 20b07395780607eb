"""TRANSFORMER_FUSION: a transformer text encoder fused with an audio encoder
and an optional dense side input (after Patamia et al. 2021).

One of the seed systems (the others: `models/seed_models.py`), with the same
head (`seed_models.SeedModel`: Dense hidden layer → `logits`), the same
padding guarantees (frames/samples past the audio length and words past the
text length never reach the output) and a config that is exactly its
(flat) constructor arguments, which `train.py --model_override=key=value`
validates.

Differences from the seed: the small transformer text encoder is trained
from scratch by default (the seed fine-tuned BERT); with
`text_encoder_handle` it fine-tunes (or freezes) a BERT-style TF-Hub handle
/ SavedModel directory instead (`models/bert_text_encoder.py`: our word ids
are mapped to the handle's WordPiece ids inside the model, so the model and
its export still take `text_ids`). The audio encoder is ARE's GRU,
CNN_SPEC's CNN or, as the seed, a wav2vec2 handle
(`audio_encoder="wav2vec2"`); the optional dense side input is the prosody
vector by default, or any per-utterance float extra of the fold
(`side_features`, e.g. the seed's motion-capture features).
"""

import keras

from common import constants
from models import bert_text_encoder
from models import config_model
from models import encoders
from models import fusion as fusion_lib
from models import inputs as inputs_lib
from models import layers
from models import pooling as pooling_lib
from models import seed_models

AUDIO_ENCODERS = ("gru", "cnn", "wav2vec2")

_seed = config_model.offset_seed
_glorot = config_model.glorot
_check_keep = config_model.check_keep_prob
_check_choice = config_model.check_choice


def _transformer_text(inputs, config):
    """Embedding → projection → positions → N post-LN transformer blocks,
    keys masked past the text length → masked mean over real tokens."""
    seed, width = config["seed"], config["transformer_units"]
    rate = config["transformer_dropout"]
    embedded = encoders.embedded_text(inputs, config["vocab_size"],
                                      config["embedding_dim"],
                                      config["embedding_trainable"], seed)
    sequence = keras.layers.Dense(
        width, kernel_initializer=_glorot(_seed(seed, 30)),
        name="text_projection")(embedded)
    sequence = layers.PositionEmbedding(
        config["text_length"], seed=_seed(seed, 31),
        name="text_positions")(sequence)
    sequence = keras.layers.Dropout(rate, seed=_seed(seed, 32),
                                    name="text_embedding_dropout")(sequence)
    mask = layers.KeyPaddingMask(config["text_length"],
                                 name="text_attention_mask")(
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
    if side_features == inputs_lib.PROSODY:
        return inputs_lib.vector_input(inputs_lib.PROSODY, prosody_dim)
    if not isinstance(side_features, str) or not side_features or (
            side_features in inputs_lib.STANDARD_INPUTS):
        raise ValueError(
            f"TRANSFORMER_FUSION: side_features={side_features!r}; expected "
            f"{inputs_lib.PROSODY!r} or the name of a per-utterance float "
            "extra array of the fold (e.g. 'mocap'), not one of the pipeline's "
            f"own features {inputs_lib.STANDARD_INPUTS}.")
    if side_dim is None or int(side_dim) < 1:
        raise ValueError(
            f"TRANSFORMER_FUSION: side_features={side_features!r} needs "
            f"side_dim, the width D of the fold's [n, D] array "
            f"(experiment.model_kwargs reads it from the fold); found "
            f"{side_dim!r}.")
    return inputs_lib.vector_input(side_features, int(side_dim))


def _standardized_side(side, side_features, normalization):
    """The side vector, standardised with the train-split statistics when
    `normalization` has them (prosody_* for the prosody vector, side_* for
    a fold extra)."""
    prefix = "prosody" if side_features == inputs_lib.PROSODY else "side"
    if normalization and f"{prefix}_mean" in normalization:
        return layers.Standardize(normalization[f"{prefix}_mean"],
                                  normalization[f"{prefix}_std"],
                                  name=f"{prefix}_standardize")(side)
    return side


@keras.saving.register_keras_serializable(package="mse")
class TRANSFORMER_FUSION(seed_models.SeedModel):
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
    pooled frames of a wav2vec2 handle (`encoders.wav2vec2_vector`,
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
        transformer_units: int. W, the transformer width.
        transformer_heads: int. Attention heads (dividing W).
        transformer_layers: int. N, transformer blocks.
        transformer_ff_units: int. F, feed-forward units per block.
        transformer_dropout: float. Dropout RATE in the transformer.
        audio_encoder: "gru", "cnn" or "wav2vec2".
        audio_units, audio_layers, audio_keep_prob: the GRU encoder.
        cnn_filters, cnn_kernel_size: the CNN encoder.
        hub_handle, encoder_trainable, freeze_feature_extractor, pooling
            ("mean" or "attention"), fixed_input_length: the wav2vec2
            encoder, as `wav2vec2_models.W2V2` (its learning rate: train.py
            --encoder_lr).
        use_side_features: bool. Feed the dense side input.
        side_units: int. S, the side projection's width.
        side_features: str. The side input's name: "audio_prosody" or the
            name of a float extra array [n, D] in the fold's manifest.json
            "extras" (loaded and fed by experiment.py).
        side_dim: int or None. D of such an extra (experiment.model_kwargs
            reads it from the fold); unused for the prosody vector.
        fusion: "concat" or "pairwise".
        fusion_units: int. U, the projections of the "pairwise" fusion.
        hidden_units: int. D, the hidden layer before the logits.
        fusion_keep_prob: float. Keep probability before the logits.
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
                 mfcc_dim=constants.MFCC_DIM,
                 prosody_dim=constants.PROSODY_DIM,
                 text_length=constants.TEXT_LENGTH,
                 num_classes=constants.NUM_CLASSES, audio_normalization=None,
                 seed=None,
                 text_encoder_handle=None, text_encoder_trainable=True,
                 text_encoder_pooling="pooled", text_encoder_pieces=None,
                 text_encoder_seq_length=128, side_features=inputs_lib.PROSODY,
                 side_dim=None, hub_handle=None, encoder_trainable=True,
                 freeze_feature_extractor=True, pooling="mean",
                 fixed_input_length=None,
                 name="TRANSFORMER_FUSION", **kwargs):
        cnn_filters = tuple(int(f) for f in cnn_filters)
        config = config_model.constructor_arguments(locals())
        config["cnn_filters"] = list(cnn_filters)
        _check_choice("audio_encoder", audio_encoder, AUDIO_ENCODERS)
        _check_choice("fusion", fusion, fusion_lib.FUSIONS)
        _check_keep("fusion_keep_prob", fusion_keep_prob)
        if audio_encoder == "wav2vec2":
            if not hub_handle:
                raise ValueError(
                    "TRANSFORMER_FUSION: audio_encoder='wav2vec2' needs "
                    "hub_handle, a TF-Hub URL or local wav2vec2 SavedModel "
                    "directory (an offline stand-in: "
                    "tools/make_wav2vec2_standin.py).")
            inputs = inputs_lib.waveform_inputs()
        else:
            inputs = inputs_lib.audio_inputs(mfcc_dim, prosody_dim)
            del inputs[inputs_lib.PROSODY]
        if use_side_features:
            inputs[side_features] = _side_input(side_features, side_dim,
                                                prosody_dim)
        inputs.update(inputs_lib.text_inputs(text_length))
        if text_encoder_handle is None:
            vectors = [_transformer_text(inputs, config)]
        else:
            vectors = [_pretrained_text(inputs, config)]
        if audio_encoder == "wav2vec2":
            audio = encoders.wav2vec2_vector(
                inputs, hub_handle, encoder_trainable,
                freeze_feature_extractor, fixed_input_length, pooling, seed)
        else:
            mfcc, _ = encoders.standardized_audio(inputs, audio_normalization,
                                                  False)
            if audio_encoder == "gru":
                _, audio = encoders.gru_stack(
                    mfcc, inputs["audio_length"], audio_units, audio_layers,
                    audio_keep_prob, _seed(seed, 200), "audio")
            else:
                audio = encoders.cnn_encoder(mfcc, inputs["audio_length"],
                                             cnn_filters, cnn_kernel_size,
                                             seed)
        vectors.append(audio)
        if use_side_features:
            side = _standardized_side(inputs[side_features], side_features,
                                      audio_normalization)
            vectors.append(keras.layers.Dense(
                side_units, activation="relu",
                kernel_initializer=_glorot(_seed(seed, 8)),
                name="side_projection")(side))
        fused = fusion_lib.fuse(vectors, ("text", "audio", "side"), fusion,
                                fusion_units, seed)
        self._build_with_hidden(inputs, fused, fusion_keep_prob, config, name,
                                kwargs)


MODELS = {"TRANSFORMER_FUSION": TRANSFORMER_FUSION}
