"""GloVe text vectors → `W_embedding.npy` rows for a vocabulary.

The original (yoon_spec §2.4) looked up each (lowercased) token exactly,
case-sensitively, in `glove.840B.300d.txt`; found → the GloVe vector,
`_PAD_` → zeros, anything else (incl. `_UNK_`) → uniform(−0.25, 0.25) from
the unseeded numpy global RNG. Here the random rows are seeded.

Parsing: a line is `word v1 ... v_dim`. Some 840B words contain non-breaking
spaces (and a few ASCII spaces, e.g. `. . .`), which Python 3's
`str.split()` would split on, so lines are split on ASCII space only and the
LAST `dim` fields are the vector; the word is everything before them. `dim`
is the fewest values among the first 20 lines unless given. `.gz` files are
read directly.
"""

import gzip
import itertools
import os

import numpy as np

from preprocessing.reference_arrays import DataError
from preprocessing.text_features import PAD_TOKEN

INIT_RANGE = 0.25
DEFAULT_DIM = 300
_DIM_PROBE_LINES = 20


def _open_text(path):
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace",
                         newline="\n")
    return open(path, encoding="utf-8", errors="replace", newline="\n")


def read_vectors(path, words, dim=None):
    """Reads the GloVe vectors of `words` from a GloVe text file.

    Args:
        path: str. GloVe text (or .gz) file.
        words: iterable of str. Only these are kept (exact match); the first
            occurrence of a word wins.
        dim: int or None. Vector size; None = the fewest values on any of
            the first 20 lines.

    Returns:
        (dict word → float32 [dim], dim, number of lines read).

    Raises:
        DataError: missing/empty file, a line with fewer than dim+1 fields,
            or a non-numeric vector for a wanted word (naming file:line).
    """
    if not os.path.isfile(path):
        raise DataError(f"{path}: missing GloVe file.")
    words = set(words)
    # Fast path: a vocabulary word without ASCII spaces can only be the text
    # before a line's first space; only then is the line split fully.
    spaced_words = any(" " in w for w in words)
    vectors = {}
    line_number = 0
    with _open_text(path) as f:
        head = list(itertools.islice(f, _DIM_PROBE_LINES))
        if dim is None:
            # The fewest fields among the first lines: a word with ASCII
            # spaces adds fields, so one such line cannot inflate `dim`.
            counts = [len(line.rstrip("\r\n").split(" ")) - 1
                      for line in head if line.strip()]
            dim = min(counts) if counts else None
            if dim is not None and dim < 1:
                raise DataError(f"{path}: expected lines 'word v1 v2 ...', "
                                "found a line with one field.")
        for line_number, line in enumerate(itertools.chain(head, f),
                                           start=1):
            line = line.rstrip("\r\n")
            if not line:
                continue
            if not spaced_words and line.partition(" ")[0] not in words:
                continue
            fields = line.rsplit(" ", dim)
            if len(fields) != dim + 1 or not fields[0]:
                raise DataError(f"{path}:{line_number}: expected a word and "
                                f"{dim} values separated by ASCII spaces, "
                                f"found {len(fields) - 1} values.")
            word = fields[0]
            if word not in words or word in vectors:
                continue
            try:
                vectors[word] = np.array(fields[1:], dtype=np.float32)
            except ValueError:
                raise DataError(f"{path}:{line_number}: non-numeric value in "
                                f"the vector of {word!r}.") from None
    if line_number == 0 or dim is None:
        raise DataError(f"{path}: empty GloVe file.")
    return vectors, dim, line_number


def build_embedding(vocabulary, vectors, dim, seed=0, source=None):
    """Embedding matrix in id order from looked-up vectors.

    Args:
        vocabulary: dict str → id (contiguous ids 0..V-1).
        vectors: dict str → float [dim] (e.g. from `read_vectors`; may be
            empty for a purely random embedding).
        dim: int.
        seed: int. Seeds the uniform(±0.25) rows of words without a vector.
        source: str or None. The GloVe file, for the report.

    Returns:
        (float32 [V, dim], report dict with vocab_size, dim, found, random,
        zero, coverage (found / V), seed, source, message).
    """
    size = len(vocabulary)
    # Drawn for all rows (then overwritten) so that a word's random row does
    # not depend on which other words happen to be found.
    embedding = np.random.default_rng(seed).uniform(
        -INIT_RANGE, INIT_RANGE, (size, dim)).astype(np.float32)
    found = 0
    for word, index in vocabulary.items():
        if word in vectors:
            embedding[index] = vectors[word]
            found += 1
    zero = 0
    if PAD_TOKEN in vocabulary:
        embedding[vocabulary[PAD_TOKEN]] = 0.0
        zero = 1
    random_rows = size - found - zero
    coverage = found / size if size else 0.0
    if source is None:
        message = (f"no GloVe file: all {random_rows} non-PAD rows are random "
                   f"uniform(±{INIT_RANGE}) (seed {seed}), dim {dim}")
    else:
        message = (f"GloVe {source}: {found}/{size} rows found "
                   f"({100 * coverage:.1f}%), {random_rows} random "
                   f"uniform(±{INIT_RANGE}) (seed {seed}), {zero} zero "
                   f"(PAD), dim {dim}")
    report = {"source": source, "vocab_size": size, "dim": dim,
              "found": found, "random": random_rows, "zero": zero,
              "coverage": coverage, "seed": seed, "message": message}
    return embedding, report


def glove_embedding(vocabulary, path=None, dim=None, seed=0):
    """`W_embedding` for a vocabulary, from a GloVe file or random.

    Args:
        vocabulary: dict str → id.
        path: str or None. GloVe text file; None = random embedding.
        dim: int or None. Required size (None: from the file, or 300 when
            there is no file).
        seed: int.

    Returns:
        (float32 [V, dim], report dict, see `build_embedding`).
    """
    if path is None:
        return build_embedding(vocabulary, {}, dim or DEFAULT_DIM, seed)
    vectors, dim, _ = read_vectors(path, vocabulary, dim)
    return build_embedding(vocabulary, vectors, dim, seed, source=path)
