"""predict.py (apps/predict.py): the binary as a user runs it (one
subprocess), and in-process through absl's flagsaver: transcripts from
--text_file, the exit statuses, usage errors."""

import json
import os
import re
import subprocess
import sys

import pytest
from absl import app

from apps import predict as predict_app
from tasks import prediction
from tests import helpers
from tests.apps import flags_once

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

predict_flags = flags_once.use(predict_app)


@pytest.fixture(scope="module")
def demo(tmp_path_factory, tiny_demo_source):
    # This module's copy of the shared tiny run and its export.
    return helpers.copy_demo_run(tiny_demo_source,
                                 tmp_path_factory.mktemp("predict"))


def test_predict_prints_a_table_and_writes_json(demo, tmp_path):
    good, other = demo["rows"][0], demo["rows"][1]
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....WAVEfmt garbage")
    output = str(tmp_path / "out.json")
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "predict.py"), good["wav_path"],
         str(broken), other["wav_path"], "--text", good["transcript"],
         "--text", "whatever", "--text", other["transcript"],
         f"--model_dir={demo['export_dir']}", f"--output_json={output}"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "file" in out and "predicted" in out and "angry" in out
    assert re.search(r"broken\.wav +ERROR .*unreadable audio", out)
    assert "2 of 3 file(s) predicted" in out
    with open(output) as f:
        written = json.load(f)
    assert written["num_files"] == 3 and written["num_failed"] == 1
    assert written["model"] == "MDREA"
    first = written["results"][0]
    assert first["file"] == good["wav_path"]
    assert first["predicted"] in written["label_names"]
    assert sum(first["probabilities"].values()) == pytest.approx(1.0,
                                                                 abs=1e-5)
    # The same numbers as the library gives.
    predictor = prediction.Predictor.load(demo["export_dir"])
    direct = predictor.predict_file(good["wav_path"], good["transcript"])
    for name, value in direct["probabilities"].items():
        assert first["probabilities"][name] == pytest.approx(value,
                                                             abs=1e-6)


def test_transcripts_from_a_text_file(demo, tmp_path, capsys):
    rows = demo["rows"][:2]
    text_file = tmp_path / "texts.txt"
    text_file.write_text("".join(row["transcript"] + "\n" for row in rows))
    output = str(tmp_path / "out.json")
    assert flags_once.main(predict_app, *[row["wav_path"] for row in rows],
                           model_dir=demo["export_dir"],
                           text_file=str(text_file), output_json=output) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == (f"2 of 2 file(s) predicted; results in "
                                    f"{output}")
    with open(output) as f:
        written = json.load(f)
    assert [r["file"] for r in written["results"]] == [
        row["wav_path"] for row in rows]
    assert [r["transcript"] for r in written["results"]] == [
        row["transcript"] for row in rows]
    assert not os.path.exists("predictions.json")


def test_predict_exit_status_is_one_when_every_file_fails(demo, tmp_path):
    manifest = tmp_path / "list.tsv"
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    manifest.write_text(f"wav_path\ttranscript\n{empty}\thello\n"
                        f"{demo['rows'][0]['wav_path']}\t\n")
    printed = []
    status = predict_app.predict_and_report(
        demo["export_dir"], [], manifest=str(manifest), log=printed.append)
    assert status == 1
    assert printed[-1] == "0 of 2 file(s) predicted"
    assert "no transcript" in printed[0] and "empty.wav" in printed[0]
    printed.clear()
    row = demo["rows"][0]
    assert predict_app.predict_and_report(
        demo["run_dir"], [row["wav_path"]], texts=[row["transcript"]],
        log=printed.append) == 0
    with pytest.raises(predict_app.app.UsageError,
                       match="exactly one per file"):
        predict_app.predict_and_report(demo["run_dir"], [row["wav_path"]],
                                       texts=["a", "b"])


def test_an_unusable_model_or_text_file_is_exit_status_2(demo, tmp_path,
                                                         capsys):
    wav = demo["rows"][0]["wav_path"]
    output = str(tmp_path / "out.json")
    capsys.readouterr()
    assert flags_once.main(predict_app, wav, text=["hello"],
                           model_dir=str(tmp_path / "no_model"),
                           output_json=output) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("predict.py: ")
    assert captured.err.count("\n") == 1 and "no_model" in captured.err
    assert flags_once.main(predict_app, wav, model_dir=demo["export_dir"],
                           text_file=str(tmp_path / "none.txt"),
                           output_json=output) == 2
    assert capsys.readouterr().err == (
        f"predict.py: {tmp_path / 'none.txt'}: missing transcript file.\n")
    assert not os.path.exists(output)


def test_usage_errors(demo, tmp_path):
    wav = demo["rows"][0]["wav_path"]
    text_file = tmp_path / "texts.txt"
    text_file.write_text("hello\n")
    with pytest.raises(app.UsageError, match="not both"):
        flags_once.main(predict_app, wav, model_dir=demo["export_dir"],
                        text=["hello"], text_file=str(text_file))
    with pytest.raises(app.UsageError, match="No input"):
        flags_once.main(predict_app, model_dir=demo["export_dir"])
    with pytest.raises(app.UsageError, match="2 transcript"):
        flags_once.command(predict_app, f"--model_dir={demo['export_dir']}",
                           wav, "--text=a", "--text=b")
