"""Per-speaker feature normalisation of MFCC frames and prosody.

Acted corpora differ more between speakers (pitch, loudness, vocal tract)
than between emotions of one speaker; standardising each speaker's features
with the statistics of that speaker's own utterances removes most of it.

The same function serves training, evaluation and serving: `normalize`
takes a group of utterances with their speakers and standardises each
utterance with the mean/std of ITS speaker's utterances in that group
(MFCC per coefficient over the real frames, the first `max_frames`, as the
model sees them; prosody per functional over the speaker's utterances).
For a fold, every split is normalised on its own (a test speaker with the
statistics of its own, unlabelled, test utterances: no label and no other
split is read). Utterances without a speaker (None or "") are standardised
with the `fallback` statistics, e.g. the training split's global ones.

Padded frames stay exactly 0.
"""

import dataclasses

import numpy as np

from common.constants import MFCC_FRAMES


def _statistics(mfcc, lengths, prosody):
    """(mfcc_mean [F], mfcc_std [F], prosody_mean [P], prosody_std [P])."""
    frames = mfcc.shape[1]
    mask = np.arange(frames)[None, :] < np.minimum(lengths, frames)[:, None]
    count = max(int(mask.sum()), 1)
    values = mfcc.astype(np.float64) * mask[:, :, None]
    mean = values.sum(axis=(0, 1)) / count
    variance = np.square(values).sum(axis=(0, 1)) / count - mean ** 2
    prosody = prosody.astype(np.float64)
    return (mean, np.sqrt(np.maximum(variance, 0.0)), prosody.mean(axis=0),
            prosody.std(axis=0))


def _scale(std):
    # A constant feature (e.g. one utterance's prosody) is left unscaled.
    return np.where(std > 1e-8, 1.0 / np.maximum(std, 1e-8), 1.0)


def global_statistics(mfcc, lengths, prosody, max_frames=MFCC_FRAMES):
    """Statistics of all the utterances given (the fallback for utterances
    of unknown speaker); a dict of lists, JSON-able."""
    mean, std, p_mean, p_std = _statistics(
        mfcc[:, :max_frames], np.asarray(lengths), prosody)
    return {"mfcc_mean": mean.tolist(), "mfcc_std": std.tolist(),
            "prosody_mean": p_mean.tolist(), "prosody_std": p_std.tolist()}


def normalize(mfcc, lengths, prosody, speakers, fallback=None,
              max_frames=MFCC_FRAMES):
    """Standardises each utterance with its speaker's statistics.

    Args:
        mfcc: float [n, T, F] frames, zero-padded.
        lengths: int [n] real frames (may exceed T; clipped).
        prosody: float [n, P].
        speakers: sequence of n str or None (None/"" = unknown speaker).
        fallback: dict from `global_statistics`, for unknown speakers (None:
            those utterances' own pooled statistics).
        max_frames: int. Only the first max_frames frames count for the
            statistics (what the model reads).

    Returns:
        (mfcc float32 [n, T, F], prosody float32 [n, P]).

    Raises:
        ValueError: `speakers` does not have one entry per utterance.
    """
    n = len(mfcc)
    if len(speakers) != n or len(prosody) != n or len(lengths) != n:
        raise ValueError(f"per-speaker normalisation: {n} utterances but "
                         f"{len(speakers)} speakers, {len(prosody)} prosody "
                         f"rows and {len(lengths)} lengths.")
    lengths = np.asarray(lengths)
    out_mfcc = np.array(mfcc, np.float32)
    out_prosody = np.array(prosody, np.float32)
    keys = np.array(["" if s is None else str(s) for s in speakers],
                    dtype=object)
    frames = out_mfcc.shape[1]
    real = np.arange(frames)[None, :] < np.minimum(lengths, frames)[:, None]
    for key in sorted(set(keys)):
        rows = np.flatnonzero(keys == key)
        if key == "" and fallback is not None:
            stats = tuple(np.asarray(fallback[name], np.float64) for name in
                          ("mfcc_mean", "mfcc_std", "prosody_mean",
                           "prosody_std"))
        else:
            stats = _statistics(mfcc[rows, :max_frames], lengths[rows],
                                prosody[rows])
        mean, std, p_mean, p_std = stats
        block = (out_mfcc[rows] - mean) * _scale(std)
        out_mfcc[rows] = block * real[rows][:, :, None]
        out_prosody[rows] = (out_prosody[rows] - p_mean) * _scale(p_std)
    return out_mfcc, out_prosody


def normalize_split(split, speakers, fallback=None,
                    max_frames=MFCC_FRAMES):
    """A copy of a `reference_arrays.Split` with per-speaker normalised
    `mfcc` and `prosody` (everything else shared)."""
    mfcc, prosody = normalize(split.mfcc, split.seq_len, split.prosody,
                              speakers, fallback, max_frames)
    return dataclasses.replace(split, mfcc=mfcc, prosody=prosody)
