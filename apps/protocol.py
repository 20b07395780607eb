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
--output_dir and prints the table (`tasks.protocol`).
"""

from typing import Optional, Sequence

from absl import app
from absl import flags
from absl import logging

from apps import cli
from apps import train as train_app
from apps import common_flags
from tasks import protocol

PER_RUN_FLAGS = ("model", "data_dir", "run_dir", "result_file",
                 "output_dir", "ensemble_members")


def define_flags() -> None:
    train_app.define_flags()
    flags.DEFINE_string("fold_root", None, "A build folder of "
                        "preprocessing.build_arrays (its manifest.json "
                        "lists the folds).")
    flags.DEFINE_list("models", None, "Models to run, e.g. "
                      "BASELINE_SVM,ARE.")
    flags.DEFINE_list("folds", None, "Only these folds (default: all).")
    flags.DEFINE_list(
        "ensemble_seeds", None, "Two or more seeds, e.g. 0,1,2: each fold "
        "trains one run per seed and scores their averaged probabilities "
        "(an ENSEMBLE run).")


def _seeds(texts: Optional[Sequence[str]]) -> Sequence[int]:
    try:
        return [int(text) for text in texts or ()]
    except ValueError:
        raise app.UsageError(f"--ensemble_seeds: expected integers, found "
                             f"{','.join(texts)}.") from None


def main(argv: Sequence[str]) -> None:
    common_flags.no_arguments(argv)
    values = flags.FLAGS
    if not values.fold_root or not values.models:
        raise app.UsageError("--fold_root and --models are required.")
    for name in ("data_dir", "run_dir", "ensemble_members"):
        if values[name].present:
            raise app.UsageError(f"--{name} is set per fold by protocol.py; "
                                 "drop it.")
    # A --config file's model options are checked per model by each run.
    options = (train_app.apply_config_file(values.config) if values.config
               else {})
    kwargs = dict(train_app.run_values(exclude=PER_RUN_FLAGS), **options)
    logging.set_verbosity(logging.WARNING)
    try:
        protocol.run_protocol(
            values.fold_root, values.models, values.output_dir, kwargs,
            folds=values.folds, log=lambda line: print(line, flush=True),
            seeds=_seeds(values.ensemble_seeds))
    except FileNotFoundError as error:
        raise SystemExit(f"protocol: {error}") from None


def run(argv: Optional[Sequence[str]] = None) -> None:
    """The `protocol` console script (and `python protocol.py`)."""
    define_flags()
    cli.run(main, "protocol.py", argv=argv)
