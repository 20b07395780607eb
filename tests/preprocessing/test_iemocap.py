"""Tests for preprocessing/iemocap.py on a generated IEMOCAP-layout tree."""

import os

import pytest

from tests.corpus_fixtures import make_iemocap_tree
from preprocessing import iemocap
from preprocessing.reference_arrays import DataError


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("iemocap"))
    return root, make_iemocap_tree(root)


def test_labels_mapping_and_order(tree):
    root, truth = tree
    corpus = iemocap.read_iemocap(root)
    kept = sorted(u for u, (raw, _) in truth.items()
                  if raw in iemocap.FOUR_CLASS_MAP)
    # Lexicographic: session, dialog, utterance id.
    assert [e.id for e in corpus.examples] == kept
    for example in corpus.examples:
        raw = truth[example.id][0]
        assert example.raw_label == raw
        assert example.label == iemocap.FOUR_CLASS_MAP[raw]
    assert {e.label for e in corpus.examples if e.raw_label == "exc"} == {1}
    assert corpus.dropped == {"fru": 2, "sur": 2, "xxx": 2}
    assert sum(corpus.raw_label_counts.values()) == len(truth)
    assert corpus.class_counts() == {"angry": 6, "happy": 10, "sad": 5,
                                     "neutral": 5}
    assert corpus.problems == []


def test_speakers_sessions_and_paths(tree):
    root, _ = tree
    corpus = iemocap.read_iemocap(root)
    by_id = {e.id: e for e in corpus.examples}
    example = by_id["Ses01F_impro01_M000"]
    assert example.speaker == "Ses01M" and example.session == "Ses01"
    assert example.wav_path == os.path.join(
        root, "Session1", "sentences", "wav", "Ses01F_impro01",
        "Ses01F_impro01_M000.wav")
    assert {e.speaker for e in corpus.examples} == {
        "Ses01F", "Ses01M", "Ses02F", "Ses02M"}
    assert iemocap.speaker_of("Ses03M_script01_1_F012") == "Ses03F"
    with pytest.raises(ValueError, match="not an IEMOCAP utterance id"):
        iemocap.speaker_of("utt001")


def test_transcripts_and_colon_truncation(tree):
    root, truth = tree
    by_id = {e.id: e for e in iemocap.read_iemocap(root).examples}
    full = by_id["Ses01F_impro01_M000"].transcript
    assert full == "Listen: this part was cut by the original"
    truncated = {e.id: e for e in iemocap.read_iemocap(
        root, colon_truncation=True).examples}
    assert truncated["Ses01F_impro01_M000"].transcript == "Listen"
    for utterance, example in by_id.items():
        assert example.transcript == truth[utterance][1]


def test_session_subset_and_custom_map(tree):
    root, _ = tree
    corpus = iemocap.read_iemocap(root, sessions=[2])
    assert {e.session for e in corpus.examples} == {"Ses02"}
    corpus = iemocap.read_iemocap(root, label_map={"ang": 0, "neu": 1},
                                  label_names=("angry", "neutral"))
    assert {e.raw_label for e in corpus.examples} == {"ang", "neu"}


def test_missing_wav_and_transcript(tmp_path):
    root = str(tmp_path)
    make_iemocap_tree(root, sessions=(1,), per_dialog=4)
    os.remove(os.path.join(root, "Session1", "sentences", "wav",
                           "Ses01F_impro01", "Ses01F_impro01_F000.wav"))
    text_path = os.path.join(root, "Session1", "dialog", "transcriptions",
                             "Ses01M_script01_1.txt")
    with open(text_path) as f:
        lines = [l for l in f if not l.startswith("Ses01M_script01_1_M000")]
    with open(text_path, "w") as f:
        f.writelines(lines)
    corpus = iemocap.read_iemocap(root)
    assert len(corpus.problems) == 2
    assert "Ses01F_impro01_F000: missing wav file" in corpus.problems[0]
    assert "Ses01M_script01_1_M000: no or empty transcript" in (
        corpus.problems[1])
    assert "Ses01F_impro01_F000" not in {e.id for e in corpus.examples}
    with pytest.raises(DataError, match="missing wav file"):
        iemocap.read_iemocap(root, on_bad_row="raise")


def test_not_an_iemocap_tree(tmp_path):
    with pytest.raises(DataError, match="no SessionN folders"):
        iemocap.read_iemocap(str(tmp_path))
    with pytest.raises(DataError, match="not a directory"):
        iemocap.read_iemocap(str(tmp_path / "nope"))
