"""Hyperparameter search with optuna, scored on dev folds only.

    python search.py --space=search_space.json \\
        --data_dirs=FOLD1,FOLD2,FOLD3 --n_trials=20 \\
        --storage=sqlite:///runs/search/study.db \\
        --output_config=runs/search/best.json
    python train.py --config=runs/search/best.json --data_dir=FOLD

See `tasks.search` for the search space, the score and resuming.
"""

import os
import sys
from typing import Optional, Sequence

from absl import flags

from apps import cli
from apps import common_flags
from tasks import search


def define_flags() -> None:
    flags.DEFINE_string("space", None, "JSON search space (see --helpfull).")
    flags.DEFINE_list("data_dirs", None, "Fold folders scored on dev.")
    flags.DEFINE_string("output_config", None, "Best configuration (JSON).")
    flags.DEFINE_string("work_dir", None,
                        "Trial runs (default: next to --output_config).")
    flags.DEFINE_integer("n_trials", 20, "Trials in the study in all.")
    flags.DEFINE_string("storage", None,
                        "optuna storage URL, e.g. sqlite:///study.db "
                        "(resumable); default in memory.")
    flags.DEFINE_string("study_name", "search", "Study name in --storage.")
    flags.DEFINE_integer("seed", 0, "Sampler seed.")


def main(argv: Sequence[str]) -> None:
    common_flags.no_arguments(argv)
    values = flags.FLAGS
    try:
        search.search(
            values.space, values.data_dirs, values.output_config,
            values.work_dir or os.path.join(
                os.path.dirname(os.path.abspath(values.output_config)),
                "trials"),
            values.n_trials, values.storage, values.study_name, values.seed,
            log=lambda line: print(line, flush=True))
    except search.SpaceError as error:
        sys.exit(f"search: {error}")


def run(argv: Optional[Sequence[str]] = None) -> None:
    """The `search` console script (and `python search.py`)."""
    define_flags()
    flags.mark_flags_as_required(["space", "data_dirs", "output_config"])
    cli.run(main, "search.py", argv=argv)
