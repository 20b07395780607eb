"""Exports a trained run as a self-contained SavedModel.

Examples:

    python export.py --run_dir=runs/SE_multi_D... --export_dir=/tmp/mdre
    python export.py --run_dir=runs/SE_multi_D... --export_base=/models/mdrea

`--export_base=DIR` writes `DIR/<version>/`, the layout TensorFlow Serving
loads (`--model_base_path=DIR`): the next free integer version unless
`--version` is given. An existing target is replaced only if it is an export
of this toolkit and `--overwrite` is given; any other existing folder is an
error (exit 1) and is left untouched. The export is written under a
temporary name and renamed, so a model server never sees half a version.

The `serving_default` signature takes the model's inputs by name (batch and
time dimensions None) and returns `logits`, `probabilities`,
`predicted_label` and `predicted_name`. The export also carries what
`predict.py` needs to go from a wav file and a transcript to those inputs
(`assets/metadata.json`: label names, feature parameters, encoder size,
text width; `assets/vocabulary.json`), so it predicts without the run or
its fold folder (see `inference.export_run`). Models whose inputs can be
computed from a recording and a transcript also get the `serve_raw`
(waveform, waveform_length, transcript) and `serve_wav` (wav bytes,
transcript) signatures, which compute the features in the graph
(`raw_serving.py`). train.py already exports to `<run_dir>/saved_model`;
this binary re-exports any finished run (replacing that default folder
needs no flag).
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging


def define_flags():
    """Defines this binary's flags (only when it runs as a program)."""
    flags.DEFINE_string("run_dir", None, "Run folder written by train.py.")
    flags.DEFINE_string(
        "export_dir", None, "Target folder (default: <run_dir>/saved_model)."
    )
    flags.DEFINE_string(
        "export_base", None,
        "TF Serving model folder: the export goes to <export_base>/<version>."
    )
    flags.DEFINE_integer(
        "version", None,
        "With --export_base: the version (default: the next free one)."
    )
    flags.DEFINE_boolean(
        "overwrite", False,
        "Replace an existing export at the target (never anything else)."
    )


def export(run_dir, export_dir=None, export_base=None, version=None,
           overwrite=False):
    """Rebuilds the run's model and exports it; returns the export folder.

    Raises:
        app.UsageError: both or neither-but-version of export_dir and
            export_base.
        inference.export_lib.ExportError: a target that may not be written.
    """
    import inference

    if export_dir and export_base:
        raise app.UsageError("Give --export_dir or --export_base, not both.")
    if version is not None and not export_base:
        raise app.UsageError("--version needs --export_base.")
    if export_base:
        export_dir = inference.export_lib.version_dir(export_base, version,
                                                      overwrite)
    return inference.export_run(run_dir, export_dir,
                                overwrite=overwrite or None)


def main(argv):
    import inference

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    values = flags.FLAGS
    try:
        print(export(values.run_dir, values.export_dir, values.export_base,
                     values.version, values.overwrite))
    except (FileNotFoundError, inference.InferenceError,
            inference.export_lib.ExportError,
            inference.reference_arrays.DataError) as error:
        print(f"export.py: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    define_flags()
    flags.mark_flags_as_required(["run_dir"])
    import inference
    from models import run_files
    from preprocessing import cli

    cli.run(main, "export.py", (run_files.RunError, inference.InferenceError))
