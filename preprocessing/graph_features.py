"""The preprocessing features as TensorFlow ops, for serving from raw input.

Pure TensorFlow (tf.signal, tf.strings, tf.lookup; no numpy_function or
py_function), batched, and traceable with dynamic batch and sample
dimensions, so a SavedModel computes its own features and runs under the TF1
session loader (`saved_model_cli run`, TF Serving) as well as under
`tf.saved_model.load`. Each function reproduces one numpy path of
`preprocessing.audio_features` / `preprocessing.text_features`, step by
step and with the same constants; `tests/test_graph_features.py` compares
them on demo utterances and edge cases, within the tolerances below.

Padding: waveforms are float32 [B, S] in [-1, 1) at 16 kHz with a per-row
`waveform_length`; samples at or beyond a row's length are ignored (they
need not be zero), so a padded batch gives each row what the row alone
gives.
"""

from typing import Dict, Tuple

import numpy as np
import tensorflow as tf

from preprocessing import audio_features as af
from preprocessing import text_features

# Tolerances of the skew tests, |graph - numpy| per MFCC coefficient group
# (statics c1..c12, logE, deltas, accelerations), about 3x the largest
# error measured on them. float32 FFT/matmul against the numpy float64
# path: a cepstral coefficient sums 26 logs of band powers, some of them
# tiny next to the frame's peak (pure tones: 3.5e-4 at worst).
MFCC_ATOL = {"cepstra": 1e-3, "log_energy": 1e-5, "deltas": 2e-4,
             "accelerations": 1e-4}


def _mfcc_atol_vector() -> np.ndarray:
    """MFCC_ATOL as a float32 [39] vector in the feature order."""
    statics = [MFCC_ATOL["cepstra"]] * af.N_CEPS + [MFCC_ATOL["log_energy"]]
    return np.array(statics + [MFCC_ATOL["deltas"]] * (af.N_CEPS + 1)
                    + [MFCC_ATOL["accelerations"]] * (af.N_CEPS + 1),
                    np.float32)


MFCC_ATOL_VECTOR = _mfcc_atol_vector()


def _sample_mask(waveform: tf.Tensor, waveform_length: tf.Tensor
                 ) -> tf.Tensor:
    """The waveform with every sample at or beyond its row's length zeroed."""
    positions = tf.range(tf.shape(waveform)[1])
    keep = positions[None, :] < waveform_length[:, None]
    return tf.where(keep, waveform, tf.zeros_like(waveform))


def _frame_counts(waveform_length: tf.Tensor, frame_length: int,
                  frame_step: int) -> tf.Tensor:
    """int32 [B] frames of `frame_length` every `frame_step` (0 if short),
    as `audio_features._frames`."""
    count = 1 + (waveform_length - frame_length) // frame_step
    return tf.where(waveform_length < frame_length, 0, count)


def _frames(signal: tf.Tensor, frame_length: int, frame_step: int
            ) -> tf.Tensor:
    """[B, F, frame_length] frames starting at 0, step, ... of [B, S].

    F = 1 + (S - frame_length) // frame_step, or 0 when S < frame_length
    (tf.signal.frame needs S >= frame_length, so short input is padded to
    one frame, which the frame counts then mark as not real).
    """
    shortfall = tf.maximum(frame_length - tf.shape(signal)[1], 0)
    signal = tf.pad(signal, [[0, 0], [0, shortfall]])
    return tf.signal.frame(signal, frame_length, frame_step, pad_end=False)


def _deltas(features: tf.Tensor, lengths: tf.Tensor,
            window: int = af.DELTA_WINDOW) -> tf.Tensor:
    """HTK regression deltas along axis 1, edges repeated at each row's length.

    As `audio_features.deltas` on features[b, :lengths[b]]: frames at or
    beyond the length never enter a real frame's delta.

    Args:
        features: float [B, T, D].
        lengths: int32 [B], each <= T.

    Returns:
        float [B, T, D]; rows beyond their length hold values of no meaning.
    """
    steps = tf.range(tf.shape(features)[1])
    last = tf.maximum(lengths - 1, 0)[:, None]
    result = tf.zeros_like(features)
    for theta in range(1, window + 1):
        ahead = tf.minimum(steps[None, :] + theta, last)
        behind = tf.minimum(tf.maximum(steps[None, :] - theta, 0), last)
        result += theta * (tf.gather(features, ahead, batch_dims=1)
                           - tf.gather(features, behind, batch_dims=1))
    return result / (2.0 * sum(t * t for t in range(1, window + 1)))


def mfcc_e_d_a(waveform: tf.Tensor, waveform_length: tf.Tensor,
               max_frames: int = af.MAX_FRAMES
               ) -> Tuple[tf.Tensor, tf.Tensor]:
    """39-dim MFCC-E-D-A frames, as `audio_features.mfcc_e_d_a` per row.

    Same pipeline as the numpy path (16-bit scale, HTK raw log energy
    before the per-frame pre-emphasis, symmetric Hamming window, 512-point
    power spectrum, 26 HTK mel bands, log floor, DCT-II c1..c12 with lifter
    22, deltas and accelerations with edges repeated at the row's own last
    frame), in float32. Only the first `max_frames` frames are kept, as
    `audio_features.pad_frames` keeps them; they are computed from the whole
    utterance (the deltas of the last kept frames see the frames after
    them), while samples that only feed dropped frames are not read.

    Args:
        waveform: float32 [B, S] in [-1, 1) at 16 kHz.
        waveform_length: int32 [B] real samples per row (<= S).
        max_frames: int. Frames kept.

    Returns:
        (mfcc float32 [B, T, 39], length int32 [B]): T = the longest row's
        kept frames, at least 1 (so a model always gets a frame); length =
        min(frames, max_frames), frames = 1 + (length - 400) // 160 (0 below
        25 ms), the clipped `audio_length` the models are fed. Frames at or
        beyond a row's length are 0.
    """
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    waveform_length = tf.cast(waveform_length, tf.int32)
    # Frames after max_frames + 2 * DELTA_WINDOW cannot reach a kept frame
    # through the deltas of the deltas.
    needed_frames = max_frames + 2 * af.DELTA_WINDOW
    needed_samples = (needed_frames - 1) * af.FRAME_STEP + af.FRAME_LENGTH
    x = _sample_mask(waveform, waveform_length)[:, :needed_samples]
    x = x * af.SAMPLE_SCALE
    lengths = _frame_counts(waveform_length, af.FRAME_LENGTH, af.FRAME_STEP)
    frames = _frames(x, af.FRAME_LENGTH, af.FRAME_STEP)
    lengths_computed = tf.minimum(lengths, tf.shape(frames)[1])
    # HTK energy is taken from the raw frame, before pre-emphasis/window.
    log_energy = tf.math.log(tf.maximum(
        tf.reduce_sum(frames * frames, axis=-1), af.ENERGY_FLOOR))
    emphasised = tf.concat(
        [frames[..., :1] * (1.0 - af.PREEMPHASIS),
         frames[..., 1:] - af.PREEMPHASIS * frames[..., :-1]], axis=-1)
    windowed = emphasised * tf.constant(np.hamming(af.FRAME_LENGTH),
                                        tf.float32)
    power = tf.square(tf.abs(tf.signal.rfft(windowed, [af.N_FFT])))
    filters = af.mel_filters(af.N_FFT, 0.0, af.SAMPLE_RATE / 2)
    mel = tf.tensordot(power, tf.constant(filters.T, tf.float32), 1)
    cepstra = tf.tensordot(tf.math.log(tf.maximum(mel, af.MEL_FLOOR)),
                           tf.constant(af._dct_lifter_matrix(), tf.float32),
                           1)
    statics = tf.concat([cepstra, log_energy[..., None]], axis=-1)
    delta = _deltas(statics, lengths_computed)
    accel = _deltas(delta, lengths_computed)
    features = tf.concat([statics, delta, accel], axis=-1)
    kept = tf.minimum(lengths, max_frames)
    width = tf.maximum(tf.reduce_max(tf.concat([kept, [0]], 0)), 1)
    features = features[:, :width]
    # Rows of a batch with no frame at all still need width frames.
    features = tf.pad(features, [[0, 0], [0, width - tf.shape(features)[1]],
                                 [0, 0]])
    real = tf.range(width)[None, :] < kept[:, None]
    features = tf.where(real[..., None], features, tf.zeros_like(features))
    return features, kept


# ------------------------------------------------------------ tokeniser ---
# NLTKWordTokenizer's substitutions (nltk/tokenize/destructive.py), in its
# order, rewritten for RE2 (tf.strings.regex_replace): RE2 has no
# lookaround, and its \w, \d, \s and \b are ASCII only while NLTK's are
# Unicode, so those are spelled out as Unicode classes and each lookaround
# becomes a match of the neighbouring character that is written back.
# A word character of the `regex` module NLTK compiles most rules with
# (Alphabetic, Mark, Nd, Pc, Join_Control; so "²" is not one, unlike re).
_WORD = r"[\pL\p{Nl}\pM\p{Nd}\p{Pc}\x{200C}\x{200D}]"
_NOT_WORD = r"[^\pL\p{Nl}\pM\p{Nd}\p{Pc}\x{200C}\x{200D}]"
# The `re` module's \w (str.isalnum or "_"): CONTRACTIONS2/3 use plain re.
_RE_WORD = r"[\pL\pN_]"
_RE_NOT_WORD = r"[^\pL\pN_]"
# Unicode White_Space (the `regex` module's \s); str.split() also splits at
# \x1c-\x1f.
_SPACE = r"[\t\n\x{0B}\f\r\x{85}\pZ]"
_SPLIT_SPACE = r"[\t\n\x{0B}\f\r\x{1C}-\x{1F}\x{85}\pZ]+"
# A private-use character marking apostrophes while a lookahead is emulated.
_MARK = "\uE000"
_CLOSING = "\\]\\)}>\"'\u00bb\u201d\u2019 "

_STARTING_QUOTES = (
    ("([\u00ab\u201c\u2018\u201e]|[`]+)", r" \1 "),
    (r'^"', "``"),
    ("(``)", r" \1 "),
    (r"([ \(\[{<])(\"|'{2})", r"\1 `` "),
    # (?i)(?<!\w)(')(?!(?:re|ve|ll|m|t|s|d|n)\b)(?=\w) -> "\1 ": mark every
    # apostrophe after a non-word character and before a word character,
    # unmark those before exactly re/ve/ll/m/t/s/d/n, then space the marks.
    # (The consumed characters around a match are never an apostrophe that
    # another match needs.)
    (f"(^|{_NOT_WORD})'({_WORD})", "\\1'" + _MARK + r"\2"),
    (f"'{_MARK}((?i:re|ve|ll|m|t|s|d|n))($|{_NOT_WORD})", r"'\1\2"),
    (_MARK, " "),
)
_PUNCTUATION = (
    # ([^\.])(\.)([\]\)}>"'»”’ ]*+)\s*$: possessive *+ = greedy * here.
    (f"([^\\.])(\\.)([{_CLOSING}]*){_SPACE}*$", r"\1 \2 \3 "),
    (r"([:,])([^\p{Nd}])", r" \1 \2"),
    # Python's $ also matches before a final newline.
    ("([:,])(\n?)$", r" \1 \2"),
    (r"\.{2,}", r" \0 "),
    (r"[;@#$%&]", r" \0 "),
    ("[\u2012-\u2015]", r" \0 "),
    (f"([^\\.])(\\.)([\\]\\)}}>\"']*){_SPACE}*$", r"\1 \2\3 "),
    (r"[?!]", r" \0 "),
    (r"([^'])' ", r"\1 ' "),
    (r"[*]", r" \0 "),
    (r"[\]\[\(\)\{\}\<\>]", r" \0 "),
    (r"--", r" -- "),
)
_ENDING_QUOTES = (
    ("([\u00bb\u201d\u2019])", r" \1 "),
    (r"''", " '' "),
    (r'"', " '' "),
    (f"{_SPACE}+", " "),
    (r"([^' ])('[sS]|'[mM]|'[dD]|') ", r"\1 \2 "),
    (r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", r"\1 \2 "),
)
# MacIntyre's contractions, \b written out: the character after a match is
# consumed, so a second pass catches a match that shares it with the one
# before ("cannot cannot").
_CONTRACTIONS = tuple(
    (f"(?i)(^|{_RE_NOT_WORD})({first})({second})($|{_RE_NOT_WORD})",
     r"\1 \2 \3 \4")
    for first, second in (("can", "not"), ("d", "'ye"), ("gim", "me"),
                          ("gon", "na"), ("got", "ta"), ("lem", "me"),
                          ("more", "'n"))
) + (
    (f"(?i)(^|{_RE_NOT_WORD})(wan)(na)({_SPLIT_SPACE[:-1]})",
     r"\1 \2 \3 \4"),
    (f"(?i) ('t)(is)($|{_RE_NOT_WORD})", r" \1 \2 \3"),
    (f"(?i) ('t)(was)($|{_RE_NOT_WORD})", r" \1 \2 \3"),
)


def tokenize(text: tf.Tensor) -> tf.RaggedTensor:
    """Lowercased NLTK word tokens, as `text_features.tokenize` per string.

    Reproduces NLTKWordTokenizer (the Treebank-style rules of
    `nltk.word_tokenize`) with tf.strings: quotes, punctuation, brackets,
    double dashes, clitics ('s, 'm, 'd, 'll, 're, 've, n't) and MacIntyre's
    contractions (cannot, gonna, ...), then a split at Unicode whitespace
    and Unicode lowercasing. Not reproduced: Python's full case mapping of
    a few characters whose lowercase is longer (e.g. "İ"), where TensorFlow
    maps one character to one.

    Args:
        text: string [B], UTF-8.

    Returns:
        string RaggedTensor [B, (tokens)].
    """
    text = tf.convert_to_tensor(text, tf.string)
    for pattern, rewrite in _STARTING_QUOTES + _PUNCTUATION:
        text = tf.strings.regex_replace(text, pattern, rewrite)
    text = tf.strings.join([" ", text, " "])
    for pattern, rewrite in _ENDING_QUOTES:
        text = tf.strings.regex_replace(text, pattern, rewrite)
    for pattern, rewrite in _CONTRACTIONS:
        for _ in range(2):
            text = tf.strings.regex_replace(text, pattern, rewrite)
    text = tf.strings.regex_replace(text, _SPLIT_SPACE, " ")
    tokens = tf.strings.split(tf.strings.strip(text), sep=" ")
    # strip() leaves "" for an empty text, which split() keeps as a token.
    tokens = tf.ragged.boolean_mask(tokens, tf.strings.length(tokens) > 0)
    return tf.strings.lower(tokens, encoding="utf-8")


class TextVectorizer(tf.Module):
    """Transcripts → token ids, as `text_features.encode(tokenize(t))`.

    The vocabulary is a tf.lookup.StaticHashTable created here, so a
    SavedModel holding this module tracks it and every loader (the TF1
    session loader too) initialises it.

    Args:
        vocabulary: dict word → id (a fold's dic.pkl); `_UNK_`'s id (1 if
            absent) for unknown words.
        max_length: int. Output width; longer transcripts keep their first
            tokens.
    """

    def __init__(self, vocabulary: Dict[str, int],
                 max_length: int = text_features.TEXT_LENGTH,
                 name: str = "text_vectorizer"):
        super().__init__(name=name)
        if not vocabulary:
            raise ValueError("TextVectorizer: the vocabulary is empty.")
        self.max_length = int(max_length)
        words = list(vocabulary)
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(words, tf.string),
                tf.constant([vocabulary[w] for w in words], tf.int32)),
            default_value=int(vocabulary.get(text_features.UNK_TOKEN,
                                             text_features.UNK_ID)))

    def __call__(self, transcript: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        """
        Args:
            transcript: string [B].

        Returns:
            (ids int32 [B, max_length], 0 (`_PAD_`) after the last token;
            length int32 [B], the index of the first 0 or max_length, as
            `input_pipeline.text_lengths`).
        """
        tokens = tokenize(transcript)
        ids = tf.ragged.map_flat_values(self.table.lookup, tokens)
        ids = ids.to_tensor(default_value=text_features.PAD_ID,
                            shape=[None, self.max_length])
        is_pad = tf.equal(ids, text_features.PAD_ID)
        first_pad = tf.argmax(tf.cast(is_pad, tf.int32), axis=1,
                              output_type=tf.int32)
        length = tf.where(tf.reduce_any(is_pad, axis=1), first_pad,
                          self.max_length)
        return ids, length
