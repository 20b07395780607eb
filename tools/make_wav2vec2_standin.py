"""Writes a tiny, randomly initialised wav2vec2-architecture SavedModel.

The stand-in has the public TF-Hub wav2vec2's shape of computation and its
calling contract, so the load → fine-tune → export → reload path can be tested
offline. It has NO pretrained knowledge: its weights are seeded random numbers.

Example:

    python tools/make_wav2vec2_standin.py --output_dir=/tmp/w2v2_standin
    python tools/make_wav2vec2_standin.py --output_dir=/tmp/w2v2_fixed \
        --fixed_input_length=246000
    python tools/make_wav2vec2_standin.py --ctc --output_dir=/tmp/w2v2_ctc

`--ctc` writes a wav2vec2-CTC stand-in instead (`build_ctc_standin`): the
same network plus a linear head to logits over wav2vec2-base-960h's 32
characters, for the `ctc` speech recogniser (`preprocessing/asr.py`).
Its signature `serving_default` maps {"waveform": [B, S] float32} to
{"logits": [B, F, 32] float32}; `assets/vocab.json` holds {token: id}.
Greedy decoding of its random logits gives random letters: it tests the
recogniser's path, not recognition.

Architecture (wav2vec2-base in miniature):
    waveform [B, S] → 7 bias-free Conv1D layers (kernels 10,3,3,3,3,2,2,
    strides 5,2,2,2,2,2,2, `conv_channels` channels; per-channel group norm
    after the first; GELU after each) → feature projection (layer norm +
    dense to `hidden`) → convolutional positional embedding → layer norm →
    `layers` post-norm transformer encoder layers (multi-head self-attention +
    GELU feed-forward) → features [B, F, hidden].

SavedModel contents (TF-Hub "reusable SavedModel" form):
    `__call__(waveform, attention_mask=None, training=False)`: a tf.function
        traced for `training` in {False, True}, and, when built with
        `with_attention_mask=True`, also for an int32 [B, S] `attention_mask`
        (1 = real sample, 0 = padding). There is no dropout, so `training`
        does not change the output.
    `variables`, `trainable_variables`, `regularization_losses` (empty).
    signature `serving_default`: {"waveform": [B, S] float32} →
        {"output_0": [B, F, hidden] float32}, like the public model.
    signature `serving_with_mask` (with `with_attention_mask=True` only):
        {"waveform", "attention_mask"} → {"output_0"}.
    `S` is `fixed_input_length` (like the public model's 246,000) or free.

Variable names follow the public model's Keras layer names, e.g.
`wav2vec2/feature_extractor/conv_layers/0/conv/kernel:0` and
`wav2vec2/encoder/layers/1/attention/q_proj/kernel:0`, so a name pattern that
finds the convolutional feature extractor in one finds it in the other.

How padding behaves:
    Without an attention mask the computation is the public model's: the
    group norm after the first convolution takes its statistics over all
    frames, padding included, and every frame attends to every frame, so
    zero padding changes the features of real frames. With an attention mask
    the group-norm statistics, the positional convolution and the attention
    keys use real frames only, so the real frames' features do not depend on
    how much padding follows them.
"""

import json
import math
import os

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from common import atomic_files

CONV_KERNEL_SIZES = (10, 3, 3, 3, 3, 2, 2)
CONV_STRIDES = (5, 2, 2, 2, 2, 2, 2)
_NAME_PREFIX = "wav2vec2"
# Added to the attention scores of padded keys; exp() of it underflows to an
# exact 0.0 in float32, so padded keys get exactly zero weight.
_MASK_SCORE = -1e9


class Wav2Vec2StandIn(tf.Module):
    """The stand-in network: plain TensorFlow ops over seeded random weights.

    Args:
        hidden: int. Transformer width D of the output features.
        layers: int. Number of transformer encoder layers.
        heads: int. Attention heads; must divide `hidden`.
        conv_channels: int. Channels of every feature-extractor convolution.
        ffn_dim: int. Width of the feed-forward block.
        pos_conv_kernel: int. Kernel of the positional convolution (frames).
        conv_kernel_sizes: tuple of int. Feature-extractor kernels.
        conv_strides: tuple of int. Feature-extractor strides.
        seed: int. Seed of the random weights.
    """

    def __init__(self, hidden, layers, heads, conv_channels, ffn_dim,
                 pos_conv_kernel, conv_kernel_sizes, conv_strides, seed):
        super().__init__(name="wav2vec2_standin")
        if hidden % heads:
            raise ValueError(f"hidden={hidden} is not divisible by "
                             f"heads={heads}.")
        if len(conv_kernel_sizes) != len(conv_strides):
            raise ValueError(
                    f"conv_kernel_sizes {conv_kernel_sizes} and conv_strides "
                    f"{conv_strides} must have the same length.")
        self.hidden = hidden
        self.heads = heads
        self.conv_kernel_sizes = tuple(conv_kernel_sizes)
        self.conv_strides = tuple(conv_strides)
        rng = np.random.default_rng(seed)

        def weight(path, shape, init="glorot"):
            if init == "ones":
                value = np.ones(shape)
            elif init == "zeros":
                value = np.zeros(shape)
            else:
                # Glorot-uniform over the last two axes (the receptive field
                # counts towards fan-in for convolutions).
                fan_in = int(np.prod(shape[:-1]))
                limit = math.sqrt(6.0 / (fan_in + shape[-1]))
                value = rng.uniform(-limit, limit, shape)
            return tf.Variable(value.astype(np.float32),
                               name=f"{_NAME_PREFIX}/{path}")

        # Feature extractor. wav2vec2 convolutions carry no bias.
        self.conv_kernels = []
        in_channels = 1
        for i, kernel in enumerate(self.conv_kernel_sizes):
            self.conv_kernels.append(weight(
                    f"feature_extractor/conv_layers/{i}/conv/kernel",
                    (kernel, in_channels, conv_channels)))
            in_channels = conv_channels
        self.group_norm_gamma = weight(
                "feature_extractor/conv_layers/0/layer_norm/gamma",
                (conv_channels,), "ones")
        self.group_norm_beta = weight(
                "feature_extractor/conv_layers/0/layer_norm/beta",
                (conv_channels,), "zeros")
        # Feature projection.
        self.projection_norm = self._norm_weights(
                weight, "feature_projection/layer_norm", conv_channels)
        self.projection_kernel = weight(
                "feature_projection/projection/kernel", (conv_channels, hidden))
        self.projection_bias = weight(
                "feature_projection/projection/bias", (hidden,), "zeros")
        # Positional convolution and the encoder's input norm.
        self.pos_conv_kernel = weight("encoder/pos_conv_embed/conv/kernel",
                                      (pos_conv_kernel, hidden, hidden))
        self.pos_conv_bias = weight("encoder/pos_conv_embed/conv/bias",
                                    (hidden,), "zeros")
        self.encoder_norm = self._norm_weights(weight, "encoder/layer_norm",
                                               hidden)
        # Transformer layers. The key projection has no bias: softmax is
        # invariant to it, so its gradient would be zero.
        self.encoder_layers = []
        for i in range(layers):
            prefix = f"encoder/layers/{i}"
            self.encoder_layers.append({
                    "q_kernel": weight(f"{prefix}/attention/q_proj/kernel",
                                       (hidden, hidden)),
                    "q_bias": weight(f"{prefix}/attention/q_proj/bias",
                                     (hidden,), "zeros"),
                    "k_kernel": weight(f"{prefix}/attention/k_proj/kernel",
                                       (hidden, hidden)),
                    "v_kernel": weight(f"{prefix}/attention/v_proj/kernel",
                                       (hidden, hidden)),
                    "v_bias": weight(f"{prefix}/attention/v_proj/bias",
                                     (hidden,), "zeros"),
                    "out_kernel": weight(f"{prefix}/attention/out_proj/kernel",
                                         (hidden, hidden)),
                    "out_bias": weight(f"{prefix}/attention/out_proj/bias",
                                       (hidden,), "zeros"),
                    "attention_norm": self._norm_weights(
                            weight, f"{prefix}/layer_norm", hidden),
                    "ffn_in_kernel": weight(
                            f"{prefix}/feed_forward/intermediate_dense/kernel",
                            (hidden, ffn_dim)),
                    "ffn_in_bias": weight(
                            f"{prefix}/feed_forward/intermediate_dense/bias",
                            (ffn_dim,), "zeros"),
                    "ffn_out_kernel": weight(
                            f"{prefix}/feed_forward/output_dense/kernel",
                            (ffn_dim, hidden)),
                    "ffn_out_bias": weight(
                            f"{prefix}/feed_forward/output_dense/bias",
                            (hidden,), "zeros"),
                    "final_norm": self._norm_weights(
                            weight, f"{prefix}/final_layer_norm", hidden),
            })

    @staticmethod
    def _norm_weights(weight, path, size):
        return (weight(f"{path}/gamma", (size,), "ones"),
                weight(f"{path}/beta", (size,), "zeros"))

    @staticmethod
    def _layer_norm(x, norm, epsilon=1e-5):
        gamma, beta = norm
        mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
        return (x - mean) * tf.math.rsqrt(variance + epsilon) * gamma + beta

    def _group_norm(self, x, frame_mask, epsilon=1e-5):
        # One group per channel: statistics over time, per example and
        # channel. With a mask only the real frames count.
        if frame_mask is None:
            mean, variance = tf.nn.moments(x, axes=[1], keepdims=True)
        else:
            weights = tf.cast(frame_mask, x.dtype)[:, :, None]
            count = tf.maximum(tf.reduce_sum(weights, axis=1, keepdims=True),
                               1.0)
            mean = tf.reduce_sum(x * weights, axis=1, keepdims=True) / count
            variance = tf.reduce_sum(tf.square(x - mean) * weights, axis=1,
                                     keepdims=True) / count
        x = (x - mean) * tf.math.rsqrt(variance + epsilon)
        return x * self.group_norm_gamma + self.group_norm_beta

    def _attention(self, x, params, score_bias):
        batch, frames = tf.shape(x)[0], tf.shape(x)[1]
        head_dim = self.hidden // self.heads

        def split_heads(t):
            return tf.reshape(t, [batch, frames, self.heads, head_dim])

        query = split_heads(x @ params["q_kernel"] + params["q_bias"])
        key = split_heads(x @ params["k_kernel"])
        value = split_heads(x @ params["v_kernel"] + params["v_bias"])
        scores = tf.einsum("bqhd,bkhd->bhqk", query, key)
        scores = scores / math.sqrt(head_dim)
        if score_bias is not None:
            scores += score_bias
        weights = tf.nn.softmax(scores, axis=-1)
        context = tf.einsum("bhqk,bkhd->bqhd", weights, value)
        context = tf.reshape(context, [batch, frames, self.hidden])
        return context @ params["out_kernel"] + params["out_bias"]

    def forward(self, waveform, attention_mask=None):
        """Maps [B, S] float32 samples (and an optional [B, S] mask) to
        [B, F, hidden] features, F = the conv arithmetic applied to S."""
        if attention_mask is not None:
            sample_mask = tf.cast(attention_mask, tf.int32)
            waveform *= tf.cast(sample_mask, waveform.dtype)
            lengths = tf.reduce_sum(sample_mask, axis=1)
        x = waveform[:, :, None]
        frame_mask = None
        for i, (kernel, stride) in enumerate(zip(self.conv_kernel_sizes,
                                                 self.conv_strides)):
            x = tf.nn.conv1d(x, self.conv_kernels[i], stride=stride,
                             padding="VALID")
            if attention_mask is not None:
                lengths = tf.maximum((lengths - kernel) // stride + 1, 0)
                frame_mask = tf.sequence_mask(lengths, tf.shape(x)[1])
            if i == 0:
                x = self._group_norm(x, frame_mask)
            x = tf.nn.gelu(x, approximate=False)
        x = self._layer_norm(x, self.projection_norm)
        x = x @ self.projection_kernel + self.projection_bias
        score_bias = None
        if frame_mask is not None:
            # Zeroed padded frames make the "same"-padded positional conv see
            # what it sees at the end of an unpadded example.
            x *= tf.cast(frame_mask, x.dtype)[:, :, None]
            score_bias = (1.0 - tf.cast(frame_mask, x.dtype))[:, None, None, :]
            score_bias *= _MASK_SCORE
        position = tf.nn.conv1d(x, self.pos_conv_kernel, stride=1,
                                padding="SAME") + self.pos_conv_bias
        x = self._layer_norm(x + tf.nn.gelu(position, approximate=False),
                             self.encoder_norm)
        for params in self.encoder_layers:
            x = self._layer_norm(x + self._attention(x, params, score_bias),
                                 params["attention_norm"])
            hidden = tf.nn.gelu(x @ params["ffn_in_kernel"]
                                + params["ffn_in_bias"], approximate=False)
            x = self._layer_norm(
                    x + hidden @ params["ffn_out_kernel"]
                    + params["ffn_out_bias"], params["final_norm"])
        return x

    @tf.function
    def __call__(self, waveform, attention_mask=None, training=False):
        # `training` is part of the TF-Hub calling convention; the stand-in
        # has no dropout, so it is accepted and ignored.
        del training
        return self.forward(waveform, attention_mask)


def conv_output_length(length, kernel_sizes=CONV_KERNEL_SIZES,
                       strides=CONV_STRIDES):
    """Frames out of the conv stack for `length` samples (0 if too short)."""
    for kernel, stride in zip(kernel_sizes, strides):
        length = max((length - kernel) // stride + 1, 0)
    return length


def build_standin(output_dir, fixed_input_length=None, hidden=32, layers=2,
                  heads=2, conv_channels=16, ffn_dim=None, pos_conv_kernel=8,
                  with_attention_mask=True,
                  conv_kernel_sizes=CONV_KERNEL_SIZES,
                  conv_strides=CONV_STRIDES, seed=0, overwrite=False):
    """Builds the stand-in and writes it as a SavedModel into `output_dir`.

    Args:
        output_dir: str. Directory to create; it must not exist unless
            `overwrite` is set.
        fixed_input_length: int or None. If set, the SavedModel accepts exactly
            this many samples per example (the public TF-Hub model takes
            246,000); if None, any number of at least the receptive field
            (400 samples with the default convolutions).
        hidden: int. Output feature size D.
        layers: int. Transformer encoder layers.
        heads: int. Attention heads.
        conv_channels: int. Channels of the feature-extractor convolutions.
        ffn_dim: int or None. Feed-forward width; None means 2 * hidden.
        pos_conv_kernel: int. Positional-convolution kernel in frames.
        with_attention_mask: bool. Also trace `__call__` with an
            `attention_mask` and write the `serving_with_mask` signature.
        conv_kernel_sizes: sequence of int. Feature-extractor kernels.
        conv_strides: sequence of int. Feature-extractor strides.
        seed: int. Seed of the random weights.
        overwrite: bool. Replace an existing `output_dir`.

    Returns:
        str, `output_dir`.
    """
    if os.path.exists(output_dir) and not overwrite:
        raise ValueError(f"output_dir {output_dir!r} already exists; "
                         "pass overwrite=True (--overwrite) to replace it.")
    if fixed_input_length is not None and conv_output_length(
            fixed_input_length, conv_kernel_sizes, conv_strides) < 1:
        raise ValueError(f"fixed_input_length={fixed_input_length} is shorter "
                         "than the receptive field of the convolutions.")
    network = Wav2Vec2StandIn(
            hidden=hidden, layers=layers, heads=heads,
            conv_channels=conv_channels, ffn_dim=ffn_dim or 2 * hidden,
            pos_conv_kernel=pos_conv_kernel,
            conv_kernel_sizes=conv_kernel_sizes, conv_strides=conv_strides,
            seed=seed)
    waveform_spec = tf.TensorSpec([None, fixed_input_length], tf.float32,
                                  name="waveform")
    mask_spec = tf.TensorSpec([None, fixed_input_length], tf.int32,
                              name="attention_mask")
    for training in (False, True):
        network.__call__.get_concrete_function(waveform_spec,
                                               training=training)
        if with_attention_mask:
            network.__call__.get_concrete_function(
                    waveform_spec, attention_mask=mask_spec, training=training)

    @tf.function(input_signature=[waveform_spec])
    def serve(waveform):
        return {"output_0": network(waveform)}

    signatures = {"serving_default": serve}
    if with_attention_mask:
        @tf.function(input_signature=[waveform_spec, mask_spec])
        def serve_with_mask(waveform, attention_mask):
            return {"output_0": network(waveform,
                                        attention_mask=attention_mask)}
        signatures["serving_with_mask"] = serve_with_mask

    # The reusable-SavedModel attributes live on a plain trackable root:
    # tf.Module's own `variables` properties are not saved.
    root = tf.train.Checkpoint()
    root.network = network
    root.__call__ = network.__call__
    root.variables = list(network.variables)
    root.trainable_variables = list(network.trainable_variables)
    root.regularization_losses = []
    description = {
            "stand_in": True,
            "pretrained": False,
            "fixed_input_length": fixed_input_length,
            "hidden": hidden,
            "layers": layers,
            "heads": heads,
            "conv_channels": conv_channels,
            "conv_kernel_sizes": list(conv_kernel_sizes),
            "conv_strides": list(conv_strides),
            "with_attention_mask": with_attention_mask,
            "seed": seed,
            "parameters": int(sum(np.prod(v.shape)
                                  for v in network.variables)),
    }
    # Written under a temporary name and renamed: an existing stand-in is
    # replaced only by a complete one.
    with atomic_files.atomic_directory(output_dir, overwrite=True) as tmp_dir:
        tf.saved_model.save(root, tmp_dir, signatures=signatures)
        # Documentation for people; the encoder never reads it.
        with open(os.path.join(tmp_dir, "standin.json"), "w") as handle:
            json.dump(description, handle, indent=2)
    return output_dir


def build_ctc_standin(output_dir, fixed_input_length=None, hidden=16,
                      layers=1, heads=2, conv_channels=8, seed=0,
                      overwrite=False):
    """Writes a random-weight wav2vec2-CTC SavedModel (see the module doc).

    Args:
        output_dir: str. Directory to create (must not exist unless
            `overwrite`).
        fixed_input_length: int or None. Exact samples per example, or any.
        hidden, layers, heads, conv_channels: the encoder's sizes.
        seed: int. Seed of the random weights.
        overwrite: bool. Replace an existing `output_dir`.

    Returns:
        str, `output_dir`.
    """
    # The recogniser's default vocabulary (tools may import the toolkit).
    from preprocessing import asr

    vocabulary = list(asr.WAV2VEC2_960H_VOCABULARY)
    if os.path.exists(output_dir) and not overwrite:
        raise ValueError(f"output_dir {output_dir!r} already exists; "
                         "pass overwrite=True (--overwrite) to replace it.")
    network = Wav2Vec2StandIn(
            hidden=hidden, layers=layers, heads=heads,
            conv_channels=conv_channels, ffn_dim=2 * hidden,
            pos_conv_kernel=8, conv_kernel_sizes=CONV_KERNEL_SIZES,
            conv_strides=CONV_STRIDES, seed=seed)
    rng = np.random.default_rng(seed + 1)
    # Large enough that the argmax changes from frame to frame (random
    # letters and word gaps rather than one repeated token).
    head_kernel = tf.Variable(rng.normal(0.0, 2.0, (hidden, len(vocabulary)))
                              .astype(np.float32), name="lm_head/kernel")
    head_bias = tf.Variable(np.zeros(len(vocabulary), np.float32),
                            name="lm_head/bias")
    waveform_spec = tf.TensorSpec([None, fixed_input_length], tf.float32,
                                  name="waveform")

    @tf.function(input_signature=[waveform_spec])
    def serve(waveform):
        return {"logits": network.forward(waveform) @ head_kernel + head_bias}

    root = tf.train.Checkpoint()
    root.network = network
    root.head = [head_kernel, head_bias]
    root.serve = serve
    with atomic_files.atomic_directory(output_dir, overwrite=True) as tmp_dir:
        tf.saved_model.save(root, tmp_dir,
                            signatures={"serving_default": serve})
        os.makedirs(os.path.join(tmp_dir, "assets"), exist_ok=True)
        with open(os.path.join(tmp_dir, "assets", "vocab.json"), "w") as f:
            json.dump({token: i for i, token in enumerate(vocabulary)}, f)
        with open(os.path.join(tmp_dir, "standin.json"), "w") as f:
            json.dump({"stand_in": True, "pretrained": False, "ctc": True,
                       "fixed_input_length": fixed_input_length,
                       "hidden": hidden, "layers": layers, "seed": seed,
                       "vocabulary_size": len(vocabulary)}, f, indent=2)
    return output_dir


def define_flags():
    """Defines this tool's flags (only when it runs as a program, so that it
    can be imported next to the binaries, whose flags have the same
    names)."""
    flags.DEFINE_string(
        "output_dir", None, "Directory to write the stand-in SavedModel to.")
    flags.DEFINE_integer(
        "fixed_input_length", None,
        "Exact samples per example (246000 mimics the public TF-Hub model); "
        "unset for a variable-length model.")
    flags.DEFINE_integer("hidden", 32, "Output feature size.")
    flags.DEFINE_integer("layers", 2, "Transformer encoder layers.")
    flags.DEFINE_integer("heads", 2, "Attention heads.")
    flags.DEFINE_integer(
        "conv_channels", 16, "Channels of the feature-extractor convolutions.")
    flags.DEFINE_boolean(
        "with_attention_mask", True,
        "Also accept an attention mask (serving_with_mask signature).")
    flags.DEFINE_integer("seed", 0, "Seed of the random weights.")
    flags.DEFINE_boolean("overwrite", False, "Replace an existing output_dir.")
    flags.DEFINE_boolean(
        "ctc", False, "Write a wav2vec2-CTC stand-in (logits over 32 "
        "characters) for the ctc speech recogniser instead.")


def main(argv):
    del argv
    values = flags.FLAGS
    if values.ctc:
        path = build_ctc_standin(
                values.output_dir,
                fixed_input_length=values.fixed_input_length,
                seed=values.seed, overwrite=values.overwrite)
        print(f"Wrote the wav2vec2-CTC stand-in (random weights) to {path}")
        return
    path = build_standin(
            values.output_dir, fixed_input_length=values.fixed_input_length,
            hidden=values.hidden, layers=values.layers, heads=values.heads,
            conv_channels=values.conv_channels,
            with_attention_mask=values.with_attention_mask, seed=values.seed,
            overwrite=values.overwrite)
    print(f"Wrote the wav2vec2 stand-in (random weights) to {path}")


if __name__ == "__main__":
    define_flags()
    flags.mark_flags_as_required(["output_dir"])
    app.run(main)
