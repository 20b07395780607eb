"""Encoders: named inputs → per-modality sequences and vectors.

The building blocks the models share (layer names are part of the saved
weights and of the attributions, so every encoder names its layers
explicitly and the same way in every model):

* `gru_stack`, `audio_branch`, `text_branch`: Yoon's GRU encoders (TF1 cell
  semantics, `layers.TF1GRU`), also ARE's audio GRU in TRANSFORMER_FUSION
  and TRE's text branch in the wav2vec2 models.
* `embedded_text`: the word embedding `word_embedding` (GloVe is loaded into
  this layer by name).
* `standardized_audio`, `standardized_log_mel`: audio frames standardised
  with train-split statistics (when given) and zeroed past the length.
* `cnn_encoder`: CNN_SPEC's 2-D CNN over a time-frequency image.
* `wav2vec2_vector`: the pooled frames of a wav2vec2 handle.

Every encoder is exact under right padding: steps at or beyond the length
never reach its outputs.
"""

from typing import Dict, Optional, Sequence, Tuple

import keras

from models import config_model
from models import layers
from models import pooling as pooling_lib
from models import wav2vec2_encoder

# The wav2vec2 encoder layer's name (`models/optimizers.py` gives it its own
# learning rate by this name) and the poolings of its frames.
WAV2VEC2_LAYER_NAME = "wav2vec2"
WAV2VEC2_POOLINGS = ("mean", "attention")

Inputs = Dict[str, keras.KerasTensor]

_seed = config_model.offset_seed
_glorot = config_model.glorot


def gru_stack(sequence: keras.KerasTensor, lengths: keras.KerasTensor,
              units: int, num_layers: int, keep_prob: float,
              seed: Optional[int], prefix: str, top_sequence: bool = True,
              gru_impl: str = "tf1"
              ) -> Tuple[Optional[keras.KerasTensor], keras.KerasTensor]:
    """Stacked GRU layers `<prefix>_gru_<i>`; returns (top outputs [B, T,
    units], top final state [B, units]).

    With `top_sequence=False` the top layer returns only its state and the
    outputs returned are None (the audio branch needs only the state).
    `gru_impl` picks the layer (`layers.GRU_IMPLEMENTATIONS`): "tf1" the
    original's cell, "cudnn" the cuDNN-eligible reset_after one. Outputs are
    exactly 0 at steps >= length; the state is the one after the last real
    step.
    """
    if gru_impl not in layers.GRU_IMPLEMENTATIONS:
        raise ValueError(f"gru_impl must be one of "
                         f"{sorted(layers.GRU_IMPLEMENTATIONS)}, got "
                         f"{gru_impl!r}.")
    state = None
    for index in range(num_layers):
        sequences = top_sequence or index < num_layers - 1
        result = layers.GRU_IMPLEMENTATIONS[gru_impl](
            units, input_keep_prob=keep_prob, output_keep_prob=keep_prob,
            return_sequences=sequences,
            seed=None if seed is None else seed + 10 * index,
            name=f"{prefix}_gru_{index}")([sequence, lengths])
        sequence, state = result if sequences else (None, result)
    return sequence, state


def audio_branch(inputs: Inputs, units: int, num_layers: int,
                 keep_prob: float, seed: Optional[int],
                 normalization: Optional[dict],
                 gru_impl: str = "tf1") -> keras.KerasTensor:
    """e_A = concat(final GRU state over MFCC, prosody): [B, units + 35]
    (layer `audio_vector`).

    With `normalization` (dict of mfcc_mean/mfcc_std/prosody_mean/
    prosody_std lists) both inputs are standardised first; padded frames
    become non-zero but stay masked.
    """
    mfcc, prosody = layers.standardize_audio(
        inputs["audio_mfcc"], inputs["audio_prosody"], normalization)
    _, state = gru_stack(mfcc, inputs["audio_length"], units, num_layers,
                         keep_prob, seed, "audio", top_sequence=False,
                         gru_impl=gru_impl)
    return keras.layers.Concatenate(name="audio_vector")([state, prosody])


def text_branch(inputs: Inputs, vocab_size: int, embedding_dim: int,
                embedding_trainable: bool, units: int, num_layers: int,
                keep_prob: float, seed: Optional[int], gru_impl: str = "tf1"
                ) -> Tuple[keras.KerasTensor, keras.KerasTensor]:
    """Returns (GRU output sequence [B, L, units], final state [B, units])
    of `embedded_text` (outputs 0 past `text_length`)."""
    embedded = embedded_text(inputs, vocab_size, embedding_dim,
                             embedding_trainable, seed)
    return gru_stack(embedded, inputs["text_length"], units, num_layers,
                     keep_prob, None if seed is None else seed + 100, "text",
                     gru_impl=gru_impl)


def embedded_text(inputs: Inputs, vocab_size: int, embedding_dim: int,
                  embedding_trainable: bool,
                  seed: Optional[int]) -> keras.KerasTensor:
    """Word embedding `word_embedding` of `text_ids`: [B, L, E] (padded ids
    are embedded too; the encoders after it mask them by `text_length`)."""
    return keras.layers.Embedding(
        vocab_size, embedding_dim,
        embeddings_initializer=keras.initializers.RandomNormal(
            0.0, 0.01, seed=seed),
        trainable=embedding_trainable, name="word_embedding")(
            inputs["text_ids"])


def standardized_audio(inputs: Inputs, normalization: Optional[dict],
                       use_prosody: bool = True
                       ) -> Tuple[keras.KerasTensor,
                                  Optional[keras.KerasTensor]]:
    """MFCC (zeroed past the length) and prosody, standardised if asked."""
    prosody = inputs.get("audio_prosody")
    mfcc, scaled = layers.standardize_audio(
        inputs["audio_mfcc"], prosody if use_prosody else None,
        normalization)
    prosody = scaled if use_prosody else prosody
    mfcc = layers.MaskSequence(name="mfcc_mask")(mfcc, inputs["audio_length"])
    return mfcc, prosody


def standardized_log_mel(inputs: Inputs, normalization: Optional[dict],
                         use_prosody: bool
                         ) -> Tuple[keras.KerasTensor,
                                    Optional[keras.KerasTensor]]:
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
    frames = layers.MaskSequence(name="logmel_mask")(
        frames, inputs["audio_logmel_length"])
    return frames, prosody


def cnn_encoder(mfcc: keras.KerasTensor, lengths: keras.KerasTensor,
                filters: Sequence[int], kernel_size: int,
                seed: Optional[int]) -> keras.KerasTensor:
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
        image = layers.MaskSequence(name=f"cnn_mask_{index}")(image, lengths)
        image = keras.layers.MaxPooling2D(2, padding="same",
                                          name=f"cnn_pool_{index}")(image)
        lengths = layers.HalveLengths(name=f"cnn_lengths_{index}")(lengths)
        freq = (freq + 1) // 2
    frames = keras.layers.Reshape((-1, freq * filters[-1]),
                                  name="cnn_frames")(image)
    return pooling_lib.MaskedMeanPooling(name="cnn_time_pool")(frames,
                                                               lengths)


def wav2vec2_vector(inputs: Inputs, hub_handle: str, encoder_trainable: bool,
                    freeze_feature_extractor: bool,
                    fixed_input_length: Optional[int], pooling: str,
                    seed: Optional[int]) -> keras.KerasTensor:
    """e_W: the pooled wav2vec2 frames of the real samples, [B, D].

    The encoder is the layer `wav2vec2` (`WAV2VEC2_LAYER_NAME`). Frames at
    and beyond each example's frame length (computed from `waveform_length`
    by the encoder's convolution arithmetic) get zero weight in the pooling
    (`audio_pooling`: "mean" or "attention").
    """
    if pooling not in WAV2VEC2_POOLINGS:
        raise ValueError(f"pooling must be one of {WAV2VEC2_POOLINGS}; "
                         f"found {pooling!r}.")
    encoder = wav2vec2_encoder.Wav2Vec2Encoder(
        hub_handle, trainable=encoder_trainable,
        freeze_feature_extractor=freeze_feature_extractor,
        fixed_input_length=fixed_input_length, name=WAV2VEC2_LAYER_NAME)
    features, frame_lengths = encoder(inputs["waveform"],
                                      inputs["waveform_length"])
    if pooling == "mean":
        pool = pooling_lib.MaskedMeanPooling(name="audio_pooling")
    else:
        # AttentionPooling's query is initialised by its own initialisers;
        # the seed of the Keras RNG (keras.utils.set_random_seed) fixes it.
        pool = pooling_lib.AttentionPooling(name="audio_pooling")
    return pool(features, frame_lengths)
