"""What a training run leaves on disk: its name, config JSON, result line.

`TEST_run_result.txt` keeps the original's five tab-separated fields (local
time, dataset name, run name, best dev accuracy, test accuracy at the best
dev point) and adds UA as a sixth. Lines are appended with one `write` on an
`O_APPEND` descriptor, so concurrent runs never interleave or truncate it.
A run folder puts one line there, ever (`record_result`,
`finished_result`).
"""

import json
import os
import time

from common import atomic_files

RESULT_FILE = "TEST_run_result.txt"
# What a finished run records: its result line and the file it went to.
FINISHED_NAME = "result.json"


class RunError(ValueError):
    """A run folder, or a run's settings, that cannot be used as asked.

    A user error (the binaries print it as one line and exit 1), not a bug:
    a bad flag value, a run name that would leave the output folder, a
    damaged or unreadable checkpoint, a corrupt run file.
    """


def run_name(prefix, dataset, batch_size, model_parts, timestamp=None):
    """The original's graph_name: prefix_D<data>_b<batch>..._MM-DD-HH-MM.

    Args:
        prefix: str. e.g. "SE_multi_attn_prosody".
        dataset: str. Dataset (fold folder) name.
        batch_size: int.
        model_parts: sequence of (tag, value) pairs, e.g. [("es", 750),
            ("L", 1), ("H", 200), ("dr", 0.7)], in the original's order.
        timestamp: time.struct_time or None (now).
    """
    parts = [prefix, f"_D{dataset}", f"_b{batch_size}"]
    parts += [f"_{tag}{value}" for tag, value in model_parts]
    stamp = time.strftime("%m-%d-%H-%M", timestamp or time.localtime())
    return "".join(parts) + "_" + stamp


def check_run_name(name, what="run name"):
    """Refuses a run name that is not one plain folder name (so that
    `<output_dir>/<name>` stays inside --output_dir).

    Raises:
        RunError: a path separator, "." or "..", an empty name or a NUL.
    """
    separators = [os.sep] + ([os.altsep] if os.altsep else [])
    if (not name or name in (".", "..") or "\0" in name
            or any(s in name for s in separators)):
        raise RunError(f"{what} {name!r}: expected a plain folder name (no "
                       f"{' or '.join(separators)}, not '.' or '..'), so "
                       "that the run folder stays inside --output_dir.")
    return name


def result_line(dataset, name, best_dev_accuracy, test_accuracy, test_ua):
    """The tab-separated result line of a run (without the newline)."""
    fields = [time.strftime("%Y-%m-%d %H:%M"), dataset, name,
              _py2_str(best_dev_accuracy), _py2_str(test_accuracy),
              _py2_str(test_ua)]
    return "\t".join(fields)


def append_line(path, line):
    """Appends `line` and a newline with one `write` on an O_APPEND
    descriptor; creates the file if needed.

    Raises:
        OSError: naming `path` (e.g. a full disk, errno 28).
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                             0o644)
        try:
            os.write(descriptor, (line + "\n").encode("utf-8"))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except OSError as error:
        raise atomic_files.named(error, path) from None


def append_result(path, dataset, name, best_dev_accuracy, test_accuracy,
                  test_ua):
    """Appends one result line atomically; creates the file if needed.

    Returns:
        str. The line written (without the newline).
    """
    line = result_line(dataset, name, best_dev_accuracy, test_accuracy,
                       test_ua)
    append_line(path, line)
    return line


def record_result(run_dir, result_file, line):
    """Finishes a run: its line goes into `result_file` exactly once.

    The line and the file are first written to `<run_dir>/result.json`,
    then the line is appended; `finished_result` completes the append if
    a crash (or a full disk) came in between, so however often a run is
    finished or re-run, its line is in the result file once.
    """
    write_json(os.path.join(run_dir, FINISHED_NAME),
               {"line": line, "result_file": os.path.abspath(result_file)})
    append_line(result_file, line)


def _has_line(path, line):
    if not os.path.isfile(path):
        return False
    with open(path, encoding="utf-8", errors="replace") as f:
        return any(existing.rstrip("\n") == line for existing in f)


def finished_result(run_dir, result_file):
    """The result line of a finished run, or None if it has not finished.

    A run is finished when `record_result` wrote its `result.json`; if the
    line did not reach its result file then (a crash, a full disk), it is
    appended now. A run finished before `result.json` existed counts as
    finished when `result_file` already holds a line with its dataset and
    run name (its `config.json`); `result.json` is then written for it.

    Args:
        run_dir: str. The run folder.
        result_file: str. The result file of this invocation (only used for
            runs without `result.json`).
    """
    marker = os.path.join(run_dir, FINISHED_NAME)
    if os.path.exists(marker):
        finished = read_json(marker)
        line, path = finished.get("line"), finished.get("result_file")
        if not isinstance(line, str) or not isinstance(path, str):
            raise RunError(f"{marker}: expected {{line, result_file}} "
                           f"strings, found {sorted(finished)}.")
        if not _has_line(path, line):
            append_line(path, line)
        return line
    config_path = os.path.join(run_dir, "config.json")
    if not (os.path.exists(os.path.join(run_dir, "metrics.json"))
            and os.path.exists(config_path) and os.path.isfile(result_file)):
        return None
    config = read_json(config_path)
    wanted = [config.get("data", {}).get("dataset"), config.get("run_name")]
    with open(result_file, encoding="utf-8", errors="replace") as f:
        for existing in f:
            if existing.rstrip("\n").split("\t")[1:3] == wanted:
                line = existing.rstrip("\n")
                write_json(marker, {"line": line, "result_file":
                                    os.path.abspath(result_file)})
                return line
    return None


def _py2_str(value):
    """A float as Python 2's `str` printed it (12 significant digits)."""
    return "%.12g" % float(value)


def write_json(path, data):
    """Writes JSON atomically (temporary file in the same folder, renamed)."""

    def write(f):
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")

    atomic_files.atomic_write(path, write)


def read_json(path):
    """Reads a JSON file, with an error naming it when missing or broken."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: missing (expected a JSON file "
                                "written by train.py).")
    with open(path) as f:
        try:
            return json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise RunError(f"{path}: not valid JSON ({error}).") from None
