"""A progress line on stderr for long batch jobs (features, ASR)."""

import sys
import time


class Progress:
    """A `<label>: done/total (pct, elapsed)` line on stderr, throttled."""

    def __init__(self, total: int, enabled: bool, interval: float = 0.25,
                 label: str = "features"):
        self.total = total
        self.label = label
        self.enabled = enabled
        # A terminal gets one line rewritten in place; a log file gets a
        # new line every few seconds instead of hundreds of updates.
        self.tty = sys.stderr.isatty()
        self.interval = interval if self.tty else 5.0
        self.start = time.monotonic()
        self.last = -interval

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if done < self.total and now - self.last < self.interval:
            return
        self.last = now
        sys.stderr.write(f"{chr(13) if self.tty else ''}{self.label}: "
                         f"{done}/{self.total} "
                         f"({100.0 * done / max(self.total, 1):.0f}%, "
                         f"{now - self.start:.1f} s)")
        if done == self.total or not self.tty:
            sys.stderr.write("\n")
        sys.stderr.flush()

