"""TRANSFORMER_FUSION with a BERT-style text encoder on the offline stand-in
(tools/make_bert_standin.py): the WordPiece tokenizer, the word id → piece
bridge, which variables train, padding, config, export, errors and train.py
end to end."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from models import bert_text_encoder
from models import export
from models import optimizers
from models import registry
from models import training
from preprocessing import text_features
from tests import helpers
from tools import make_bert_standin
from tasks import loading
from tasks import model_setup

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
LABELS = helpers.LABEL_NAMES
HIDDEN = 16
# Our fold vocabulary for the model tests: the random folds' w2..w29 words
# (tests/helpers.py), with a few real words in front.
WORDS = ["i", "feel", "happy", "playing", "don't", "snow\u2603"]
VOCABULARY = {"_PAD_": 0, "_UNK_": 1,
              **{word: 2 + i for i, word in enumerate(WORDS)}}
VOCABULARY.update({f"w{i}": i for i in range(2 + len(WORDS), 30)})


@pytest.fixture(scope="module")
def standin_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("bert") / "standin"
    return make_bert_standin.build_standin(str(path), hidden=HIDDEN,
                                           layers=1, heads=2)


@pytest.fixture(scope="module")
def pieces(standin_dir):
    return model_setup.wordpiece_pieces(VOCABULARY, standin_dir)


@pytest.fixture(scope="module")
def piece_vocabulary(standin_dir):
    return text_features.load_wordpiece_vocabulary(
        os.path.join(standin_dir, "assets", "vocab.txt"))


def _build(standin_dir, pieces, **overrides):
    kwargs = dict(vocab_size=30, embedding_dim=8, audio_units=3,
                  side_units=4, hidden_units=5, audio_keep_prob=1.0,
                  fusion_keep_prob=1.0, seed=3,
                  text_encoder_handle=standin_dir,
                  text_encoder_pieces=pieces)
    return registry.build_model("TRANSFORMER_FUSION",
                                **dict(kwargs, **overrides))


def _batch(model, audio_lengths, text_lengths, seed=0):
    return helpers.padded_batch(audio_lengths, text_lengths, frames=12,
                                names=[t.name for t in model.inputs],
                                seed=seed)


# ------------------------------------------------------------ tokenizer ---

TOY_VOCAB = {token: i for i, token in enumerate(
    ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "aff",
     "play", "##ing", "##s", "n", "'", "t", "cafe", "Cafe", "a", "##b"])}


@pytest.mark.parametrize("word,lower,expected", [
    ("unaffable", True, ["un", "##aff", "##able"]),   # longest match first
    ("playing", True, ["play", "##ing"]),
    ("plays", True, ["play", "##s"]),
    ("PLAYING", True, ["play", "##ing"]),             # lowercased
    ("Caf\u00e9", True, ["cafe"]),                      # accent stripped
    ("Caf\u00e9", False, ["[UNK]"]),                    # cased: kept as is
    ("Cafe", False, ["Cafe"]),
    ("n't", True, ["n", "'", "t"]),                   # split at punctuation
    ("unx", True, ["[UNK]"]),                         # one [UNK], not un+UNK
    ("ab", True, ["a", "##b"]),
    ("a" * 101, True, ["[UNK]"]),                     # BERT's length limit
    ("\x00", True, []),                               # nothing left
])
def test_wordpiece_tokenize(word, lower, expected):
    assert text_features.wordpiece_tokenize(word, TOY_VOCAB, lower) == (
        expected)


def test_wordpiece_table_and_vocabulary_file(tmp_path):
    table = text_features.wordpiece_table(
        {"_PAD_": 0, "_UNK_": 1, "unaffable": 2, "zzz": 3}, TOY_VOCAB)
    assert table["pieces"] == [[], [1], [4, 5, 6], [1]]
    assert (table["cls_id"], table["sep_id"], table["unk_id"]) == (2, 3, 1)
    assert table["unknown_words"] == 1
    with pytest.raises(ValueError, match="contiguous ids 0..1"):
        text_features.wordpiece_table({"_PAD_": 0, "a": 5}, TOY_VOCAB)
    bad = tmp_path / "vocab.txt"
    bad.write_text("[PAD]\n[UNK]\nhello\n")
    with pytest.raises(ValueError, match=r"vocab.txt: expected a BERT "
                                         r"WordPiece vocabulary.*\[CLS\]"):
        text_features.load_wordpiece_vocabulary(str(bad))
    with pytest.raises(ValueError, match="nowhere.txt: cannot read"):
        text_features.load_wordpiece_vocabulary(str(tmp_path / "nowhere.txt"))


# --------------------------------------------------------------- bridge ---

def _ids(piece_vocabulary, tokens):
    return [piece_vocabulary[t] for t in tokens]


def test_bridge_maps_a_known_sentence(standin_dir, pieces, piece_vocabulary):
    # "i feel happy playing don't snow<snowman>" then garbage past the
    # length (ignored) and an id outside the vocabulary (→ [UNK]).
    sentence = [VOCABULARY[w] for w in WORDS]
    ids = np.zeros((3, 128), np.int32)
    ids[0, :6] = sentence
    ids[0, 6:9] = [4, 5, 6]             # past text_length: ignored
    ids[1, :2] = [VOCABULARY["happy"], 999]
    lengths = np.array([6, 2, 0], np.int32)
    bridge = bert_text_encoder.WordPieceBridge(pieces, max_length=16)
    word_ids, mask, types = (t.numpy() for t in bridge(ids, lengths))
    expected = _ids(piece_vocabulary, [
        "[CLS]", "i", "feel", "happy", "play", "##ing", "do", "##n", "'",
        "t", "[UNK]", "[SEP]"])
    assert word_ids.shape == (3, len(expected))   # padded to the longest
    assert word_ids[0].tolist() == expected
    assert word_ids[1].tolist() == _ids(piece_vocabulary, [
        "[CLS]", "happy", "[UNK]", "[SEP]"]) + [0] * 8
    assert word_ids[2].tolist() == _ids(piece_vocabulary,
                                        ["[CLS]", "[SEP]"]) + [0] * 10
    assert mask.sum(axis=1).tolist() == [12, 4, 2]
    assert (mask == (word_ids != 0)).all() and not types.any()

    # Truncation keeps the first max_length - 2 pieces, then [SEP].
    short = bert_text_encoder.WordPieceBridge(pieces, max_length=5,
                                              fixed_length=True)
    word_ids, mask, _ = (t.numpy() for t in short(ids, lengths))
    assert word_ids[0].tolist() == expected[:4] + expected[-1:]
    assert word_ids.shape == (3, 5) and mask[2].tolist() == [1, 1, 0, 0, 0]


# ---------------------------------------------------------------- model ---

def _train_step(model, optimizer, batch):
    variables = model.trainable_variables
    optimizer.build(variables)
    with tf.GradientTape() as tape:
        logits = model(batch, training=True)
        loss = tf.reduce_mean(training.sigmoid_cross_entropy(
            logits, tf.constant([0, 1, 2]), 4))
    optimizer.apply_gradients(zip(tape.gradient(loss, variables),
                                  variables))


@pytest.mark.parametrize("trainable", [True, False])
def test_encoder_variables_train_only_when_trainable(standin_dir, pieces,
                                                     trainable):
    model = _build(standin_dir, pieces, text_encoder_trainable=trainable)
    encoder = model.get_layer(bert_text_encoder.TEXT_ENCODER_LAYER_NAME)
    assert isinstance(encoder, bert_text_encoder.BertTextEncoder)
    assert encoder.output_dim == HIDDEN
    saved = tf.saved_model.load(standin_dir)
    assert len(encoder.weights) == len(saved.variables)
    if trainable:
        assert len(encoder.trainable_weights) == len(saved.variables)
    else:
        assert not encoder.trainable_weights
    before = [w.numpy().copy() for w in encoder.weights]
    head = model.get_layer("logits").kernel
    head_before = head.numpy().copy()
    optimizer = optimizers.encoder_head_optimizer_fn(
        1e-3, bert_text_encoder.TEXT_ENCODER_LAYER_NAME)(
            training.TrainConfig(learning_rate=0.01), model)
    _train_step(model, optimizer, _batch(model, [9, 4, 1], [5, 20, 1]))
    changed = [not np.array_equal(b, w.numpy())
               for b, w in zip(before, encoder.weights)]
    assert all(changed) if trainable else not any(changed)
    assert not np.array_equal(head_before, head.numpy())
    assert int(optimizer.encoder_optimizer.iterations) == int(trainable)


@pytest.mark.parametrize("pooling", ["pooled", "mean"])
def test_padded_batch_equals_each_example_alone(standin_dir, pieces,
                                                pooling):
    model = _build(standin_dir, pieces, text_encoder_pooling=pooling)
    batch = _batch(model, [9, 4, 1], [5, 25, 0], seed=2)
    # Ids past the length must not matter either.
    batch["text_ids"][0, 5:9] = 7
    helpers.assert_padded_batch_equals_alone(model, batch, [9, 4, 1])


def test_config_round_trip(standin_dir, pieces):
    model = _build(standin_dir, pieces, text_encoder_trainable=False,
                   text_encoder_seq_length=24)
    config = model.get_config()
    assert config["text_encoder_handle"] == standin_dir
    assert config["text_encoder_pieces"]["pieces"] == pieces["pieces"]
    rebuilt = type(model).from_config(json.loads(json.dumps(config)))
    assert rebuilt.get_config() == config
    assert not rebuilt.get_layer("text_encoder").trainable
    batch = _batch(model, [9, 4], [5, 30])
    np.testing.assert_allclose(rebuilt(batch).numpy(), model(batch).numpy(),
                               atol=1e-5)
    # The from-scratch default neither loads nor stores a handle.
    plain = registry.build_model("TRANSFORMER_FUSION", vocab_size=30,
                                 embedding_dim=8, seed=3)
    assert plain.get_config()["text_encoder_handle"] is None
    assert "text_encoder" not in [layer.name for layer in plain.layers]


def test_export_round_trip(standin_dir, pieces, tmp_path):
    model = _build(standin_dir, pieces, text_encoder_pooling="mean")
    # As after fine-tuning: the export must serve the in-memory encoder
    # weights, not the handle's.
    for variable in model.get_layer("text_encoder").trainable_weights:
        variable.assign(variable * 1.1 + 0.01)
    export_dir = export.export_saved_model(model, str(tmp_path / "sm"),
                                           LABELS)
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    assert sorted(serve.structured_input_signature[1]) == sorted(
        t.name for t in model.inputs)
    for seed, text_lengths in ((1, [5, 128, 0]), (2, [3, 1, 7])):
        batch = _batch(model, [9, 4, 1], text_lengths, seed=seed)
        served = serve(**{k: tf.constant(v) for k, v in batch.items()})
        np.testing.assert_allclose(served["logits"].numpy(),
                                   model(batch, training=False).numpy(),
                                   atol=1e-5)


class _NotBert(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)])
    def __call__(self, waveform):
        return waveform[:, :, None]


def test_clear_errors(standin_dir, pieces, tmp_path):
    missing = str(tmp_path / "no_bert_here")
    with pytest.raises(ValueError, match="no_bert_here.*does not exist"):
        _build(missing, pieces)
    with pytest.raises(ValueError, match="no_bert_here.*does not exist"):
        model_setup.wordpiece_pieces(VOCABULARY, missing)
    not_bert = str(tmp_path / "not_bert")
    tf.saved_model.save(_NotBert(), not_bert)
    with pytest.raises(ValueError, match=r"not_bert.*float32 tensor.*"
                                         r"expected a dict of int32"):
        _build(not_bert, pieces)
    with pytest.raises(ValueError, match=r"not_bert.*expected a BERT-style "
                                         r"SavedModel.*vocab_file"):
        model_setup.wordpiece_pieces(VOCABULARY, not_bert)
    with pytest.raises(ValueError, match="needs text_encoder_pieces"):
        _build(standin_dir, None)
    with pytest.raises(ValueError, match="has 30 rows, but vocab_size is 31"):
        _build(standin_dir, pieces, vocab_size=31)
    wrong = dict(pieces, pieces=[[10 ** 6]] * 30)
    with pytest.raises(ValueError, match="holds id 1000000.*vocab.txt has"):
        _build(standin_dir, wrong)
    with pytest.raises(ValueError, match="pooling must be one of"):
        _build(standin_dir, pieces, text_encoder_pooling="max")


@pytest.mark.slow
def test_train_py_end_to_end(standin_dir, tmp_path):
    fold_dir = helpers.write_random_fold(tmp_path / "set01",
                                         sizes=(24, 8, 8))
    run_dir = str(tmp_path / "run")
    result_file = str(tmp_path / "TEST_run_result.txt")
    fields = helpers.run_train_script([
        "--model=TRANSFORMER_FUSION",
        f"--text_encoder_handle={standin_dir}",
        f"--data_dir={fold_dir}", f"--run_dir={run_dir}",
        f"--result_file={result_file}", "--batch_size=8",
        "--num_train_steps=3", "--hidden_dim_audio=4",
        "--encoder_size_audio=60", "--encoder_lr=1e-4", "--noexport",
        # Options of one model are no longer flags (issue 13).
        "--model_override=hidden_units=8,side_units=4"
    ], result_file)
    assert "_TE1pooled_lrE0.0001_" in fields[2]
    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    kwargs = config["model"]["kwargs"]
    assert kwargs["text_encoder_handle"] == standin_dir
    assert len(kwargs["text_encoder_pieces"]["pieces"]) == 30
    assert config["train"]["encoder_lr"] == 1e-4
    # The trained run rebuilds from its config (as evaluate.py does).
    model, _ = loading.load_trained_model(run_dir)
    assert model.get_layer("text_encoder").trainable
