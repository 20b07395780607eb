"""Run names, result lines and atomic JSON."""

import json
import os
import time

from tasks import run_dir as run_files


def test_run_name_like_the_original():
    name = run_files.run_name("SE_prosody", "audio_woZ_set01", 128,
                              [("es", 750), ("L", 1), ("H", 200),
                               ("dr", 0.7)],
                              time.strptime("2026-03-04 05:06",
                                            "%Y-%m-%d %H:%M"))
    assert name == ("SE_prosody_Daudio_woZ_set01_b128_es750_L1_H200_dr0.7"
                    "_03-04-05-06")


def test_append_result_keeps_old_lines(tmp_path):
    path = str(tmp_path / "TEST_run_result.txt")
    first = run_files.append_result(path, "set01", "run_a", 0.5, 0.25, 0.2)
    run_files.append_result(path, "set01", "run_b", 2 / 3, 0.7, 0.6)
    with open(path) as f:
        lines = f.read().splitlines()
    assert lines[0] == first
    fields = lines[1].split("\t")
    assert fields[1:] == ["set01", "run_b", "0.666666666667", "0.7", "0.6"]
    time.strptime(fields[0], "%Y-%m-%d %H:%M")


def test_write_json_is_atomic(tmp_path):
    path = str(tmp_path / "a" / "config.json")
    run_files.write_json(path, {"x": 1})
    with open(path) as f:
        assert json.load(f) == {"x": 1}
    assert os.listdir(tmp_path / "a") == ["config.json"]
