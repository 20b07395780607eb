"""The reference fold-folder format of Yoon et al. (2018): read, validate, write.

A fold folder (e.g. `audio_woZ_set01/`) holds, for each split in
`train`, `dev`, `test`:

| file                        | shape         | meaning                            |
|-----------------------------|---------------|------------------------------------|
| `{split}_audio_mfcc.npy`    | [n, 750, 39]  | MFCC-E-D-A frames, zero-padded end |
| `{split}_seqN.npy`          | [n]           | frame counts, NOT clipped to 750   |
| `{split}_audio_prosody.npy` | [n, 35]       | utterance prosody functionals      |
| `{split}_nlp_trans.npy`     | [n, 128]      | token ids, right-padded with 0     |
| `{split}_label.npy`         | [n]           | 0 angry, 1 happy, 2 sad, 3 neutral |

plus `dic.pkl` (token → id; the released one is a Python 2 protocol-0
pickle) and `W_embedding.npy` [V, E] (row i = vector of token i). The
vocabulary may also (or instead) be `dic.json`, a JSON object token → id.
`dic.pkl` is read with `safe_pickle`, which refuses any pickle that would
import or call something (a pickle is a program; `pickle.loads` on a shared
file runs its author's code).

An optional `manifest.json` describes extra per-example arrays
(`{split}_{name}.npy`, e.g. raw waveforms for wav2vec2) and anything else the
writer wants to record (label names, feature parameters, split policy).

Everything read is validated; a problem raises `DataError` naming the file,
what was expected and what was found (float arrays must be finite: a NaN or
Inf is refused with its split, file and row). Arrays are returned as
float32/int32:
the released MFCC arrays are float64 (~1.3 GB per IEMOCAP fold) and half that
as float32.
"""

import dataclasses
import json
import os
import pickle
import tokenize

import numpy as np

from common import atomic_files
from common import constants
from preprocessing import safe_pickle

SPLITS = ("train", "dev", "test")
# Read by code outside preprocessing/ (tests/helpers.py, inference tests).
LABEL_NAMES = constants.LABEL_NAMES
MANIFEST_NAME = "manifest.json"
VOCAB_NAME = "dic.pkl"
VOCAB_JSON_NAME = "dic.json"
EMBEDDING_NAME = "W_embedding.npy"

# Array name → (file suffix, per-example shape, numpy kind, output dtype).
# `None` in a shape means "any size" (only used for extras).
CORE_ARRAYS = {
    "mfcc": ("audio_mfcc", (constants.MFCC_FRAMES, constants.MFCC_DIM), "f",
             np.float32),
    "seq_len": ("seqN", (), "i", np.int32),
    "prosody": ("audio_prosody", (constants.PROSODY_DIM,), "f", np.float32),
    "text_ids": ("nlp_trans", (constants.TEXT_LENGTH,), "i", np.int32),
    "label": ("label", (), "i", np.int32),
}


class DataError(ValueError):
    """A fold folder does not match the reference format."""


@dataclasses.dataclass
class Split:
    """One split of a fold, as validated arrays.

    Attributes:
        mfcc: float32 [n, 750, 39].
        seq_len: int32 [n], unclipped frame counts.
        prosody: float32 [n, 35].
        text_ids: int32 [n, 128].
        label: int32 [n].
        extras: dict name → array with first dimension n.
    """

    mfcc: np.ndarray
    seq_len: np.ndarray
    prosody: np.ndarray
    text_ids: np.ndarray
    label: np.ndarray
    extras: dict = dataclasses.field(default_factory=dict)

    def __len__(self):
        return len(self.label)


@dataclasses.dataclass
class Fold:
    """A fold folder: its splits, vocabulary, embedding and manifest."""

    path: str
    splits: dict
    vocabulary: dict
    embedding: np.ndarray
    manifest: dict

    @property
    def name(self):
        """Dataset name as the original logged it (the folder's own name)."""
        return os.path.basename(os.path.normpath(self.path))

    @property
    def label_names(self):
        return tuple(self.manifest.get("label_names", LABEL_NAMES))

    @property
    def num_classes(self):
        return len(self.label_names)


def load_vocabulary(path):
    """Loads `dic.pkl` (or a `.json` vocabulary) without running any code.

    A pickle is read by `safe_pickle`, which admits only plain data (the
    original's Python 2 text-mode pickle included) and refuses a pickle
    naming any class or function. Python 2 `str` keys come back as bytes
    unless an encoding is given; they are decoded as UTF-8, falling back to
    latin-1 (which never fails) for pickles holding other byte strings. A
    path ending in `.json` is read as a JSON object token → id.

    Args:
        path: str. The pickle (or JSON) file.

    Returns:
        dict str → int.

    Raises:
        DataError: missing file, not a pickle (or JSON), a pickle that would
            run code (naming the refused class), or not a str → int dict.
    """
    if not os.path.isfile(path):
        raise DataError(f"{path}: missing vocabulary file (a pickled dict "
                        "token → id, as written by the original code, or "
                        "a JSON object).")
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".json"):
        vocabulary = _vocabulary_json(path, data)
    else:
        vocabulary = _vocabulary_pickle(path, data)
    if not isinstance(vocabulary, dict):
        raise DataError(f"{path}: expected a dict token → id, found "
                        f"{type(vocabulary).__name__}.")
    result = {}
    for token, index in vocabulary.items():
        if isinstance(token, bytes):
            token = token.decode("latin-1")
        if not isinstance(token, str) or isinstance(index, bool) or not (
                isinstance(index, (int, np.integer))):
            raise DataError(f"{path}: expected str → int entries, found "
                            f"{token!r} → {index!r}.")
        result[token] = int(index)
    ids = sorted(result.values())
    if ids != list(range(len(ids))):
        raise DataError(f"{path}: expected ids 0..{len(ids) - 1} each used "
                        f"once, found {len(set(ids))} distinct ids from "
                        f"{ids[0] if ids else None} to "
                        f"{ids[-1] if ids else None}.")
    return result


def _vocabulary_pickle(path, data):
    if b"\r\n" in data and not data.startswith(b"\x80"):
        # Protocol-0 pickles are text; one written in text mode on Windows
        # has CRLF line ends that the unpickler does not accept.
        data = data.replace(b"\r\n", b"\n")
    for encoding in ("utf-8", "latin-1"):
        try:
            return safe_pickle.loads(data, encoding=encoding)
        except UnicodeDecodeError:
            continue
        except safe_pickle.RefusedPickle as error:
            raise DataError(
                f"{path}: refused: the pickle asks for {error} (a class or "
                "function; unpickling it would run code); a vocabulary "
                "holds only a dict str → int. Nothing was executed. Use a "
                "trusted dic.pkl or a dic.json.") from None
        except Exception as error:  # pickle raises many types on bad input.
            raise DataError(f"{path}: not a readable pickle ({error!r}).")
    raise AssertionError("latin-1 decodes any byte string")


def _vocabulary_json(path, data):
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{path}: not a UTF-8 JSON object token → id "
                        f"({error}).") from None


def save_vocabulary(vocabulary, path):
    """Writes a vocabulary: a protocol-0 pickle (`dic.pkl`, readable by
    Python 2 and 3), or a JSON object when `path` ends in `.json`."""
    vocabulary = dict(vocabulary)
    if path.endswith(".json"):
        atomic_files.atomic_write(path, lambda f: json.dump(
            vocabulary, f, ensure_ascii=False, indent=0, sort_keys=True))
        return
    atomic_files.atomic_write(path, lambda f: pickle.dump(vocabulary, f,
                                              protocol=0), binary=True)


def load_fold_vocabulary(fold_dir):
    """The vocabulary of a fold folder: `dic.pkl` and/or `dic.json`.

    Raises:
        DataError: neither file, a bad one, or the two disagree.
    """
    pickle_path = os.path.join(fold_dir, VOCAB_NAME)
    json_path = os.path.join(fold_dir, VOCAB_JSON_NAME)
    if not os.path.exists(json_path):
        return load_vocabulary(pickle_path)
    vocabulary = load_vocabulary(json_path)
    if os.path.exists(pickle_path) and (
            load_vocabulary(pickle_path) != vocabulary):
        raise DataError(f"{json_path}: differs from {pickle_path}; expected "
                        "the same vocabulary in both (or only one file).")
    return vocabulary


def load_manifest(fold_dir):
    """Returns the parsed `manifest.json` of a fold folder, or {} if absent."""
    path = os.path.join(fold_dir, MANIFEST_NAME)
    if not os.path.exists(path):
        return {}
    try:
        with open(path) as f:
            manifest = json.load(f)
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON ({error}).")
    if not isinstance(manifest, dict):
        raise DataError(f"{path}: expected a JSON object, found "
                        f"{type(manifest).__name__}.")
    return manifest


def _load_array(path, per_example_shape, kind, dtype, n=None, split=None):
    if not os.path.isfile(path):
        raise DataError(f"{path}: missing file (expected an array of shape "
                        f"{_shape_text(n, per_example_shape)}).")
    try:
        # mmap avoids a second full copy of float64 arrays while converting.
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, EOFError, SyntaxError, tokenize.TokenError) as error:
        # A damaged header fails in numpy's header parser in several ways.
        raise DataError(f"{path}: not a plain numeric .npy file "
                        f"({type(error).__name__}: {error}).") from None
    if kind == "f" and array.dtype.kind not in "fiu":
        raise DataError(f"{path}: expected a numeric dtype, found "
                        f"{array.dtype}.")
    if kind == "i" and array.dtype.kind not in "iu":
        raise DataError(f"{path}: expected an integer dtype, found "
                        f"{array.dtype}.")
    expected_rank = 1 + len(per_example_shape)
    shape_ok = array.ndim == expected_rank and all(
        want is None or want == got
        for want, got in zip(per_example_shape, array.shape[1:]))
    if not shape_ok or (n is not None and array.shape[0] != n):
        raise DataError(f"{path}: expected shape "
                        f"{_shape_text(n, per_example_shape)}, found "
                        f"{list(array.shape)}.")
    if array.shape[0] == 0:
        raise DataError(f"{path}: the split is empty (0 examples).")
    array = np.ascontiguousarray(array, dtype=dtype or array.dtype)
    if array.dtype.kind == "f":
        _check_finite(path, array, split)
    return array


def _check_finite(path, array, split=None, block=1024):
    """Raises DataError naming the first row holding NaN or Inf."""
    bad_rows = []
    # In blocks of rows: one boolean copy of a whole 1 GB array is avoided.
    for start in range(0, len(array), block):
        values = array[start:start + block]
        finite = np.isfinite(values).reshape(len(values), -1).all(axis=1)
        bad_rows.extend(start + np.flatnonzero(~finite))
    if bad_rows:
        row = int(bad_rows[0])
        values = np.asarray(array[row]).reshape(-1)
        found = "NaN" if np.isnan(values).any() else "Inf"
        where = f"{split} split, " if split else ""
        raise DataError(f"{path}: {where}row {row}: expected finite numbers, "
                        f"found {found} ({len(bad_rows)} of {len(array)} "
                        "rows hold NaN or Inf).")


def _shape_text(n, per_example_shape):
    dims = ["n" if n is None else str(n)]
    dims += ["*" if d is None else str(d) for d in per_example_shape]
    return "[" + ", ".join(dims) + "]"


def load_split(fold_dir, split, vocab_size=None, num_classes=len(LABEL_NAMES),
               extras=None):
    """Loads and validates one split of a fold folder.

    Args:
        fold_dir: str. The fold folder.
        split: str. One of `train`, `dev`, `test`.
        vocab_size: int or None. If given, every token id must be < it.
        num_classes: int. Labels must lie in 0..num_classes-1.
        extras: dict name → {"shape": [...], "dtype": str} from the manifest.

    Returns:
        `Split`.
    """
    arrays = {}
    n = None
    for name, (suffix, shape, kind, dtype) in CORE_ARRAYS.items():
        path = os.path.join(fold_dir, f"{split}_{suffix}.npy")
        arrays[name] = _load_array(path, shape, kind, dtype, n, split)
        n = len(arrays[name])
    label_path = os.path.join(fold_dir, f"{split}_label.npy")
    bad = (arrays["label"] < 0) | (arrays["label"] >= num_classes)
    if bad.any():
        raise DataError(
            f"{label_path}: expected labels in 0..{num_classes - 1}, found "
            f"{arrays['label'][bad][0]} at row {int(np.argmax(bad))} "
            f"({int(bad.sum())} bad rows).")
    seq_path = os.path.join(fold_dir, f"{split}_seqN.npy")
    if (arrays["seq_len"] < 0).any():
        raise DataError(f"{seq_path}: expected frame counts >= 0, found "
                        f"{arrays['seq_len'].min()}.")
    text_path = os.path.join(fold_dir, f"{split}_nlp_trans.npy")
    ids = arrays["text_ids"]
    if ids.min() < 0 or (vocab_size is not None and ids.max() >= vocab_size):
        bad_id = ids.min() if ids.min() < 0 else ids.max()
        raise DataError(f"{text_path}: expected token ids in "
                        f"0..{'V-1' if vocab_size is None else vocab_size - 1}"
                        f" (V = size of dic.pkl / W_embedding.npy), found "
                        f"{bad_id}.")
    split_extras = {}
    for name, spec in (extras or {}).items():
        path = os.path.join(fold_dir, f"{split}_{name}.npy")
        shape = tuple(spec.get("shape", ()))
        dtype = np.dtype(spec["dtype"]) if "dtype" in spec else None
        split_extras[name] = _load_array(path, shape, "f", dtype, n, split)
    return Split(extras=split_extras, **arrays)


def load_fold(fold_dir, splits=SPLITS, load_embedding=True):
    """Loads and validates a whole fold folder.

    Args:
        fold_dir: str. The folder (the trailing slash the original needed is
            optional).
        splits: sequence of split names to load.
        load_embedding: bool. Read `W_embedding.npy` (needed for text models
            with GloVe); its row count must equal the vocabulary size.

    Returns:
        `Fold`.

    Raises:
        DataError: for any missing file or mismatch, naming the file.
    """
    if not os.path.isdir(fold_dir):
        raise DataError(f"{fold_dir}: not a directory (expected a fold folder "
                        "with train_/dev_/test_*.npy, dic.pkl, "
                        "W_embedding.npy).")
    manifest = load_manifest(fold_dir)
    vocabulary = load_fold_vocabulary(fold_dir)
    vocab_size = len(vocabulary)
    embedding = None
    if load_embedding:
        path = os.path.join(fold_dir, EMBEDDING_NAME)
        embedding = _load_array(path, (None,), "f", np.float32)
        if embedding.shape[0] != vocab_size:
            raise DataError(f"{path}: expected {vocab_size} rows (one per "
                            f"entry of dic.pkl), found {embedding.shape[0]}.")
    num_classes = len(manifest.get("label_names", LABEL_NAMES))
    extras = manifest.get("extras", {})
    if not isinstance(extras, dict):
        raise DataError(f"{os.path.join(fold_dir, MANIFEST_NAME)}: 'extras' "
                        "must map array names to {shape, dtype}.")
    loaded = {
        split: load_split(fold_dir, split, vocab_size, num_classes, extras)
        for split in splits
    }
    return Fold(path=fold_dir, splits=loaded, vocabulary=vocabulary,
                embedding=embedding, manifest=manifest)


def write_fold(fold_dir, splits, vocabulary, embedding, manifest=None,
               overwrite=False, vocabulary_json=False):
    """Writes a fold folder atomically (to a temporary folder, then renamed).

    Args:
        fold_dir: str. Target folder; must not exist unless `overwrite`.
        splits: dict split name → `Split`.
        vocabulary: dict str → int.
        embedding: float array [V, E].
        manifest: dict or None. Written as `manifest.json`; the `extras`
            entry is filled in from the splits' extra arrays.
        overwrite: bool. Replace an existing folder.
        vocabulary_json: bool. Also write the vocabulary as `dic.json`
            (readers that trust no pickle can use it).
    """
    with atomic_files.atomic_directory(fold_dir, overwrite) as tmp_dir:
        _write_fold_files(tmp_dir, splits, vocabulary, embedding, manifest)
        if vocabulary_json:
            save_vocabulary(vocabulary, os.path.join(tmp_dir,
                                                     VOCAB_JSON_NAME))


def _write_fold_files(tmp_dir, splits, vocabulary, embedding, manifest):
    manifest = dict(manifest or {})
    extras = {}
    for split_name, split in splits.items():
        for name, (suffix, _, _, dtype) in CORE_ARRAYS.items():
            np.save(os.path.join(tmp_dir, f"{split_name}_{suffix}.npy"),
                    np.asarray(getattr(split, name), dtype=dtype))
        for name, array in split.extras.items():
            np.save(os.path.join(tmp_dir, f"{split_name}_{name}.npy"),
                    array)
            extras[name] = {"shape": list(array.shape[1:]),
                            "dtype": str(array.dtype)}
    if extras:
        for name, spec in extras.items():
            # Variable-size extras (padded to each split's own maximum)
            # keep only their rank fixed.
            sizes = {tuple(s.extras[name].shape[1:])
                     for s in splits.values()}
            if len(sizes) > 1:
                spec["shape"] = [None] * len(spec["shape"])
        manifest["extras"] = {**manifest.get("extras", {}), **extras}
    save_vocabulary(vocabulary, os.path.join(tmp_dir, VOCAB_NAME))
    np.save(os.path.join(tmp_dir, EMBEDDING_NAME),
            np.asarray(embedding, dtype=np.float32))
    with open(os.path.join(tmp_dir, MANIFEST_NAME), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
