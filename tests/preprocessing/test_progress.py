"""Tests for preprocessing/progress.py."""

from preprocessing import progress


def test_progress_line_counts_and_ends_with_a_newline(capsys):
    meter = progress.Progress(3, enabled=True, interval=0.0, label="asr")
    for done in (1, 2, 3):
        meter.update(done)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("asr: 1/3 (33%, ")
    assert lines[-1].startswith("asr: 3/3 (100%, ")


def test_disabled_progress_writes_nothing(capsys):
    meter = progress.Progress(2, enabled=False)
    meter.update(1)
    meter.update(2)
    assert capsys.readouterr().err == ""
