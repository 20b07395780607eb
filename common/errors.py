"""User-error types every layer raises (the binaries print them as one line
and exit 1; see apps/cli.py)."""


class RunError(ValueError):
    """A run folder, or a run's settings, that cannot be used as asked.

    A user error (the binaries print it as one line and exit 1), not a bug:
    a bad flag value, a run name that would leave the output folder, a
    damaged or unreadable checkpoint, a corrupt run file.
    """
