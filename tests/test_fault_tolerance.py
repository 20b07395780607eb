"""Fault tolerance: SIGKILL a training run, restart it, lose nothing.

Each test starts real training processes (`python train.py`, or
`tests/dist_worker.py` for multi-worker) in their own process groups and
kills them in `finally`, whatever happens.
"""

import json
import os
import re
import sys
import time

import h5py
import numpy as np
import pytest

from tests import dist_worker
from tests import helpers

STEPS = 42
# 80 training examples in batches of 4: validation (and a checkpoint) every
# int(80·0.3/4)+1 = 7 steps, so a kill between two of them loses steps that
# the resumed run must replay identically.
SIZES = (80, 12, 12)
TIMEOUT = 240


@pytest.fixture(scope="module")
def fold_dir(tmp_path_factory):
    return helpers.write_random_fold(tmp_path_factory.mktemp("fold") / "f",
                                     sizes=SIZES)


def _train_args(fold_dir, run_dir, steps=STEPS):
    # Dropout on (keep 0.7): an exact resume needs the dropout RNG state.
    return ["train.py", "--model=MDRE", f"--data_dir={fold_dir}",
            f"--run_dir={run_dir}",
            f"--result_file={os.path.join(run_dir, 'results.txt')}",
            "--batch_size=4", f"--num_train_steps={steps}",
            "--patience=1000", "--hidden_dim_audio=6", "--hidden_dim_text=5",
            "--nouse_glove", "--embedding_dim=8", "--encoder_size_audio=60",
            "--dr_audio=0.7", "--dr_text=0.7", "--noexport"]


def _wait_for_checkpoint(run_dir, processes, timeout=TIMEOUT):
    """Waits until `run_dir` holds a checkpoint (written after step 0)."""
    index = os.path.join(run_dir, "checkpoints", "checkpoint")
    deadline = time.monotonic() + timeout
    while not os.path.exists(index):
        for process in processes:
            assert process.poll() is None, "a process ended before its " \
                "first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.1)


def _resumed_step(log):
    match = re.search(r"Resumed from \S+ at step (\d+)\.", log)
    assert match, f"no 'Resumed from' line in:\n{log[-3000:]}"
    return int(match.group(1))


def _h5_arrays(path):
    arrays = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, item: arrays.__setitem__(name, item[()])
                     if isinstance(item, h5py.Dataset) else None)
    return arrays


def _read_json(path):
    with open(path) as f:
        return json.load(f)


@pytest.mark.slow
def test_killed_run_resumes_and_matches_uninterrupted(fold_dir, tmp_path):
    full_dir, killed_dir = str(tmp_path / "full"), str(tmp_path / "killed")
    logs = {name: str(tmp_path / f"{name}.log")
            for name in ("full", "killed", "resumed")}
    processes = []
    try:
        full = dist_worker.launch(_train_args(fold_dir, full_dir),
                                  logs["full"], module=False)
        killed = dist_worker.launch(_train_args(fold_dir, killed_dir),
                                    logs["killed"], module=False)
        processes += [full, killed]
        _wait_for_checkpoint(killed_dir, [killed])
        assert killed.poll() is None
        dist_worker.kill(killed)
        assert not os.path.exists(os.path.join(killed_dir, "metrics.json"))

        resumed = dist_worker.launch(_train_args(fold_dir, killed_dir),
                                     logs["resumed"], module=False)
        processes.append(resumed)
        codes = dist_worker.wait_all([full, resumed], TIMEOUT)
    finally:
        for process in processes:
            dist_worker.kill(process)
    for name, code in zip(("full", "resumed"), codes):
        assert code == 0, dist_worker.read_log(logs[name])[-3000:]

    resumed_log = dist_worker.read_log(logs["resumed"])
    step = _resumed_step(resumed_log)
    assert 0 < step < STEPS and step % 7 == 0
    assert f"Total steps : {STEPS}" in resumed_log

    full_metrics = _read_json(os.path.join(full_dir, "metrics.json"))
    resumed_metrics = _read_json(os.path.join(killed_dir, "metrics.json"))
    assert resumed_metrics["steps"] == full_metrics["steps"] == STEPS
    assert resumed_metrics["best_step"] == full_metrics["best_step"]
    for split in ("dev", "test"):
        assert (resumed_metrics[split]["confusion_matrix"]
                == full_metrics[split]["confusion_matrix"])
        assert resumed_metrics[split]["loss_sum"] == pytest.approx(
            full_metrics[split]["loss_sum"], rel=1e-6)
    full_weights = _h5_arrays(os.path.join(full_dir, "model.weights.h5"))
    resumed_weights = _h5_arrays(os.path.join(killed_dir,
                                              "model.weights.h5"))
    assert sorted(full_weights) == sorted(resumed_weights)
    for name, value in full_weights.items():
        np.testing.assert_allclose(resumed_weights[name], value, atol=1e-6,
                                   err_msg=name)


def _launch_workers(fold_dir, run_dir, tmp_path, tag, steps):
    ports = dist_worker.free_ports(2)
    processes = []
    for index in range(2):
        out = str(tmp_path / f"{tag}{index}")
        processes.append(dist_worker.launch(
            [f"--data_dir={fold_dir}", f"--run_dir={run_dir}",
             f"--out={out}", "--strategy=multi_worker", "--via_train",
             f"--steps={steps}", "--batch_size=4", "--keep_prob=0.7",
             # Bounds how long a survivor can wait on a peer that vanished
             # without closing its sockets (default 30 s between checks).
             "--check_health_interval=5"],
            out + ".log",
            env={"TF_CONFIG": dist_worker.tf_config(ports, index)}))
    return processes


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="process groups, ports")
def test_multi_worker_dead_worker_fails_the_other_then_restart_resumes(
        fold_dir, tmp_path):
    steps = 28
    run_dir = str(tmp_path / "run")
    processes = []
    try:
        first = _launch_workers(fold_dir, run_dir, tmp_path, "first", steps)
        processes += first
        _wait_for_checkpoint(run_dir, first)
        dist_worker.kill(first[1])
        # The survivor does not hang: its next collective fails
        # (UnavailableError) and the process exits with an error.
        (code,) = dist_worker.wait_all(first[:1], 90)
        survivor_log = dist_worker.read_log(str(tmp_path / "first0.log"))
        assert code not in (0, None), survivor_log[-3000:]
        assert "UnavailableError" in survivor_log or (
            "Collective ops is aborted" in survivor_log), survivor_log[-3000:]
        assert not os.path.exists(os.path.join(run_dir, "metrics.json"))

        # Recovery: restart every worker with the same run folder.
        second = _launch_workers(fold_dir, run_dir, tmp_path, "second",
                                 steps)
        processes += second
        codes = dist_worker.wait_all(second, TIMEOUT)
    finally:
        for process in processes:
            dist_worker.kill(process)
    logs = [dist_worker.read_log(str(tmp_path / f"second{index}.log"))
            for index in range(2)]
    assert codes == [0, 0], "\n\n".join(log[-3000:] for log in logs)
    # Both resumed from the chief's last checkpoint, at the same step.
    steps_resumed = [_resumed_step(log) for log in logs]
    assert steps_resumed[0] == steps_resumed[1] > 0
    assert all(f"Total steps : {steps}" in log for log in logs)
    assert _read_json(os.path.join(run_dir, "metrics.json"))["steps"] == steps
    with np.load(str(tmp_path / "second0.npz")) as chief, \
            np.load(str(tmp_path / "second1.npz")) as other:
        assert sorted(chief.files) == sorted(other.files)
        for name in chief.files:
            np.testing.assert_array_equal(chief[name], other[name],
                                          err_msg=name)
