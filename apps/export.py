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
its fold folder (see `tasks.serving.export_run`). Models whose inputs can be
computed from a recording and a transcript also get the `serve_raw`
(waveform, waveform_length, transcript) and `serve_wav` (wav bytes,
transcript) signatures, which compute the features in the graph
(`tasks.raw_serving`). train.py already exports to `<run_dir>/saved_model`;
this binary re-exports any finished run (replacing that default folder
needs no flag).
"""

import sys
from typing import Optional, Sequence

from absl import app
from absl import flags
from absl import logging

from apps import cli
from apps import common_flags
from models import export as export_lib
from preprocessing import reference_arrays
from tasks import serving


def define_flags() -> None:
    common_flags.define_run_dir()
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


def export(run_dir: str, export_dir: Optional[str] = None,
           export_base: Optional[str] = None, version: Optional[int] = None,
           overwrite: bool = False) -> str:
    """Rebuilds the run's model and exports it; returns the export folder.

    Raises:
        app.UsageError: both or neither-but-version of export_dir and
            export_base.
        export_lib.ExportError: a target that may not be written.
    """
    if export_dir and export_base:
        raise app.UsageError("Give --export_dir or --export_base, not both.")
    if version is not None and not export_base:
        raise app.UsageError("--version needs --export_base.")
    if export_base:
        export_dir = export_lib.version_dir(export_base, version, overwrite)
    return serving.export_run(run_dir, export_dir,
                              overwrite=overwrite or None)


def main(argv: Sequence[str]) -> int:
    common_flags.no_arguments(argv)
    logging.set_verbosity(logging.WARNING)
    values = flags.FLAGS
    try:
        print(export(values.run_dir, values.export_dir, values.export_base,
                     values.version, values.overwrite))
    except (FileNotFoundError, serving.InferenceError,
            export_lib.ExportError, reference_arrays.DataError) as error:
        print(f"export.py: {error}", file=sys.stderr)
        return 1
    return 0


def run(argv: Optional[Sequence[str]] = None) -> None:
    """The `export` console script (and `python export.py`)."""
    define_flags()
    flags.mark_flags_as_required(["run_dir"])
    cli.run(main, "export.py", (serving.InferenceError,), argv)
