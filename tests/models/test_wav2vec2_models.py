"""W2V2 / W2V2_TRE / W2V2_TREA on the offline wav2vec2 stand-in: shapes,
padding, which variables train at which learning rate, config, export, the
raw-waveform pipeline, `build_arrays --store_waveforms` and train.py end to
end."""

import json
import os

import keras
import numpy as np
import pytest
import soundfile
import tensorflow as tf

from models import export
from models import optimizers
from models import registry
from models import training
from models import wav2vec2_encoder
from models import wav2vec2_models
from preprocessing import build_arrays
from preprocessing import demo_corpus
from preprocessing import input_pipeline
from preprocessing import reference_arrays
from tests import helpers
from tests.corpus_fixtures import make_manifest_corpus
from tools import make_wav2vec2_standin
from tasks import datasets
from tasks import evaluation
from tasks import folds

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
HIDDEN = 16
LABELS = helpers.LABEL_NAMES
MODEL_NAMES = ("W2V2", "W2V2_TRE", "W2V2_TREA")


@pytest.fixture(scope="module")
def standin_dir(tmp_path_factory):
    """A small variable-length stand-in that accepts an attention mask."""
    path = tmp_path_factory.mktemp("w2v2") / "standin"
    return make_wav2vec2_standin.build_standin(str(path), hidden=HIDDEN,
                                               conv_channels=8)


@pytest.fixture(scope="module")
def demo_fold_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    return demo_corpus.generate(str(root / "demo"), num_utterances=60,
                                num_workers=1, log=lambda _: None)


def _kwargs(standin_dir, **overrides):
    return dict(dict(hub_handle=standin_dir, vocab_size=30, embedding_dim=8,
                     text_units=6, text_keep_prob=1.0, seed=3), **overrides)


def _build(name, standin_dir, **overrides):
    """Model `name` with the settings of `_kwargs` it takes (W2V2 takes no
    text settings)."""
    return registry.build_model(name, **registry.model_arguments(
        name, **_kwargs(standin_dir, **overrides)))


def _batch(lengths, text_lengths=None, seed=0, pad_value=0.0):
    """Raw-audio features: [B, max(lengths)] noise, padded with pad_value."""
    rng = np.random.default_rng(seed)
    waveform = np.full((len(lengths), max(lengths)), pad_value, np.float32)
    for row, length in enumerate(lengths):
        waveform[row, :length] = rng.uniform(-0.5, 0.5, length)
    text_lengths = text_lengths or [3 + row for row in range(len(lengths))]
    text = helpers.padded_batch([1] * len(lengths), text_lengths, seed=seed,
                                names=["text_ids", "text_length"])
    return {"waveform": waveform,
            "waveform_length": np.asarray(lengths, np.int32), **text}


def _inputs(model, batch):
    return {t.name: batch[t.name] for t in model.inputs}


def _values(variables):
    return [np.array(v.numpy()) for v in variables]


def _changed(before, variables):
    return [not np.array_equal(b, v.numpy()) for b, v in zip(before,
                                                               variables)]


def _train_steps(model, optimizer, batch, labels, steps=2):
    """Eager steps of the Trainer's loss (sigmoid CE over one-hot); returns
    {variable id: gradient} of the last step."""
    variables = model.trainable_variables
    optimizer.build(variables)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            logits = model(_inputs(model, batch), training=True)
            loss = tf.reduce_mean(training.sigmoid_cross_entropy(
                logits, labels, 4))
        gradients = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(gradients, variables))
    return {id(v): g for v, g in zip(variables, gradients)}


def _optimizer(model, encoder_lr, lr=0.01):
    config = training.TrainConfig(learning_rate=lr)
    return optimizers.encoder_head_optimizer_fn(
        encoder_lr, wav2vec2_models.ENCODER_LAYER_NAME)(config, model)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_inputs_and_shapes(standin_dir, name):
    model = _build(name, standin_dir, pooling="attention")
    names = {t.name: (t.dtype, tuple(t.shape)) for t in model.inputs}
    expected = {"waveform": ("float32", (None, None)),
                "waveform_length": ("int32", (None,))}
    if name != "W2V2":
        expected.update(text_ids=("int32", (None, 128)),
                        text_length=("int32", (None,)))
    assert names == expected
    assert model.outputs[0].shape == (None, 4)
    logits = model(_inputs(model, _batch([5000, 2100, 650])))
    assert logits.shape == (3, 4)
    encoder = model.get_layer(wav2vec2_models.ENCODER_LAYER_NAME)
    assert isinstance(encoder, wav2vec2_encoder.Wav2Vec2Encoder)
    with pytest.raises(ValueError, match="pooling must be one of"):
        _build(name, standin_dir, pooling="max")


@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_padded_batch_equals_each_example_alone(standin_dir, pooling):
    # The stand-in takes an attention mask, so real frames do not see the
    # padding; non-zero padding values are zeroed by the encoder. (The text
    # models add a text branch that never sees the waveform.)
    model = _build("W2V2", standin_dir, pooling=pooling)
    batch = _batch([6000, 2500, 800, 130], pad_value=0.3)
    batched = model(_inputs(model, batch)).numpy()
    for row, length in enumerate(batch["waveform_length"]):
        alone = {k: v[row:row + 1] for k, v in batch.items()}
        alone["waveform"] = alone["waveform"][:, :length]
        np.testing.assert_allclose(
            batched[row], model(_inputs(model, alone)).numpy()[0],
            atol=1e-5)


@pytest.mark.parametrize("trainable", [True, False])
def test_encoder_trains_only_when_trainable(standin_dir, trainable):
    model = _build("W2V2", standin_dir, encoder_trainable=trainable,
                   freeze_feature_extractor=False)
    encoder = model.get_layer(wav2vec2_models.ENCODER_LAYER_NAME)
    encoder_variables = encoder.weights
    head = model.get_layer("logits").weights
    before, head_before = _values(encoder_variables), _values(head)
    optimizer = _optimizer(model, encoder_lr=1e-3)
    _train_steps(model, optimizer, _batch([3000, 1500, 900, 2000]),
                 tf.constant([0, 1, 2, 3]))
    assert all(_changed(head_before, head))
    changed = _changed(before, encoder_variables)
    if trainable:
        assert all(changed)
        assert int(optimizer.encoder_optimizer.iterations) == 2
    else:
        assert not encoder.trainable_weights and not any(changed)
        assert int(optimizer.encoder_optimizer.iterations) == 0
    assert int(optimizer.iterations) == 2


def test_encoder_learning_rate_is_separate(standin_dir):
    model = _build("W2V2", standin_dir, encoder_trainable=True,
                   pooling="attention")
    encoder = model.get_layer(wav2vec2_models.ENCODER_LAYER_NAME)
    trainable = encoder.trainable_weights
    frozen = encoder.non_trainable_weights  # the conv feature extractor
    assert trainable and frozen
    head = [v for v in model.trainable_weights
            if not any(v is w for w in trainable)]
    optimizer = _optimizer(model, encoder_lr=0.0)
    before = _values(trainable + frozen + head)
    gradients = _train_steps(model, optimizer, _batch([3000, 1500, 900]),
                             tf.constant([0, 1, 2]))
    # The encoder's gradients are not zero: only its learning rate holds it.
    assert all(float(tf.reduce_max(tf.abs(gradients[id(v)]))) > 0
               for v in trainable)
    changed = _changed(before, trainable + frozen + head)
    assert not any(changed[:len(trainable) + len(frozen)])
    assert all(changed[len(trainable) + len(frozen):])
    assert sum(map(optimizer.is_encoder_variable,
                   model.trainable_weights)) == len(trainable)
    with pytest.raises(ValueError, match="no layer 'speech'"):
        optimizers.encoder_head_optimizer_fn(1e-5, "speech")(
            training.TrainConfig(), model)


def test_optimizer_checkpoint_resumes_exactly(standin_dir, tmp_path):
    batch, labels = _batch([2000, 1200]), tf.constant([1, 3])

    def fresh():
        keras.utils.set_random_seed(0)
        model = _build("W2V2", standin_dir)
        optimizer = _optimizer(model, encoder_lr=1e-3)
        optimizer.build(model.trainable_variables)
        return model, optimizer

    model, optimizer = fresh()
    _train_steps(model, optimizer, batch, labels, steps=1)
    path = tf.train.Checkpoint(model=model, optimizer=optimizer).save(
        str(tmp_path / "ckpt"))
    resumed_model, resumed = fresh()
    tf.train.Checkpoint(model=resumed_model, optimizer=resumed).restore(
        path).assert_consumed()
    # Weights, both step counters and both Adams' moments come back.
    assert int(resumed.encoder_optimizer.iterations) == 1
    assert int(resumed.head_optimizer.iterations) == 1
    for saved, restored in (
            (model.weights, resumed_model.weights),
            (optimizer.encoder_optimizer.variables,
             resumed.encoder_optimizer.variables),
            (optimizer.head_optimizer.variables,
             resumed.head_optimizer.variables)):
        assert len(saved) == len(restored)
        for a, b in zip(saved, restored):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert any(np.abs(v.numpy()).max() > 0
               for v in resumed.encoder_optimizer.variables[1:])


@pytest.mark.parametrize("name", ["W2V2", "W2V2_TREA"])
def test_config_round_trip(standin_dir, name):
    model = _build(name, standin_dir, encoder_trainable=False,
                   pooling="mean", fixed_input_length=8000)
    config = model.get_config()
    assert config["hub_handle"] == standin_dir
    assert len(json.dumps(config)) < 1000  # arguments, never weights
    cls = type(model)
    assert keras.saving.get_registered_object(f"mse>{name}") is cls
    rebuilt = cls.from_config(config)
    assert rebuilt.get_config() == config
    assert not rebuilt.get_layer("wav2vec2").trainable
    # The pipeline crops waveforms to what the encoder reads.
    assert datasets.waveform_max_samples(rebuilt) == 8000
    batch = _batch([3000, 900])
    # Same handle and seeds: the same encoder and head weights.
    np.testing.assert_allclose(rebuilt(_inputs(rebuilt, batch)).numpy(),
                               model(_inputs(model, batch)).numpy(),
                               atol=1e-5)


def test_export_round_trip_serves_raw_audio(standin_dir, tmp_path):
    # W2V2_TREA's export (raw audio + token ids) is tested end to end below.
    model = _build("W2V2", standin_dir, pooling="attention")
    # Stand-in for fine-tuning: the served encoder weights must be the
    # in-memory ones, not those of the handle's SavedModel.
    for variable in model.get_layer("wav2vec2").trainable_weights:
        variable.assign(variable * 1.1 + 0.01)
    export_dir = export.export_saved_model(model, str(tmp_path / "sm"),
                                           LABELS)
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    specs = serve.structured_input_signature[1]
    assert specs["waveform"].dtype == tf.float32
    assert specs["waveform"].shape.as_list() == [None, None]
    assert sorted(specs) == ["waveform", "waveform_length"]
    for lengths in ([4200, 2600, 700], [900, 1800]):
        inputs = _inputs(model, _batch(lengths, seed=4))
        served = serve(**{k: tf.constant(v) for k, v in inputs.items()})
        np.testing.assert_allclose(served["logits"].numpy(),
                                   model(inputs).numpy(), atol=1e-5)


def test_pipeline_gathers_float_waveforms(standin_dir, demo_fold_dir):
    fold = folds.load_fold(demo_fold_dir, "W2V2")
    split = fold.splits["dev"]
    pcm, lengths = (split.extras["waveform"],
                    split.extras["waveform_length"])
    assert pcm.dtype == np.int16  # the corpus is never held as float
    dataset = input_pipeline.make_dataset(split, 4, waveforms=True,
                                          waveform_max_samples=20000,
                                          waveform_crop_multiple=1000)
    features, _ = next(iter(dataset))
    waveform = features["waveform"].numpy()
    clipped = np.minimum(lengths[:4], 20000)
    np.testing.assert_array_equal(features["waveform_length"], clipped)
    assert waveform.dtype == np.float32
    assert waveform.shape == (4, min(-(-clipped.max() // 1000) * 1000,
                                     20000))
    for row, length in enumerate(clipped):
        np.testing.assert_array_equal(waveform[row, :length],
                                      pcm[row, :length] / 32768.0)
        assert not waveform[row, length:].any()
    assert np.abs(waveform).max() <= 1.0
    # Every model input is a pipeline feature with its dtype and rank.
    spec = dataset.element_spec[0]
    model = _build("W2V2_TREA", standin_dir,
                   vocab_size=len(fold.vocabulary))
    for tensor in model.inputs:
        assert spec[tensor.name].dtype.name == tensor.dtype
        assert spec[tensor.name].shape.rank == len(tensor.shape)
    assert model(_inputs(model, features)).shape == (4, 4)
    with pytest.raises(ValueError, match="clash"):
        input_pipeline.make_dataset(split, 4, waveforms=True,
                                    extras=["waveform"])


def test_load_fold_reads_waveforms_only_for_wav2vec2(demo_fold_dir,
                                                     tmp_path):
    assert not folds.load_fold(demo_fold_dir, "MDREA").splits[
        "train"].extras
    fold = folds.load_fold(demo_fold_dir, "W2V2_TRE")
    assert sorted(fold.splits["train"].extras) == ["waveform",
                                                   "waveform_length"]
    assert fold.embedding is not None
    plain = helpers.write_random_fold(tmp_path / "set01")
    with pytest.raises(reference_arrays.DataError,
                       match=r"set01: no raw waveforms.*--store_waveforms"):
        folds.load_fold(plain, "W2V2")
    from tasks import train_run
    with pytest.raises(ValueError, match="needs --hub_handle"):
        train_run.run("W2V2", plain, run_dir=str(tmp_path / "run"),
                    log=lambda _: None)


def test_build_arrays_store_waveforms(tmp_path):
    root = str(tmp_path)
    manifest = make_manifest_corpus(root, num=12, num_speakers=4)
    config = build_arrays.BuildConfig(
        corpus="manifest", manifest=manifest, output_dir=root + "/out",
        split="speaker", num_folds=2, embedding_dim=4, num_workers=1,
        progress=False, store_waveforms=True, waveform_max_seconds=0.2)
    # Builds made before the option existed keep their hash.
    plain = build_arrays.BuildConfig(corpus="manifest", manifest=manifest,
                                     output_dir=root + "/out")
    assert "store_waveforms" not in plain.hashed_parameters()
    assert config.hashed_parameters()["store_waveforms"] is True
    build_arrays.build(config, log=lambda _: None)
    fold_dir = os.path.join(config.output_dir, "speaker_fold01")
    fold = reference_arrays.load_fold(fold_dir)
    assert fold.manifest["extras"]["waveform"]["dtype"] == "int16"
    assert fold.manifest["waveforms"]["sample_rate"] == 16000
    ids = fold.manifest["split_ids"]
    for name, split in fold.splits.items():
        pcm = split.extras["waveform"]
        lengths = split.extras["waveform_length"]
        assert pcm.dtype == np.int16 and lengths.dtype == np.int32
        assert pcm.shape == (len(split), lengths.max())
        # The tones last 0.25 s: cropped to 0.2 s = 3200 samples.
        assert set(lengths.tolist()) == {3200}
        for row, utterance in enumerate(ids[name]):
            # 16-bit files are stored bit-exactly (then cropped).
            expected, _ = soundfile.read(
                os.path.join(root, "wav", utterance + ".wav"), dtype="int16")
            np.testing.assert_array_equal(pcm[row], expected[:3200])
    # The fold feeds the wav2vec2 models.
    assert folds.load_fold(fold_dir, "W2V2").splits["dev"].extras
    with pytest.raises(ValueError, match="needs store_waveforms"):
        build_arrays.BuildConfig(corpus="manifest", manifest=manifest,
                                 output_dir=root + "/x",
                                 waveform_max_seconds=1.0).validate()


@pytest.mark.slow
def test_train_py_end_to_end(standin_dir, demo_fold_dir, tmp_path):
    result_file = str(tmp_path / "TEST_run_result.txt")
    run_dir = str(tmp_path / "run")
    fields = helpers.run_train_script([
        "--model=W2V2_TREA", f"--hub_handle={standin_dir}",
        f"--data_dir={demo_fold_dir}", f"--run_dir={run_dir}",
        f"--result_file={result_file}", "--batch_size=8",
        "--num_train_steps=4", "--hidden_dim_text=4", "--lr=0.01",
        "--encoder_lr=1e-4", "--seed=1",
        # Options of one model are no longer flags (issue 13).
        "--model_override=pooling=attention"
    ], result_file)
    assert len(fields) == 6 and fields[1] == "demo_set01"
    assert fields[2].startswith("SE_w2v2_nlp_attn_Ddemo_set01_b8_Pattention"
                                "_E1F_lrE0.0001_esT128_LT1_HT4_G1_drT0.3_")
    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    assert config["model"]["kwargs"]["hub_handle"] == standin_dir
    assert config["train"]["encoder_lr"] == 1e-4

    with open(os.path.join(run_dir, "metrics.json")) as f:
        trained = json.load(f)["test"]

    # The SavedModel serves raw float audio + token ids and is the trained
    # model: its summed test loss is the one train.py reported.
    serve = tf.saved_model.load(os.path.join(
        run_dir, "saved_model")).signatures["serving_default"]
    assert sorted(serve.structured_input_signature[1]) == [
        "text_ids", "text_length", "waveform", "waveform_length"]
    split = folds.load_fold(demo_fold_dir, "W2V2_TREA").splits["test"]
    lengths = split.extras["waveform_length"]
    waveform = split.extras["waveform"][:, :lengths.max()] / 32768.0
    served = serve(waveform=tf.constant(waveform, tf.float32),
                   waveform_length=tf.constant(lengths),
                   text_ids=tf.constant(split.text_ids),
                   text_length=tf.constant(
                       input_pipeline.text_lengths(split.text_ids)))
    assert served["predicted_name"].shape == (len(split),)
    loss = tf.reduce_sum(training.sigmoid_cross_entropy(
        served["logits"], split.label, 4))
    assert float(loss) == pytest.approx(trained["loss_sum"], rel=1e-4)

    # evaluate.py rebuilds it from config.json (the handle) and
    # model.weights.h5, and feeds it the waveforms.
    metrics = evaluation.evaluate(run_dir, split="test")
    assert metrics["num_examples"] == len(split)
    assert metrics["wa"] == pytest.approx(trained["wa"])
    assert metrics["loss_sum"] == pytest.approx(trained["loss_sum"],
                                                rel=1e-4)
