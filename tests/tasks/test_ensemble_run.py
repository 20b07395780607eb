"""Ensemble runs: train.py --ensemble_members, evaluate.py and export."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from apps import train as train_app
from tasks import train_run
from models import ensembles
from tasks import datasets
from tasks import ensemble_run
from tasks import evaluation
from tasks import folds
from tasks import loading
from tests import helpers
from tests.apps import flags_once


def _quiet(_):
    pass


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ensemble")
    fold_dir = helpers.write_random_fold(root / "set01", sizes=(48, 16, 16))
    run_dirs = []
    for model in ("ARE", "TRE"):
        run_dir = str(root / model)
        train_run.run(model, fold_dir, **helpers.for_model(
            model, run_dir=run_dir, batch_size=16, num_train_steps=4,
            hidden_dim_audio=4, hidden_dim_text=4, encoder_size_audio=40,
            lr=0.01, export=False, result_file=str(root / "r.txt"),
            log=_quiet))
        run_dirs.append(run_dir)
    return root, fold_dir, run_dirs


def _member_probabilities(run_dirs, fold, split):
    return [ensemble_run.split_probabilities(
        loading.load_trained_model(run_dir)[0], fold.splits[split], 40)[0]
        for run_dir in run_dirs]


@pytest.mark.parametrize("method", ["max_confidence", "average", "weighted"])
def test_keras_combination_equals_numpy(method):
    rng = np.random.default_rng(3)
    logits = [rng.normal(size=(6, 4)).astype(np.float32) for _ in range(3)]
    weights = [0.2, 0.5, 0.3] if method == "weighted" else None
    layer = ensembles.CombineProbabilities(method, weights)
    expected = ensembles.combine([ensembles.softmax(x) for x in logits],
                                 method, weights)
    out = layer([tf.constant(x) for x in logits]).numpy()
    np.testing.assert_allclose(np.exp(out), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="weights"):
        ensembles.CombineProbabilities(method, None if weights
                                       else [0.5, 0.5])


# Slow: a weighted ensemble run end to end; weight fitting has unit tests (tests/models/test_ensembles.py) and an averaged ensemble run is trained by default in tests/models/test_baseline.py.
@pytest.mark.slow
def test_weighted_run_fits_on_dev_and_evaluates_exports(runs, tmp_path):
    root, fold_dir, run_dirs = runs
    result_file = tmp_path / "results.txt"
    run_dir, result, line = ensemble_run.train_ensemble(
        run_dirs, "weighted", run_dir=str(tmp_path / "e"),
        result_file=str(result_file), batch_size=16, log=_quiet)
    fold = folds.load_fold(fold_dir)
    dev = _member_probabilities(run_dirs, fold, "dev")
    test = _member_probabilities(run_dirs, fold, "test")
    weights = ensembles.fit_weights(dev, fold.splits["dev"].label)
    combined = ensembles.combine(test, "weighted", weights)
    expected_wa = np.mean(combined.argmax(1) == fold.splits["test"].label)
    with open(os.path.join(run_dir, "metrics.json")) as f:
        metrics = json.load(f)
    np.testing.assert_allclose(metrics["weights"], weights)
    assert metrics["test"]["wa"] == pytest.approx(expected_wa)
    assert metrics["test"]["num_examples"] == 16
    assert sorted(metrics["member_test_wa"]) == sorted(run_dirs)
    assert not os.path.exists(os.path.join(run_dir, "model.weights.h5"))
    assert result_file.read_text().count("\n") == 1
    assert "SE_ensemble" in line and "ARE+TRE" in line
    # evaluate.py rebuilds it from the member runs: same numbers.
    evaluated = evaluation.evaluate(run_dir, "test", batch_size=5)
    assert evaluated["wa"] == pytest.approx(expected_wa)
    # The export serves the combined probabilities over the union of inputs.
    served = tf.saved_model.load(os.path.join(run_dir, "saved_model"))
    signature = served.signatures["serving_default"]
    features, _ = next(iter(datasets.eval_dataset(fold.splits["test"], 16,
                                                  40)))
    out = signature(**{name: features[name]
                       for name in signature.structured_input_signature[1]})
    np.testing.assert_allclose(out["probabilities"].numpy(), combined,
                               rtol=1e-4, atol=1e-6)


# Slow: trains a head on frozen members; the weighted run above covers the ensemble run path by default.
@pytest.mark.slow
def test_feature_run_trains_only_a_head(runs, tmp_path):
    _, _, run_dirs = runs
    members = [loading.load_trained_model(r)[0] for r in run_dirs]
    before = [w.numpy().copy() for m in members for w in m.weights]
    model = ensembles.build_feature_ensemble(members, 4, seed=0)
    # ARE's feature is e_A [4 + 35], TRE's the text state [4]: one head.
    head = (4 + 35 + 4) * 4 + 1
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == head
    assert sorted(t.name for t in model.inputs) == sorted(
        {t.name for m in members for t in m.inputs})
    run_dir, result, _ = ensemble_run.train_ensemble(
        run_dirs, "feature", run_dir=str(tmp_path / "f"),
        result_file=str(tmp_path / "r.txt"), num_train_steps=6,
        batch_size=16, lr=0.05, log=_quiet)
    assert result.steps == 6
    after = [w.numpy() for m in members for w in m.weights]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)  # members stay frozen
    loaded, config = loading.load_trained_model(run_dir)
    assert config["model"]["name"] == "ENSEMBLE"
    evaluated = evaluation.evaluate(run_dir, "test")
    assert evaluated["wa"] == pytest.approx(result.final_test["wa"])
    served = tf.saved_model.load(os.path.join(run_dir, "saved_model"))
    batch = helpers.padded_batch([5, 3], [4, 2])
    out = served.signatures["serving_default"](
        **{k: tf.constant(v) for k, v in batch.items()})
    np.testing.assert_allclose(out["logits"].numpy(),
                               loaded(batch, training=False).numpy(),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_cli_and_errors(runs, tmp_path, capsys):
    root, _, run_dirs = runs
    # train.py --ensemble_members (apps/train.py in-process).
    with flags_once.binary_flags(train_app):
        flags_once.command(
            train_app, f"--ensemble_members={','.join(run_dirs)}",
            "--ensemble_method=average", f"--run_dir={tmp_path / 'avg'}",
            f"--result_file={tmp_path / 'r.txt'}", "--batch_size=16")
    out = capsys.readouterr().out
    assert "member" in out and "[Result]" in out
    assert os.path.isfile(tmp_path / "avg" / "saved_model" / "saved_model.pb")
    with pytest.raises(ValueError, match="at least two runs"):
        ensemble_run.train_ensemble(run_dirs[:1])
    with pytest.raises(ValueError, match="Unknown ensemble method"):
        ensemble_run.train_ensemble(run_dirs, "vote")
    other_fold = helpers.write_random_fold(root / "other", seed=5,
                                           vocab_size=31)
    other_run = str(root / "other_run")
    train_run.run("ARE", other_fold, run_dir=other_run, batch_size=16,
                num_train_steps=2, hidden_dim_audio=4, encoder_size_audio=40,
                export=False, result_file=str(root / "r.txt"), log=_quiet)
    with pytest.raises(ValueError, match="different fold folders"):
        ensemble_run.train_ensemble([run_dirs[0], other_run])
