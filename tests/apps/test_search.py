"""search.py (apps/search.py) in-process: flags -> an optuna study scored
on dev -> the best configuration, which train.py's --config reads; user
errors. One subprocess: the binary as a user runs it (its error line)."""

import json
import os
import subprocess
import sys

import pytest
from absl import app

from apps import search as search_app
from tests import helpers
from tests.apps import flags_once

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

pytest.importorskip("optuna")
search_flags = flags_once.use(search_app)


@pytest.fixture(scope="module")
def fold_dir(tmp_path_factory):
    return helpers.write_separable_fold(
        tmp_path_factory.mktemp("data") / "fold", sizes=(32, 12, 12))


def _space(path, **space):
    path.write_text(json.dumps(space))
    return str(path)


def test_flags_run_the_trials_and_write_the_best_config(fold_dir, tmp_path,
                                                        capsys):
    space = _space(tmp_path / "space.json",
                   fixed={"model": "BASELINE_LOGREG",
                          "encoder_size_audio": 80, "baseline_select": False},
                   params={"lr": {"type": "float", "low": 1e-3,
                                  "high": 1e-2, "log": True}})
    output = str(tmp_path / "search" / "best.json")
    flags_once.main(search_app, space=space, data_dirs=[fold_dir],
                    output_config=output, n_trials=2, seed=3)
    printed = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in printed[:2]] == [
        "[search] trial 0", "[search] trial 1"]
    assert printed[-1].endswith(f"-> {output}")
    with open(output) as f:
        config = json.load(f)
    assert config["flags"]["model"] == "BASELINE_LOGREG"
    assert 1e-3 <= config["flags"]["lr"] <= 1e-2
    assert config["search"]["trials"] == 2
    assert config["search"]["data_dirs"] == [os.path.abspath(fold_dir)]
    # Trial runs go next to --output_config by default.
    trials = tmp_path / "search" / "trials"
    assert sorted(os.listdir(trials)) == ["TEST_run_result.txt", "trial000",
                                          "trial001"]


def test_user_errors(fold_dir, tmp_path):
    output = str(tmp_path / "best.json")
    bad = _space(tmp_path / "bad.json", fixed={"model": "ARE"},
                 params={"no_such_flag": {"type": "int", "low": 1,
                                          "high": 2}})
    with pytest.raises(SystemExit, match=r"search: .*bad.json: unknown "
                       r"train.py flags \['no_such_flag'\]"):
        flags_once.main(search_app, space=bad, data_dirs=[fold_dir],
                        output_config=output)
    with pytest.raises(SystemExit, match="not a readable JSON"):
        flags_once.main(search_app, space=str(tmp_path / "none.json"),
                        data_dirs=[fold_dir], output_config=output)
    with pytest.raises(app.UsageError, match="Unexpected arguments"):
        flags_once.command(search_app, f"--space={bad}",
                           f"--data_dirs={fold_dir}",
                           f"--output_config={output}", "extra")
    assert sorted(os.listdir(tmp_path)) == ["bad.json"]


def test_binary_reports_a_bad_space_in_one_line_exit_1(fold_dir, tmp_path):
    bad = _space(tmp_path / "bad.json", params={})
    done = subprocess.run(
        [sys.executable, "search.py", f"--space={bad}",
         f"--data_dirs={fold_dir}", f"--output_config={tmp_path / 'b.json'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, PYTHONPATH=ROOT))
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(
        f"search: {bad}: expected {{\"fixed\"")
    assert "Traceback" not in done.stderr
    assert sorted(os.listdir(tmp_path)) == ["bad.json"]
