"""The preprocessing features as TensorFlow ops, for serving from raw input.

Pure TensorFlow (tf.signal, tf.strings, tf.lookup; no numpy_function or
py_function), batched, and traceable with dynamic batch and sample
dimensions, so a SavedModel computes its own features and runs under the TF1
session loader (`saved_model_cli run`, TF Serving) as well as under
`tf.saved_model.load`. Each function reproduces one numpy path of
`preprocessing.mfcc`, `preprocessing.prosody` and
`preprocessing.text_features`, step by step and with the same constants;
`tests/preprocessing/test_graph_features.py` compares them on demo
utterances and edge cases, within the tolerances below.

Padding: waveforms are float32 [B, S] in [-1, 1) at 16 kHz with a per-row
`waveform_length`; samples at or beyond a row's length are ignored (they
need not be zero), so a padded batch gives each row what the row alone
gives.
"""

from typing import Dict, Tuple

import numpy as np
import tensorflow as tf

from common import constants
from preprocessing import audio_io
from preprocessing import mfcc
from preprocessing import prosody
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
    statics = [MFCC_ATOL["cepstra"]] * mfcc.N_CEPS + [MFCC_ATOL["log_energy"]]
    return np.array(statics + [MFCC_ATOL["deltas"]] * (mfcc.N_CEPS + 1)
                    + [MFCC_ATOL["accelerations"]] * (mfcc.N_CEPS + 1),
                    np.float32)


MFCC_ATOL_VECTOR = _mfcc_atol_vector()

# Tolerances of the prosody skew tests, |graph - numpy| per LLD (the same
# for its 7 functionals). Both paths compute in float64 (see
# `_PROSODY_DTYPE`) and measured 2e-14 apart at most, so what is left is
# the float32 rounding of the output: about one float32 step at each LLD's
# largest value (F0 up to 620 Hz, semitones up to 54, HNR within ±40 dB).
PROSODY_ATOL = {"F0final_sma": 1e-4, "F0finalLog_sma": 1e-5,
                "voicingFinalUnclipped_sma": 1e-6,
                "HarmonicsToNoiseRatioACFLogdB_sma": 1e-5,
                "loudness_sma": 1e-5}
PROSODY_ATOL_VECTOR = np.repeat(
    np.array([PROSODY_ATOL[name] for name in prosody.LLD_NAMES], np.float32),
    len(prosody.FUNCTIONAL_NAMES))


def _lengths(waveform: tf.Tensor, waveform_length) -> tf.Tensor:
    """int32 [B] lengths clipped to [0, S], so that no frame is counted
    that the waveform does not hold."""
    return tf.clip_by_value(tf.cast(waveform_length, tf.int32), 0,
                            tf.shape(waveform)[1])


def _sample_mask(waveform: tf.Tensor, waveform_length: tf.Tensor
                 ) -> tf.Tensor:
    """The waveform with every sample at or beyond its row's length zeroed."""
    positions = tf.range(tf.shape(waveform)[1])
    keep = positions[None, :] < waveform_length[:, None]
    return tf.where(keep, waveform, tf.zeros_like(waveform))


def _frame_counts(waveform_length: tf.Tensor, frame_length: int,
                  frame_step: int) -> tf.Tensor:
    """int32 [B] frames of `frame_length` every `frame_step` (0 if short),
    as `audio_io.frame_view`."""
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
            window: int = mfcc.DELTA_WINDOW) -> tf.Tensor:
    """HTK regression deltas along axis 1, edges repeated at each row's length.

    As `mfcc.deltas` on features[b, :lengths[b]]: frames at or
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
               max_frames: int = constants.MFCC_FRAMES
               ) -> Tuple[tf.Tensor, tf.Tensor]:
    """39-dim MFCC-E-D-A frames, as `mfcc.mfcc_e_d_a` per row.

    Same pipeline as the numpy path (16-bit scale, HTK raw log energy
    before the per-frame pre-emphasis, symmetric Hamming window, 512-point
    power spectrum, 26 HTK mel bands, log floor, DCT-II c1..c12 with lifter
    22, deltas and accelerations with edges repeated at the row's own last
    frame), in float32. Only the first `max_frames` frames are kept, as
    `extraction.pad_frames` keeps them; they are computed from the whole
    utterance (the deltas of the last kept frames see the frames after
    them), while samples that only feed dropped frames are not read.

    Args:
        waveform: float32 [B, S] in [-1, 1) at 16 kHz.
        waveform_length: int32 [B] real samples per row (clipped to
            [0, S]).
        max_frames: int. Frames kept.

    Returns:
        (mfcc float32 [B, T, 39], length int32 [B]): T = the longest row's
        kept frames, at least 1 (so a model always gets a frame); length =
        min(frames, max_frames), frames = 1 + (length - 400) // 160 (0 below
        25 ms), the clipped `audio_length` the models are fed. Frames at or
        beyond a row's length are 0.
    """
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    waveform_length = _lengths(waveform, waveform_length)
    # Frames after max_frames + 2 * DELTA_WINDOW cannot reach a kept frame
    # through the deltas of the deltas.
    needed_frames = max_frames + 2 * mfcc.DELTA_WINDOW
    needed_samples = ((needed_frames - 1) * audio_io.FRAME_STEP
                      + audio_io.FRAME_LENGTH)
    x = _sample_mask(waveform, waveform_length)[:, :needed_samples]
    x = x * mfcc.SAMPLE_SCALE
    lengths = _frame_counts(waveform_length, audio_io.FRAME_LENGTH,
                            audio_io.FRAME_STEP)
    frames = _frames(x, audio_io.FRAME_LENGTH, audio_io.FRAME_STEP)
    lengths_computed = tf.minimum(lengths, tf.shape(frames)[1])
    # HTK energy is taken from the raw frame, before pre-emphasis/window.
    log_energy = tf.math.log(tf.maximum(
        tf.reduce_sum(frames * frames, axis=-1), mfcc.ENERGY_FLOOR))
    emphasised = tf.concat(
        [frames[..., :1] * (1.0 - mfcc.PREEMPHASIS),
         frames[..., 1:] - mfcc.PREEMPHASIS * frames[..., :-1]], axis=-1)
    windowed = emphasised * tf.constant(np.hamming(audio_io.FRAME_LENGTH),
                                        tf.float32)
    power = tf.square(tf.abs(tf.signal.rfft(windowed, [mfcc.N_FFT])))
    filters = mfcc.mel_filters(mfcc.N_FFT, 0.0, constants.SAMPLE_RATE / 2)
    mel = tf.tensordot(power, tf.constant(filters.T, tf.float32), 1)
    cepstra = tf.tensordot(tf.math.log(tf.maximum(mel, mfcc.MEL_FLOOR)),
                           tf.constant(mfcc.dct_lifter_matrix(), tf.float32),
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
                 max_length: int = constants.TEXT_LENGTH,
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


# -------------------------------------------------------------- prosody ---
# The pitch tracker makes discrete choices (ACF peaks, the shortest-lag peak
# within 90% of the best, the voicing threshold): float32 rounding would
# flip near ties between lags and move a frame's F0 by an octave, so the
# prosody is computed in float64, as the numpy path.
_PROSODY_DTYPE = tf.float64
_LAG_MIN = int(np.floor(constants.SAMPLE_RATE / prosody.F0_MAX))
_LAG_MAX = int(np.ceil(constants.SAMPLE_RATE / prosody.F0_MIN))
# Percentiles of the functionals, as np.percentile(track, [10, 90]).
_PERCENTILES = (0.1, 0.9)


def _gather_lags(values: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """values[b, f, index[b, f]] of [B, F, L] with int [B, F]."""
    return tf.gather(values, index[..., None], batch_dims=2)[..., 0]


def _parabolic_peak(values: tf.Tensor, index: tf.Tensor, offset=None):
    """As `prosody._parabolic_peak` around values[..., index + 1]."""
    left = _gather_lags(values, index)
    centre = _gather_lags(values, index + 1)
    right = _gather_lags(values, index + 2)
    curvature = left - 2.0 * centre + right
    if offset is None:
        flat = tf.abs(curvature) <= 1e-12
        offset = tf.where(flat, tf.zeros_like(curvature),
                          0.5 * (left - right)
                          / tf.where(flat, -tf.ones_like(curvature),
                                     curvature))
        offset = tf.clip_by_value(offset, -0.5, 0.5)
    value = (centre + 0.5 * (right - left) * offset
             + 0.5 * curvature * offset ** 2)
    return offset, value


def _pitch_tracks(x: tf.Tensor, real: tf.Tensor):
    """F0, voicing and HNR per 10 ms frame, as `prosody.pitch_tracks`.

    Args:
        x: float64 [B, S], zero beyond each row's length.
        real: bool [B, F'] the real pitch frames (F' >= the frame count).

    Returns:
        (f0, voicing, hnr) float64 [B, F'], 0 where unvoiced (F0, HNR) or
        silent (voicing) and beyond each row's frames.
    """
    window, window_acf = prosody.pitch_window()
    frames = _frames(x, prosody.PITCH_WINDOW, audio_io.FRAME_STEP)
    window = tf.constant(window, _PROSODY_DTYPE)
    windowed = frames * window
    rms = tf.sqrt(tf.reduce_mean(windowed ** 2, axis=-1))
    centred = windowed - tf.reduce_mean(frames, -1, keepdims=True) * window
    spectrum = tf.signal.rfft(centred, [prosody.PITCH_FFT])
    power = tf.abs(spectrum) ** 2
    acf = tf.signal.irfft(tf.complex(power, tf.zeros_like(power)),
                          [prosody.PITCH_FFT])
    # lags lag_min-1 .. lag_max+1 so that every lag in range has neighbours.
    first_lag = _LAG_MIN - 1
    lags = np.arange(first_lag, _LAG_MAX + 2)
    raw = (acf[..., first_lag:_LAG_MAX + 2]
           / tf.maximum(acf[..., :1], 1e-20))
    norm = raw / tf.constant(window_acf[lags], _PROSODY_DTYPE)
    inner = norm[..., 1:-1]
    is_peak = (inner > norm[..., :-2]) & (inner >= norm[..., 2:])
    minus_inf = tf.constant(-np.inf, _PROSODY_DTYPE)
    best = tf.reduce_max(tf.where(is_peak, inner, minus_inf), axis=-1)
    good = is_peak & (inner >= prosody.OCTAVE_TOLERANCE * best[..., None])
    # The first good lag (np.argmax of a bool row; 0 when there is none).
    positions = tf.range(tf.shape(inner)[-1])
    index = tf.reduce_min(tf.where(good, positions, tf.shape(inner)[-1]),
                          axis=-1)
    index = tf.where(tf.reduce_any(good, axis=-1), index, 0)
    offset, peak = _parabolic_peak(norm, index)
    lag = tf.cast(first_lag + 1 + index, _PROSODY_DTYPE) + offset
    _, raw_peak = _parabolic_peak(raw, index, offset)
    voicing = tf.where(tf.math.is_nan(peak), tf.zeros_like(peak), peak)
    voicing = tf.clip_by_value(voicing, 0.0, 1.0)
    frames_real = real[:, :tf.shape(frames)[1]]
    audible = ((rms >= prosody.RMS_THRESHOLD) & tf.math.is_finite(best)
               & frames_real)
    voiced = audible & (voicing >= prosody.VOICING_THRESHOLD)
    zeros = tf.zeros_like(voicing)
    f0 = tf.where(voiced, constants.SAMPLE_RATE / lag, zeros)
    r = tf.clip_by_value(raw_peak, prosody.HNR_R_MIN, 1.0 - prosody.HNR_R_MIN)
    hnr = tf.where(voiced, 10.0 * tf.math.log(r / (1.0 - r))
                   / np.log(10.0), zeros)
    voicing = tf.where(audible, voicing, zeros)
    return f0, voicing, hnr


def _loudness(x: tf.Tensor) -> tf.Tensor:
    """Loudness per 10 ms frame (20 ms frames), float64 [B, F'']."""
    window, weighted_filters = prosody.loudness_weights()
    frames = _frames(x, prosody.LOUDNESS_WINDOW, audio_io.FRAME_STEP)
    spectrum = tf.signal.rfft(frames * tf.constant(window, _PROSODY_DTYPE),
                              [mfcc.N_FFT])
    bands = tf.tensordot(tf.abs(spectrum) ** 2,
                         tf.constant(weighted_filters, _PROSODY_DTYPE), 1)
    return prosody.LOUDNESS_SCALE * tf.reduce_sum(
        bands ** prosody.LOUDNESS_COMPRESSION, axis=-1)


def _smooth(track: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    """3-frame moving average over the `valid` frames, as
    `prosody._smooth` (valid = non-zero and real for the pitch LLDs,
    real for loudness)."""
    values = tf.where(valid, track, tf.zeros_like(track))
    counts = tf.cast(valid, track.dtype)
    padded_values = tf.pad(values, [[0, 0], [1, 1]])
    padded_counts = tf.pad(counts, [[0, 0], [1, 1]])
    total = (padded_values[:, :-2] + padded_values[:, 1:-1]
             + padded_values[:, 2:])
    count = (padded_counts[:, :-2] + padded_counts[:, 1:-1]
             + padded_counts[:, 2:])
    smoothed = total / tf.maximum(count, 1.0)
    return tf.where(valid, smoothed, tf.zeros_like(smoothed))


def _functionals(track: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    """`prosody.functionals` of each row's valid frames, in order.

    Args:
        track: float64 [B, N].
        valid: bool [B, N]; the valid frames of a row, in order, are the
            track the numpy path sees (index 0, 1, ... among them).

    Returns:
        float64 [B, 7]; zeros for a row without valid frames.
    """
    dtype = track.dtype
    weight = tf.cast(valid, dtype)
    values = track * weight
    n = tf.reduce_sum(weight, axis=-1)
    safe_n = tf.maximum(n, 1.0)
    mean = tf.reduce_sum(values, axis=-1) / safe_n
    deviation = (track - mean[:, None]) * weight
    stddev = tf.sqrt(tf.reduce_sum(deviation ** 2, axis=-1) / safe_n)
    index = (tf.cumsum(weight, axis=-1) - 1.0) * weight
    centred_index = (index - ((n - 1.0) / 2.0)[:, None]) * weight
    denominator = tf.reduce_sum(centred_index ** 2, axis=-1)
    slope = tf.where(n > 1, tf.reduce_sum(centred_index * deviation, -1)
                     / tf.maximum(denominator, 1e-300),
                     tf.zeros_like(n))
    total = tf.reduce_sum(values, axis=-1)
    centroid = tf.where(
        total != 0, tf.reduce_sum(index * values, -1)
        / tf.where(total != 0, total, tf.ones_like(total)) / safe_n,
        tf.zeros_like(total))
    # np.percentile's default (linear): position q (n - 1) in the sorted
    # valid values, which sort before the +inf of the invalid frames.
    ordered = tf.sort(tf.where(valid, track, tf.constant(np.inf, dtype)),
                      axis=-1)
    last = tf.cast(tf.maximum(n - 1.0, 0.0), tf.int32)
    percentiles = []
    for q in _PERCENTILES:
        position = q * tf.maximum(n - 1.0, 0.0)
        below = tf.floor(position)
        fraction = position - below
        below = tf.cast(below, tf.int32)
        above = tf.minimum(below + 1, last)
        a = tf.gather(ordered, below[:, None], batch_dims=1)[:, 0]
        b = tf.gather(ordered, above[:, None], batch_dims=1)[:, 0]
        # numpy's _lerp, which interpolates from the nearer end.
        value = tf.where(fraction >= 0.5, b - (b - a) * (1.0 - fraction),
                         a + (b - a) * fraction)
        percentiles.append(value)
    result = tf.stack([stddev, mean, slope, centroid, percentiles[0],
                       percentiles[1], percentiles[1] - percentiles[0]],
                      axis=-1)
    return tf.where((n > 0)[:, None], result, tf.zeros_like(result))


def prosody_functionals(waveform: tf.Tensor, waveform_length: tf.Tensor
                        ) -> tf.Tensor:
    """35 prosody functionals, as `prosody.prosody_functionals` per row.

    The same LLDs (normalised-ACF pitch tracker: F0, semitone F0, voicing,
    HNR; loudness), the same 3-frame smoothing and the same 7 functionals
    per LLD (pitch LLDs over their non-zero frames), computed in float64
    (see `_PROSODY_DTYPE`) on each row's first `waveform_length` samples.

    Args:
        waveform: float32 [B, S] in [-1, 1) at 16 kHz.
        waveform_length: int32 [B].

    Returns:
        float32 [B, 35] in `prosody.PROSODY_NAMES` order.
    """
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    waveform_length = _lengths(waveform, waveform_length)
    x = tf.cast(_sample_mask(waveform, waveform_length), _PROSODY_DTYPE)
    width = tf.maximum(tf.shape(x)[1], prosody.PITCH_WINDOW)
    pitch_count = _frame_counts(waveform_length, prosody.PITCH_WINDOW,
                                audio_io.FRAME_STEP)
    pitch_real = tf.sequence_mask(
        pitch_count, 1 + (width - prosody.PITCH_WINDOW) // audio_io.FRAME_STEP)
    f0, voicing, hnr = _pitch_tracks(x, pitch_real)
    # openSMILE's semitone scale: 12·log2(F0 / 27.5 Hz), at least 1 when
    # voiced because 0 means unvoiced.
    log_f0 = tf.where(f0 > 0, tf.maximum(
        12.0 * tf.math.log(tf.maximum(f0, 1e-12) / 27.5) / np.log(2.0),
        1.0), tf.zeros_like(f0))
    values = []
    for track in (f0, log_f0, voicing, hnr):
        smoothed = _smooth(track, track != 0)
        values.append(_functionals(smoothed, smoothed != 0))
    loudness = _loudness(x)
    loudness_real = tf.sequence_mask(
        _frame_counts(waveform_length, prosody.LOUDNESS_WINDOW,
                      audio_io.FRAME_STEP),
        tf.shape(loudness)[1])
    smoothed = _smooth(loudness, loudness_real)
    values.append(_functionals(smoothed, loudness_real))
    result = tf.concat(values, axis=-1)
    result = tf.where(tf.math.is_finite(result), result,
                      tf.zeros_like(result))
    return tf.cast(result, tf.float32)
