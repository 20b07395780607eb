"""What a training run leaves on disk: its name, config JSON, result line.

`TEST_run_result.txt` keeps the original's five tab-separated fields (local
time, dataset name, run name, best dev accuracy, test accuracy at the best
dev point) and adds UA as a sixth. Lines are appended with one `write` on an
`O_APPEND` descriptor, so concurrent runs never interleave or truncate it.
"""

import json
import os
import tempfile
import time

RESULT_FILE = "TEST_run_result.txt"


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


def append_result(path, dataset, name, best_dev_accuracy, test_accuracy,
                  test_ua):
    """Appends one result line atomically; creates the file if needed.

    Returns:
        str. The line written (without the newline).
    """
    fields = [time.strftime("%Y-%m-%d %H:%M"), dataset, name,
              _py2_str(best_dev_accuracy), _py2_str(test_accuracy),
              _py2_str(test_ua)]
    line = "\t".join(fields)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, (line + "\n").encode("utf-8"))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return line


def _py2_str(value):
    """A float as Python 2's `str` printed it (12 significant digits)."""
    return "%.12g" % float(value)


def write_json(path, data):
    """Writes JSON atomically (temporary file in the same folder, renamed)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    descriptor, tmp_path = tempfile.mkstemp(prefix=".tmp-", suffix=".json",
                                            dir=directory)
    try:
        with os.fdopen(descriptor, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp_path, path)
    except BaseException:
        os.unlink(tmp_path)
        raise


def read_json(path):
    """Reads a JSON file, with an error naming it when missing or broken."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: missing (expected a JSON file "
                                "written by train.py).")
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error}).")
