"""TRANSFORMER_FUSION with any dense side input (a fold extra such as a
motion-capture array `mocap`) and with a wav2vec2 audio encoder (offline
stand-ins): parameters, padding, config, export, the fold/pipeline glue,
train.py / evaluate.py end to end, and the encoder learning rate over
several encoder layers."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tasks import train_run
from models import bert_text_encoder
from models import export
from models import optimizers
from models import registry
from models import training
from models import wav2vec2_models
from preprocessing import reference_arrays
from tests import helpers
from tools import make_bert_standin
from tools import make_wav2vec2_standin
from tasks import datasets
from tasks import evaluation
from tasks import folds
from tasks import loading
from tasks import model_setup
from tasks import prediction
from tasks import serving

LABELS = helpers.LABEL_NAMES
MOCAP_DIM = 6
TINY = dict(vocab_size=30, embedding_dim=8, transformer_units=8,
            transformer_heads=2, transformer_layers=1,
            transformer_ff_units=12, transformer_dropout=0.0, audio_units=3,
            side_units=4, fusion_units=6, hidden_units=5,
            audio_keep_prob=1.0, fusion_keep_prob=1.0, seed=3)
# Train-run arguments of train_run.run (tiny, fast).
TINY_RUN = dict(num_train_steps=3, batch_size=8, use_glove=False,
                embedding_dim=8, transformer_units=8, transformer_heads=2,
                transformer_layers=1, transformer_ff_units=12,
                hidden_dim_audio=3, side_units=4, hidden_units=5,
                encoder_size_audio=60, log=lambda _: None)


def _build(**overrides):
    return registry.build_model("TRANSFORMER_FUSION",
                                **dict(TINY, **overrides))


def _write_fold(path, extras_fn=None, sizes=(16, 8, 8), seed=0):
    """A random fold folder whose splits carry `extras_fn(n, rng)` extras."""
    splits = {}
    for index, (name, n) in enumerate(zip(("train", "dev", "test"), sizes)):
        split = helpers.random_split(n, seed=seed + index)
        rng = np.random.default_rng(seed + 10 + index)
        split.extras.update(extras_fn(n, rng) if extras_fn else {})
        splits[name] = split
    vocabulary = {"_PAD_": 0, "_UNK_": 1}
    vocabulary.update({f"w{i}": i for i in range(2, 30)})
    embedding = np.zeros((30, 8), np.float32)
    reference_arrays.write_fold(str(path), splits, vocabulary, embedding,
                                {"label_names": list(LABELS)})
    return str(path)


def _mocap(n, rng):
    return {"mocap": rng.standard_normal((n, MOCAP_DIM)).astype(np.float32)}


def _waveforms(n, rng):
    lengths = rng.integers(900, 3200, n).astype(np.int32)
    waveform = np.zeros((n, 3200), np.int16)
    for row, length in enumerate(lengths):
        waveform[row, :length] = rng.integers(-8000, 8000, length)
    return {"waveform": waveform, "waveform_length": lengths}


@pytest.fixture(scope="module")
def mocap_fold(tmp_path_factory):
    return _write_fold(tmp_path_factory.mktemp("mocap") / "set01", _mocap)


# ------------------------------------------------- side input: fold extra ---


def test_side_extra_parameters_inputs_and_padding():
    prosody = _build()
    model = _build(side_features="mocap", side_dim=MOCAP_DIM)
    # Only the side projection changes: (35+1)·S → (D+1)·S.
    assert (helpers.count_trainable(model)
            == helpers.count_trainable(prosody) - 36 * 4
            + (MOCAP_DIM + 1) * 4)
    names = {t.name: tuple(t.shape) for t in model.inputs}
    assert names == {"audio_mfcc": (None, None, 39), "audio_length": (None,),
                     "mocap": (None, MOCAP_DIM), "text_ids": (None, 128),
                     "text_length": (None,)}
    audio_lengths = [9, 4, 1]
    batch = helpers.padded_batch(audio_lengths, [5, 128, 1], frames=12,
                                 names=["audio_mfcc", "audio_length",
                                        "text_ids", "text_length"], seed=2)
    batch["mocap"] = np.random.default_rng(1).standard_normal(
        (3, MOCAP_DIM)).astype(np.float32)
    helpers.assert_padded_batch_equals_alone(model, batch, audio_lengths)
    # The side input reaches the output.
    changed = dict(batch, mocap=batch["mocap"] + 1.0)
    assert not np.allclose(model(batch).numpy(), model(changed).numpy())
    # The extra is standardised with side_mean/side_std when given.
    normalized = _build(side_features="mocap", side_dim=MOCAP_DIM,
                        audio_normalization={
                            "mfcc_mean": [0.0] * 39, "mfcc_std": [1.0] * 39,
                            "prosody_mean": [0.0] * 35,
                            "prosody_std": [1.0] * 35,
                            "side_mean": [0.5] * MOCAP_DIM,
                            "side_std": [2.0] * MOCAP_DIM})
    assert normalized.get_layer("side_standardize")
    helpers.assert_config_round_trip(normalized)


def test_side_extra_argument_errors():
    with pytest.raises(ValueError, match="needs side_dim"):
        _build(side_features="mocap")
    with pytest.raises(ValueError, match="not one of the pipeline's own"):
        _build(side_features="text_ids", side_dim=3)
    # Without side features the name is not an input.
    model = _build(side_features="mocap", use_side_features=False)
    assert "mocap" not in [t.name for t in model.inputs]


def test_side_extra_export_round_trip(tmp_path):
    model = _build(side_features="mocap", side_dim=MOCAP_DIM)
    export_dir = export.export_saved_model(model, str(tmp_path / "sm"),
                                           LABELS)
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    assert "mocap" in serve.structured_input_signature[1]
    batch = helpers.padded_batch([7, 3], [4, 9], names=[
        "audio_mfcc", "audio_length", "text_ids", "text_length"])
    batch["mocap"] = np.ones((2, MOCAP_DIM), np.float32)
    served = serve(**{k: tf.constant(v) for k, v in batch.items()})
    np.testing.assert_allclose(served["logits"].numpy(),
                               model(batch).numpy(), atol=1e-5)


def test_load_fold_and_dataset_options(mocap_fold, tmp_path):
    kwargs = dict(TINY, side_features="mocap")
    fold = folds.load_fold(mocap_fold, "TRANSFORMER_FUSION", kwargs)
    assert sorted(fold.splits["dev"].extras) == ["mocap"]
    # Other models, and the prosody default, never read it.
    assert not folds.load_fold(mocap_fold, "TRANSFORMER_FUSION",
                               TINY).splits["dev"].extras
    assert not folds.load_fold(mocap_fold, "MDRE").splits[
        "dev"].extras
    hparams = {k: v for k, v in kwargs.items()
               if k not in ("vocab_size", "embedding_dim")}
    built = model_setup.model_kwargs("TRANSFORMER_FUSION", fold, False, 8,
                                     normalize_audio=True, **hparams)
    assert built["side_dim"] == MOCAP_DIM
    assert len(built["audio_normalization"]["side_std"]) == MOCAP_DIM
    model = model_setup.build_model("TRANSFORMER_FUSION", built)
    options = datasets.dataset_options(model)
    assert options["extras"] == ("mocap",)
    features, _ = next(iter(datasets.eval_dataset(
        fold.splits["dev"], 4, 60, **options)))
    np.testing.assert_allclose(features["mocap"].numpy(),
                               fold.splits["dev"].extras["mocap"][:4])
    assert model({t.name: features[t.name] for t in model.inputs}).shape == (
        4, 4)
    # Standard models request no extras.
    assert datasets.dataset_options(_build())["extras"] == ()


@pytest.mark.parametrize("extras_fn,match", [
    (None, r"side input 'mocap'.*'extras' are \[\]"),
    (lambda n, rng: {"other": np.zeros((n, 2), np.float32)},
     r"'extras' are \['other'\]"),
    (lambda n, rng: {"mocap": np.zeros((n, 3), np.int32)},
     r"train_mocap.npy: the side input 'mocap' must be a float array "
     r"\[n, D\].*int32"),
    (lambda n, rng: {"mocap": np.zeros((n,), np.float32)},
     r"must be a float array \[n, D\].*float32 \[16\]"),
])
def test_load_fold_side_extra_errors(tmp_path, extras_fn, match):
    fold_dir = _write_fold(tmp_path / "bad", extras_fn)
    with pytest.raises(reference_arrays.DataError, match=match) as error:
        folds.load_fold(fold_dir, "TRANSFORMER_FUSION",
                        {"side_features": "mocap"})
    assert fold_dir in str(error.value)


# Slow: an end-to-end run with a mocap side input; the side-input plumbing has fast tests of its own.
@pytest.mark.slow
def test_train_evaluate_and_serving_refusal(mocap_fold, tmp_path):
    run_dir = str(tmp_path / "run")
    train_run.run(model="TRANSFORMER_FUSION", data_dir=mocap_fold,
                run_dir=run_dir, side_features="mocap", normalize_audio=True,
                result_file=str(tmp_path / "results.txt"), **TINY_RUN)
    config = loading.load_trained_model(run_dir)[1]
    kwargs = config["model"]["kwargs"]
    assert kwargs["side_features"] == "mocap"
    assert kwargs["side_dim"] == MOCAP_DIM
    assert "_Smocap_" in config["run_name"]
    metrics = evaluation.evaluate(run_dir, split="dev")
    assert 0.0 <= metrics["wa"] <= 1.0
    # The export takes the side input; predict.py cannot compute it.
    export_dir = os.path.join(run_dir, "saved_model")
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    assert "mocap" in serve.structured_input_signature[1]
    for source in (export_dir, run_dir):
        with pytest.raises(serving.InferenceError,
                           match="needs the side input mocap, which "
                                 "predict.py cannot compute from a wav"):
            prediction.Predictor.load(source)


def test_prosody_configs_are_unchanged(mocap_fold, tmp_path):
    # The default side input adds no new keys to a run's model kwargs, so
    # earlier runs still resume.
    run_dir = str(tmp_path / "run")
    train_run.run(model="TRANSFORMER_FUSION", data_dir=mocap_fold,
                run_dir=run_dir, export=False,
                result_file=str(tmp_path / "results.txt"), **TINY_RUN)
    kwargs = loading.load_trained_model(run_dir)[1]["model"]["kwargs"]
    # The run's config holds every option explicitly (defaults included),
    # and nothing the fold did not ask for.
    assert kwargs["side_features"] == "audio_prosody"
    assert kwargs["hub_handle"] is None and "side_dim" not in kwargs


# -------------------------------------------------- wav2vec2 audio encoder ---


@pytest.fixture(scope="module")
def wav2vec2_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("w2v2") / "standin"
    return make_wav2vec2_standin.build_standin(str(path), hidden=16,
                                               conv_channels=8)


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("bert") / "standin"
    return make_bert_standin.build_standin(str(path), hidden=16, layers=1,
                                           heads=2)


@pytest.fixture(scope="module")
def waveform_fold(tmp_path_factory):
    def extras(n, rng):
        return {**_waveforms(n, rng), **_mocap(n, rng)}
    return _write_fold(tmp_path_factory.mktemp("wave") / "set01", extras)


def _waveform_batch(lengths, seed=0, pad_value=0.0):
    rng = np.random.default_rng(seed)
    waveform = np.full((len(lengths), max(lengths)), pad_value, np.float32)
    for row, length in enumerate(lengths):
        waveform[row, :length] = rng.uniform(-0.5, 0.5, length)
    text = helpers.padded_batch([1] * len(lengths),
                                [3 + row for row in range(len(lengths))],
                                seed=seed, names=["text_ids", "text_length",
                                                  "audio_prosody"])
    return {"waveform": waveform,
            "waveform_length": np.asarray(lengths, np.int32), **text}


@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_wav2vec2_encoder_inputs_padding_and_config(wav2vec2_dir, pooling):
    model = _build(audio_encoder="wav2vec2", hub_handle=wav2vec2_dir,
                   pooling=pooling)
    names = sorted(t.name for t in model.inputs)
    assert names == ["audio_prosody", "text_ids", "text_length", "waveform",
                     "waveform_length"]
    assert model.get_layer(wav2vec2_models.ENCODER_LAYER_NAME)
    assert datasets.waveform_max_samples(model) is None
    assert folds.needs_waveforms(
        "TRANSFORMER_FUSION", {"audio_encoder": "wav2vec2"})
    assert not folds.needs_waveforms("TRANSFORMER_FUSION", {})
    # Padded with non-zero values: each example as alone (the stand-in
    # takes an attention mask).
    batch = _waveform_batch([6000, 2500, 800, 130], pad_value=0.3)
    together = model(batch).numpy()
    for row, length in enumerate(batch["waveform_length"]):
        alone = {k: v[row:row + 1] for k, v in batch.items()}
        alone["waveform"] = alone["waveform"][:, :length]
        np.testing.assert_allclose(together[row], model(alone).numpy()[0],
                                   atol=1e-5)
    config = helpers.assert_config_round_trip(model)
    assert config["hub_handle"] == wav2vec2_dir
    with pytest.raises(ValueError, match="needs hub_handle"):
        _build(audio_encoder="wav2vec2")


def test_several_encoder_layers_get_the_encoder_rate(wav2vec2_dir, bert_dir):
    vocabulary = {"_PAD_": 0, "_UNK_": 1,
                  **{f"w{i}": i for i in range(2, 30)}}
    model = _build(audio_encoder="wav2vec2", hub_handle=wav2vec2_dir,
                   text_encoder_handle=bert_dir,
                   text_encoder_pieces=model_setup.wordpiece_pieces(
                       vocabulary, bert_dir))
    names = [wav2vec2_models.ENCODER_LAYER_NAME,
             bert_text_encoder.TEXT_ENCODER_LAYER_NAME]
    encoders = [model.get_layer(name).trainable_variables for name in names]
    assert all(encoders)
    optimizer = optimizers.encoder_head_optimizer_fn(1e-3, names)(
        training.TrainConfig(learning_rate=0.01), model)
    assert sum(map(optimizer.is_encoder_variable,
                   model.trainable_variables)) == sum(map(len, encoders))
    before = [[v.numpy().copy() for v in group] for group in encoders]
    batch = _waveform_batch([3000, 1500, 900])
    variables = model.trainable_variables
    optimizer.build(variables)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(training.sigmoid_cross_entropy(
            model(batch, training=True), tf.constant([0, 1, 2]), 4))
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    for group, values in zip(encoders, before):
        assert any(not np.array_equal(b, v.numpy())
                   for b, v in zip(values, group))
    assert int(optimizer.encoder_optimizer.iterations) == 1
    with pytest.raises(ValueError, match="no layer 'speech'"):
        optimizers.encoder_head_optimizer_fn(1e-5, names + ["speech"])(
            training.TrainConfig(), model)
    with pytest.raises(ValueError, match="non-empty"):
        optimizers.encoder_head_optimizer_fn(1e-5, [])


@pytest.mark.slow
def test_train_py_with_wav2vec2_bert_and_mocap(wav2vec2_dir, bert_dir,
                                               waveform_fold, tmp_path):
    run_dir = str(tmp_path / "run")
    train_run.run(model="TRANSFORMER_FUSION", data_dir=waveform_fold,
                run_dir=run_dir, audio_encoder="wav2vec2",
                hub_handle=wav2vec2_dir, text_encoder_handle=bert_dir,
                side_features="mocap", encoder_lr=1e-4, export=False,
                result_file=str(tmp_path / "results.txt"), **TINY_RUN)
    model, config = loading.load_trained_model(run_dir)
    kwargs = config["model"]["kwargs"]
    assert kwargs["hub_handle"] == wav2vec2_dir
    assert kwargs["audio_encoder"] == "wav2vec2"
    assert config["train"]["encoder_lr"] == 1e-4
    assert sorted(t.name for t in model.inputs) == [
        "mocap", "text_ids", "text_length", "waveform", "waveform_length"]
    metrics = evaluation.evaluate(run_dir, split="test")
    assert 0.0 <= metrics["wa"] <= 1.0
    plain = _write_fold(tmp_path / "plain", _mocap)
    with pytest.raises(reference_arrays.DataError,
                       match="--audio_encoder=wav2vec2"):
        folds.load_fold(plain, "TRANSFORMER_FUSION", kwargs)
