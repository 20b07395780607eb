"""The built-in demo corpus: format, determinism, learnability."""

import csv
import os

import numpy as np
import pytest
import soundfile
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from common import constants
from preprocessing import demo_corpus
from preprocessing import reference_arrays


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("demo") / "demo")
    fold_dir = demo_corpus.generate(root, num_utterances=400, seed=3,
                                    num_workers=2, log=lambda _: None)
    return root, reference_arrays.load_fold(fold_dir)


def test_reference_format_and_raw_form(corpus):
    root, fold = corpus
    sizes = [len(fold.splits[s]) for s in ("train", "dev", "test")]
    assert sizes == [280, 60, 60]
    train = fold.splits["train"]
    assert train.mfcc.shape == (280, 750, 39)
    assert train.prosody.shape == (280, 35)
    assert np.all(train.mfcc[np.arange(280), np.minimum(train.seq_len,
                                                        750) - 1] != 0)
    assert fold.embedding.shape == (len(fold.vocabulary), 300)
    assert np.all(fold.embedding[0] == 0)
    with open(os.path.join(root, "metadata.tsv")) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert len(rows) == 400
    assert set(r["label"] for r in rows) == set(constants.LABEL_NAMES)
    audio, rate = soundfile.read(os.path.join(root, rows[0]["wav_path"]))
    assert rate == 16000 and audio.ndim == 1 and len(audio) > 8000
    lengths = train.extras["waveform_length"]
    assert train.extras["waveform"].dtype == np.int16
    assert lengths.max() == train.extras["waveform"].shape[1]


def test_deterministic(corpus, tmp_path):
    records = demo_corpus.synthesize(20, seed=3)
    again = demo_corpus.synthesize(20, seed=3)
    for a, b in zip(records, again):
        assert a["transcript"] == b["transcript"] and a["label"] == b["label"]
        np.testing.assert_array_equal(a["waveform"], b["waveform"])
    other = demo_corpus.synthesize(20, seed=4)
    assert [r["transcript"] for r in other] != [r["transcript"]
                                               for r in records]


def _audio_features(split):
    lengths = np.minimum(split.seq_len, 750)
    mean = np.stack([split.mfcc[i, :n].mean(0)
                     for i, n in enumerate(lengths)])
    return np.concatenate([mean, split.prosody], axis=1)


def _text_features(split, vocab_size):
    counts = np.zeros((len(split), vocab_size))
    for row, ids in enumerate(split.text_ids):
        np.add.at(counts[row], ids[ids > 0], 1)
    return counts


def test_learnable_but_not_trivial(corpus):
    _, fold = corpus
    train, test = fold.splits["train"], fold.splits["test"]
    v = len(fold.vocabulary)
    scores = {}
    for name, features in (
            ("audio", _audio_features),
            ("text", lambda s: _text_features(s, v)),
            ("both", lambda s: np.concatenate(
                [_audio_features(s), _text_features(s, v)], axis=1))):
        classifier = make_pipeline(StandardScaler(),
                                   LogisticRegression(C=0.3, max_iter=2000))
        classifier.fit(features(train), train.label)
        scores[name] = classifier.score(features(test), test.label)
    # Chance is 0.25; nothing is perfect, and fusion helps.
    assert 0.4 < scores["audio"] < 0.95
    assert 0.4 < scores["text"] < 0.95
    assert scores["both"] > max(scores["audio"], scores["text"]) - 0.02
