"""Exports a trained run as a self-contained SavedModel.

Example:

    python export.py --run_dir=runs/SE_multi_D... --export_dir=/tmp/mdre

The `serving_default` signature takes the model's inputs by name (batch and
time dimensions None) and returns `logits`, `probabilities`,
`predicted_label` and `predicted_name`. The export also carries what
`predict.py` needs to go from a wav file and a transcript to those inputs
(`assets/metadata.json`: label names, feature parameters, encoder size,
text width; `assets/vocabulary.json`), so it predicts without the run or
its fold folder (see `inference.export_run`). train.py already exports to
`<run_dir>/saved_model`; this binary re-exports any finished run.
"""

import os

from absl import app
from absl import flags
from absl import logging


def define_flags():
    """Defines this binary's flags (only when it runs as a program)."""
    flags.DEFINE_string("run_dir", None, "Run folder written by train.py.")
    flags.DEFINE_string(
        "export_dir", None, "Target folder (default: <run_dir>/saved_model)."
    )


def export(run_dir, export_dir=None):
    """Rebuilds the run's model and exports it; returns the export folder."""
    import inference

    return inference.export_run(run_dir, export_dir)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    print(export(flags.FLAGS.run_dir, flags.FLAGS.export_dir))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    define_flags()
    flags.mark_flags_as_required(["run_dir"])
    import inference
    from models import run_files
    from preprocessing import cli

    cli.run(main, "export.py", (run_files.RunError, inference.InferenceError))
