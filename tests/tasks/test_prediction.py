"""predict.py and explain.py as a user runs them, on a tiny demo-corpus run."""

import json
import os
import re
import subprocess
import sys

import pytest

from apps import predict as predict_app
from tasks import explanation as explanation_lib
from tasks import prediction
from tasks import serving
from tests import helpers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run(binary, *args, **flags):
    """Runs a binary of the repository; returns (exit status, stdout)."""
    command = [sys.executable, os.path.join(ROOT, binary), *args]
    command += [f"--{name}={value}" for name, value in flags.items()]
    done = subprocess.run(command, capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    return done.returncode, done.stdout + done.stderr


@pytest.fixture(scope="module")
def demo(tmp_path_factory, tiny_demo_source):
    # This module's copy of the shared tiny run and its export.
    return helpers.copy_demo_run(tiny_demo_source,
                                 tmp_path_factory.mktemp("predict_explain"))


def _check_png(path):
    with open(path, "rb") as f:
        header = f.read(8)
    assert header == PNG_SIGNATURE, path
    assert os.path.getsize(path) > 5000, path


def test_explain_a_demo_utterance(demo, tmp_path):
    output_dir = str(tmp_path / "why")
    status, out = run("explain.py", run_dir=demo["run_dir"],
                      data_dir=demo["fold_dir"], split="test", index=1,
                      output_dir=output_dir, steps=16)
    assert status == 0, out
    assert "predicted" in out
    names = sorted(os.listdir(output_dir))
    assert names == ["attention.png", "audio_attribution.png",
                     "explanation.json", "modalities.png",
                     "prosody_attribution.png", "word_attribution.png"]
    for name in names:
        if name.endswith(".png"):
            _check_png(os.path.join(output_dir, name))
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


def test_explain_a_wav_with_transcript(demo, tmp_path):
    row = demo["rows"][5]
    explanation, paths = explanation_lib.explain(
        demo["run_dir"], str(tmp_path / "wav"), wav=row["wav_path"],
        text=row["transcript"] + " qqqzzz", steps=16, target="sad")
    assert explanation["target"] == "sad"
    words = explanation["integrated_gradients"]["words"]
    assert words[-1]["token"] == "qqqzzz" and words[-1]["unknown"]
    assert "qqqzzz" in explanation["source"]["unknown_words"]
    frames = explanation["integrated_gradients"]["frames"]
    assert len(frames) == explanation["source"]["frames_used"]
    for path in paths[1:]:
        _check_png(path)


def test_word_summary_per_predicted_class(demo, tmp_path):
    result, path = explanation_lib.summary(
        demo["run_dir"], str(tmp_path / "sum"), split="dev", steps=8,
        min_count=1, top_k=3, log=None)
    assert os.path.isfile(path)
    with open(path) as f:
        assert json.load(f)["classes"] == result["classes"]
    classes = result["classes"]
    assert list(classes) == ["angry", "happy", "sad", "neutral"]
    assert sum(c["num_predicted"] for c in classes.values()) == (
        result["num_examples"])
    assert result["completeness"]["num_over_tolerance"] == 0
    listed = [c for c in classes.values() if c["num_predicted"]]
    assert listed and all(c["top_words"] for c in listed)
    for entry in classes.values():
        means = [w["mean_attribution"] for w in entry["top_words"]]
        assert means == sorted(means, reverse=True)
        assert len(means) <= 3
