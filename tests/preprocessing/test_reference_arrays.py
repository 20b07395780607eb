"""Reading, validating and writing reference fold folders."""

import os
import pickle

import numpy as np
import pytest

from common import constants
from preprocessing import reference_arrays
from tests import helpers

DataError = reference_arrays.DataError

# A dict pickled by Python 2 with protocol 0 (text mode): str keys are
# Python 2 byte strings (`S'...'`), one of them UTF-8 encoded (café).
PY2_PICKLE = (b"(dp0\nS'_PAD_'\np1\nI0\nsS'_UNK_'\np2\nI1\n"
              b"sS'caf\\xc3\\xa9'\np3\nI2\nsS'hello'\np4\nI3\ns.")


def test_loads_python2_text_mode_pickle(tmp_path):
    path = tmp_path / "dic.pkl"
    path.write_bytes(PY2_PICKLE)
    assert reference_arrays.load_vocabulary(str(path)) == {
        "_PAD_": 0, "_UNK_": 1, "café": 2, "hello": 3}


def test_loads_python2_pickle_with_crlf_and_latin1(tmp_path):
    path = tmp_path / "dic.pkl"
    path.write_bytes(PY2_PICKLE.replace(b"\\xc3\\xa9", b"\\xe9")
                     .replace(b"\n", b"\r\n"))
    assert reference_arrays.load_vocabulary(str(path))["café"] == 2


def test_saved_vocabulary_is_protocol_0_and_round_trips(tmp_path):
    path = str(tmp_path / "dic.pkl")
    vocabulary = {"_PAD_": 0, "_UNK_": 1, "word": 2}
    reference_arrays.save_vocabulary(vocabulary, path)
    with open(path, "rb") as f:
        assert not f.read().startswith(b"\x80")  # protocol >= 2 header
    assert reference_arrays.load_vocabulary(path) == vocabulary


def test_round_trip_and_dtypes(tmp_path):
    fold_dir = helpers.write_random_fold(tmp_path / "set01")
    fold = reference_arrays.load_fold(fold_dir)
    assert fold.name == "set01"
    assert [len(fold.splits[s]) for s in ("train", "dev", "test")] == [
        40, 12, 12]
    train = fold.splits["train"]
    assert train.mfcc.dtype == np.float32 and train.mfcc.shape == (40, 750,
                                                                   39)
    assert train.text_ids.dtype == np.int32
    assert fold.embedding.shape == (30, 8)
    assert fold.label_names == constants.LABEL_NAMES
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp")]


def test_float64_arrays_as_released_are_read_as_float32(tmp_path):
    fold_dir = helpers.write_random_fold(tmp_path / "set01")
    path = os.path.join(fold_dir, "dev_audio_mfcc.npy")
    np.save(path, np.load(path).astype(np.float64))
    ids_path = os.path.join(fold_dir, "dev_nlp_trans.npy")
    np.save(ids_path, np.load(ids_path).astype(np.int64))
    fold = reference_arrays.load_fold(fold_dir)
    assert fold.splits["dev"].mfcc.dtype == np.float32
    assert fold.splits["dev"].text_ids.dtype == np.int32


@pytest.fixture
def fold_dir(tmp_path):
    return helpers.write_random_fold(tmp_path / "set01")


def _replace(fold_dir, name, array):
    np.save(os.path.join(fold_dir, name), array)


@pytest.mark.parametrize("name,array_fn,message", [
    ("train_audio_mfcc.npy", lambda a: a[:, :700], r"expected shape \[n, "
     r"750, 39\], found \[40, 700, 39\]"),
    ("train_audio_prosody.npy", lambda a: a[:39], r"expected shape \[40, 35\]"
     r", found \[39, 35\]"),
    ("dev_seqN.npy", lambda a: a.astype(np.float32), "integer dtype"),
    ("train_label.npy", lambda a: np.where(np.arange(len(a)) == 3, 4, a),
     r"labels in 0..3, found 4 at row 3"),
    ("test_nlp_trans.npy", lambda a: np.where(a == a.max(), 30, a),
     r"token ids in 0..29 .*found 30"),
    ("dev_seqN.npy", lambda a: -a, "frame counts >= 0"),
    ("test_audio_mfcc.npy", lambda a: a.astype(str), "numeric dtype"),
])
def test_validation_errors_name_file_and_expectation(fold_dir, name,
                                                     array_fn, message):
    path = os.path.join(fold_dir, name)
    _replace(fold_dir, name, array_fn(np.load(path)))
    with pytest.raises(DataError, match=message) as error:
        reference_arrays.load_fold(fold_dir)
    assert path in str(error.value)


def test_missing_file(fold_dir):
    path = os.path.join(fold_dir, "test_label.npy")
    os.remove(path)
    with pytest.raises(DataError, match="missing file") as error:
        reference_arrays.load_fold(fold_dir)
    assert path in str(error.value)


def test_empty_split(fold_dir):
    for suffix, shape, _, dtype in reference_arrays.CORE_ARRAYS.values():
        _replace(fold_dir, f"dev_{suffix}.npy", np.zeros((0,) + shape,
                                                         dtype))
    with pytest.raises(DataError, match="empty"):
        reference_arrays.load_fold(fold_dir)


def test_embedding_rows_must_match_vocabulary(fold_dir):
    _replace(fold_dir, "W_embedding.npy", np.zeros((29, 8), np.float32))
    with pytest.raises(DataError, match="expected 30 rows"):
        reference_arrays.load_fold(fold_dir)


def test_bad_vocabulary(fold_dir):
    path = os.path.join(fold_dir, "dic.pkl")
    with open(path, "wb") as f:
        pickle.dump({"a": 0, "b": 2}, f)
    with pytest.raises(DataError, match="ids 0..1 each used once"):
        reference_arrays.load_fold(fold_dir)
    with open(path, "wb") as f:
        f.write(b"not a pickle")
    with pytest.raises(DataError, match="not a readable pickle"):
        reference_arrays.load_fold(fold_dir)


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="not a directory"):
        reference_arrays.load_fold(str(tmp_path / "nope"))


def test_extras_described_by_manifest(tmp_path):
    splits = {name: helpers.random_split(n, seed=i) for i, (name, n) in
              enumerate((("train", 5), ("dev", 3), ("test", 4)))}
    for name, split in splits.items():
        split.extras["waveform"] = np.ones((len(split), 100 + len(split)),
                                           np.int16)
    vocabulary = {"_PAD_": 0, "_UNK_": 1, **{f"w{i}": i for i in
                                            range(2, 30)}}
    fold_dir = str(tmp_path / "fold")
    reference_arrays.write_fold(fold_dir, splits, vocabulary,
                                np.zeros((30, 4)))
    manifest = reference_arrays.load_manifest(fold_dir)
    assert manifest["extras"]["waveform"]["shape"] == [None]
    fold = reference_arrays.load_fold(fold_dir)
    assert fold.splits["dev"].extras["waveform"].shape == (3, 103)
    np.save(os.path.join(fold_dir, "dev_waveform.npy"),
            np.ones((2, 100), np.int16))
    with pytest.raises(DataError, match=r"dev_waveform.npy: expected shape "
                       r"\[3, \*\]"):
        reference_arrays.load_fold(fold_dir)


def test_write_refuses_to_overwrite(fold_dir):
    with pytest.raises(FileExistsError):
        reference_arrays.write_fold(fold_dir, {}, {"_PAD_": 0},
                                    np.zeros((1, 2)))


class _Payload:
    """Unpickling runs `marker.touch()`: code execution by data file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import pathlib
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_vocabulary_pickle_that_runs_code_is_refused(fold_dir, tmp_path,
                                                      protocol):
    marker = tmp_path / "executed"
    path = os.path.join(fold_dir, "dic.pkl")
    vocabulary = {f"w{i}": i for i in range(30)}
    vocabulary["w1"] = _Payload(str(marker))
    with open(path, "wb") as f:
        pickle.dump(vocabulary, f, protocol=protocol)
    with pytest.raises(DataError, match=r"dic.pkl: refused: the pickle asks for "
                       r"\S+ \(a class or function"):
        reference_arrays.load_fold(fold_dir)
    assert not marker.exists()


def test_vocabulary_json_written_and_read(tmp_path):
    splits = {name: helpers.random_split(n, seed=i) for i, (name, n) in
              enumerate(zip(reference_arrays.SPLITS, (6, 3, 3)))}
    vocabulary = {"_PAD_": 0, "_UNK_": 1, "café": 2}
    vocabulary.update({f"w{i}": i for i in range(3, 30)})
    fold_dir = str(tmp_path / "f")
    reference_arrays.write_fold(fold_dir, splits, vocabulary,
                                np.zeros((30, 4)), vocabulary_json=True)
    path = os.path.join(fold_dir, "dic.json")
    assert reference_arrays.load_vocabulary(path) == vocabulary
    os.remove(os.path.join(fold_dir, "dic.pkl"))
    assert reference_arrays.load_fold(fold_dir).vocabulary == vocabulary
    reference_arrays.save_vocabulary(dict(vocabulary, extra=30), path)
    with pytest.raises(DataError, match="embedding.npy: expected 31 rows"):
        reference_arrays.load_fold(fold_dir)
    reference_arrays.save_vocabulary({**vocabulary, "_UNK_": 2, "café": 1},
                                     os.path.join(fold_dir, "dic.pkl"))
    reference_arrays.save_vocabulary(vocabulary, path)
    with pytest.raises(DataError, match="dic.json: differs from"):
        reference_arrays.load_fold(fold_dir)


@pytest.mark.parametrize("suffix,value,found", [
    ("audio_prosody", np.nan, "NaN"), ("audio_mfcc", np.inf, "Inf")])
def test_non_finite_values_are_refused_with_split_and_row(
        fold_dir, suffix, value, found):
    path = os.path.join(fold_dir, f"dev_{suffix}.npy")
    array = np.load(path)
    array[5].flat[3] = value
    array[9].flat[0] = value
    np.save(path, array)
    with pytest.raises(DataError, match=rf"dev_{suffix}.npy: dev split, row "
                       rf"5: expected finite numbers, found {found} \(2 of "):
        reference_arrays.load_fold(fold_dir)


def test_non_finite_embedding_is_refused(fold_dir):
    path = os.path.join(fold_dir, "W_embedding.npy")
    array = np.load(path)
    array[7, 1] = -np.inf
    np.save(path, array)
    with pytest.raises(DataError, match="W_embedding.npy: row 7: expected "
                       "finite numbers, found Inf"):
        reference_arrays.load_fold(fold_dir)
