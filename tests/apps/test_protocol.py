"""protocol.py (apps/protocol.py) in-process: flags -> every fold's run with
the train.py flags, the summary files and the printed table; user errors.
(The binary as a user runs it, killed and rerun: the slow test in
tests/tasks/test_protocol.py.)"""

import json
import os

import pytest
from absl import app

from apps import protocol as protocol_app
from tests import helpers
from tests.apps import flags_once

protocol_flags = flags_once.use(protocol_app)
FOLDS = ("fold_a", "fold_b", "fold_c")


@pytest.fixture(scope="module")
def fold_root(tmp_path_factory):
    return helpers.write_fold_build(tmp_path_factory.mktemp("build"), FOLDS)


def test_flags_run_the_chosen_folds_and_print_the_table(fold_root, tmp_path,
                                                        capsys):
    out = str(tmp_path / "out")
    flags_once.main(protocol_app, fold_root=fold_root,
                    models=["BASELINE_LOGREG"], folds=["fold_a", "fold_c"],
                    output_dir=out, encoder_size_audio=80, export=False)
    printed = capsys.readouterr().out
    assert "| BASELINE_LOGREG | 2 |" in printed
    with open(os.path.join(out, "protocol.json")) as f:
        saved = json.load(f)
    assert saved["settings"]["folds"] == ["fold_a", "fold_c"]
    assert list(saved["models"]["BASELINE_LOGREG"]["folds"]) == [
        "fold_a", "fold_c"]
    kwargs = saved["settings"]["train_kwargs"]
    # The train.py flags apply to every run; the per-run ones are set by
    # the protocol.
    assert kwargs["encoder_size_audio"] == 80 and kwargs["export"] is False
    assert not set(protocol_app.PER_RUN_FLAGS) & set(kwargs)
    for name in ("protocol.csv", "protocol_folds.csv",
                 "BASELINE_LOGREG_confusion.png"):
        assert os.path.isfile(os.path.join(out, name)), name
    assert sorted(os.listdir(os.path.join(out, "BASELINE_LOGREG"))) == [
        "fold_a", "fold_c"]


def test_user_errors(fold_root, tmp_path):
    out = str(tmp_path / "out")
    with pytest.raises(app.UsageError, match="--fold_root and --models"):
        flags_once.main(protocol_app, fold_root=fold_root, output_dir=out)
    for flag in ("--data_dir=x", "--run_dir=x", "--ensemble_members=a,b"):
        name = flag[2:].split("=")[0]
        with pytest.raises(app.UsageError,
                           match=f"--{name} is set per fold"):
            flags_once.command(protocol_app, f"--fold_root={fold_root}",
                               "--models=ARE", f"--output_dir={out}", flag)
    with pytest.raises(SystemExit, match="protocol: .*nowhere: no such "
                       "folder"):
        flags_once.main(protocol_app, fold_root=str(tmp_path / "nowhere"),
                        models=["ARE"], output_dir=out)
    with pytest.raises(SystemExit, match=r"no fold \[.fold_x.\]"):
        flags_once.main(protocol_app, fold_root=fold_root, models=["ARE"],
                        folds=["fold_x"], output_dir=out)
    assert os.listdir(tmp_path) == []
