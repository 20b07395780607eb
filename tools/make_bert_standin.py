"""Writes a tiny, randomly initialised BERT-style text-encoder SavedModel.

THIS IS A STAND-IN, NOT A PRETRAINED MODEL: its weights are seeded random
numbers and its vocabulary is a few hundred English words plus single
letters. It has the calling contract of TF-Hub's TF2 BERT encoders (e.g.
bert_en_uncased_L-2_H-128_A-2), so the load → fine-tune → export → reload
path of `models/bert_text_encoder.py` can be tested offline. For real use,
download a BERT SavedModel elsewhere and pass its directory instead.

Example:

    python tools/make_bert_standin.py --output_dir=/tmp/bert_standin
    python train.py --model=TRANSFORMER_FUSION --data_dir=demo_data/demo_set01 \
        --text_encoder_handle=/tmp/bert_standin

Architecture (BERT in miniature): word + position + token-type embeddings →
layer norm → `layers` post-norm transformer layers (multi-head
self-attention with padded keys masked, GELU feed-forward; dropout when
called with training=True) → `sequence_output`; `pooled_output` =
tanh(dense(sequence_output[:, 0])) (the [CLS] position).

SavedModel contents (TF-Hub "reusable SavedModel" form, as the TF2 BERTs):
    `__call__(inputs, training=False)`: `inputs` is a dict of int32 [B, L]
        tensors `input_word_ids`, `input_mask` (1 = real token) and
        `input_type_ids`; returns a dict with `sequence_output` [B, L, H],
        `pooled_output` [B, H] and `default` (= pooled_output). Traced for
        `training` in {False, True}. L is `seq_length` if set, else free
        (at most `max_position`).
    `variables`, `trainable_variables`, `regularization_losses` (empty).
    `vocab_file`: an Asset, `assets/vocab.txt`.
    `do_lower_case`: a bool tf.Variable (True).
    signature `serving_default`: the three inputs as keywords → the dict.

Padding: padded keys get exactly zero attention weight, so the outputs at
real positions do not depend on how much padding follows them.
"""

import json
import math
import os
import tempfile

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from common import atomic_files

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")
# Whole words of the stand-in vocabulary; anything else is split into these,
# "##" suffixes and single characters (a-z, 0-9 and their "##" forms are all
# in it, as in real BERT vocabularies, so no lowercase ASCII word becomes
# [UNK]).
BASE_WORDS = (
    "the a an and or but i you he she it we they me him her us them my your "
    "his its our their is am are was were be been being have has had do does "
    "did not no yes to of in on at for with from by about as into like "
    "through after over between out up down off again then once here there "
    "when where why how all any both each few more most other some such only "
    "own same so than too very can will just should now what which who this "
    "that these those oh okay ok well yeah know think want go going get got "
    "make made say said see look come came take time good great happy sad "
    "angry mad love hate feel feeling really right sorry thank thanks please "
    "play run work talk walk").split()
SUFFIXES = ("s", "ed", "ing", "ly", "er", "est", "n't", "able", "ness")
_MASK_SCORE = -1e9  # exp() of it is exactly 0.0 in float32.


def standin_vocabulary(extra_words=()):
    """The stand-in's vocab.txt lines: specials, punctuation, letters,
    `##`-letters, `##`-suffixes, BASE_WORDS, then `extra_words`."""
    tokens = list(SPECIAL_TOKENS)
    tokens += [chr(c) for c in range(33, 127) if not chr(c).isalnum()]
    tokens += [str(d) for d in range(10)]
    tokens += [chr(c) for c in range(ord("a"), ord("z") + 1)]
    tokens += ["##" + chr(c) for c in range(ord("a"), ord("z") + 1)]
    tokens += [f"##{d}" for d in range(10)]
    tokens += ["##" + s for s in SUFFIXES if s.isalpha()]
    tokens += list(BASE_WORDS) + list(extra_words)
    seen, unique = set(), []
    for token in tokens:
        if token not in seen:
            seen.add(token)
            unique.append(token)
    return unique


class BertStandIn(tf.Module):
    """The stand-in network: plain TensorFlow ops over seeded random weights.

    Args:
        vocab_size: int. Rows of the word embedding.
        hidden: int. Width H.
        layers: int. Transformer layers.
        heads: int. Attention heads; must divide `hidden`.
        ffn_dim: int. Feed-forward width.
        max_position: int. Rows of the position embedding (longest L).
        dropout_rate: float. Dropout in training mode.
        seed: int.
    """

    def __init__(self, vocab_size, hidden, layers, heads, ffn_dim,
                 max_position, dropout_rate, seed):
        super().__init__(name="bert_standin")
        if hidden % heads:
            raise ValueError(f"hidden={hidden} is not divisible by "
                             f"heads={heads}.")
        self.hidden, self.heads = hidden, heads
        self.dropout_rate = dropout_rate
        rng = np.random.default_rng(seed)

        def weight(path, shape, init="normal"):
            if init == "ones":
                value = np.ones(shape)
            elif init == "zeros":
                value = np.zeros(shape)
            else:  # BERT's truncated-normal(0.02), untruncated here.
                value = rng.normal(0.0, 0.02, shape)
            return tf.Variable(value.astype(np.float32),
                               name=f"bert/{path}")

        def norm(path):
            return (weight(f"{path}/gamma", (hidden,), "ones"),
                    weight(f"{path}/beta", (hidden,), "zeros"))

        self.word_embeddings = weight("embeddings/word_embeddings",
                                      (vocab_size, hidden))
        self.position_embeddings = weight("embeddings/position_embeddings",
                                          (max_position, hidden))
        self.type_embeddings = weight("embeddings/type_embeddings",
                                      (2, hidden))
        self.embedding_norm = norm("embeddings/layer_norm")
        self.encoder_layers = []
        for i in range(layers):
            prefix = f"encoder/layer_{i}"
            self.encoder_layers.append({
                name: weight(f"{prefix}/{name}", shape, init)
                for name, shape, init in (
                    ("query/kernel", (hidden, hidden), "normal"),
                    ("query/bias", (hidden,), "zeros"),
                    ("key/kernel", (hidden, hidden), "normal"),
                    ("value/kernel", (hidden, hidden), "normal"),
                    ("value/bias", (hidden,), "zeros"),
                    ("attention_output/kernel", (hidden, hidden), "normal"),
                    ("attention_output/bias", (hidden,), "zeros"),
                    ("intermediate/kernel", (hidden, ffn_dim), "normal"),
                    ("intermediate/bias", (ffn_dim,), "zeros"),
                    ("output/kernel", (ffn_dim, hidden), "normal"),
                    ("output/bias", (hidden,), "zeros"))})
            self.encoder_layers[-1]["attention_norm"] = norm(
                f"{prefix}/attention_layer_norm")
            self.encoder_layers[-1]["output_norm"] = norm(
                f"{prefix}/output_layer_norm")
        self.pooler_kernel = weight("pooler/kernel", (hidden, hidden))
        self.pooler_bias = weight("pooler/bias", (hidden,), "zeros")

    @staticmethod
    def _layer_norm(x, norm, epsilon=1e-12):
        gamma, beta = norm
        mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
        return (x - mean) * tf.math.rsqrt(variance + epsilon) * gamma + beta

    def _dropout(self, x, training):
        if training and self.dropout_rate > 0:
            return tf.nn.dropout(x, rate=self.dropout_rate)
        return x

    def forward(self, inputs, training):
        ids = inputs["input_word_ids"]
        mask = tf.cast(inputs["input_mask"], tf.float32)
        steps = tf.shape(ids)[1]
        batch = tf.shape(ids)[0]
        x = (tf.gather(self.word_embeddings, ids)
             + self.position_embeddings[None, :steps]
             + tf.gather(self.type_embeddings, inputs["input_type_ids"]))
        x = self._dropout(self._layer_norm(x, self.embedding_norm), training)
        score_bias = (1.0 - mask)[:, None, None, :] * _MASK_SCORE
        head_dim = self.hidden // self.heads

        def split_heads(t):
            return tf.reshape(t, [batch, steps, self.heads, head_dim])

        for p in self.encoder_layers:
            query = split_heads(x @ p["query/kernel"] + p["query/bias"])
            key = split_heads(x @ p["key/kernel"])
            value = split_heads(x @ p["value/kernel"] + p["value/bias"])
            scores = tf.einsum("bqhd,bkhd->bhqk", query, key)
            weights = tf.nn.softmax(scores / math.sqrt(head_dim)
                                    + score_bias, axis=-1)
            context = tf.reshape(
                tf.einsum("bhqk,bkhd->bqhd", weights, value),
                [batch, steps, self.hidden])
            attended = (context @ p["attention_output/kernel"]
                        + p["attention_output/bias"])
            x = self._layer_norm(x + self._dropout(attended, training),
                                 p["attention_norm"])
            hidden = tf.nn.gelu(x @ p["intermediate/kernel"]
                                + p["intermediate/bias"], approximate=False)
            out = hidden @ p["output/kernel"] + p["output/bias"]
            x = self._layer_norm(x + self._dropout(out, training),
                                 p["output_norm"])
        pooled = tf.tanh(x[:, 0] @ self.pooler_kernel + self.pooler_bias)
        return {"sequence_output": x, "pooled_output": pooled,
                "default": pooled}

    @tf.function
    def __call__(self, inputs, training=False):
        return self.forward(inputs, training)


def build_standin(output_dir, hidden=32, layers=2, heads=2, ffn_dim=None,
                  seq_length=None, max_position=512, dropout_rate=0.1,
                  extra_words=(), seed=0, overwrite=False):
    """Builds the stand-in and writes it as a SavedModel into `output_dir`.

    Args:
        output_dir: str. Directory to create; it must not exist unless
            `overwrite` is set.
        hidden: int. Width H of the outputs.
        layers: int. Transformer layers.
        heads: int. Attention heads.
        ffn_dim: int or None. Feed-forward width; None means 4 * hidden.
        seq_length: int or None. If set, the inputs must have exactly this
            many positions (like the older fixed-length BERT exports); else
            any number up to `max_position`.
        max_position: int. Position-embedding rows.
        dropout_rate: float. Dropout when called with training=True.
        extra_words: iterable of str. Whole words added to the vocabulary.
        seed: int. Seed of the random weights.
        overwrite: bool. Replace an existing `output_dir`.

    Returns:
        str, `output_dir`.
    """
    if os.path.exists(output_dir) and not overwrite:
        raise ValueError(f"output_dir {output_dir!r} already exists; "
                         "pass overwrite=True (--overwrite) to replace it.")
    if seq_length is not None and not 2 <= seq_length <= max_position:
        raise ValueError(f"seq_length={seq_length} must be in [2, "
                         f"max_position={max_position}].")
    tokens = standin_vocabulary(extra_words)
    network = BertStandIn(len(tokens), hidden, layers, heads,
                          ffn_dim or 4 * hidden, max_position, dropout_rate,
                          seed)
    specs = {name: tf.TensorSpec([None, seq_length], tf.int32, name=name)
             for name in INPUT_NAMES}
    for training in (False, True):
        network.__call__.get_concrete_function(specs, training=training)

    @tf.function(input_signature=[specs])
    def serve(inputs):
        return network(inputs, training=False)

    # Written under a temporary name and renamed: an existing stand-in is
    # replaced only by a complete one.
    with atomic_files.atomic_directory(output_dir, overwrite=True) as tmp_dir:
        with tempfile.TemporaryDirectory() as scratch:
            vocab_path = os.path.join(scratch, "vocab.txt")
            with open(vocab_path, "w", encoding="utf-8") as f:
                f.write("\n".join(tokens) + "\n")
            # As the TF-Hub BERTs: a plain trackable root with the reusable
            # attributes (tf.Module's own `variables` properties are not saved).
            root = tf.train.Checkpoint()
            root.network = network
            root.__call__ = network.__call__
            root.variables = list(network.variables)
            root.trainable_variables = list(network.trainable_variables)
            root.regularization_losses = []
            root.vocab_file = tf.saved_model.Asset(vocab_path)
            root.do_lower_case = tf.Variable(True, trainable=False,
                                             name="do_lower_case")
            tf.saved_model.save(root, tmp_dir,
                                signatures={"serving_default": serve})
        description = {
            "stand_in": True,
            "pretrained": False,
            "hidden": hidden, "layers": layers, "heads": heads,
            "seq_length": seq_length, "vocab_size": len(tokens),
            "seed": seed,
            "parameters": int(sum(np.prod(v.shape) for v in network.variables)),
        }
        # Documentation for people; the encoder never reads it.
        with open(os.path.join(tmp_dir, "standin.json"), "w") as f:
            json.dump(description, f, indent=2)
    return output_dir


def define_flags():
    """Defines this tool's flags (only when it runs as a program, so that
    it can be imported next to tools/make_wav2vec2_standin.py, whose flags
    have the same names)."""
    flags.DEFINE_string("output_dir", None,
                        "Directory to write the stand-in SavedModel to.")
    flags.DEFINE_integer("hidden", 32, "Width of the outputs.")
    flags.DEFINE_integer("layers", 2, "Transformer layers.")
    flags.DEFINE_integer("heads", 2, "Attention heads.")
    flags.DEFINE_integer("seq_length", None,
                         "Exact input length (unset: variable length).")
    flags.DEFINE_string(
        "extra_words_from", None,
        "Optional text file: its whitespace-separated lowercase words are "
        "added to the vocabulary as whole words.")
    flags.DEFINE_integer("seed", 0, "Seed of the random weights.")
    flags.DEFINE_boolean("overwrite", False,
                         "Replace an existing output_dir.")


def main(argv):
    del argv
    values = flags.FLAGS
    extra = []
    if values.extra_words_from:
        with open(values.extra_words_from, encoding="utf-8") as f:
            extra = sorted(set(f.read().lower().split()))
    path = build_standin(values.output_dir, hidden=values.hidden,
                         layers=values.layers, heads=values.heads,
                         seq_length=values.seq_length, extra_words=extra,
                         seed=values.seed, overwrite=values.overwrite)
    print(f"Wrote the BERT stand-in (random weights, NOT pretrained) to "
          f"{path}")


if __name__ == "__main__":
    define_flags()
    flags.mark_flags_as_required(["output_dir"])
    app.run(main)
