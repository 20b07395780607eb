"""Tokenisation without nltk data, vocabulary and id encoding."""

import numpy as np

from preprocessing import text_features


def test_tokenize_needs_no_punkt_data_and_lowercases():
    assert text_features.tokenize("I don't KNOW [LAUGHTER] ok.") == [
        "i", "do", "n't", "know", "[", "laughter", "]", "ok", "."]


def test_vocabulary_is_sorted_with_pad_and_unk():
    vocabulary = text_features.build_vocabulary([["b", "a"], ["c", "a"]])
    assert vocabulary == {"_PAD_": 0, "_UNK_": 1, "a": 2, "b": 3, "c": 4}
    assert text_features.build_vocabulary([["b", "a", "a"]], min_count=2) == {
        "_PAD_": 0, "_UNK_": 1, "a": 2}


def test_encode_pads_truncates_and_maps_unknown():
    vocabulary = {"_PAD_": 0, "_UNK_": 1, "a": 2}
    ids = text_features.encode([["a", "zzz"], ["a"] * 5], vocabulary,
                               length=3)
    np.testing.assert_array_equal(ids, [[2, 1, 0], [2, 2, 2]])
    assert ids.dtype == np.int32
