"""One training process for the distribution tests (not a test module).

Run from the repository root as `python -m tests.dist_worker ...`; it trains
a tiny model on a fold folder under the requested strategy and writes what
the tests compare: `<out>.json` (metrics, steps, tracing counts) and
`<out>.npz` (final model weights and optimizer variables).

* `--logical_cpus=N` splits the CPU into N logical devices first (it must
  happen before TensorFlow initialises, hence a fresh process), so that
  `--strategy=mirrored` has N replicas.
* `--strategy=multi_worker` reads TF_CONFIG, as `train.py` does.
* `--union_pipelines=K` (one device only) feeds each step the
  concatenation of what K input pipelines would draw: the single-device
  equivalent of K workers.
* `--via_train` runs `train_run.run()` (the binary's code path) instead of
  building the Trainer here; `--check_health_interval` shortens how long a
  multi-worker survivor takes to notice a dead peer (test speed only).
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from tasks import datasets
from tasks import folds
from tasks import model_setup

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--run_dir", required=True)
    parser.add_argument("--out", required=True,
                        help="Output path prefix (.json and .npz added).")
    parser.add_argument("--model", default="MDRE")
    parser.add_argument("--strategy", default="auto")
    parser.add_argument("--logical_cpus", type=int, default=0)
    parser.add_argument("--union_pipelines", type=int, default=0)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--eval_batch_size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--clip_value", type=float, default=10.0)
    parser.add_argument("--keep_prob", type=float, default=1.0)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--jit_compile", action="store_true")
    parser.add_argument("--via_train", action="store_true")
    parser.add_argument("--check_health_interval", type=float, default=0)
    return parser.parse_args(argv)


def _configure_devices(args):
    if args.logical_cpus > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * args.logical_cpus)
    if args.check_health_interval:
        from tensorflow.python.distribute import collective_all_reduce_strategy
        extended = collective_all_reduce_strategy.CollectiveAllReduceExtended
        extended._check_health_interval = args.check_health_interval
        extended._check_health_timeout = 2


def _union_dataset_fn(split, batch_size, frames, pipelines):
    """Every step: the K pipelines' draws of that step, concatenated."""

    make = datasets.train_dataset_fn(split, batch_size, "sample", 0,
                                     frames)

    def concat(*parts):
        longest = tf.reduce_max([tf.shape(features["audio_mfcc"])[1]
                                 for features, _ in parts])
        features = {}
        for name in parts[0][0]:
            values = [part[0][name] for part in parts]
            if name == "audio_mfcc":
                # Padded frames are masked, so padding to a common length
                # changes nothing.
                values = [tf.pad(v, [[0, 0], [0, longest - tf.shape(v)[1]],
                                     [0, 0]]) for v in values]
            features[name] = tf.concat(values, axis=0)
        return features, tf.concat([label for _, label in parts], axis=0)

    def dataset_fn(context, start_step):
        del context  # One device: this dataset is the whole global batch.
        parts = [make(tf.distribute.InputContext(pipelines, index,
                                                 pipelines), start_step)
                 for index in range(pipelines)]
        return tf.data.Dataset.zip(tuple(parts)).map(concat)

    return dataset_fn


def _run_trainer(args, log):
    import keras

    from models import training
    from tests import helpers

    strategy = training.make_strategy(args.strategy)
    fold = folds.load_fold(args.data_dir, args.model)
    hparams = dict(helpers.tiny_model_kwargs(), audio_keep_prob=args.keep_prob,
                   text_keep_prob=args.keep_prob)
    for derived in ("vocab_size", "embedding_dim"):
        hparams.pop(derived)
    kwargs = model_setup.model_kwargs(args.model, fold, use_glove=False,
                                      embedding_dim=8, normalize_audio=True,
                                      **hparams)
    config = training.TrainConfig(
        batch_size=args.batch_size, learning_rate=args.lr,
        num_train_steps=args.steps, clip_value=args.clip_value,
        jit_compile=args.jit_compile)
    keras.utils.set_random_seed(0)
    trainer = training.Trainer(
        lambda: model_setup.build_model(args.model, kwargs), strategy,
        args.run_dir, config, fold.num_classes, fold.label_names, log=log)
    splits = fold.splits
    if args.union_pipelines:
        train_fn = _union_dataset_fn(splits["train"], args.batch_size,
                                     args.frames, args.union_pipelines)
    else:
        train_fn = datasets.train_dataset_fn(
            splits["train"], args.batch_size, "sample", 0, args.frames)
    result = trainer.fit(
        train_fn,
        datasets.eval_dataset(splits["dev"], args.eval_batch_size,
                              args.frames),
        datasets.eval_dataset(splits["test"], args.eval_batch_size,
                              args.frames),
        num_train=len(splits["train"]))
    traces = {
        "train": trainer._last_train_step.experimental_get_tracing_count(),
        "eval": trainer.evaluator._run_step.experimental_get_tracing_count(),
    }
    return trainer, result, traces


def _run_train_binary(args, log):
    from tasks import train_run

    _, result, _ = train_run.run(
        model=args.model, data_dir=args.data_dir, run_dir=args.run_dir,
        result_file=os.path.join(args.run_dir, "results.txt"),
        batch_size=args.batch_size, lr=args.lr, num_train_steps=args.steps,
        patience=1000, encoder_size_audio=args.frames, hidden_dim_audio=6,
        hidden_dim_text=5, dr_audio=args.keep_prob, dr_text=args.keep_prob,
        use_glove=False, embedding_dim=8, strategy=args.strategy,
        jit_compile=args.jit_compile, export=False, log=log)
    return None, result, {}


def _checkpoint_arrays(run_dir):
    """This worker's last checkpoint (the final training state) as arrays.

    The chief writes into `run_dir/checkpoints`, other workers into their
    scratch folder (see models/training.py).
    """
    from models import training

    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    folder = os.path.join(run_dir, training.CHECKPOINT_DIR)
    if task.get("index", 0) > 0:
        folder = os.path.join(run_dir, training.SCRATCH_DIR,
                              f"worker_{task['index']}",
                              training.CHECKPOINT_DIR)
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(folder))
    return {name.replace("/", "."): reader.get_tensor(name)
            for name in reader.get_variable_to_shape_map()
            if name != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def main(argv):
    args = _parse(argv)
    _configure_devices(args)

    def log(line):
        print(line, flush=True)

    if args.via_train:
        trainer, result, traces = _run_train_binary(args, log)
    else:
        trainer, result, traces = _run_trainer(args, log)
    summary = {
        "steps": result.steps, "best_step": result.best_step,
        "best_dev_loss": result.best_dev_loss,
        "stopped_early": result.stopped_early,
        "final_dev": result.final_dev, "final_test": result.final_test,
        "traces": traces,
    }
    if trainer is not None:
        summary["num_replicas"] = trainer.num_replicas
        summary["is_chief"] = trainer.is_chief
        arrays = {f"weight_{i}": w.numpy()
                  for i, w in enumerate(trainer.model.weights)}
        arrays.update({f"optimizer_{i}": np.asarray(v.numpy())
                       for i, v in enumerate(trainer.optimizer.variables)})
    else:
        arrays = _checkpoint_arrays(args.run_dir)
    np.savez(args.out + ".npz", **arrays)
    with open(args.out + ".json", "w") as f:
        json.dump(summary, f)
    log(f"[Worker] done: {result.steps} steps")


# --- Process helpers for the tests (they launch this module) ---------------

def free_ports(count):
    """`count` distinct free TCP ports on 127.0.0.1."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def tf_config(ports, index):
    """TF_CONFIG of worker `index` in a cluster of workers on `ports`."""
    return json.dumps({
        "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
        "task": {"type": "worker", "index": index},
    })


def launch(args, log_path, env=None, module=True):
    """Starts `python -m tests.dist_worker ARGS` (or `python ARGS`) in its
    own process group, output to `log_path`; returns the Popen."""
    command = [sys.executable] + (["-m", "tests.dist_worker"] if module
                                  else []) + list(args)
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
                    PYTHONUNBUFFERED="1")
    full_env.pop("TF_CONFIG", None)
    full_env.update(env or {})
    with open(log_path, "w") as log_file:
        return subprocess.Popen(command, cwd=REPO_ROOT, env=full_env,
                                stdout=log_file, stderr=subprocess.STDOUT,
                                start_new_session=True)


def kill(process, sig=signal.SIGKILL):
    """Kills `process`'s whole group (it was started in its own session)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
    process.wait(timeout=30)


def wait_all(processes, timeout):
    """Waits for every process; returns their exit codes (None: timed out)."""
    deadline = time.monotonic() + timeout
    codes = []
    for process in processes:
        try:
            codes.append(process.wait(
                timeout=max(deadline - time.monotonic(), 0.1)))
        except subprocess.TimeoutExpired:
            codes.append(None)
    return codes


def read_log(path):
    with open(path) as f:
        return f.read()


if __name__ == "__main__":
    main(sys.argv[1:])
