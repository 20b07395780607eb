"""Transcripts → tokens → vocabulary → fixed-width id arrays.

Tokenisation follows the original (`nltk.word_tokenize` on the raw string, then
each token lowercased) but uses NLTK's Treebank-style word tokenizer directly,
which needs no downloaded `punkt` data. On single-sentence transcripts (all of
IEMOCAP's turns) the tokens are the same as `word_tokenize`'s; the only
difference is that sentence-internal periods are not split off by punkt.
"""

import collections
import unicodedata

import numpy as np
from nltk.tokenize import NLTKWordTokenizer

from common.constants import TEXT_LENGTH

PAD_TOKEN = "_PAD_"
UNK_TOKEN = "_UNK_"
PAD_ID = 0
UNK_ID = 1

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


# ------------------------------------------------------------ WordPiece ---
# A pure-Python BERT tokenizer for single words (tensorflow_text is not a
# dependency). It bridges our word vocabulary (dic.pkl) to the WordPiece ids
# of a BERT-style TF-Hub handle: every word id maps to a fixed list of piece
# ids, so the model can translate `text_ids` without any string ops.

WORDPIECE_UNK = "[UNK]"
WORDPIECE_CLS = "[CLS]"
WORDPIECE_SEP = "[SEP]"
WORDPIECE_CONTINUATION = "##"
# BERT's limit: longer "words" (URLs, noise) become one [UNK].
WORDPIECE_MAX_CHARS = 100


def load_wordpiece_vocabulary(path):
    """Reads a BERT vocab.txt: one token per line, its id = its line number.

    Returns:
        dict str → int.

    Raises:
        ValueError: the file is missing, empty or lacks [UNK]/[CLS]/[SEP].
    """
    try:
        with open(path, encoding="utf-8") as f:
            tokens = [line.rstrip("\n").rstrip("\r") for line in f]
    except OSError as error:
        raise ValueError(f"{path}: cannot read the WordPiece vocabulary "
                         f"({error}).") from error
    vocabulary = {}
    for index, token in enumerate(tokens):
        # A duplicated line keeps its first id, as BERT's own loader does not
        # (it keeps the last); duplicates do not occur in real vocabularies.
        vocabulary.setdefault(token, index)
    missing = [t for t in (WORDPIECE_UNK, WORDPIECE_CLS, WORDPIECE_SEP)
               if t not in vocabulary]
    if missing:
        raise ValueError(f"{path}: expected a BERT WordPiece vocabulary (one "
                         f"token per line, with {WORDPIECE_UNK}, "
                         f"{WORDPIECE_CLS} and {WORDPIECE_SEP}); {missing} "
                         f"missing in its {len(tokens)} lines.")
    return vocabulary


def _is_punctuation(char):
    # As BERT's BasicTokenizer: all non-alphanumeric ASCII counts (e.g. "$",
    # "`", "^"), plus every Unicode punctuation category.
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or (
            123 <= code <= 126):
        return True
    return unicodedata.category(char).startswith("P")


def _basic_split(word, do_lower_case):
    """BERT's BasicTokenizer on one word: clean, lowercase and strip accents
    (if asked), split at whitespace and around every punctuation mark."""
    cleaned = "".join(
        " " if char.isspace() else char for char in word
        if ord(char) not in (0, 0xFFFD)
        and not unicodedata.category(char).startswith("C"))
    if do_lower_case:
        cleaned = "".join(
            char for char in unicodedata.normalize("NFD", cleaned.lower())
            if unicodedata.category(char) != "Mn")
    parts = []
    for chunk in cleaned.split():
        current = ""
        for char in chunk:
            if _is_punctuation(char):
                if current:
                    parts.append(current)
                parts.append(char)
                current = ""
            else:
                current += char
        if current:
            parts.append(current)
    return parts


def _wordpiece(token, vocabulary, unk_token):
    """Greedy longest-match-first split of one whitespace-free token."""
    if len(token) > WORDPIECE_MAX_CHARS:
        return [unk_token]
    pieces, start = [], 0
    while start < len(token):
        end = len(token)
        piece = None
        while start < end:
            candidate = token[start:end]
            if start > 0:
                candidate = WORDPIECE_CONTINUATION + candidate
            if candidate in vocabulary:
                piece = candidate
                break
            end -= 1
        if piece is None:
            # As BERT: a token with any unmatchable part is one [UNK].
            return [unk_token]
        pieces.append(piece)
        start = end
    return pieces


def wordpiece_tokenize(word, vocabulary, do_lower_case=True,
                       unk_token=WORDPIECE_UNK):
    """Splits one word of our vocabulary into BERT WordPiece tokens.

    The word first goes through BERT's basic tokenizer (control characters
    dropped; lowercased and accents stripped when `do_lower_case`; split
    around punctuation, so "n't" → "n", "'", "t"), then each part through
    greedy longest-match-first WordPiece: the longest vocabulary prefix,
    then the longest "##"-prefixed continuation, and so on; a part that
    cannot be covered becomes a single `unk_token`. (Not reproduced: BERT's
    spacing around CJK characters, irrelevant for our English vocabularies.)

    Args:
        word: str.
        vocabulary: dict str → int (see `load_wordpiece_vocabulary`).
        do_lower_case: bool. As the handle's `do_lower_case`.
        unk_token: str.

    Returns:
        list of str; empty for a word with nothing left after cleaning.
    """
    return [piece for part in _basic_split(word, do_lower_case)
            for piece in _wordpiece(part, vocabulary, unk_token)]


def wordpiece_table(vocabulary, wordpiece_vocabulary, do_lower_case=True):
    """Our word id → WordPiece ids, for every word of a fold's vocabulary.

    `_PAD_` maps to no piece (it never occurs before a text's length) and
    `_UNK_` to [UNK]; every other word to `wordpiece_tokenize`'s pieces.

    Args:
        vocabulary: dict str → int with contiguous ids 0..V-1 (dic.pkl).
        wordpiece_vocabulary: dict str → int (the handle's vocab.txt).
        do_lower_case: bool.

    Returns:
        dict: "pieces" (list of V lists of int, row i for our id i),
        "cls_id", "sep_id", "unk_id" (int), "unknown_words" (int: words
        other than `_UNK_` that became [UNK] only; a coverage figure).

    Raises:
        ValueError: the vocabulary's ids are not exactly 0..V-1.
    """
    size = len(vocabulary)
    if sorted(vocabulary.values()) != list(range(size)):
        raise ValueError("The word vocabulary must have contiguous ids "
                         f"0..{size - 1}; found ids from "
                         f"{min(vocabulary.values(), default=None)} to "
                         f"{max(vocabulary.values(), default=None)}.")
    unk_id = wordpiece_vocabulary[WORDPIECE_UNK]
    pieces = [None] * size
    unknown = 0
    for word, index in vocabulary.items():
        if word == PAD_TOKEN:
            pieces[index] = []
        elif word == UNK_TOKEN:
            pieces[index] = [unk_id]
        else:
            pieces[index] = [wordpiece_vocabulary[piece] for piece in
                             wordpiece_tokenize(word, wordpiece_vocabulary,
                                                do_lower_case)]
            unknown += pieces[index] == [unk_id]
    return {"pieces": pieces,
            "cls_id": wordpiece_vocabulary[WORDPIECE_CLS],
            "sep_id": wordpiece_vocabulary[WORDPIECE_SEP],
            "unk_id": unk_id,
            "unknown_words": unknown}
