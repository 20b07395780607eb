"""evaluate.py (apps/evaluate.py) in-process: flags -> metrics.json, the
confusion-matrix PNG and the printed summary; user errors. (The binary as a
user runs it: tests/apps/test_cli.py.)"""

import json
import os

import pytest
from absl import app
from absl import flags

from apps import cli
from apps import evaluate as evaluate_app
from common.errors import RunError
from preprocessing import reference_arrays
from tests import helpers
from tests.apps import flags_once

evaluate_flags = flags_once.use(evaluate_app)


@pytest.fixture(scope="module")
def demo(tmp_path_factory, tiny_demo_source):
    return helpers.copy_demo_run(tiny_demo_source,
                                 tmp_path_factory.mktemp("evaluate"))


def _metrics(folder):
    with open(os.path.join(folder, "metrics.json")) as f:
        return json.load(f)


def test_writes_metrics_and_png_and_prints_them(demo, tmp_path, capsys):
    output_dir = str(tmp_path / "eval")
    flags_once.main(evaluate_app, run_dir=demo["run_dir"], split="dev",
                    output_dir=output_dir, batch_size=5)
    out = capsys.readouterr().out.splitlines()
    metrics = _metrics(output_dir)
    dev = reference_arrays.load_fold(demo["fold_dir"]).splits["dev"]
    assert metrics["split"] == "dev" and metrics["num_examples"] == len(dev)
    assert metrics["data_dir"] == os.path.abspath(demo["fold_dir"])
    assert sum(map(sum, metrics["confusion_matrix"])) == len(dev)
    assert out[0] == (f"dev: WA {metrics['wa']:.4f} UA {metrics['ua']:.4f} "
                      f"({len(dev)} examples)")
    names = metrics["label_names"]
    assert [line.split()[0] for line in out[1:]] == names
    with open(os.path.join(output_dir, "confusion_matrix.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # Nothing in the run folder: --output_dir was given.
    assert not os.path.exists(os.path.join(demo["run_dir"], "eval_dev"))

    # The defaults again (the flags above did not stay set): the run's own
    # eval_<split> folder, batch 128, the same numbers.
    flags_once.main(evaluate_app, run_dir=demo["run_dir"], split="dev")
    again = _metrics(os.path.join(demo["run_dir"], "eval_dev"))
    assert again["wa"] == pytest.approx(metrics["wa"])
    assert again["loss_sum"] == pytest.approx(metrics["loss_sum"], rel=1e-5)


def test_user_errors(demo, tmp_path):
    missing = str(tmp_path / "no_run")
    with pytest.raises(FileNotFoundError, match="config.json"):
        flags_once.main(evaluate_app, run_dir=missing)
    with pytest.raises(RunError, match="--batch_size=0"):
        flags_once.main(evaluate_app, run_dir=demo["run_dir"], batch_size=0,
                        output_dir=str(tmp_path / "out"))
    with pytest.raises(app.UsageError, match="Unexpected arguments"):
        flags_once.command(evaluate_app, f"--run_dir={demo['run_dir']}",
                           "extra")
    # absl refuses the value before main runs (a usage error at the
    # command line).
    with pytest.raises(flags.IllegalFlagValueError, match="validation"):
        flags_once.command(evaluate_app, f"--run_dir={demo['run_dir']}",
                           "--split=validation")
    assert os.listdir(tmp_path) == []
    for error in (FileNotFoundError, RunError, app.UsageError):
        assert issubclass(error, cli.USER_ERRORS)


def test_one_line_for_a_missing_run(tmp_path, capsys):
    line = flags_once.user_error_line(
        capsys, evaluate_app, "evaluate.py", (),
        run_dir=str(tmp_path / "no_run"))
    assert line == (f"evaluate.py: {tmp_path / 'no_run' / 'config.json'}: "
                    "missing (expected a JSON file written by train.py).")
