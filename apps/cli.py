"""The one error path of every binary: a user error is one line and exit 1.

`run(main, program)` replaces `absl.app.run(main)` in every binary (train.py,
`apps/*.py` behind evaluate.py, explain.py, export.py, predict.py,
protocol.py, search.py, and `python -m preprocessing.build_arrays`).
A user error — bad data (`DataError`), a bad flag or flag combination
(`app.UsageError`), a file that cannot be read or written (any `OSError`:
missing, unreadable, a full disk), or one of the error types the binary adds
(e.g. `tasks.serving.InferenceError` for exports) — prints
`<program>: <message>` on stderr, one line naming the file, what was expected
and what was found, and exits with status 1: no usage text, no traceback.
Anything else is a bug and keeps its traceback. `RunError` (run folders and
run settings, `common.errors`) is a user error of every binary.
"""

import sys
from typing import Callable, Optional, Sequence, Tuple, Type

from absl import app
from absl import flags

from common.errors import RunError
from preprocessing.reference_arrays import DataError

USER_ERRORS = (DataError, RunError, app.UsageError, OSError)
Main = Callable[[Sequence[str]], Optional[int]]


def describe(error: BaseException) -> str:
    """A user error as one line (an OSError with its file name first)."""
    if isinstance(error, OSError) and error.filename is not None and (
            error.strerror):
        text = f"{error.filename}: {error.strerror}"
        if error.filename2 is not None:
            text += f" (and {error.filename2})"
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


def guard(main: Main, program: str,
          user_errors: Tuple[Type[BaseException], ...] = ()) -> Main:
    """`main` wrapped so that user errors print one line and exit 1."""
    errors = USER_ERRORS + tuple(user_errors)

    def guarded(argv):
        try:
            return main(argv)
        except errors as error:
            print(f"{program}: {describe(error)}", file=sys.stderr,
                  flush=True)
            sys.exit(1)

    return guarded


def run(main: Main, program: str,
        user_errors: Tuple[Type[BaseException], ...] = (),
        argv: Optional[Sequence[str]] = None) -> None:
    """`absl.app.run(main)` with the one error path (see the module
    docstring).

    Args:
        main: callable(argv) → exit status or None.
        program: str. Prefix of the error line, e.g. "train.py".
        user_errors: extra exception types that are user errors.
        argv: the command line (default: sys.argv).
    """
    argv = list(sys.argv if argv is None else argv)
    show_key_flags(main.__module__, argv[0])
    app.run(guard(main, program, user_errors), argv=argv)


def show_key_flags(module: str, program_path: str) -> None:
    """Makes `--help` list the flags the binary's `apps` module defines
    (and the shared ones of `apps.common_flags`).

    absl's `--help` lists the key flags of the main module, which is the
    top-level shim or the console script, not `apps/<name>.py` where the
    flags are defined.
    """
    main_module = sys.modules.get("__main__")
    if main_module is not None and sys.modules[module].__doc__:
        # The usage text too: the apps module's docstring, not the shim's.
        main_module.__doc__ = sys.modules[module].__doc__
    values = flags.FLAGS
    for source in (module, "apps.common_flags"):
        for flag in values.get_key_flags_for_module(source):
            values.register_key_flag_for_module(program_path, flag)
