"""The one error path of every binary: a user error is one line and exit 1.

`run(main, program)` replaces `absl.app.run(main)` in train.py, evaluate.py,
explain.py, export.py, predict.py and `python -m preprocessing.build_arrays`.
A user error — bad data (`DataError`), a bad flag or flag combination
(`app.UsageError`), a file that cannot be read or written (any `OSError`:
missing, unreadable, a full disk), or one of the error types the binary adds
(e.g. `models.run_files.RunError` for run folders and run settings) — prints
`<program>: <message>` on stderr, one line naming the file, what was expected
and what was found, and exits with status 1: no usage text, no traceback.
Anything else is a bug and keeps its traceback.
"""

import sys

from absl import app

from preprocessing.reference_arrays import DataError

USER_ERRORS = (DataError, app.UsageError, OSError)


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


def guard(main, program, user_errors=()):
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


def run(main, program, user_errors=()):
    """`absl.app.run(main)` with the one error path (see the module
    docstring).

    Args:
        main: callable(argv) → exit status or None.
        program: str. Prefix of the error line, e.g. "train.py".
        user_errors: extra exception types that are user errors.
    """
    app.run(guard(main, program, user_errors))
