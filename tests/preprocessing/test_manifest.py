"""Tests for preprocessing/manifest.py: the one manifest parser, and that
training (`manifest_corpus.read_manifest`) and prediction
(`manifest.read_wav_transcripts`, what `inference.read_manifest` returns)
read a manifest identically."""

import os

import pytest

from preprocessing import manifest
from preprocessing import manifest_corpus
from preprocessing.reference_arrays import DataError
from tests.corpus_fixtures import write_tone, write_tricky_manifest


def test_training_and_prediction_read_a_tricky_manifest_identically(
        tmp_path, monkeypatch):
    path, expected = write_tricky_manifest(str(tmp_path))
    monkeypatch.chdir(tmp_path / "audio")  # Paths are the manifest's own.
    corpus = manifest_corpus.read_manifest(path, on_bad_row="raise")
    training = [(e.wav_path, e.transcript) for e in corpus.examples]
    assert training == expected
    assert manifest.read_wav_transcripts(path) == expected
    assert [e.source for e in corpus.examples] == [
        f"{path}:{line}" for line in (4, 7, 9, 10)]
    assert [e.raw_label for e in corpus.examples] == [
        "ang", "Hap", "sad", "neu"]
    assert [e.session for e in corpus.examples] == ["1", "1", "2", "2"]


def test_read_table_columns_rows_and_line_numbers(tmp_path):
    path, _ = write_tricky_manifest(str(tmp_path))
    table = manifest.read_table(path, required=("wav", "label"))
    assert table.header_line == 3
    assert table.columns == {"wav": 0, "transcript": 1, "label": 2,
                             "speaker": 3, "session": 4}
    assert [row.line for row in table.rows] == [4, 7, 9, 10]
    assert table.rows[0].fields == {
        "wav": "../audio/a.wav", "transcript": "Hello, there",
        "label": "ang", "speaker": "s1", "session": "1"}
    assert all(row.problem is None for row in table.rows)


@pytest.mark.parametrize("name,header,delimiter", [
    ("m.tsv", "wav,text\tlabel", "\t"), ("m.tab", "wav", "\t"),
    ("m.csv", "wav\ttext\tlabel", ","), ("m.txt", "wav\ttext,label", ","),
    ("m.txt", "wav\ttext\tlabel,x", "\t"), ("m", "wav", ",")])
def test_delimiter_by_extension_then_header(name, header, delimiter):
    assert manifest.delimiter(name, header) == delimiter


@pytest.mark.parametrize("row,problem", [
    ("x.wav,hi", "expected 3 fields, found 2"),
    ("x.wav,Hello, you,ang", "expected 3 fields, found 4 (quote a value "
                             "that holds the delimiter)")])
def test_wrong_field_counts_are_the_same_bad_row_for_both(tmp_path, row,
                                                          problem):
    write_tone(str(tmp_path / "x.wav"), 200.0)
    path = tmp_path / "m.csv"
    path.write_text(f"wav,transcript,label\n{row}\n")
    message = f"m.csv:2: {problem}"
    with pytest.raises(DataError, match=message.replace("(", r"\(")
                       .replace(")", r"\)")):
        manifest.read_wav_transcripts(str(path))
    # Training needs a speaker column too; with one, the same row problem.
    path.write_text(f"wav,transcript,label,speaker\n{row},s1\n")
    corpus = manifest_corpus.read_manifest(str(path))
    assert corpus.examples == []
    count = len(row.split(",")) + 1
    assert corpus.problems == [f"{path}:2: expected 4 fields, found {count}"
                               + ("" if count < 4 else " (quote a value "
                                  "that holds the delimiter)")]


def test_trailing_empty_fields_are_fine(tmp_path):
    write_tone(str(tmp_path / "x.wav"), 200.0)
    path = tmp_path / "m.csv"
    path.write_text("wav,text\nx.wav,hi,,\n x.wav\t, \n")
    assert manifest.read_wav_transcripts(str(path)) == [
        (str(tmp_path / "x.wav"), "hi"), (str(tmp_path / "x.wav"), None)]


def test_header_and_file_errors_are_one_line_naming_file_and_line(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("# only a comment\nname,text\nx.wav,hi\n")
    with pytest.raises(DataError, match=r"m.csv:2: no wav column in the "
                       r"header: missing \['wav'\] .*found \['name', "
                       r"'text'\]"):
        manifest.read_wav_transcripts(str(path))
    path.write_text("# nothing but comments\n\n  \n")
    with pytest.raises(DataError, match="m.csv: empty manifest"):
        manifest.read_table(str(path))
    with pytest.raises(DataError, match="absent.csv: missing manifest file"):
        manifest.read_table(str(tmp_path / "absent.csv"))
    path.write_bytes(b"wav,text\nx.wav,caf\xe9\n")
    with pytest.raises(DataError, match="m.csv:2: not UTF-8 text"):
        manifest.read_wav_transcripts(str(path))
    path.write_text("wav,text\n,hi\n")
    with pytest.raises(DataError, match="m.csv:2: empty wav path"):
        manifest.read_wav_transcripts(str(path))


def test_prediction_needs_no_transcript_column(tmp_path):
    path = tmp_path / "lists" / "m.tsv"
    os.makedirs(path.parent)
    path.write_text("FILE\n../a.wav\n/abs/b.wav\n")
    assert manifest.read_wav_transcripts(str(path)) == [
        (str(tmp_path / "a.wav"), None), ("/abs/b.wav", None)]
