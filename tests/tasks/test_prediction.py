"""tasks/explanation.py on a tiny demo-corpus run (the binaries predict.py
and explain.py: tests/apps/test_predict.py, tests/apps/test_explain.py)."""

import json
import os

import pytest

from tasks import explanation as explanation_lib
from tests import helpers



@pytest.fixture(scope="module")
def demo(tmp_path_factory, tiny_demo_source):
    # This module's copy of the shared tiny run and its export.
    return helpers.copy_demo_run(tiny_demo_source,
                                 tmp_path_factory.mktemp("predict_explain"))


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
        helpers.check_png(path)


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
