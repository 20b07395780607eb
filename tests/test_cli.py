"""train.py → evaluate.py → export.py end to end, as a user runs them."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import train
from tests import helpers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(binary, **flags):
    """Runs a binary of the repository with --name=value flags."""
    command = [sys.executable, os.path.join(ROOT, binary)]
    command += [f"--{name}={value}" for name, value in flags.items()]
    done = subprocess.run(command, capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def fold_dir(tmp_path_factory):
    return helpers.write_random_fold(tmp_path_factory.mktemp("data") /
                                     "set01", sizes=(48, 16, 16))


def test_train_evaluate_export(fold_dir, tmp_path):
    result_file = str(tmp_path / "TEST_run_result.txt")
    with open(result_file, "w") as f:
        f.write("an earlier line\n")
    run_dir = str(tmp_path / "run")
    out = run("train.py", model="MDREA", data_dir=fold_dir, run_dir=run_dir,
              result_file=result_file, batch_size=16, num_train_steps=8,
              hidden_dim_audio=4, hidden_dim_text=4, encoder_size_audio=40,
              lr=0.01, seed=1)
    assert "[Info] Valid Freq = 1" in out and "[Result]" in out
    for name in ("config.json", "metrics.json", "model.weights.h5",
                 "saved_model/saved_model.pb", "checkpoints/checkpoint"):
        assert os.path.exists(os.path.join(run_dir, name)), name
    with open(result_file) as f:
        lines = f.read().splitlines()
    assert lines[0] == "an earlier line"  # appended, never truncated
    fields = lines[1].split("\t")
    assert len(fields) == 6 and fields[1] == "set01"
    assert fields[2].startswith("SE_multi_attn_prosody_Dset01_b16_esA40")

    out = run("evaluate.py", run_dir=run_dir, split="test")
    assert out.startswith("test: WA ")
    with open(os.path.join(run_dir, "eval_test", "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["num_examples"] == 16
    with open(os.path.join(run_dir, "metrics.json")) as f:
        trained = json.load(f)
    # The rebuilt model with the saved weights is the trained one.
    assert metrics["wa"] == pytest.approx(trained["test"]["wa"])
    assert metrics["loss_sum"] == pytest.approx(trained["test"]["loss_sum"],
                                                rel=1e-5)
    png = os.path.join(run_dir, "eval_test", "confusion_matrix.png")
    assert os.path.getsize(png) > 1000
    assert metrics["label_names"] == list(helpers.LABEL_NAMES)

    export_dir = str(tmp_path / "exported")
    run("export.py", run_dir=run_dir, export_dir=export_dir)
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    served = tf.saved_model.load(
        os.path.join(run_dir, "saved_model")).signatures["serving_default"]
    batch = {"audio_mfcc": tf.random.normal([2, 10, 39], seed=1),
             "audio_length": tf.constant([10, 3]),
             "audio_prosody": tf.random.normal([2, 35], seed=2),
             "text_ids": tf.constant(np.pad([[2, 3], [4, 0]],
                                            ((0, 0), (0, 126))), tf.int32),
             "text_length": tf.constant([2, 1])}
    np.testing.assert_allclose(serve(**batch)["logits"].numpy(),
                               served(**batch)["logits"].numpy(), atol=1e-6)


def test_resume_refuses_other_config(fold_dir, tmp_path):
    run_dir = str(tmp_path / "run")
    common = dict(data_dir=fold_dir, run_dir=run_dir, batch_size=16,
                  num_train_steps=2, hidden_dim_audio=4, encoder_size_audio=40,
                  result_file=str(tmp_path / "r.txt"), export=False,
                  log=lambda _: None)
    train.train("ARE", **common)
    with pytest.raises(ValueError, match="another model config"):
        train.train("ARE", **dict(common, hidden_dim_audio=5))


def test_evaluate_errors_on_unfinished_run(tmp_path):
    import evaluate
    with pytest.raises(FileNotFoundError, match="config.json"):
        evaluate.evaluate(str(tmp_path))


def test_reference_script_short_mode(fold_dir, tmp_path):
    environment = dict(os.environ, RUNS_DIR=str(tmp_path / "runs"),
                       RESULT_FILE=str(tmp_path / "TEST_run_result.txt"))
    done = subprocess.run(
        ["bash", os.path.join(ROOT, "reference_script.sh"), "--short",
         fold_dir], capture_output=True, text=True, timeout=600,
        env=environment)
    assert done.returncode == 0, done.stdout + done.stderr
    with open(tmp_path / "TEST_run_result.txt") as f:
        lines = f.read().splitlines()
    prefixes = ["SE_prosody", "SE_nlp", "SE_multi_D", "SE_multi_attn"]
    assert [line.split("\t")[2][:len(p)] for line, p in
            zip(lines, prefixes)] == prefixes
    assert "| MDREA |" in done.stdout
    (stamp,) = os.listdir(tmp_path / "runs")
    for model in ("ARE", "TRE", "MDRE", "MDREA"):
        assert os.path.exists(tmp_path / "runs" / stamp / model /
                              "saved_model" / "saved_model.pb")
