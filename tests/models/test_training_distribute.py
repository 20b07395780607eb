"""tf.distribute: strategies, equivalence with one device, eval sharding.

The multi-replica runs need a fresh process each (logical CPU devices must
be configured before TensorFlow initialises; workers are separate
processes), so they go through `tests/dist_worker.py`. Every process is
started in its own process group and killed in `finally`.
"""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from models import training
from tasks import datasets
from tasks import folds
from tasks import model_setup
from tests import dist_worker
from tests import helpers

FRAMES = 60
# dev 13 and test 11 with eval batches of 8: the last batches (5 and 3) are
# short, and under 2 replicas the last one leaves a replica empty.
SIZES = (64, 13, 11)
# The workers are tiny but each process pays TensorFlow's start-up and
# tracing; the machine is shared.
TIMEOUT = 240

# TensorFlow's own note when a strategy inspects dataset options in graph
# mode; harmless here.
pytestmark = pytest.mark.filterwarnings(
    "ignore:To make it possible to preserve tf.data options")


@pytest.fixture(scope="module")
def fold_dir(tmp_path_factory):
    return helpers.write_random_fold(tmp_path_factory.mktemp("fold") / "f",
                                     sizes=SIZES)


def _run_processes(tmp_path, runs, in_process=None):
    """Runs dist_worker processes concurrently; returns their summaries.

    Args:
        runs: dict name → (args, env).
        in_process: dict name → args of single-device runs, which need no
            fresh process (no logical devices, no TF_CONFIG): run here,
            while the processes run, saving a TensorFlow start-up each.

    Returns:
        dict name → (summary dict, npz arrays).
    """
    processes = {}
    try:
        for name, (args, env) in runs.items():
            out = str(tmp_path / name)
            processes[name] = dist_worker.launch(
                list(args) + [f"--out={out}"], out + ".log", env=env)
        for name, args in (in_process or {}).items():
            dist_worker.main(list(args) + [f"--out={tmp_path / name}"])
        codes = dist_worker.wait_all(list(processes.values()), TIMEOUT)
    finally:
        for process in processes.values():
            dist_worker.kill(process)
    results = {}
    for name in in_process or {}:
        out = str(tmp_path / name)
        with open(out + ".json") as f:
            summary = json.load(f)
        with np.load(out + ".npz") as arrays:
            results[name] = (summary, dict(arrays))
    for (name, process), code in zip(processes.items(), codes):
        out = str(tmp_path / name)
        assert code == 0, (f"{name} exited with {code}:\n"
                           f"{dist_worker.read_log(out + '.log')[-3000:]}")
        with open(out + ".json") as f:
            summary = json.load(f)
        with np.load(out + ".npz") as arrays:
            results[name] = (summary, dict(arrays))
    return results


def _common_args(fold_dir, run_dir):
    return [f"--data_dir={fold_dir}", f"--run_dir={run_dir}", "--steps=8",
            "--batch_size=16", "--eval_batch_size=8", f"--frames={FRAMES}",
            # A tiny clip keeps the element-wise clip active on most
            # gradients, so clipping each replica's share instead of the
            # replica sum would show.
            "--clip_value=0.001"]


def _assert_same_run(a, b, atol):
    (summary_a, arrays_a), (summary_b, arrays_b) = a, b
    assert summary_a["steps"] == summary_b["steps"] == 8
    for split, size in (("final_dev", SIZES[1]), ("final_test", SIZES[2])):
        # Each example counted exactly once, whatever the sharding.
        assert summary_a[split]["num_examples"] == size
        assert summary_b[split]["num_examples"] == size
        assert (summary_a[split]["confusion_matrix"]
                == summary_b[split]["confusion_matrix"])
        assert summary_a[split]["loss_sum"] == pytest.approx(
            summary_b[split]["loss_sum"], rel=1e-5)
    assert sorted(arrays_a) == sorted(arrays_b)
    for key in arrays_a:
        # Weights and Adam's moments: a double-counted gradient would show
        # in the moments even where Adam's update is scale-invariant.
        np.testing.assert_allclose(arrays_a[key], arrays_b[key], atol=atol,
                                   err_msg=key)


def test_mirrored_two_logical_cpus_matches_single_device(fold_dir, tmp_path):
    results = _run_processes(tmp_path, {
        "mirrored": (_common_args(fold_dir, tmp_path / "run_mirrored")
                     + ["--logical_cpus=2", "--strategy=mirrored"], None),
    }, in_process={"single": _common_args(fold_dir, tmp_path / "run_single")})
    assert results["single"][0]["num_replicas"] == 1
    assert results["mirrored"][0]["num_replicas"] == 2
    # One input pipeline: the 2 replicas split exactly the single-device
    # batches, so only summation order differs.
    _assert_same_run(results["single"], results["mirrored"], atol=1e-5)
    for summary, _ in results.values():
        # Eval: the first batch's shapes, then traces relaxed to any batch
        # size and length (reduce_retracing): not one per batch.
        assert summary["traces"]["train"] == 1
        assert 1 <= summary["traces"]["eval"] <= 3


@pytest.mark.slow
def test_multi_worker_two_processes_agree_with_single_device(fold_dir,
                                                             tmp_path):
    ports = dist_worker.free_ports(2)
    shared_run_dir = tmp_path / "run_multi_worker"
    runs = {
        f"worker{index}": (
            _common_args(fold_dir, shared_run_dir)
            + ["--strategy=multi_worker"],
            {"TF_CONFIG": dist_worker.tf_config(ports, index)})
        for index in range(2)
    }
    # The single-device equivalent: each step is the concatenation of the
    # two workers' independent draws.
    runs["union"] = (_common_args(fold_dir, tmp_path / "run_union")
                     + ["--union_pipelines=2"], None)
    results = _run_processes(tmp_path, runs)
    assert results["worker0"][0]["is_chief"]
    assert not results["worker1"][0]["is_chief"]
    assert results["worker0"][0]["num_replicas"] == 2
    # The workers apply the same all-reduced updates: identical state.
    _assert_same_run(results["worker0"], results["worker1"], atol=0.0)
    assert (results["worker0"][0]["final_dev"]
            == results["worker1"][0]["final_dev"])
    _assert_same_run(results["worker0"], results["union"], atol=1e-5)
    # Only the chief writes into the run folder.
    assert os.path.isdir(shared_run_dir / "checkpoints")
    assert os.path.isdir(shared_run_dir / ".scratch" / "worker_1"
                         / "checkpoints")
    assert not os.path.exists(shared_run_dir / ".scratch" / "worker_0")


def _trainer(fold, run_dir, strategy, model_name="MDRE", steps=2,
             jit_compile=False, mixed_precision=False, log=lambda _: None):
    hparams = helpers.tiny_model_kwargs()
    for derived in ("vocab_size", "embedding_dim"):
        hparams.pop(derived)
    kwargs = model_setup.model_kwargs(model_name, fold, use_glove=False,
                                      embedding_dim=8, normalize_audio=True,
                                      **hparams)
    config = training.TrainConfig(batch_size=16, learning_rate=0.01,
                                  num_train_steps=steps,
                                  jit_compile=jit_compile,
                                  mixed_precision=mixed_precision)
    keras.utils.set_random_seed(0)
    trainer = training.Trainer(
        lambda: model_setup.build_model(model_name, kwargs), strategy,
        str(run_dir), config, fold.num_classes, fold.label_names, log=log)
    splits = fold.splits
    args = (datasets.train_dataset_fn(splits["train"], 16, "sample", 0,
                                      FRAMES),
            datasets.eval_dataset(splits["dev"], 8, FRAMES),
            datasets.eval_dataset(splits["test"], 8, FRAMES),
            len(splits["train"]))
    return trainer, args


@pytest.fixture(scope="module")
def fold(fold_dir):
    return folds.load_fold(fold_dir)


# Slow: the default strategy path is the one every training test runs.
@pytest.mark.slow
def test_one_device_strategy_matches_default(fold, tmp_path):
    results = []
    for name in ("auto", "one_device"):
        trainer, args = _trainer(fold, tmp_path / name,
                                 training.make_strategy(name))
        results.append((trainer.fit(*args), trainer))
    (first, first_trainer), (second, second_trainer) = results
    assert isinstance(second_trainer.strategy, tf.distribute.OneDeviceStrategy)
    assert first.final_dev["loss_sum"] == pytest.approx(
        second.final_dev["loss_sum"], rel=1e-6)
    for a, b in zip(first_trainer.model.weights, second_trainer.model.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


# MDREA under XLA is slow (its attention); ARE covers the path by default.
@pytest.mark.parametrize("model_name", [
    "ARE", pytest.param("MDREA", marks=pytest.mark.slow)])
def test_jit_compile_matches_graph_mode(fold, tmp_path, model_name):
    results = []
    for jit in (False, True):
        trainer, args = _trainer(fold, tmp_path / str(jit),
                                 tf.distribute.get_strategy(), model_name,
                                 jit_compile=jit)
        results.append((trainer.fit(*args), trainer))
    (plain, plain_trainer), (jit, jit_trainer) = results
    assert jit_trainer._last_train_step.experimental_get_tracing_count() == 1
    assert jit.final_dev["loss_sum"] == pytest.approx(
        plain.final_dev["loss_sum"], rel=1e-4)
    for a, b in zip(plain_trainer.model.weights, jit_trainer.model.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4)


def test_eval_stops_tracing_and_counts_each_example_once(fold, tmp_path):
    trainer, _ = _trainer(fold, tmp_path, tf.distribute.get_strategy())
    strategy = trainer.strategy
    counts = []
    for _ in range(3):
        for split in ("dev", "test"):
            dataset = training.distribute_eval_dataset(
                strategy, datasets.eval_dataset(fold.splits[split], 8,
                                                FRAMES))
            result = trainer.evaluate(dataset)
            assert result["num_examples"] == len(fold.splits[split])
        counts.append(
            trainer.evaluator._run_step.experimental_get_tracing_count())
    # Batches of several lengths and a short last batch: the first batch's
    # trace, then traces relaxed (reduce_retracing) to any length and batch
    # size; later passes trace nothing, however many batches they hold.
    assert counts[0] <= 3
    assert counts[1] == counts[2] == counts[0]


def test_mixed_precision_is_ignored_without_gpu(fold, tmp_path):
    if tf.config.list_logical_devices("GPU"):
        pytest.skip("a GPU is visible: mixed precision would be used")
    lines = []
    trainer, _ = _trainer(fold, tmp_path, tf.distribute.get_strategy(),
                          mixed_precision=True, log=lines.append)
    assert not trainer.mixed_precision
    assert any("mixed_precision ignored" in line for line in lines)
    assert trainer.model.get_layer("logits").compute_dtype == "float32"


# Slow: mixed precision is a GPU path; on CPU this runs the float16 graph slowly.
@pytest.mark.slow
def test_mixed_precision_path_trains_with_loss_scaling(fold, tmp_path,
                                                      monkeypatch):
    # No GPU here: pretend one is visible so that the mixed_float16 path
    # (policy, loss-scale optimizer, float32 loss) runs, slowly, on CPU.
    real = tf.config.list_logical_devices
    monkeypatch.setattr(
        tf.config, "list_logical_devices",
        lambda device_type=None: (["/device:GPU:0"] if device_type == "GPU"
                                  else real(device_type)))
    trainer, args = _trainer(fold, tmp_path, tf.distribute.get_strategy(),
                             "MDREA", mixed_precision=True)
    monkeypatch.undo()
    assert trainer.mixed_precision
    assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
    assert trainer.model.get_layer("logits").compute_dtype == "float16"
    # The policy applied to this model only.
    assert keras.config.dtype_policy().name == "float32"
    result = trainer.fit(*args)
    assert np.isfinite(result.final_dev["loss_sum"])
    assert result.final_dev["num_examples"] == SIZES[1]
    for weight in trainer.model.weights:
        assert weight.dtype == "float32"
        assert np.all(np.isfinite(weight.numpy()))


def test_global_batch_must_split_over_replicas():
    class ThreeReplicas:
        num_replicas_in_sync = 3

    with pytest.raises(ValueError, match="multiple of the 3 replicas"):
        training.Trainer(None, ThreeReplicas(), "unused",
                         training.TrainConfig(batch_size=16), 4)


def test_make_strategy_names():
    assert training.make_strategy("auto").num_replicas_in_sync == 1
    assert isinstance(training.make_strategy("one_device"),
                      tf.distribute.OneDeviceStrategy)
    # Without GPUs, mirrored spans the logical CPU devices (here one).
    expected = len(tf.config.list_logical_devices("GPU")) or 1
    assert training.make_strategy("mirrored").num_replicas_in_sync == expected
    with pytest.raises(ValueError, match="Unknown strategy 'tpu'"):
        training.make_strategy("tpu")
