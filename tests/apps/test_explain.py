"""explain.py (apps/explain.py): the binary as a user runs it (one
subprocess), and in-process through absl's flagsaver: --summary, usage
errors, a row outside the split."""

import json
import os
import subprocess
import sys

import pytest
from absl import app

from apps import explain as explain_app
from common.errors import RunError
from tests import helpers
from tests.apps import flags_once

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

explain_flags = flags_once.use(explain_app)


@pytest.fixture(scope="module")
def demo(tmp_path_factory, tiny_demo_source):
    return helpers.copy_demo_run(tiny_demo_source,
                                 tmp_path_factory.mktemp("explain"))


def test_explain_a_demo_utterance(demo, tmp_path):
    output_dir = str(tmp_path / "why")
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "explain.py"),
         f"--run_dir={demo['run_dir']}", f"--data_dir={demo['fold_dir']}",
         "--split=test", "--index=1", f"--output_dir={output_dir}",
         "--steps=16"], capture_output=True, text=True, timeout=300,
        cwd=ROOT)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "predicted" in out
    names = sorted(os.listdir(output_dir))
    assert names == ["attention.png", "audio_attribution.png",
                     "explanation.json", "modalities.png",
                     "prosody_attribution.png", "word_attribution.png"]
    for name in names:
        if name.endswith(".png"):
            helpers.check_png(os.path.join(output_dir, name))
    with open(os.path.join(output_dir, "explanation.json")) as f:
        explanation = json.load(f)
    ig = explanation["integrated_gradients"]
    assert abs(ig["completeness_gap"]) <= 0.03 * abs(
        ig["output_difference"]) + 1e-6
    assert ig["completeness_ok"] and "warning" not in ig
    assert explanation["source"]["split"] == "test"
    words = ig["words"]
    # Words outside the training vocabulary are _UNK_ in the fold.
    assert words and all(w["unknown"] == (w["token"] == "_UNK_")
                         for w in words)
    attention = explanation["attention"]
    assert [w["token"] for w in attention["words"]] == [
        w["token"] for w in words]
    assert attention["mass_on_words"] == pytest.approx(1.0, abs=1e-5)
    assert sum(w["weight"] for w in attention["words"]) == pytest.approx(
        1.0, abs=1e-5)
    assert len(ig["prosody"]) == 35
    assert set(explanation["modalities"]["conditions"]) == {
        "both", "audio_only", "text_only", "neither"}
    shares = explanation["modalities"]["shapley_probability"]
    conditions = explanation["modalities"]["conditions"]
    assert sum(shares.values()) == pytest.approx(
        conditions["both"]["target_probability"]
        - conditions["neither"]["target_probability"], abs=1e-6)



def test_summary_prints_each_class_and_writes_json(demo, capsys):
    flags_once.main(explain_app, run_dir=demo["run_dir"], summary=True,
                    split="dev", steps=4, max_examples=4, min_count=1)
    out = capsys.readouterr().out.splitlines()
    path = os.path.join(demo["run_dir"], "explain", "summary_dev",
                        "word_summary.json")
    assert out[-1] == path
    with open(path) as f:
        written = json.load(f)
    assert written["num_examples"] == 4
    # Printed in label order (the JSON file sorts its keys).
    names = [line.split()[0] for line in out[:-1]]
    assert names == list(helpers.LABEL_NAMES)
    assert sorted(written["classes"]) == sorted(names)
    for name, line in zip(names, out):
        entry = written["classes"][name]
        assert line.startswith(f"{name:>8s} ({entry['num_predicted']} "
                               "predicted): ")
    assert sum(c["num_predicted"] for c in written["classes"].values()) == 4


def test_user_errors(demo, tmp_path, capsys):
    output_dir = str(tmp_path / "why")
    with pytest.raises(app.UsageError, match="--text goes with --wav"):
        flags_once.main(explain_app, run_dir=demo["run_dir"], text="hello",
                        output_dir=output_dir)
    with pytest.raises(app.UsageError, match="Unexpected arguments"):
        flags_once.command(explain_app, f"--run_dir={demo['run_dir']}",
                           "a.wav")
    with pytest.raises(FileNotFoundError, match="config.json"):
        flags_once.main(explain_app, run_dir=str(tmp_path / "no_run"))
    # A row outside the split is a user error (one line), not a bug.
    line = flags_once.user_error_line(
        capsys, explain_app, "explain.py", (), run_dir=demo["run_dir"],
        split="test", index=999, output_dir=output_dir)
    assert line.startswith("explain.py: --index=999: expected a row of the "
                           "split, 0..")
    with pytest.raises(RunError, match="--index=-1"):
        flags_once.main(explain_app, run_dir=demo["run_dir"], index=-1,
                        output_dir=output_dir)
    assert os.listdir(tmp_path) == []
