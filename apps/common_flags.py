"""Flags several binaries share, defined once (names, defaults and help), and
the flag-file reader of `--config`."""

from typing import Any, Collection, Dict, Sequence, Tuple

from absl import app
from absl import flags

from tasks import model_setup
from tasks import recipes

SPLITS = ("train", "dev", "test")


def define_run_dir() -> None:
    flags.DEFINE_string("run_dir", None, "Run folder written by train.py.")


def define_data_dir(help_text: str) -> None:
    flags.DEFINE_string("data_dir", None, help_text)


def define_split(help_text: str) -> None:
    flags.DEFINE_enum("split", "test", list(SPLITS), help_text)


def define_cpu_threads() -> None:
    flags.DEFINE_enum("cpu_threads", "auto", list(model_setup.CPU_THREADS),
                      "auto: ARE/TRE/MDRE/MDREA on a CPU-only machine run "
                      "one thread per op and one GRU stream per core "
                      "(faster); tf_default: TF's own threading.")


def define_output_dir(help_text: str) -> None:
    flags.DEFINE_string("output_dir", None, help_text)


def no_arguments(argv: Sequence[str]) -> None:
    """Refuses positional arguments (a binary that takes flags only)."""
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")


def apply_config_file(flag_values: flags.FlagValues, path: str,
                      option_names: Collection[str] = ()
                      ) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Sets the flags named in a configuration file (`--config`, e.g.
    written by search.py), unless given on the command line (the command
    line wins).

    Args:
        flag_values: the parsed flags.
        path: the JSON file.
        option_names: other names the file may hold (model options): they
            are returned, not set.

    Returns:
        (the flag values applied, the other entries).

    Raises:
        app.UsageError: an unreadable file or an unknown name
            (`tasks.recipes.read_config_file`).
    """
    try:
        values = recipes.read_config_file(
            path, set(flag_values) | set(option_names))
    except ValueError as error:
        raise app.UsageError(str(error)) from error
    applied, others = {}, {}
    for name, value in values.items():
        if name not in flag_values:
            others[name] = value
        elif not flag_values[name].present:
            flag_values[name].value = value
            applied[name] = value
    return applied, others
