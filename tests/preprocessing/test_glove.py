"""Tests for preprocessing/glove.py."""

import gzip

import numpy as np
import pytest

from preprocessing import glove
from preprocessing.reference_arrays import DataError
from preprocessing.text_features import build_vocabulary

NBSP = "\u00a0"


def _write(path, lines, gz=False):
    text = "\n".join(lines) + "\n"
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture
def vocabulary():
    return build_vocabulary([["hello", "world", ".", "missing",
                              f"a{NBSP}b"]])


def test_vectors_with_non_breaking_and_ascii_spaces(tmp_path, vocabulary):
    path = _write(tmp_path / "g.txt", [
        ", 0.5 0.5 0.5",
        "hello 1 2 3",
        f"a{NBSP}b 4 5 6",          # str.split() would break this word.
        f"x{NBSP}. 9 9 9",
        ". . . 7 7 7",              # The word '. . .', not '.'.
        ". 8 8 8",
        "hello 0 0 0",              # Later duplicates are ignored.
        "World 3 3 3",              # Case-sensitive: not 'world'.
    ])
    embedding, report = glove.glove_embedding(vocabulary, path, seed=1)
    assert embedding.shape == (len(vocabulary), 3)
    assert embedding.dtype == np.float32
    np.testing.assert_array_equal(embedding[vocabulary["hello"]], [1, 2, 3])
    np.testing.assert_array_equal(embedding[vocabulary[f"a{NBSP}b"]],
                                  [4, 5, 6])
    np.testing.assert_array_equal(embedding[vocabulary["."]], [8, 8, 8])
    np.testing.assert_array_equal(embedding[vocabulary["_PAD_"]], 0.0)
    for word in ("world", "missing", "_UNK_"):
        row = embedding[vocabulary[word]]
        assert np.all(np.abs(row) <= 0.25) and np.any(row != 0)
    assert report["found"] == 3 and report["zero"] == 1
    assert report["random"] == len(vocabulary) - 4
    assert report["coverage"] == pytest.approx(3 / len(vocabulary))
    assert report["source"] == path and "3/7 rows found" in report["message"]


def test_seeded_random_rows_do_not_depend_on_coverage(tmp_path, vocabulary):
    path = _write(tmp_path / "g.txt", ["hello 1 2 3"])
    first, _ = glove.glove_embedding(vocabulary, path, seed=7)
    again, _ = glove.glove_embedding(vocabulary, path, seed=7)
    np.testing.assert_array_equal(first, again)
    other, _ = glove.glove_embedding(vocabulary, path, seed=8)
    assert not np.array_equal(first[vocabulary["world"]],
                              other[vocabulary["world"]])
    random_only, report = glove.glove_embedding(vocabulary, None, dim=3,
                                                seed=7)
    np.testing.assert_array_equal(random_only[vocabulary["world"]],
                                  first[vocabulary["world"]])
    assert report["found"] == 0 and report["source"] is None
    assert report["message"].startswith("no GloVe file")


def test_any_dimension_and_gzip(tmp_path, vocabulary):
    path = _write(tmp_path / "g.txt.gz", ["hello " + " ".join(["0.5"] * 50)],
                  gz=True)
    embedding, report = glove.glove_embedding(vocabulary, path)
    assert embedding.shape == (len(vocabulary), 50) and report["dim"] == 50
    np.testing.assert_array_equal(embedding[vocabulary["hello"]], 0.5)
    default, report = glove.glove_embedding(vocabulary)
    assert default.shape == (len(vocabulary), 300)


def test_dim_not_fooled_by_a_spaced_first_word(tmp_path):
    path = _write(tmp_path / "g.txt", [". . . 1 2", "hello 3 4", "x 5 6"])
    vectors, dim, lines = glove.read_vectors(path, {". . .", "hello"})
    assert dim == 2 and lines == 3
    np.testing.assert_array_equal(vectors[". . ."], [1, 2])


def test_errors_name_file_and_line(tmp_path, vocabulary):
    with pytest.raises(DataError, match="missing GloVe file"):
        glove.read_vectors(str(tmp_path / "nope.txt"), {"a"})
    empty = _write(tmp_path / "empty.txt", [])
    with pytest.raises(DataError, match="empty GloVe file"):
        glove.read_vectors(empty, {"a"})
    short = _write(tmp_path / "short.txt", ["a 1 2 3", "hello 1 2"])
    with pytest.raises(DataError, match=r"short.txt:2: expected a word and "
                                        r"3 values"):
        glove.read_vectors(short, vocabulary, dim=3)
    bad = _write(tmp_path / "bad.txt", ["a 1 2 3", "hello 1 x 3"])
    with pytest.raises(DataError, match=r"bad.txt:2: non-numeric"):
        glove.read_vectors(bad, vocabulary)
