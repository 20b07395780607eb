"""train.py → evaluate.py → export.py end to end, as a user runs them."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tasks import train_run
from tasks import evaluation
from tasks import loading
from tests import helpers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


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
              lr=0.01, seed=1, export="false")
    assert "[Info] Valid Freq = 1" in out and "[Result]" in out
    # The export at the end of training is tested in-process
    # (tests/tasks/test_serving.py); here export.py makes it.
    for name in ("config.json", "metrics.json", "model.weights.h5",
                 "checkpoints/checkpoint"):
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
    trained, _ = loading.load_trained_model(run_dir)
    batch = {"audio_mfcc": tf.random.normal([2, 10, 39], seed=1),
             "audio_length": tf.constant([10, 3]),
             "audio_prosody": tf.random.normal([2, 35], seed=2),
             "text_ids": tf.constant(np.pad([[2, 3], [4, 0]],
                                            ((0, 0), (0, 126))), tf.int32),
             "text_length": tf.constant([2, 1])}
    # The export serves the trained model (its saved weights).
    np.testing.assert_allclose(serve(**batch)["logits"].numpy(),
                               trained(batch, training=False).numpy(),
                               atol=1e-5)


def test_resume_refuses_other_config(fold_dir, tmp_path):
    run_dir = str(tmp_path / "run")
    common = dict(data_dir=fold_dir, run_dir=run_dir, batch_size=16,
                  num_train_steps=2, hidden_dim_audio=4, encoder_size_audio=40,
                  result_file=str(tmp_path / "r.txt"), export=False,
                  log=lambda _: None)
    train_run.run("ARE", **common)
    with pytest.raises(ValueError, match="another model config"):
        train_run.run("ARE", **dict(common, hidden_dim_audio=5))


def test_evaluate_errors_on_unfinished_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        evaluation.evaluate(str(tmp_path))


@pytest.mark.slow
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


def _run_reference_script(arguments, tmp_path, **environment):
    environment = dict(os.environ, RUNS_DIR=str(tmp_path / "runs"),
                       RESULT_FILE=str(tmp_path / "TEST_run_result.txt"),
                       **environment)
    done = subprocess.run(
        ["bash", os.path.join(ROOT, "reference_script.sh"), *arguments],
        capture_output=True, text=True, timeout=1500, env=environment)
    assert done.returncode == 0, done.stdout + done.stderr
    (stamp,) = os.listdir(tmp_path / "runs")
    return done.stdout, tmp_path / "runs" / stamp


def _table_rows(stdout):
    table = stdout[stdout.index("=== comparison"):]
    return {line.split("|")[1].strip(): line for line in table.splitlines()
            if line.startswith("| ") and not line.startswith("| model")}


@pytest.mark.slow
def test_reference_script_all_rows_and_ensemble(fold_dir, tmp_path):
    # A random fold stores no waveforms: the wav2vec2 rows are skipped and
    # CNN_SPEC reads MFCC; the ensemble row combines the two runs before it.
    stdout, runs = _run_reference_script(
        ["--all", "--short", fold_dir], tmp_path,
        MODELS="CNN_SPEC BLSTM_SA_TEXT W2V2 ENSEMBLE_WEIGHTED")
    rows = _table_rows(stdout)
    assert list(rows) == ["CNN_SPEC", "BLSTM_SA_TEXT", "ENSEMBLE_WEIGHTED"]
    assert "W2V2" in stdout and "skipped: needs waveforms" in stdout
    assert "| MFCC |" in rows["CNN_SPEC"]
    with open(runs / "ENSEMBLE_WEIGHTED" / "metrics.json") as f:
        metrics = json.load(f)
    parameters = []
    for member in ("CNN_SPEC", "BLSTM_SA_TEXT"):
        with open(runs / member / "metrics.json") as f:
            parameters.append(json.load(f)["parameters"])
    assert metrics["parameters"] == sum(parameters)
    assert f"| {sum(parameters):,} |" in rows["ENSEMBLE_WEIGHTED"]
    with open(tmp_path / "TEST_run_result.txt") as f:
        assert len(f.read().splitlines()) == 3


@pytest.mark.slow
def test_reference_script_all_on_a_demo_fold(demo_fold, tmp_path):
    """Every row of --all (short) on a demo fold with waveforms, with the
    stand-in encoders passed as handles."""
    from tools import make_bert_standin
    from tools import make_wav2vec2_standin

    w2v2 = make_wav2vec2_standin.build_standin(str(tmp_path / "w2v2"))
    bert = make_bert_standin.build_standin(str(tmp_path / "bert"))
    stdout, _ = _run_reference_script(
        ["--all", "--short", demo_fold.path], tmp_path,
        WAV2VEC2_HANDLE=w2v2, BERT_HANDLE=bert)
    assert list(_table_rows(stdout)) == [
        "ARE", "TRE", "MDRE", "MDREA", "BLSTM_SA_TEXT", "CNN_SPEC", "MMMF",
        "TRANSFORMER_FUSION", "TRANSFORMER_FUSION_BERT",
        "TRANSFORMER_FUSION_W2V2_BERT", "W2V2", "W2V2_TRE",
        "W2V2_TREA", "ENSEMBLE_WEIGHTED", "ENSEMBLE_FEATURE",
        # The classical baselines (issue 14) are rows of --all too.
        "BASELINE_SVM", "BASELINE_LOGREG"]
    assert "| log-mel |" in _table_rows(stdout)["CNN_SPEC"]
