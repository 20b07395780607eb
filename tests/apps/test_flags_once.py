"""tests/apps/flags_once.py: binaries whose flags clash take turns in FLAGS,
and no value outlives its block."""

import pytest
from absl import flags

from apps import build_arrays as build_arrays_app
from apps import evaluate as evaluate_app
from tests.apps import flags_once

FLAGS = flags.FLAGS


def test_clashing_flags_take_turns_and_values_do_not_leak():
    assert "split" not in FLAGS
    with flags_once.binary_flags(evaluate_app):
        assert FLAGS["split"].default == "test"
        assert FLAGS.batch_size == 128
        FLAGS.batch_size = 7
        FLAGS.verbosity = 2  # absl's own flags are restored too
    assert "split" not in FLAGS and "batch_size" not in FLAGS
    assert FLAGS.verbosity != 2
    with flags_once.binary_flags(build_arrays_app):
        assert FLAGS["split"].default == "random5"
        assert "batch_size" not in FLAGS
    with flags_once.binary_flags(evaluate_app):
        assert FLAGS.batch_size == 128
        assert [f.name for f in FLAGS.get_key_flags_for_module(
            "apps.evaluate")] == ["batch_size"]
        with pytest.raises(RuntimeError, match="apps.evaluate"):
            with flags_once.binary_flags(build_arrays_app):
                pass
