"""Runs one or several models over every fold of a build: the protocol.

Example (EmoDB, leave-one-speaker-out; see README.md):

    python protocol.py --fold_root=/work/devfolds/emodb \\
        --models=BASELINE_SVM,BASELINE_LOGREG,ARE --output_dir=runs/emodb \\
        --recipe=real

Every train.py flag applies to each run (`--recipe`, `--config`, `--lr`,
...); `--model`, `--data_dir`, `--run_dir` and `--result_file` are set per
run. Rerun the same command after a kill: finished folds are skipped, the
interrupted one resumes from its checkpoint. Writes `protocol.json`,
`protocol.csv`, `protocol_folds.csv` and `<MODEL>_confusion.png` into
--output_dir and prints the table (protocol_runs.py).
"""

import inspect
import os

from absl import app
from absl import flags
from absl import logging

PER_RUN_FLAGS = ("model", "data_dir", "run_dir", "result_file",
                 "output_dir", "ensemble_members")


def define_flags():
    import train

    train.define_flags()
    flags.DEFINE_string("fold_root", None, "A build folder of "
                        "preprocessing.build_arrays (its manifest.json "
                        "lists the folds).")
    flags.DEFINE_list("models", None, "Models to run, e.g. "
                      "BASELINE_SVM,ARE.")
    flags.DEFINE_list("folds", None, "Only these folds (default: all).")
    flags.DEFINE_list("ensemble_seeds", None,
                      "Two or more seeds: each fold trains one run per "
                      "seed and scores their averaged probabilities.")


def main(argv):
    import protocol_runs
    import train

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    values = flags.FLAGS
    if not values.fold_root or not values.models:
        raise app.UsageError("--fold_root and --models are required.")
    for name in ("data_dir", "run_dir", "ensemble_members"):
        if values[name].present:
            raise app.UsageError(f"--{name} is set per fold by protocol.py; "
                                 "drop it.")
    if values.config:
        import recipes

        try:
            recipes.apply_config_file(values, values.config)
        except ValueError as error:
            raise app.UsageError(str(error)) from error
    kwargs = {name: values[name].value
              for name in inspect.signature(train.train).parameters
              if name not in PER_RUN_FLAGS and name != "log"}
    logging.set_verbosity(logging.WARNING)
    output_dir = values.output_dir
    try:
        protocol_runs.run_protocol(
            values.fold_root, values.models, output_dir, kwargs,
            folds=values.folds, log=lambda line: print(line, flush=True),
            seeds=[int(seed) for seed in values.ensemble_seeds or ()])
    except FileNotFoundError as error:
        raise SystemExit(f"protocol: {error}") from None


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    define_flags()
    app.run(main)
