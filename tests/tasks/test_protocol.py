"""tasks/protocol.py / protocol.py: every fold, resumable, summary files."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tasks import protocol
from tests import helpers

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
FOLDS = ("fold_a", "fold_b", "fold_c")


def _build(root):
    """A build folder of three separable folds with a build summary."""
    return helpers.write_fold_build(root, FOLDS)


class _Killed(Exception):
    pass


def test_protocol_resumes_after_a_kill_and_summarises(tmp_path):
    from tasks import train_run

    root = _build(tmp_path / "build")
    out = str(tmp_path / "out")
    calls = []

    def recording(**kwargs):
        calls.append((kwargs["model"], os.path.basename(kwargs["data_dir"])))
        return train_run.run(**kwargs)

    def killed_at_second_fold(**kwargs):
        if len(calls) == 1:
            calls.append(("killed", os.path.basename(kwargs["data_dir"])))
            raise _Killed()  # as if the process died in fold_b's run
        return recording(**kwargs)

    options = dict(encoder_size_audio=80, export=False)
    with pytest.raises(_Killed):
        protocol.run_protocol(root, ["BASELINE_LOGREG"], out, options,
                              log=lambda _: None,
                              train_fn=killed_at_second_fold)
    assert calls == [("BASELINE_LOGREG", "fold_a"), ("killed", "fold_b")]
    assert not os.path.exists(os.path.join(out, "protocol.json"))
    calls.clear()
    lines = []
    results = protocol.run_protocol(
        root, ["BASELINE_LOGREG"], out, options, log=lines.append,
        train_fn=recording)
    # The finished fold is skipped, the others run.
    assert calls == [("BASELINE_LOGREG", "fold_b"),
                     ("BASELINE_LOGREG", "fold_c")]
    assert any("fold_a: finished before" in line for line in lines)
    summary = results["BASELINE_LOGREG"]["summary"]
    per_fold = results["BASELINE_LOGREG"]["folds"]
    assert list(per_fold) == list(FOLDS) and summary["folds"] == 3
    uas = [per_fold[name]["ua"] for name in FOLDS]
    assert summary["ua_mean"] == pytest.approx(np.mean(uas))
    assert summary["ua_std"] == pytest.approx(np.std(uas))
    pooled = np.sum([per_fold[n]["confusion_matrix"] for n in FOLDS], 0)
    assert summary["pooled_confusion_matrix"] == pooled.tolist()
    assert pooled.sum() == 3 * 12 and summary["ua_mean"] > 0.8
    # The files: JSON, both CSVs, the pooled confusion matrix PNG.
    saved = json.load(open(os.path.join(out, "protocol.json")))
    assert saved["settings"]["folds"] == list(FOLDS)
    assert saved["settings"]["train_kwargs"] == options
    rows = list(csv.DictReader(open(os.path.join(out, "protocol.csv"))))
    assert [r["model"] for r in rows] == ["BASELINE_LOGREG"]
    assert float(rows[0]["ua_mean"]) == pytest.approx(summary["ua_mean"],
                                                      abs=1e-4)
    fold_rows = list(csv.DictReader(open(os.path.join(
        out, "protocol_folds.csv"))))
    assert [r["fold"] for r in fold_rows] == list(FOLDS)
    with open(os.path.join(out, "BASELINE_LOGREG_confusion.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    table = protocol.format_table(results)
    assert "| BASELINE_LOGREG | 3 |" in table and "±" in table
    # Every fold finished: a rerun trains nothing.
    calls.clear()
    protocol.run_protocol(root, ["BASELINE_LOGREG"], out, options,
                          log=lambda _: None,
                          train_fn=lambda **kwargs: calls.append(1))
    assert calls == []


def test_fold_dirs_errors(tmp_path):
    root = _build(tmp_path / "build")
    assert [n for n, _ in protocol.fold_dirs(root, ["fold_c"])] == [
        "fold_c"]
    with pytest.raises(FileNotFoundError, match=r"no fold \['fold_x'\]"):
        protocol.fold_dirs(root, ["fold_x"])
    with pytest.raises(FileNotFoundError, match="no such folder"):
        protocol.fold_dirs(str(tmp_path / "absent"))
    with pytest.raises(ValueError, match="sets"):
        protocol.run_protocol(root, ["ARE"], str(tmp_path / "o"),
                              {"run_dir": "x"}, train_fn=lambda **_: None)


@pytest.mark.slow
def test_protocol_command_killed_mid_training_resumes(tmp_path):
    """A real SIGKILL of protocol.py during ARE's first fold, then the same
    command again: fold_a resumes from its checkpoint, all folds finish."""
    root = _build(tmp_path / "build")
    out = str(tmp_path / "out")
    command = [sys.executable, "protocol.py", f"--fold_root={root}",
               "--models=ARE", f"--output_dir={out}", "--folds=fold_a,fold_b",
               "--num_train_steps=30", "--batch_size=8",
               "--hidden_dim_audio=4", "--encoder_size_audio=20",
               "--noexport", "--patience=1000"]
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.Popen(command, cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    checkpoints = os.path.join(out, "ARE", "fold_a", "checkpoints")
    deadline = time.time() + 300
    while time.time() < deadline and not (
            os.path.isdir(checkpoints) and any(
                name.endswith(".index") for name in os.listdir(checkpoints))):
        time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not os.path.exists(os.path.join(out, "protocol.json"))
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Resumed from" in result.stdout
    saved = json.load(open(os.path.join(out, "protocol.json")))
    assert list(saved["models"]["ARE"]["folds"]) == ["fold_a", "fold_b"]
    assert saved["models"]["ARE"]["folds"]["fold_a"]["steps"] == 30


def test_protocol_seed_ensemble_per_fold(tmp_path):
    from tasks import train_run

    root = _build(tmp_path / "build")
    out = str(tmp_path / "out")
    seeds_seen = []

    def recording(**kwargs):
        seeds_seen.append(kwargs["seed"])
        return train_run.run(**kwargs)

    results = protocol.run_protocol(
        root, ["BASELINE_LOGREG"], out,
        dict(encoder_size_audio=80, export=False, seed=7), folds=["fold_a"],
        log=lambda _: None, train_fn=recording, seeds=[0, 1])
    assert seeds_seen == [0, 1]  # the given seed is replaced by the seeds
    run_dir = os.path.join(out, "BASELINE_LOGREG", "fold_a")
    config = json.load(open(os.path.join(run_dir, "config.json")))
    assert config["model"]["name"] == "ENSEMBLE"
    assert config["model"]["kwargs"]["method"] == "average"
    assert config["model"]["kwargs"]["members"] == [
        os.path.join(run_dir, "seed0"), os.path.join(run_dir, "seed1")]
    record = results["BASELINE_LOGREG"]["folds"]["fold_a"]
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    assert record["ua"] == metrics["test"]["ua"] > 0.8
