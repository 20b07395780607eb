"""Skew tests: the in-graph features equal the numpy/NLTK preprocessing path.

MFCC within `graph_features.MFCC_ATOL` per coefficient, prosody within
`graph_features.PROSODY_ATOL` per functional, token ids exactly, on demo
utterances and hand-made edge cases; a padded batch (with noise, not zeros,
beyond each row's length) gives what each row gives alone; the functions
trace once for every batch and length; a SavedModel using them runs under
the TF1 session loader.
"""

import os

import numpy as np
import pytest
import tensorflow as tf

from common import constants
from preprocessing import audio_io
from preprocessing import demo_corpus
from preprocessing import extraction
from preprocessing import graph_features
from preprocessing import input_pipeline
from preprocessing import mfcc as mfcc_lib
from preprocessing import prosody as prosody_lib
from preprocessing import text_features

EMODB_WAVS = "/work/shared/devcorpus/emodb/wav"
# Largest value below 1 of 16-bit PCM scaled to [-1, 1).
PCM_MAX = 32767.0 / 32768.0


def _clips():
    """Name → float32 waveform: demo utterances and edge cases (< 5 s)."""
    records = demo_corpus.synthesize(3, seed=7)
    rng = np.random.default_rng(0)
    demo = [r["waveform"] for r in records]
    time = np.arange(16000) / 16000.0
    clips = {f"demo{i}": w for i, w in enumerate(demo)}
    clips.update({
        "silence": np.zeros(16000, np.float32),
        # Driven 6x into the rails: runs of +-full scale samples.
        "clipping": np.clip(6.0 * demo[0], -1.0, PCM_MAX).astype(np.float32),
        "clip_0.2s": demo[1][1600:4800],
        "tone_200hz": (0.5 * np.sin(2 * np.pi * 200 * time)).astype(
            np.float32),
        "noise": (0.1 * rng.standard_normal(8000)).astype(np.float32),
        # One MFCC frame, no pitch frame; and no frame at all.
        "one_frame": (0.2 * rng.standard_normal(400)).astype(np.float32),
        "under_one_frame": (0.2 * rng.standard_normal(300)).astype(
            np.float32),
    })
    return clips


def _long_clip():
    """20 s of demo speech: 1998 MFCC frames, more than max_frames = 750."""
    speech = np.concatenate([r["waveform"] for r in
                             demo_corpus.synthesize(6, seed=3)])
    return np.resize(speech, 20 * 16000).astype(np.float32)


CLIPS = _clips()


def _padded(waveforms, seed=1):
    """[B, S] batch with noise (not zeros) after each row's length."""
    rng = np.random.default_rng(seed)
    width = max(len(w) for w in waveforms) + 555
    batch = (0.5 * rng.standard_normal((len(waveforms), width))).astype(
        np.float32)
    for row, waveform in enumerate(waveforms):
        batch[row, :len(waveform)] = waveform
    return batch, np.array([len(w) for w in waveforms], np.int32)


def _check_mfcc(mfcc, length, waveform, name):
    expected = mfcc_lib.mfcc_e_d_a(waveform)[:constants.MFCC_FRAMES]
    assert length == len(expected), name
    error = np.abs(mfcc[:length] - expected)
    bad = error > graph_features.MFCC_ATOL_VECTOR
    assert not bad.any(), (
        f"{name}: coefficients {sorted(set(np.nonzero(bad)[1]))} off by up "
        f"to {error.max(axis=0)[bad.any(axis=0)]}")
    assert not mfcc[length:].any(), f"{name}: non-zero frames after length"


def test_mfcc_matches_numpy_per_coefficient_in_a_padded_batch():
    names = list(CLIPS)
    batch, lengths = _padded([CLIPS[n] for n in names])
    mfcc, length = graph_features.mfcc_e_d_a(batch, lengths)
    mfcc, length = mfcc.numpy(), length.numpy()
    assert mfcc.dtype == np.float32 and length.dtype == np.int32
    assert mfcc.shape == (len(names), length.max(), 39)
    for row, name in enumerate(names):
        _check_mfcc(mfcc[row], length[row], CLIPS[name], name)
    assert length[names.index("one_frame")] == 1
    assert length[names.index("under_one_frame")] == 0
    # Each row alone: the same frames (other rows and padding do not leak).
    for row, name in enumerate(names[:4]):
        alone, alone_length = graph_features.mfcc_e_d_a(
            CLIPS[name][None], [len(CLIPS[name])])
        assert alone_length.numpy()[0] == length[row]
        np.testing.assert_allclose(alone.numpy()[0], mfcc[row, :length[row]],
                                   rtol=0, atol=1e-4, err_msg=name)


def test_mfcc_long_clip_keeps_max_frames_with_deltas_of_the_whole_clip():
    waveform = _long_clip()
    mfcc, length = graph_features.mfcc_e_d_a(waveform[None],
                                             [len(waveform)])
    assert audio_io.num_frames(len(waveform)) == 1998
    assert mfcc.shape == (1, 750, 39) and length.numpy()[0] == 750
    _check_mfcc(mfcc.numpy()[0], 750, waveform, "20 s")
    # A smaller max_frames cuts where pad_frames cuts: frame 99's deltas
    # still see frames 100..103.
    mfcc, length = graph_features.mfcc_e_d_a(waveform[None],
                                             [len(waveform)], max_frames=100)
    expected, _ = extraction.pad_frames(
        [mfcc_lib.mfcc_e_d_a(waveform)], 100)
    assert length.numpy()[0] == 100
    assert (np.abs(mfcc.numpy() - expected)
            <= graph_features.MFCC_ATOL_VECTOR).all()


def test_mfcc_batch_without_any_frame_gives_one_zero_frame():
    # A length past the batch's width is clipped to it.
    mfcc, length = graph_features.mfcc_e_d_a(np.zeros((2, 100), np.float32),
                                             [1000, 0])
    assert mfcc.shape == (2, 1, 39) and not mfcc.numpy().any()
    assert length.numpy().tolist() == [0, 0]


def _check_prosody(values, waveform, name):
    expected = prosody_lib.prosody_functionals(waveform)
    error = np.abs(values - expected)
    bad = error > graph_features.PROSODY_ATOL_VECTOR
    assert not bad.any(), (
        f"{name}: " + ", ".join(
            f"{prosody_lib.PROSODY_NAMES[i]} {values[i]} vs "
            f"{expected[i]}" for i in np.nonzero(bad)[0]))
    return expected


def test_prosody_matches_numpy_per_functional_in_a_padded_batch():
    names = list(CLIPS)
    batch, lengths = _padded([CLIPS[n] for n in names])
    prosody = graph_features.prosody_functionals(batch, lengths).numpy()
    assert prosody.shape == (len(names), 35) and prosody.dtype == np.float32
    expected = {name: _check_prosody(prosody[row], CLIPS[name], name)
                for row, name in enumerate(names)}
    # Not a vacuous match: speech and the tone are voiced, silence is not.
    f0_mean = prosody_lib.PROSODY_NAMES.index("F0final_sma_amean")
    for name in ("demo0", "demo1", "demo2", "clipping", "tone_200hz"):
        assert expected[name][f0_mean] > 50, name
    np.testing.assert_allclose(prosody[names.index("tone_200hz"), f0_mean],
                               200.0, rtol=3e-3)
    assert not prosody[names.index("silence")].any()
    assert not prosody[names.index("under_one_frame")].any()
    for row, name in enumerate(names[:4]):
        alone = graph_features.prosody_functionals(
            CLIPS[name][None], [len(CLIPS[name])]).numpy()[0]
        np.testing.assert_allclose(alone, prosody[row], rtol=1e-6, atol=0,
                                   err_msg=name)


def test_prosody_long_clip():
    waveform = _long_clip()
    prosody = graph_features.prosody_functionals(waveform[None],
                                                 [len(waveform)])
    _check_prosody(prosody.numpy()[0], waveform, "20 s")


@pytest.mark.skipif(not os.path.isdir(EMODB_WAVS), reason="no EmoDB copy")
def test_features_match_numpy_on_real_speech():
    names = sorted(os.listdir(EMODB_WAVS))[:3]
    waveforms = [audio_io.load_wav(os.path.join(EMODB_WAVS, n))
                 for n in names]
    batch, lengths = _padded(waveforms)
    mfcc, length = graph_features.mfcc_e_d_a(batch, lengths)
    prosody = graph_features.prosody_functionals(batch, lengths).numpy()
    for row, (name, waveform) in enumerate(zip(names, waveforms)):
        _check_mfcc(mfcc.numpy()[row], length.numpy()[row], waveform, name)
        _check_prosody(prosody[row], waveform, name)


# The cases, NLTK's own examples and the clitic/contraction rules.
SENTENCES = [
    "Don't do that!",
    "I'm late, it's five o'clock.",
    "He said \"hello\" (twice)... ok?",
    "",
    "   multiple   spaces\there\n and  lines  ",
    "Café naïve Zürich — über Straße, ÉCOLE İstanbul ΣΟΦΊΑ 日本語",
    "Good muffins cost $3.88\nin New York.  Please buy me\ntwo of them.",
    "It costs 1,000,000 dollars; 3.14 is pi, 100% sure at 10:30.",
    "'Tis the season, 'twas cannot gonna wanna gimme lemme gotta",
    "[LAUGHTER] yeah [BREATHING] um",
    "You're they'd we'll I've can't won't shouldn't y'all",
    "'hello' 'quoted' ''double'' `tick` ``ticks''",
    "Mr. Smith went to Washington. He left.",
    "end,",
    "x--y -- z ... !?",
    "“Smart quotes” and ‘single’ ones’ «guillemets»",
    "email me@x.com #tag *star* & co",
    "ok.\n",
    "she's o'neil's rock'n'roll 'em 'n 'o",
    "emoji 😀 ok!",
    "WHAT?! NO WAY!!!",
]


def test_tokenize_matches_nltk_on_every_sentence():
    tokens = graph_features.tokenize(tf.constant(SENTENCES)).to_list()
    for sentence, got in zip(SENTENCES, tokens):
        assert [t.decode("utf-8") for t in got] == text_features.tokenize(
            sentence), repr(sentence)


def test_tokenize_matches_nltk_on_fuzzed_strings():
    # Pieces that exercise every rule's boundaries: clitics, quotes,
    # punctuation, Unicode letters, marks, digits, spaces and joiners.
    pieces = ["a", "s", "t", "re", "ll", "n", "can", "not", "gon", "na",
              "wan", "'t", "is", "was", "d", "'ye", "more", "'n", "'", "''",
              '"', "`", ".", "..", ",", ":", ";", "?", "!", "(", ")", "[",
              "]", "<", "-", "--", "*", "$", "%", "&", " ", " ", "\t", "\n",
              "\u00a0", "1", "23", "é", "Ü", "»", "«", "“", "”", "‘", "’",
              "\u2014", "_", "I", "M", "S", "N'T", "n't", "'S", "'LL",
              "\u0301", "²", "日", "\u200d"]
    rng = np.random.default_rng(0)
    texts = ["".join(rng.choice(pieces, size=rng.integers(0, 12)))
             for _ in range(600)]
    tokens = graph_features.tokenize(tf.constant(texts)).to_list()
    mismatches = [text for text, got in zip(texts, tokens)
                  if [t.decode("utf-8") for t in got]
                  != text_features.tokenize(text)]
    assert not mismatches, mismatches[:5]


@pytest.mark.parametrize("max_length", [128, 6])
def test_text_vectorizer_ids_equal_encode(max_length):
    token_lists = [text_features.tokenize(s) for s in SENTENCES]
    # Half the sentences build the vocabulary: the rest has unknown words.
    vocabulary = text_features.build_vocabulary(token_lists[::2])
    vectorizer = graph_features.TextVectorizer(vocabulary, max_length)
    ids, length = vectorizer(tf.constant(SENTENCES))
    expected = text_features.encode(token_lists, vocabulary, max_length)
    assert ids.dtype == tf.int32 and length.dtype == tf.int32
    np.testing.assert_array_equal(ids.numpy(), expected)
    np.testing.assert_array_equal(length.numpy(),
                                  input_pipeline.text_lengths(expected))
    assert (expected == text_features.UNK_ID).any()
    assert length.numpy()[SENTENCES.index("")] == 0


def test_text_vectorizer_unknown_id_from_the_vocabulary():
    vectorizer = graph_features.TextVectorizer(
        {"_PAD_": 0, "hello": 1, "_UNK_": 7})
    ids, length = vectorizer(tf.constant(["Hello, world"]))
    assert ids.numpy()[0, :3].tolist() == [1, 7, 7]
    assert length.numpy().tolist() == [3]


def test_functions_trace_once_for_any_batch_and_length():
    vectorizer = graph_features.TextVectorizer({"_PAD_": 0, "_UNK_": 1,
                                                "hi": 2}, max_length=4)

    @tf.function(input_signature=[
        tf.TensorSpec([None, None], tf.float32),
        tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.string)])
    def features(waveform, waveform_length, transcript):
        mfcc, length = graph_features.mfcc_e_d_a(waveform, waveform_length)
        prosody = graph_features.prosody_functionals(waveform,
                                                     waveform_length)
        return mfcc, length, prosody, vectorizer(transcript)

    for batch_size, width in ((1, 4000), (3, 1200), (2, 200)):
        waveform = CLIPS["demo0"][:batch_size * width].reshape(
            batch_size, width)
        lengths = np.full(batch_size, width, np.int32)
        mfcc, length, prosody, (ids, _) = features(
            waveform, lengths, tf.constant(["hi there"] * batch_size))
        eager_mfcc, _ = graph_features.mfcc_e_d_a(waveform, lengths)
        np.testing.assert_allclose(mfcc.numpy(), eager_mfcc.numpy(),
                                   rtol=0, atol=1e-4)
        assert prosody.shape == (batch_size, 35)
        assert ids.numpy().tolist() == [[2, 1, 0, 0]] * batch_size
    assert features.experimental_get_tracing_count() == 1


class _FeatureModule(tf.Module):
    """Raw audio and text → all features, as a serving signature uses them."""

    def __init__(self, vocabulary):
        super().__init__()
        self.vectorizer = graph_features.TextVectorizer(vocabulary, 16)

    @tf.function(input_signature=[
        tf.TensorSpec([None, None], tf.float32, name="waveform"),
        tf.TensorSpec([None], tf.int32, name="waveform_length"),
        tf.TensorSpec([None], tf.string, name="transcript")])
    def serve(self, waveform, waveform_length, transcript):
        mfcc, mfcc_length = graph_features.mfcc_e_d_a(waveform,
                                                      waveform_length)
        ids, text_length = self.vectorizer(transcript)
        return {"mfcc": mfcc, "mfcc_length": mfcc_length,
                "prosody": graph_features.prosody_functionals(
                    waveform, waveform_length),
                "text_ids": ids, "text_length": text_length}


def test_saved_model_runs_under_the_tf1_session_loader(tmp_path):
    token_lists = [text_features.tokenize(s) for s in SENTENCES]
    vocabulary = text_features.build_vocabulary(token_lists[::2])
    module = _FeatureModule(vocabulary)
    export_dir = str(tmp_path / "features")
    tf.saved_model.save(module, export_dir,
                        signatures={"serving_default": module.serve})
    batch, lengths = _padded([CLIPS["demo0"], CLIPS["clip_0.2s"]])
    feed = {"waveform": batch, "waveform_length": lengths,
            "transcript": np.array(SENTENCES[:2], object)}
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(
            session, [tf.saved_model.SERVING], export_dir)
        signature = meta_graph.signature_def["serving_default"]
        outputs = session.run(
            {k: v.name for k, v in signature.outputs.items()},
            {signature.inputs[k].name: v for k, v in feed.items()})
    expected = module.serve(**feed)
    assert set(outputs) == set(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(outputs[name], value.numpy(), rtol=0,
                                   atol=1e-4, err_msg=name)
    np.testing.assert_array_equal(
        outputs["text_ids"], text_features.encode(token_lists[:2],
                                                  vocabulary, 16))
