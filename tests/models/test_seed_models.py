"""The seed-system models: hand-counted parameters, masking, config, export,
and a short training run that beats chance on the demo corpus."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import experiment
from models import export
from models import registry
from models import seed_models
from models import transformer_fusion
from models import training
from tests import helpers

LABELS = ("angry", "happy", "sad", "neutral")
NAMES = tuple(seed_models.MODELS) + tuple(transformer_fusion.MODELS)

# One tiny config per model (V = 30, E = 8, C = 4).
TINY = {
    "BLSTM_SA_TEXT": dict(vocab_size=30, embedding_dim=8, text_units=5,
                          attention_units=4, hidden_units=6,
                          text_keep_prob=1.0, seed=3),
    "CNN_SPEC": dict(cnn_filters=(2, 3), cnn_kernel_size=3, hidden_units=5,
                     audio_keep_prob=1.0, seed=3),
    "MMMF": dict(vocab_size=30, embedding_dim=8, audio_units=3, text_units=5,
                 attention_units=4, fusion_units=6, audio_keep_prob=1.0,
                 text_keep_prob=1.0, seed=3),
    "TRANSFORMER_FUSION": dict(
        vocab_size=30, embedding_dim=8, transformer_units=8,
        transformer_heads=2, transformer_layers=1, transformer_ff_units=12,
        transformer_dropout=0.0, audio_units=3, side_units=4,
        fusion_units=6, hidden_units=5, audio_keep_prob=1.0,
        fusion_keep_prob=1.0, seed=3),
}
VARIANTS = [
    ("BLSTM_SA_TEXT", {}),
    ("CNN_SPEC", {}),
    ("CNN_SPEC", {"use_prosody": True}),
    ("MMMF", {"pooling": "attention"}),
    ("MMMF", {"pooling": "mean"}),
    ("MMMF", {"pooling": "last"}),
    ("TRANSFORMER_FUSION", {}),
    ("TRANSFORMER_FUSION", {"fusion": "pairwise"}),
    ("TRANSFORMER_FUSION", {"audio_encoder": "cnn",
                            "use_side_features": False}),
]


def _count(model):
    return helpers.count_trainable(model)


def _build(name, **overrides):
    return registry.build_model(name, **dict(TINY[name], **overrides))


def _batch(model, audio_lengths, text_lengths, frames=12, seed=0):
    return helpers.padded_batch(audio_lengths, text_lengths, frames,
                                names=[t.name for t in model.inputs],
                                seed=seed)


# Counted by hand from the architecture (see each class docstring).
_V_E = 30 * 8
_BLSTM_SA = (_V_E + 2 * 4 * 5 * (8 + 5 + 1)      # embedding, BiLSTM
             + 2 * 5 * 4 + 4 + 4                 # self-attention pooling
             + (2 * 5 + 1) * 6 + (6 + 1) * 4)    # hidden, logits
_CNN = ((9 * 1 + 1) * 2 + (9 * 2 + 1) * 3        # conv blocks
        + (10 * 3 + 1) * 5 + (5 + 1) * 4)         # F' = 39→20→10
_MMMF_LAST = (_V_E + 2 * 4 * 3 * (39 + 3 + 1)     # audio BiLSTM
              + 2 * 4 * 5 * (8 + 5 + 1)           # text BiLSTM
              + (2 * 3 + 1) * 6 + (2 * 5 + 1) * 6  # projections to U
              + 6 * 4 + 2 * 4                     # modality attention
              + (6 + 1) * 4)                      # logits
_ATTENTION_POOLS = (2 * 3 * 4 + 8) + (2 * 5 * 4 + 8)
_TRANSFORMER_TEXT = (_V_E + (8 + 1) * 8 + 128 * 8           # emb, proj, pos
                     + 4 * (8 * 8 + 8) + 2 * 8              # MHA, LN
                     + (8 + 1) * 12 + (12 + 1) * 8 + 2 * 8)  # FFN, LN
_GRU = 3 * 3 * (39 + 3 + 1)
_SIDE = (35 + 1) * 4


@pytest.mark.parametrize("name,overrides,expected", [
    ("BLSTM_SA_TEXT", {}, _BLSTM_SA),
    ("CNN_SPEC", {}, _CNN),
    ("CNN_SPEC", {"use_prosody": True}, _CNN + 35 * 5),
    ("MMMF", {"pooling": "attention"}, _MMMF_LAST + _ATTENTION_POOLS),
    ("MMMF", {"pooling": "mean"}, _MMMF_LAST),
    ("MMMF", {"pooling": "last"}, _MMMF_LAST),
    ("TRANSFORMER_FUSION", {},
     _TRANSFORMER_TEXT + _GRU + _SIDE + (8 + 3 + 4 + 1) * 5 + (5 + 1) * 4),
    ("TRANSFORMER_FUSION", {"fusion": "pairwise"},
     _TRANSFORMER_TEXT + _GRU + _SIDE
     + (8 + 1) * 6 + (3 + 1) * 6 + (4 + 1) * 6   # projections to U
     + (6 * 6 + 1) * 5 + (5 + 1) * 4),          # 3 unimodal + 3 pairwise
])
def test_parameter_counts_by_hand_and_output_shape(name, overrides, expected):
    model = _build(name, **overrides)
    assert _count(model) == expected
    batch = _batch(model, [12, 5, 1], [7, 128, 1])
    assert model(batch, training=False).shape == (3, 4)


def test_models_are_registered_with_the_training_glue():
    for name in NAMES:
        assert registry.spec(name).family == "seed"
        assert registry.spec(name).reads_text == (name != "CNN_SPEC")
    model = _build("CNN_SPEC")
    assert sorted(t.name for t in model.inputs) == ["audio_length",
                                                    "audio_mfcc"]


@pytest.mark.parametrize("name,overrides", VARIANTS)
def test_padded_batch_equals_each_example_alone(name, overrides):
    model = _build(name, **overrides)
    audio_lengths, text_lengths = [12, 5, 1, 0], [7, 128, 1, 3]
    batch = _batch(model, audio_lengths, text_lengths)
    helpers.assert_padded_batch_equals_alone(model, batch, audio_lengths)


@pytest.mark.parametrize("name,overrides", VARIANTS)
def test_values_past_the_lengths_are_ignored(name, overrides):
    model = _build(name, **overrides)
    batch = _batch(model, [9, 3], [7, 2])
    expected = model(batch, training=False).numpy()
    rng = np.random.default_rng(1)
    if "audio_mfcc" in batch:
        tail = batch["audio_mfcc"][1, 3:]
        batch["audio_mfcc"][1, 3:] = rng.standard_normal(tail.shape) * 100
    if "text_ids" in batch:
        batch["text_ids"][0, 7:] = rng.integers(2, 30, 121)
        batch["text_ids"][1, 2:] = rng.integers(2, 30, 126)
    np.testing.assert_allclose(model(batch, training=False).numpy(),
                               expected, atol=1e-5)


def test_mmmf_pooling_variants_differ_and_are_checked():
    batch = None
    outputs = []
    for pooling in seed_models.MMMF_POOLINGS:
        model = _build("MMMF", pooling=pooling)
        batch = batch or _batch(model, [9, 3], [7, 2])
        outputs.append(model(batch, training=False).numpy())
    assert not np.allclose(outputs[0], outputs[1])
    with pytest.raises(ValueError, match="pooling must be one of"):
        _build("MMMF", pooling="max")
    with pytest.raises(ValueError, match="fusion must be one of"):
        _build("TRANSFORMER_FUSION", fusion="sum")


def test_modality_fusion_weights_sum_to_one():
    model = _build("MMMF")
    fusion = model.get_layer("modality_fusion")
    vectors = [np.random.default_rng(i).standard_normal((3, 6)).astype(
        np.float32) for i in range(2)]
    fused, weights = fusion(vectors, return_weights=True)
    np.testing.assert_allclose(weights.numpy().sum(axis=1), 1.0, atol=1e-6)
    expected = (weights.numpy()[:, :1] * vectors[0]
                + weights.numpy()[:, 1:] * vectors[1])
    np.testing.assert_allclose(fused.numpy(), expected, atol=1e-6)


def test_dropout_only_in_training():
    model = _build("BLSTM_SA_TEXT", text_keep_prob=0.5)
    batch = _batch(model, [3, 3], [7, 9])
    first = model(batch, training=False).numpy()
    np.testing.assert_array_equal(first, model(batch, training=False).numpy())
    assert not np.allclose(first, model(batch, training=True).numpy())


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(name):
    overrides = {} if name == "BLSTM_SA_TEXT" else {
        "audio_normalization": {"mfcc_mean": [0.5] * 39,
                                "mfcc_std": [2.0] * 39,
                                "prosody_mean": [1.0] * 35,
                                "prosody_std": [3.0] * 35}}
    model = _build(name, **overrides)
    helpers.assert_config_round_trip(model)


@pytest.mark.parametrize("name", NAMES)
def test_export_round_trip(name, tmp_path):
    model = _build(name)
    export_dir = export.export_saved_model(model, str(tmp_path / "sm"),
                                           LABELS)
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    names = [t.name for t in model.inputs]
    assert sorted(serve.structured_input_signature[1]) == sorted(names)
    for audio_lengths in ([9, 4, 1], [4, 2, 3]):
        batch = _batch(model, audio_lengths, [5, 128, 1],
                       frames=max(audio_lengths), seed=5)
        served = serve(**{k: tf.constant(v) for k, v in batch.items()})
        np.testing.assert_allclose(served["logits"].numpy(),
                                   model(batch, training=False).numpy(),
                                   atol=1e-5)


# ---------------------------------------------------- short training run ---

FRAMES = 100  # clip the demo's utterances to 1 s, as tests/models/test_training.py


@pytest.mark.slow
def test_short_training_runs_beat_chance(demo_fold, tmp_path):
    accuracies = {}
    for name in NAMES:
        hparams = {k: v for k, v in TINY[name].items()
                   if k not in ("vocab_size", "embedding_dim")}
        # Wider than TINY, so that 60 steps learn something.
        hparams.update({
            "BLSTM_SA_TEXT": dict(text_units=16, attention_units=16,
                                  hidden_units=16),
            "CNN_SPEC": dict(cnn_filters=(8, 16), hidden_units=16,
                             use_prosody=True),
            "MMMF": dict(audio_units=8, text_units=16, fusion_units=16),
            "TRANSFORMER_FUSION": dict(transformer_units=16, audio_units=8,
                                       hidden_units=16),
        }[name])
        kwargs = experiment.model_kwargs(name, demo_fold, use_glove=False,
                                         embedding_dim=8,
                                         normalize_audio=True, **hparams)
        config = training.TrainConfig(batch_size=32, learning_rate=0.01,
                                      num_train_steps=60)
        keras.utils.set_random_seed(0)
        trainer = training.Trainer(
            lambda: experiment.build_model(name, kwargs),
            tf.distribute.get_strategy(), str(tmp_path / name), config, 4,
            demo_fold.label_names, log=lambda _: None)
        result = trainer.fit(
            experiment.train_dataset_fn(demo_fold.splits["train"], 32,
                                        "sample", 0, FRAMES),
            experiment.eval_dataset(demo_fold.splits["dev"], 64, FRAMES),
            experiment.eval_dataset(demo_fold.splits["test"], 64, FRAMES),
            num_train=len(demo_fold.splits["train"]))
        accuracies[name] = result.final_test["wa"]
    # Chance is 0.25 on the 4 balanced demo classes.
    assert all(wa > 0.35 for wa in accuracies.values()), accuracies
