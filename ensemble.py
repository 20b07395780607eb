"""Ensembles of trained runs, evaluated like evaluate.py.

Examples:

    python ensemble.py --run_dirs=runs/x/ARE,runs/x/TRE --method=weighted \
        --output_dir=runs/x/ensemble_are_tre
    python ensemble.py --run_dirs=runs/x/ARE,runs/x/TRE --method=feature

Every run must have been trained on the same fold folder.

* Decision level (`max_confidence`, `average`, `weighted`): each model's
  softmax probabilities on dev and test are combined; `weighted` fits its
  weights on dev (never on test).
* Feature level (`feature`): a new linear head is trained on the members'
  frozen, concatenated feature vectors (the inputs of their `logits`
  layers) with the original training schedule (selection on dev loss), and
  exported as a SavedModel over the union of the members' inputs.

Writes `metrics.json` (test WA, UA, per-class scores, confusion matrix,
each member's test WA, the method and weights) and `confusion_matrix.png`
to `--output_dir`.
"""

import os

from absl import app
from absl import flags
from absl import logging


def define_flags():
    """Defines this binary's flags (only when it runs as a program)."""
    flags.DEFINE_list("run_dirs", None, "Comma-separated run folders.")
    flags.DEFINE_enum("method", "weighted",
                      ["max_confidence", "average", "weighted", "feature"],
                      "How to combine the members.")
    flags.DEFINE_string("output_dir", None, "Where metrics.json goes.")
    flags.DEFINE_integer("grid_steps", 10,
                         "weighted: simplex grid resolution (1/steps).")
    flags.DEFINE_integer("batch_size", 128, "Batch size.")
    flags.DEFINE_float("lr", 0.001, "feature: learning rate of the head.")
    flags.DEFINE_integer("num_train_steps", 2000,
                         "feature: maximum steps of the head.")


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
             batch_size=128, lr=0.001, num_train_steps=2000):
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
    output_dir = output_dir or os.path.join(
        os.path.dirname(os.path.abspath(run_dirs[0])), f"ensemble_{method}")
    label_names = fold.label_names
    weights = None
    if method == "feature":
        result = _train_feature_ensemble(
            [model for _, model, _ in members], members[0][2], output_dir,
            batch_size, lr, num_train_steps)
    else:
        if method == "weighted":
            weights = ensembles.fit_weights(
                probabilities["dev"], labels["dev"], steps=grid_steps)
        combined = ensembles.combine(probabilities["test"], method, weights)
        result = metrics.summarize(
            metrics.confusion_matrix(labels["test"], combined.argmax(1),
                                     len(label_names)), label_names)
    result.update(method=method, members=list(run_dirs),
                  member_test_wa=member_accuracy,
                  weights=None if weights is None else
                  np.asarray(weights).tolist(), split="test")
    run_files.write_json(os.path.join(output_dir, "metrics.json"), result)
    evaluate.plot_confusion_matrix(
        result["confusion_matrix"], label_names,
        os.path.join(output_dir, "confusion_matrix.png"),
        f"ensemble ({method}) test: WA {result['wa']:.3f} "
        f"UA {result['ua']:.3f}")
    return result


def _train_feature_ensemble(models, config, output_dir, batch_size, lr,
                            num_train_steps):
    """Trains the feature-level head; returns the restored model's test
    metrics (and exports it to `<output_dir>/saved_model`)."""
    import tensorflow as tf

    import experiment
    from models import export as export_lib
    from models import feature_ensemble
    from models import training

    fold = experiment.load_fold(config["data"]["data_dir"])
    frames = config["data"]["encoder_size_audio"]
    train_config = training.TrainConfig(batch_size=batch_size,
                                        learning_rate=lr,
                                        num_train_steps=num_train_steps)
    trainer = training.Trainer(
        lambda: feature_ensemble.build_feature_ensemble(
            models, fold.num_classes, seed=0),
        tf.distribute.get_strategy(), output_dir, train_config,
        fold.num_classes, fold.label_names, log=lambda _: None)
    result = trainer.fit(
        experiment.train_dataset_fn(fold.splits["train"], batch_size,
                                    "sample", 0, frames),
        experiment.eval_dataset(fold.splits["dev"], batch_size, frames),
        experiment.eval_dataset(fold.splits["test"], batch_size, frames),
        num_train=len(fold.splits["train"]))
    export_lib.export_saved_model(trainer.model,
                                  os.path.join(output_dir, "saved_model"),
                                  fold.label_names)
    metrics = dict(result.final_test)
    metrics["head_steps"] = result.steps
    metrics["head_parameters"] = int(sum(
        int(tf.size(w)) for w in trainer.model.trainable_weights))
    return metrics


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    values = flags.FLAGS
    result = ensemble(values.run_dirs, values.method, values.output_dir,
                      values.grid_steps, values.batch_size, values.lr,
                      values.num_train_steps)
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
