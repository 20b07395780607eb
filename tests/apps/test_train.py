"""train.py (apps/train.py): common flags, per-model options, errors.

In-process through absl's flagsaver (tests/apps/flags_once.py), plus one
subprocess test of the binary's error line as a user sees it (its run:
tests/apps/test_cli.py)."""

import os
import subprocess
import sys

import pytest
from absl import flags

from apps import cli
from apps import train as train_app
from tasks import model_options
from tests.apps import flags_once

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
FLAGS = flags.FLAGS


train_flags = flags_once.use(train_app)


def _main(**values):
    flags_once.main(train_app, **values)


def test_help_lists_the_common_flags_and_no_model_only_option():
    names = {flag.name for module in (train_app.__name__, "apps.common_flags")
             for flag in FLAGS.get_key_flags_for_module(module)}
    assert {"model", "data_dir", "recipe", "batch_size", "lr", "seed",
            "model_config", "model_override", "model_help"} <= names
    # The Yoon names stay (reference_script.sh runs the original's flags).
    assert set(model_options.FLAG_ALIASES) <= names
    # Options of one model are not flags any more.
    assert not {"transformer_layers", "cnn_filters", "frame_stride",
                "are_pooling", "mmmf_pooling", "side_units"} & names
    # 61 flags for 11 models before; 16 of these are the recipe's, one
    # the CPU threading (--cpu_threads).
    assert len(names) <= 52


def test_help_text_lists_the_common_flags(monkeypatch):
    # What `python train.py --help` prints: the key flags of the program
    # (sys.argv[0]), which `apps.cli.run` registers for the shim.
    monkeypatch.setattr(sys.modules["__main__"], "__doc__", None)
    cli.show_key_flags(train_app.__name__, "train.py")
    text = FLAGS.module_help("train.py")
    for flag in ("--model:", "--data_dir:", "--model_override:",
                 "--hidden_dim_audio:", "--recipe:"):
        assert flag in text, flag
    assert "--transformer_layers" not in text
    assert sys.modules["__main__"].__doc__ == train_app.__doc__


def test_model_help_prints_the_models_options(capsys):
    _main(model="ARE_POOL", model_help=True)
    out = capsys.readouterr().out
    assert out.startswith("ARE_POOL options")
    assert "  frame_stride = 1: int." in out


def test_a_foreign_option_is_an_error_before_any_output(tmp_path):
    with pytest.raises(model_options.OptionError,
                       match="ARE takes no option 'transformer_layers'"):
        _main(model="ARE", data_dir=str(tmp_path),
              output_dir=str(tmp_path / "runs"),
              model_override=["transformer_layers=8"])
    with pytest.raises(model_options.OptionError,
                       match="--hidden_dim_text: ARE takes no option"):
        _main(model="ARE", data_dir=str(tmp_path), hidden_dim_text=8)
    assert os.listdir(tmp_path) == []


def test_binary_reports_a_foreign_option_in_one_line_exit_1(tmp_path):
    done = subprocess.run(
        [sys.executable, "train.py", "--model=ARE", f"--data_dir={tmp_path}",
         "--model_override=transformer_layers=8"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, PYTHONPATH=ROOT))
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("train.py: --model_override: ARE takes no "
                                "option 'transformer_layers'"), lines
    assert "Traceback" not in done.stderr
