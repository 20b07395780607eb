"""ensemble.py: decision-level ensembles of trained runs."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import ensemble
import experiment
import train
from models import ensembles
from tests import helpers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ensemble")
    fold_dir = helpers.write_random_fold(root / "set01", sizes=(48, 16, 16))
    run_dirs = []
    for model in ("ARE", "TRE"):
        run_dir = str(root / model)
        train.train(model, fold_dir, run_dir=run_dir, batch_size=16,
                    num_train_steps=4, hidden_dim_audio=4, hidden_dim_text=4,
                    encoder_size_audio=40, lr=0.01, export=False,
                    result_file=str(root / "r.txt"), log=lambda _: None)
        run_dirs.append(run_dir)
    return root, fold_dir, run_dirs


def test_weighted_ensemble_uses_dev_weights_on_test(runs, tmp_path):
    _, fold_dir, run_dirs = runs
    result = ensemble.ensemble(run_dirs, "weighted", str(tmp_path / "e"))
    fold = experiment.load_fold(fold_dir)
    dev, test = [], []
    for run_dir in run_dirs:
        model, _ = experiment.load_trained_model(run_dir)
        dev.append(ensemble.split_probabilities(model, fold.splits["dev"],
                                                40)[0])
        test.append(ensemble.split_probabilities(model, fold.splits["test"],
                                                 40)[0])
    weights = ensembles.fit_weights(dev, fold.splits["dev"].label)
    np.testing.assert_allclose(result["weights"], weights)
    expected = ensembles.combine(test, "weighted", weights).argmax(1)
    assert result["wa"] == pytest.approx(
        np.mean(expected == fold.splits["test"].label))
    assert result["num_examples"] == 16
    with open(tmp_path / "e" / "metrics.json") as f:
        assert json.load(f)["method"] == "weighted"
    assert os.path.getsize(tmp_path / "e" / "confusion_matrix.png") > 1000


def test_cli_and_errors(runs, tmp_path):
    root, _, run_dirs = runs
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "ensemble.py"),
         f"--run_dirs={','.join(run_dirs)}", "--method=average",
         f"--output_dir={tmp_path / 'avg'}"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ensemble (average): test WA" in done.stdout
    with pytest.raises(ValueError, match="at least two runs"):
        ensemble.ensemble(run_dirs[:1])
    other_fold = helpers.write_random_fold(root / "other", seed=5,
                                           vocab_size=31)
    other_run = str(root / "other_run")
    train.train("ARE", other_fold, run_dir=other_run, batch_size=16,
                num_train_steps=2, hidden_dim_audio=4, encoder_size_audio=40,
                export=False, result_file=str(root / "r.txt"),
                log=lambda _: None)
    with pytest.raises(ValueError, match="different fold folders"):
        ensemble.ensemble([run_dirs[0], other_run])


def test_feature_level_ensemble_trains_only_a_head(runs, tmp_path):
    import tensorflow as tf

    from models import feature_ensemble

    _, fold_dir, run_dirs = runs
    members = [experiment.load_trained_model(r)[0] for r in run_dirs]
    before = [w.numpy().copy() for m in members for w in m.weights]
    model = feature_ensemble.build_feature_ensemble(members, 4, seed=0)
    # ARE's feature is e_A [4 + 35], TRE's the text state [4]: one head.
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == (
        (4 + 35 + 4) * 4 + 1)
    assert sorted(t.name for t in model.inputs) == sorted(
        {t.name for m in members for t in m.inputs})
    result = ensemble.ensemble(run_dirs, "feature", str(tmp_path / "f"),
                               num_train_steps=6, batch_size=16)
    assert result["head_parameters"] == (4 + 35 + 4) * 4 + 1
    assert result["num_examples"] == 16
    after = [w.numpy() for m in members for w in m.weights]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)  # members stay frozen
    served = tf.saved_model.load(str(tmp_path / "f" / "saved_model"))
    batch = helpers.padded_batch([5, 3], [4, 2])
    out = served.signatures["serving_default"](
        **{k: tf.constant(v) for k, v in batch.items()})
    assert out["probabilities"].shape == (2, 4)
