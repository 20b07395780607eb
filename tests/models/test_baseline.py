"""The classical baseline (models/baseline.py, tasks/baselines.py)."""

import json
import os

import numpy as np
import pytest

from models import baseline
from preprocessing import reference_arrays
from tasks import evaluation
from tasks import loading
from tasks import serving
from tests import helpers


def _batch(split, rows):
    return {"audio_mfcc": split.mfcc[rows], "audio_length": np.minimum(
        split.seq_len[rows], split.mfcc.shape[1]).astype(np.int32),
        "audio_prosody": split.prosody[rows]}


def test_functionals_ignore_padding_and_match_numpy():
    split = helpers.separable_split(6, seed=1)
    batch = _batch(split, np.arange(6))
    layer = baseline.UtteranceFunctionals()
    got = layer(batch["audio_mfcc"], batch["audio_length"],
                batch["audio_prosody"]).numpy()
    for row, length in enumerate(batch["audio_length"]):
        frames = split.mfcc[row, :length]
        expected = np.concatenate([frames.mean(0), frames.std(0),
                                   split.prosody[row]])
        np.testing.assert_allclose(got[row], expected, atol=1e-5)
    # Garbage in the padded frames changes nothing.
    noisy = batch["audio_mfcc"].copy()
    for row, length in enumerate(batch["audio_length"]):
        noisy[row, length:] = 1e6
    np.testing.assert_allclose(layer(noisy, batch["audio_length"],
                                     batch["audio_prosody"]).numpy(), got,
                               atol=1e-5)


@pytest.mark.parametrize("kind", [baseline.SVM, baseline.LOGREG])
@pytest.mark.parametrize("num_classes", [4, 2])
def test_keras_decision_equals_scikit_learn(kind, num_classes):
    rng = np.random.default_rng(num_classes)
    x = rng.standard_normal((60, 7))
    y = np.arange(60) % num_classes
    x[:, 0] += y
    kwargs, weights, report = baseline.fit(kind, x[:40], y[:40], x[40:],
                                           y[40:], num_classes)
    assert report["grid"] and report["selected_on"] == "dev UA"
    # The layers after the functionals, fed the functionals directly.
    import keras

    model = baseline.MODELS[kind](num_classes=num_classes, mfcc_dim=1,
                                  prosody_dim=5, **kwargs)
    model.set_weights(weights)
    head = keras.Model(model.get_layer("functionals").output, model.output)
    got = head(x.astype(np.float32)).numpy()
    standard = (x - np.array(kwargs["feature_mean"])) / np.array(
        kwargs["feature_std"])
    estimator = baseline.fit_estimator(kind, standard[:40], y[:40],
                                       report["C"], report["gamma"],
                                       "balanced", 0)
    np.testing.assert_array_equal(got.argmax(-1), estimator.predict(standard))
    if num_classes > 2:
        np.testing.assert_allclose(got, estimator.decision_function(standard),
                                   atol=1e-4)


def test_fit_needs_every_class_in_train():
    with pytest.raises(ValueError, match=r"no example of class ids \[3\]"):
        baseline.fit(baseline.SVM, np.zeros((6, 3)), [0, 1, 2, 0, 1, 2],
                     num_classes=4)


def test_baseline_run_through_evaluate_table_and_export(tmp_path, capsys):
    import tensorflow as tf

    from tasks import train_run
    from tools import results_table

    fold = helpers.write_separable_fold(tmp_path / "fold")
    result_file = str(tmp_path / "results.txt")
    run_dir, result, line = train_run.run(
        model="BASELINE_SVM", data_dir=fold, run_dir=str(tmp_path / "svm"),
        result_file=result_file, encoder_size_audio=80, export=True,
        log=lambda _: None)
    # A separable problem: the SVM gets it, and the files say so.
    assert result.final_test["wa"] >= 0.9 and result.steps == 0
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    assert metrics["test"]["ua"] == result.final_test["ua"]
    assert sorted(metrics["inputs"]) == ["audio_length", "audio_mfcc",
                                         "audio_prosody"]
    grid = json.load(open(os.path.join(run_dir, "baseline.json")))
    assert len(grid["grid"]) == 12 and grid["kind"] == "BASELINE_SVM"
    fields = open(result_file).read().strip().split("\t")
    assert fields[1] == "fold" and float(fields[4]) == pytest.approx(
        result.final_test["wa"], abs=1e-9)
    assert line.split("\t")[2] == fields[2]
    # evaluate.py rebuilds it from config.json + model.weights.h5.
    evaluated = evaluation.evaluate(run_dir, "test", batch_size=7)
    assert evaluated["confusion_matrix"] == result.final_test[
        "confusion_matrix"]
    results_table.main(str(tmp_path), ["svm"])
    row = capsys.readouterr().out.strip().splitlines()[-1]
    assert row.startswith("| svm | MFCC + prosody |") and " 0 (0) " in row
    # The SavedModel's serving signature gives the Keras model's logits.
    model, _ = loading.load_trained_model(run_dir)
    split = reference_arrays.load_fold(fold).splits["test"]
    batch = _batch(split, np.arange(5))
    served = tf.saved_model.load(os.path.join(run_dir, "saved_model"))
    outputs = served.signatures["serving_default"](
        **{k: tf.constant(v) for k, v in batch.items()})
    np.testing.assert_allclose(outputs["logits"].numpy(),
                               model(batch, training=False).numpy(),
                               atol=1e-4)
    assert serving.is_inference_export(os.path.join(run_dir,
                                                      "saved_model"))


def test_logreg_run_without_selection(tmp_path):
    from tasks import train_run

    fold = helpers.write_separable_fold(tmp_path / "fold")
    run_dir, result, _ = train_run.run(
        model="BASELINE_LOGREG", data_dir=fold, run_dir=str(tmp_path / "lr"),
        result_file=str(tmp_path / "r.txt"), encoder_size_audio=80,
        export=False, baseline_select=False, log=lambda _: None)
    report = json.load(open(os.path.join(run_dir, "baseline.json")))
    assert report["grid"] == [] and report["C"] == 1.0
    assert result.final_test["wa"] >= 0.9
    assert os.path.isfile(os.path.join(run_dir, "model.weights.h5"))


def _with_speakers(fold, speakers):
    """Adds row-aligned `split_speakers` to a fold's manifest."""
    path = os.path.join(fold, reference_arrays.MANIFEST_NAME)
    manifest = json.load(open(path))
    manifest["split_speakers"] = speakers
    with open(path, "w") as f:
        json.dump(manifest, f)
    return fold


def test_speaker_normalised_baselines_and_their_ensemble(tmp_path):
    from tasks import ensemble_run
    from tasks import evaluation
    from tasks import loading
    from tasks import train_run

    fold = _with_speakers(
        helpers.write_separable_fold(tmp_path / "fold"),
        {"train": ["a"] * 24 + ["b"] * 24, "dev": ["c"] * 16,
         "test": ["d"] * 10 + ["e"] * 10})
    runs = {}
    for name in ("BASELINE_SVM", "BASELINE_LOGREG"):
        # The recipe's per-speaker normalisation applies to the baselines.
        run_dir, result, _ = train_run.run(
            model=name, data_dir=fold, run_dir=str(tmp_path / name),
            recipe="real", result_file=str(tmp_path / "r.txt"),
            encoder_size_audio=80, export=False, log=lambda _: None)
        config = json.load(open(os.path.join(run_dir, "config.json")))
        assert config["data"]["speaker_norm"] is True
        # evaluate.py normalises the same way: the same confusion matrix.
        assert evaluation.evaluate(run_dir, "test")["confusion_matrix"] == (
            result.final_test["confusion_matrix"])
        runs[name] = (run_dir, result)
    raw_dir, raw, _ = train_run.run(
        model="BASELINE_LOGREG", data_dir=fold, run_dir=str(tmp_path / "raw"),
        result_file=str(tmp_path / "r.txt"), encoder_size_audio=80,
        export=False, log=lambda _: None)
    assert "speaker_norm" not in json.load(
        open(os.path.join(raw_dir, "config.json")))["data"]
    with pytest.raises(ValueError, match="speaker_norm"):
        loading.load_members([raw_dir, runs["BASELINE_SVM"][0]])
    # An ensemble of speaker-normalised members feeds them normalised
    # features: its members' test WA equal their own runs'.
    members = [run_dir for run_dir, _ in runs.values()]
    messages = []
    ensemble_dir, ensemble, _ = ensemble_run.train_ensemble(
        members, "average", run_dir=str(tmp_path / "ensemble"),
        result_file=str(tmp_path / "r.txt"), export=False,
        log=messages.append)
    metrics = json.load(open(os.path.join(ensemble_dir, "metrics.json")))
    for run_dir, result in runs.values():
        assert metrics["member_test_wa"][run_dir] == pytest.approx(
            result.final_test["wa"])
    assert evaluation.evaluate(ensemble_dir, "test")["confusion_matrix"] == (
        ensemble.final_test["confusion_matrix"])
