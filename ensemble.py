"""Decision-level ensemble of trained runs, evaluated like evaluate.py.

Example:

    python ensemble.py --run_dirs=runs/x/ARE,runs/x/TRE --method=weighted \
        --output_dir=runs/x/ensemble_are_tre

Every run must have been trained on the same fold folder. Each model's
softmax probabilities are computed on dev and test; `weighted` fits its
weights on dev (never on test). Writes `metrics.json` (test WA, UA,
per-class scores, confusion matrix, each member's test WA, the method and
weights) and `confusion_matrix.png` to `--output_dir`.
"""

import os

from absl import app
from absl import flags
from absl import logging


def define_flags():
    """Defines this binary's flags (only when it runs as a program)."""
    flags.DEFINE_list("run_dirs", None, "Comma-separated run folders.")
    flags.DEFINE_enum("method", "weighted",
                      ["max_confidence", "average", "weighted"],
                      "How to combine the members' probabilities.")
    flags.DEFINE_string("output_dir", None, "Where metrics.json goes.")
    flags.DEFINE_integer("grid_steps", 10,
                         "weighted: simplex grid resolution (1/steps).")
    flags.DEFINE_integer("batch_size", 128, "Batch size.")


def split_probabilities(model, split, encoder_size_audio, batch_size=128):
    """Softmax probabilities [n, C] and labels [n] of a split, in order."""
    import numpy as np
    import tensorflow as tf

    import experiment

    names = [tensor.name for tensor in model.inputs]
    probabilities, labels = [], []
    for features, label in experiment.eval_dataset(
            split, batch_size, encoder_size_audio):
        logits = model({name: features[name] for name in names},
                       training=False)
        probabilities.append(tf.nn.softmax(logits, axis=-1).numpy())
        labels.append(label.numpy())
    return np.concatenate(probabilities), np.concatenate(labels)


def ensemble(run_dirs, method="weighted", output_dir=None, grid_steps=10,
             batch_size=128):
    """Combines trained runs on their common fold; returns the metrics."""
    import numpy as np

    import evaluate
    import experiment
    from models import ensembles
    from models import metrics
    from models import run_files

    if len(run_dirs) < 2:
        raise ValueError(f"An ensemble needs at least two runs, got "
                         f"{run_dirs}.")
    members, digests = [], set()
    for run_dir in run_dirs:
        model, config = experiment.load_trained_model(run_dir)
        digests.add(config["data"]["digest"])
        members.append((run_dir, model, config))
    if len(digests) > 1:
        raise ValueError(f"The runs {run_dirs} were trained on different "
                         "fold folders (manifest/vocabulary digests differ); "
                         "an ensemble needs the same examples.")
    probabilities = {"dev": [], "test": []}
    labels = {}
    member_accuracy = {}
    for run_dir, model, config in members:
        fold = experiment.load_fold(config["data"]["data_dir"],
                                    config["model"]["name"])
        for split in ("dev", "test"):
            p, y = split_probabilities(
                model, fold.splits[split],
                config["data"]["encoder_size_audio"], batch_size)
            probabilities[split].append(p)
            labels[split] = y
        member_accuracy[run_dir] = float(
            (probabilities["test"][-1].argmax(1) == labels["test"]).mean())
    weights = None
    if method == "weighted":
        weights = ensembles.fit_weights(probabilities["dev"], labels["dev"],
                                        steps=grid_steps)
    combined = ensembles.combine(probabilities["test"], method, weights)
    label_names = fold.label_names
    result = metrics.summarize(
        metrics.confusion_matrix(labels["test"], combined.argmax(1),
                                 len(label_names)), label_names)
    result.update(method=method, members=list(run_dirs),
                  member_test_wa=member_accuracy,
                  weights=None if weights is None else
                  np.asarray(weights).tolist(), split="test")
    output_dir = output_dir or os.path.join(
        os.path.dirname(os.path.abspath(run_dirs[0])), f"ensemble_{method}")
    run_files.write_json(os.path.join(output_dir, "metrics.json"), result)
    evaluate.plot_confusion_matrix(
        result["confusion_matrix"], label_names,
        os.path.join(output_dir, "confusion_matrix.png"),
        f"ensemble ({method}) test: WA {result['wa']:.3f} "
        f"UA {result['ua']:.3f}")
    return result


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    values = flags.FLAGS
    result = ensemble(values.run_dirs, values.method, values.output_dir,
                      values.grid_steps, values.batch_size)
    for run_dir, accuracy in result["member_test_wa"].items():
        print(f"  member {run_dir}: test WA {accuracy:.4f}")
    print(f"ensemble ({result['method']}): test WA {result['wa']:.4f} "
          f"UA {result['ua']:.4f}"
          + (f" weights {result['weights']}" if result["weights"] else ""))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    define_flags()
    flags.mark_flags_as_required(["run_dirs"])
    app.run(main)
