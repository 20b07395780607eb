"""Transcripts → tokens → vocabulary → fixed-width id arrays.

Tokenisation follows the original (`nltk.word_tokenize` on the raw string, then
each token lowercased) but uses NLTK's Treebank-style word tokenizer directly,
which needs no downloaded `punkt` data. On single-sentence transcripts (all of
IEMOCAP's turns) the tokens are the same as `word_tokenize`'s; the only
difference is that sentence-internal periods are not split off by punkt.
"""

import collections

import numpy as np
from nltk.tokenize import NLTKWordTokenizer

PAD_TOKEN = "_PAD_"
UNK_TOKEN = "_UNK_"
PAD_ID = 0
UNK_ID = 1
TEXT_LENGTH = 128

_TOKENIZER = NLTKWordTokenizer()


def tokenize(text):
    """Splits one transcript into lowercased tokens, as the original did.

    Args:
        text: str. One transcript.

    Returns:
        list of str. `[LAUGHTER]` becomes `[`, `laughter`, `]` as with
        `nltk.word_tokenize`.
    """
    return [token.lower() for token in _TOKENIZER.tokenize(text)]


def build_vocabulary(token_lists, min_count=1):
    """Builds a token → id dictionary with `_PAD_`=0 and `_UNK_`=1.

    Ids from 2 follow the sorted order of the tokens, so the same corpus always
    gives the same vocabulary (the original's Python 2 hash order cannot be
    reproduced; reuse its released `dic.pkl` for that).

    Args:
        token_lists: iterable of lists of str. Usually the training split only.
        min_count: int. Tokens seen fewer times map to `_UNK_`.

    Returns:
        dict str → int, with contiguous ids 0..V-1.
    """
    counts = collections.Counter(
            token for tokens in token_lists for token in tokens)
    vocabulary = {PAD_TOKEN: PAD_ID, UNK_TOKEN: UNK_ID}
    for token in sorted(counts):
        if counts[token] >= min_count and token not in vocabulary:
            vocabulary[token] = len(vocabulary)
    return vocabulary


def encode(token_lists, vocabulary, length=TEXT_LENGTH):
    """Maps token lists to a right-padded id matrix.

    Args:
        token_lists: sequence of lists of str.
        vocabulary: dict str → int. Unknown tokens map to `_UNK_`.
        length: int. Width of the output; longer transcripts keep their first
            `length` tokens, as the original did.

    Returns:
        int32 array [n, length], 0 (`_PAD_`) after the last token.
    """
    ids = np.zeros((len(token_lists), length), dtype=np.int32)
    unk = vocabulary.get(UNK_TOKEN, UNK_ID)
    for row, tokens in enumerate(token_lists):
        row_ids = [vocabulary.get(token, unk) for token in tokens[:length]]
        ids[row, :len(row_ids)] = row_ids
    return ids
