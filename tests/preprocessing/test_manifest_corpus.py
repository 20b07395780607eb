"""Tests for preprocessing/manifest_corpus.py: good rows and every bad row."""

import os

import pytest

from tests.corpus_fixtures import make_manifest_corpus, write_tone
from preprocessing import manifest_corpus as mc
from preprocessing.reference_arrays import DataError


def test_reads_demo_style_tsv(tmp_path):
    path = make_manifest_corpus(str(tmp_path), num=8)
    corpus = mc.read_manifest(path)
    assert len(corpus.examples) == 8 and corpus.problems == []
    first = corpus.examples[0]
    assert first.id == "utt000" and first.label == 0
    assert first.raw_label == "angry" and first.speaker == "spk0"
    assert first.session == "sess1"
    assert first.wav_path == os.path.join(str(tmp_path), "wav", "utt000.wav")
    assert first.source == f"{path}:2"
    assert corpus.class_counts() == {"angry": 2, "happy": 2, "sad": 2,
                                     "neutral": 2}


def _write_bad_manifest(root):
    write_tone(os.path.join(root, "ok.wav"), 150.0)
    write_tone(os.path.join(root, "ok2.wav"), 180.0)
    with open(os.path.join(root, "garbage.wav"), "wb") as f:
        f.write(b"RIFF....not really a wav")
    import soundfile
    import numpy as np
    soundfile.write(os.path.join(root, "empty.wav"), np.zeros(0), 16000)
    rows = [
        "id,path,text,emotion,speaker,session",          # line 1
        "a,ok.wav,hello there,ANG,s1,1",                # 2 ok (case)
        "b,missing.wav,hello,neu,s1,1",                 # 3 missing wav
        "c,garbage.wav,hello,neu,s1,1",                 # 4 unreadable
        "d,ok.wav,hello,bored,s1,1",                    # 5 unknown label
        "e,ok.wav,   ,neu,s1,1",                        # 6 empty transcript
        "f,empty.wav,hello,neu,s1,1",                   # 7 empty audio
        "g,ok2.wav,hello,fru,s2,2",                     # 8 dropped on purpose
        "h,ok2.wav,\"quoted, with comma\",exc,s2,2",    # 9 ok
        "i,ok.wav,hello,neu,,2",                        # 10 empty speaker
        "j,ok.wav",                                     # 11 short row
    ]
    path = os.path.join(root, "corpus.csv")
    with open(path, "w") as f:
        f.write("\n".join(rows) + "\n")
    return path


def test_every_bad_row_reported_with_line(tmp_path):
    path = _write_bad_manifest(str(tmp_path))
    label_map = dict(mc.DEFAULT_LABEL_MAP, fru=-1)
    corpus = mc.read_manifest(path, label_map=label_map)
    assert [e.id for e in corpus.examples] == ["a", "h"]
    assert corpus.examples[1].transcript == "quoted, with comma"
    assert corpus.examples[1].label == 1
    problems = corpus.problems
    assert len(problems) == 7
    expected = [(3, "missing wav file"), (4, "unreadable audio"),
                (5, "unknown label 'bored'"), (6, "empty transcript"),
                (7, "empty audio"), (10, "empty speaker"),
                (11, "expected 6 fields, found 2")]
    for (line, text), problem in zip(expected, problems):
        assert problem.startswith(f"{path}:{line}: "), problem
        assert text in problem
    assert corpus.dropped == {"fru": 1}


@pytest.mark.parametrize("line, text", [
    (3, "missing wav file"), (4, "unreadable audio"),
    (5, "unknown label"), (6, "empty transcript")])
def test_bad_rows_fatal_by_flag(tmp_path, line, text):
    path = _write_bad_manifest(str(tmp_path))
    with open(path) as f:
        lines = f.read().splitlines()
    with open(path, "w") as f:  # Keep the header, line 2 and the bad line.
        f.write("\n".join(lines[:2] + [lines[line - 1]]) + "\n")
    with pytest.raises(DataError, match=f"{os.path.basename(path)}:3: "
                                        f".*{text}"):
        mc.read_manifest(path, on_bad_row="raise")


def test_bad_header_and_duplicates(tmp_path):
    path = tmp_path / "m.tsv"
    path.write_text("wav\ttranscript\tlabel\n")
    with pytest.raises(DataError, match=r"m.tsv:1: .*missing \['speaker'\]"):
        mc.read_manifest(str(path))
    write_tone(str(tmp_path / "x.wav"), 150.0)
    path.write_text("wav\ttranscript\tlabel\tspeaker\n"
                    "x.wav\thi\tsad\ts\nx.wav\thi\tsad\ts\n")
    with pytest.raises(DataError, match="m.tsv:3: duplicate utterance id"):
        mc.read_manifest(str(path))
    with pytest.raises(DataError, match="missing manifest"):
        mc.read_manifest(str(tmp_path / "absent.csv"))


def test_parse_label_map():
    names = ("angry", "happy", "sad", "neutral")
    label_map = mc.parse_label_map("ang:0, hap:happy,exc:1,fru:-1", names)
    assert label_map == {"ang": 0, "hap": 1, "exc": 1, "fru": -1}
    with pytest.raises(ValueError, match="expected an integer"):
        mc.parse_label_map("ang:furious", names)
    with pytest.raises(ValueError, match="raw_label:class_id"):
        mc.parse_label_map("ang", names)


def test_label_map_out_of_range(tmp_path):
    path = make_manifest_corpus(str(tmp_path), num=2)
    with pytest.raises(ValueError, match="sends 'angry' to 7"):
        mc.read_manifest(path, label_map={"angry": 7})
