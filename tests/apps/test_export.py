"""export.py (apps/export.py) in-process: flags -> an export at the target
the flags name, printed; flag combinations refused; a target that is not an
export, or a missing run, is one line and exit status 1, nothing touched.
(The binary as a user runs it: tests/apps/test_cli.py.)"""

import json
import os

import pytest
from absl import app

from apps import export as export_app
from models import export as export_lib
from tests import helpers
from tests.apps import flags_once

export_flags = flags_once.use(export_app)


@pytest.fixture(scope="module")
def demo(tmp_path_factory, tiny_demo_source):
    return helpers.copy_demo_run(tiny_demo_source,
                                 tmp_path_factory.mktemp("export"))


def test_export_base_writes_integer_versions(demo, tmp_path, capsys):
    base = tmp_path / "models" / "mdrea"
    assert flags_once.main(export_app, run_dir=demo["run_dir"],
                           export_base=str(base)) == 0
    assert capsys.readouterr().out.splitlines()[-1] == str(base / "1")
    assert os.listdir(base) == ["1"]  # No temporary folder left.
    assert export_lib.is_export(str(base / "1"))
    with open(base / "1" / "assets" / "metadata.json") as f:
        metadata = json.load(f)
    assert metadata["label_names"] == list(helpers.LABEL_NAMES)
    assert "serve_raw" in metadata["raw_signatures"]
    # An existing version is replaced only with --overwrite.
    assert flags_once.main(export_app, run_dir=demo["run_dir"],
                           export_base=str(base), version=1) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert os.listdir(base) == ["1"]
    # The next free version, ignoring what is not an integer.
    (base / "7").mkdir()
    (base / "not_a_version").mkdir()
    assert export_lib.version_dir(str(base)) == str(base / "8")
    with pytest.raises(export_lib.ExportError, match="positive"):
        export_lib.version_dir(str(base), version=0)


def test_flag_combinations_are_usage_errors(demo, tmp_path):
    with pytest.raises(app.UsageError, match="not both"):
        flags_once.main(export_app, run_dir=demo["run_dir"],
                        export_dir=str(tmp_path / "a"),
                        export_base=str(tmp_path / "b"))
    with pytest.raises(app.UsageError, match="--version needs"):
        flags_once.main(export_app, run_dir=demo["run_dir"], version=2,
                        export_dir=str(tmp_path / "a"))
    with pytest.raises(app.UsageError, match="Unexpected arguments"):
        flags_once.command(export_app, f"--run_dir={demo['run_dir']}",
                           "saved_model")
    assert os.listdir(tmp_path) == []


def test_a_folder_that_is_not_an_export_is_one_line_and_kept(demo, tmp_path,
                                                             capsys):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    capsys.readouterr()
    assert flags_once.main(export_app, run_dir=demo["run_dir"],
                           export_dir=str(precious)) == 1
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines()
             if line.startswith("export.py:")]
    assert len(lines) == 1 and "not an export" in lines[0], captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    assert os.listdir(precious) == ["notes.txt"]
    assert (precious / "notes.txt").read_text() == "keep me"


def test_a_missing_run_is_one_line(tmp_path, capsys):
    missing = tmp_path / "no_run"
    capsys.readouterr()
    assert flags_once.main(export_app, run_dir=str(missing),
                           export_dir=str(tmp_path / "out")) == 1
    err = capsys.readouterr().err
    assert err == (f"export.py: {missing / 'config.json'}: missing (expected "
                   "a JSON file written by train.py).\n")
    assert os.listdir(tmp_path) == []
