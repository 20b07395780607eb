"""Evaluates a trained run on a split: metrics.json and a confusion-matrix PNG
(what evaluate.py runs).

Rebuilds the model from the run's `config.json`, loads `model.weights.h5`
(checking that loading really changed the outputs) and writes
`<run_dir>/eval_<split>/metrics.json` (WA, UA, per-class recall and
precision, confusion matrix with label names) and `confusion_matrix.png`.
An ensemble run (`train.py --ensemble_members=...`) is evaluated the same
way: its members are rebuilt from their own run folders.
"""

import os
from typing import Any, Dict, Optional, Sequence

import numpy as np
import tensorflow as tf
from absl import logging

from common import atomic_files
from models import training
from tasks import datasets
from tasks import folds
from tasks import loading
from tasks import model_setup
from tasks import run_dir as run_files


def plot_confusion_matrix(matrix: Any, label_names: Sequence[str],
                          path: str, title: str) -> None:
    """Writes a row-normalised confusion matrix (percent) as a PNG
    (atomically)."""
    # matplotlib: an optional heavy dependency, only for the plot.
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    matrix = np.asarray(matrix, dtype=float)
    rows = matrix.sum(axis=1, keepdims=True)
    percent = 100 * np.divide(
        matrix, rows, out=np.zeros_like(matrix), where=rows > 0
    )
    figure, axes = pyplot.subplots(figsize=(4.8, 4.2))
    image = axes.imshow(percent, cmap="Blues", vmin=0, vmax=100)
    for i in range(len(label_names)):
        for j in range(len(label_names)):
            axes.text(
                j,
                i,
                f"{percent[i, j]:.0f}%\n({int(matrix[i, j])})",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if percent[i, j] > 50 else "black",
            )
    axes.set_xticks(range(len(label_names)), label_names)
    axes.set_yticks(range(len(label_names)), label_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title, fontsize=9)
    figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    try:
        atomic_files.atomic_write(
            path, lambda f: figure.savefig(f, format="png", dpi=120),
            binary=True)
    finally:
        pyplot.close(figure)


def evaluate(run_dir: str, split: str = "test",
             data_dir: Optional[str] = None,
             output_dir: Optional[str] = None,
             batch_size: int = 128,
             cpu_threads: str = "auto") -> Dict[str, Any]:
    """Evaluates `run_dir`'s model on `split`; returns the metrics dict.

    `cpu_threads` as in training (`model_setup.CPU_THREADS`).
    """
    run_files.check_settings(batch_size=batch_size)
    config_path = os.path.join(run_dir, "config.json")
    if os.path.exists(config_path):
        # Before the model is built (TF's runtime starts there).
        model_setup.configure_cpu_threads(
            run_files.read_json(config_path)["model"]["name"], cpu_threads,
            logging.info)
    model, config = loading.load_trained_model(run_dir)
    data_dir = data_dir or config["data"]["data_dir"]
    if folds.manifest_digest(data_dir) != config["data"]["digest"]:
        logging.warning(
            "%s differs from the data the run trained on.", data_dir
        )
    fold = folds.load_fold(data_dir, config["model"]["name"],
                           config["model"]["kwargs"])
    if split not in fold.splits:
        raise ValueError(f"{data_dir}: no split {split!r}.")
    if config["data"].get("speaker_norm"):
        # As in training: each split standardised per speaker.
        folds.normalize_speakers(fold,
                                 config["data"]["encoder_size_audio"])
    dataset = datasets.eval_dataset(
        fold.splits[split], batch_size, config["data"]["encoder_size_audio"],
        by_length=True, **datasets.dataset_options(model),
    )
    evaluator = training.Evaluator(
        model, tf.distribute.get_strategy(), fold.num_classes
    )
    result = evaluator(dataset, fold.label_names)
    result.update(
        split=split,
        run_dir=os.path.abspath(run_dir),
        data_dir=os.path.abspath(data_dir),
    )
    output_dir = output_dir or os.path.join(run_dir, f"eval_{split}")
    run_files.write_json(os.path.join(output_dir, "metrics.json"), result)
    plot_confusion_matrix(
        result["confusion_matrix"],
        fold.label_names,
        os.path.join(output_dir, "confusion_matrix.png"),
        f"{config['model']['name']} {fold.name} {split}: WA "
        f"{result['wa']:.3f} UA {result['ua']:.3f}",
    )
    return result
