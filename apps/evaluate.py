"""Evaluates a trained run on a split: metrics.json and a confusion-matrix PNG.

Example:

    python evaluate.py --run_dir=runs/SE_multi_attn_prosody_D... --split=test

Writes `<run_dir>/eval_<split>/metrics.json` (WA, UA, per-class recall and
precision, confusion matrix with label names) and `confusion_matrix.png`
(`tasks.evaluation`). An ensemble run (`train.py --ensemble_members=...`) is
evaluated the same way: its members are rebuilt from their own run folders.
"""

from typing import Optional, Sequence

from absl import flags
from absl import logging

from apps import cli
from apps import common_flags
from tasks import evaluation


def define_flags() -> None:
    common_flags.define_run_dir()
    common_flags.define_data_dir(
        "Fold folder (default: the one the run trained on).")
    common_flags.define_split("Split to evaluate.")
    common_flags.define_output_dir(
        "Where metrics.json and the PNG go (default: <run_dir>/eval_<split>).")
    flags.DEFINE_integer("batch_size", 128, "Batch size.")
    common_flags.define_cpu_threads()


def main(argv: Sequence[str]) -> None:
    common_flags.no_arguments(argv)
    logging.set_verbosity(logging.WARNING)
    values = flags.FLAGS
    result = evaluation.evaluate(values.run_dir, values.split,
                                 values.data_dir, values.output_dir,
                                 values.batch_size, values.cpu_threads)
    print(f"{result['split']}: WA {result['wa']:.4f} UA {result['ua']:.4f} "
          f"({result['num_examples']} examples)")
    for name, recall in result["per_class_recall"].items():
        print(f"  {name:>8s} recall {recall:.3f} precision "
              f"{result['per_class_precision'][name]:.3f}")


def run(argv: Optional[Sequence[str]] = None) -> None:
    """The `evaluate` console script (and `python evaluate.py`)."""
    define_flags()
    flags.mark_flags_as_required(["run_dir"])
    cli.run(main, "evaluate.py", argv=argv)
