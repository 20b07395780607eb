"""Evaluates a trained run on a split: metrics.json and a confusion-matrix PNG.

Example:

    python evaluate.py --run_dir=runs/SE_multi_attn_prosody_D... --split=test

Rebuilds the model from the run's `config.json`, loads `model.weights.h5`
(checking that loading really changed the outputs) and writes
`<run_dir>/eval_<split>/metrics.json` (WA, UA, per-class recall and
precision, confusion matrix with label names) and `confusion_matrix.png`.
An ensemble run (`train.py --ensemble_members=...`) is evaluated the same
way: its members are rebuilt from their own run folders.
"""

import os

from absl import app
from absl import flags
from absl import logging


def define_flags():
    """Defines this binary's flags (only when it runs as a program, so that
    the binaries stay importable together, e.g. by the tests)."""
    flags.DEFINE_string("run_dir", None, "Run folder written by train.py.")
    flags.DEFINE_string(
        "data_dir", None, "Fold folder (default: the one the run trained on)."
    )
    flags.DEFINE_enum(
        "split", "test", ["train", "dev", "test"], "Split to evaluate."
    )
    flags.DEFINE_string(
        "output_dir",
        None,
        "Where metrics.json and the PNG go (default: <run_dir>/eval_<split>).",
    )
    flags.DEFINE_integer("batch_size", 128, "Batch size.")


def plot_confusion_matrix(matrix, label_names, path, title):
    """Writes a row-normalised confusion matrix (percent) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    import numpy as np

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
    tmp_path = path + ".tmp.png"
    figure.savefig(tmp_path, dpi=120)
    pyplot.close(figure)
    os.replace(tmp_path, path)


def evaluate(
    run_dir, split="test", data_dir=None, output_dir=None, batch_size=128
):
    """Evaluates `run_dir`'s model on `split`; returns the metrics dict."""
    import tensorflow as tf

    import experiment
    from models import run_files
    from models import training

    experiment.check_settings(batch_size=batch_size)
    model, config = experiment.load_trained_model(run_dir)
    data_dir = data_dir or config["data"]["data_dir"]
    if experiment.manifest_digest(data_dir) != config["data"]["digest"]:
        logging.warning(
            "%s differs from the data the run trained on.", data_dir
        )
    fold = experiment.load_fold(data_dir, config["model"]["name"],
                                config["model"]["kwargs"])
    if split not in fold.splits:
        raise ValueError(f"{data_dir}: no split {split!r}.")
    if config["data"].get("speaker_norm"):
        # As in training: each split standardised per speaker.
        experiment.normalize_speakers(fold,
                                      config["data"]["encoder_size_audio"])
    dataset = experiment.eval_dataset(
        fold.splits[split], batch_size, config["data"]["encoder_size_audio"],
        by_length=True, **experiment.dataset_options(model),
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


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    values = flags.FLAGS
    result = evaluate(
        values.run_dir,
        values.split,
        values.data_dir,
        values.output_dir,
        values.batch_size,
    )
    print(
        f"{result['split']}: WA {result['wa']:.4f} UA {result['ua']:.4f} "
        f"({result['num_examples']} examples)"
    )
    for name, recall in result["per_class_recall"].items():
        print(
            f"  {name:>8s} recall {recall:.3f} precision "
            f"{result['per_class_precision'][name]:.3f}"
        )


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    define_flags()
    flags.mark_flags_as_required(["run_dir"])
    from models import run_files
    from preprocessing import cli

    cli.run(main, "evaluate.py", (run_files.RunError,))
