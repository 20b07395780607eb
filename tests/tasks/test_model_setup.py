"""tasks/model_setup.py: the CPU threading choice of a run."""

import pytest

from common.errors import RunError
from models import gru_recurrence
from tasks import model_setup


@pytest.fixture
def configured(monkeypatch):
    calls = []
    monkeypatch.setattr(gru_recurrence, "configure_cpu_threads",
                        lambda: calls.append(1) or "CPU threading: set.")
    return calls


@pytest.mark.parametrize("model,mode,applied", [
    ("ARE", "auto", True), ("MDREA", "auto", True),
    ("ARE", "tf_default", False),
    # Big matmuls (wav2vec2, CNNs) want TF's multi-threaded ops.
    ("W2V2", "auto", False), ("ARE_POOL", "auto", False),
    ("no_such_model", "auto", False)])
def test_only_gru_models_get_the_stream_threading(configured, model, mode,
                                                  applied):
    lines = []
    model_setup.configure_cpu_threads(model, mode, lines.append)
    assert len(configured) == int(applied)
    assert lines == (["[Info] CPU threading: set."] if applied else [])


def test_unknown_mode_is_refused(configured):
    with pytest.raises(RunError, match="cpu_threads must be one of"):
        model_setup.configure_cpu_threads("ARE", "fast", print)
    assert not configured
