"""Train/dev/test splits: the original's 5 random folds and speaker-free ones.

Every function returns `(folds, policy)`:

* `folds`: list of `(fold_name, {"train": idx, "dev": idx, "test": idx})`,
  idx sorted int64 arrays of row indices into the corpus order;
* `policy`: a JSON-able dict (policy name, seeds, parameters) to record in
  the fold manifest so the split can be rebuilt.

Policies:

* `random5` (yoon_spec §1.3), utterance-level and speaker-DEPENDENT, exactly
  the original's: Python's `random` seeded 337 draws once per index and
  assigns folds 1..5 by thresholds 0.8/0.6/0.4/0.2; for each fold it re-seeds
  3372 and draws once per index (train ones too), held-out draws > 0.7 go
  to dev, the rest to test. Names `audio_woZ_set01` .. `set05`.
* `loso`: leave one session out; test = one session, dev = a seeded random
  `dev_fraction` of the other sessions' utterances (`dev="random"`, dev is
  then speaker-dependent w.r.t. train) or the whole next session
  (`dev="next_session"`, fully speaker-independent).
* `speaker`: speakers shuffled (seeded) into `num_folds` disjoint groups;
  test = one group, dev = `dev_speakers` speakers drawn (seeded) from the
  others, train = the rest. No speaker is in two splits of a fold.
"""

import random

import numpy as np

RANDOM5_FOLD_SEED = 337
RANDOM5_DEV_SEED = 3372
RANDOM5_THRESHOLDS = (0.8, 0.6, 0.4, 0.2)
RANDOM5_DEV_THRESHOLD = 0.70
POLICIES = ("random5", "loso", "speaker")


def _indices(mask):
    return np.flatnonzero(mask).astype(np.int64)


def _fold(train_mask, dev_mask, test_mask):
    return {"train": _indices(train_mask), "dev": _indices(dev_mask),
            "test": _indices(test_mask)}


def random5_folds(num_examples, fold_seed=RANDOM5_FOLD_SEED,
                  dev_seed=RANDOM5_DEV_SEED):
    """The original's 5 random utterance-level folds, draw for draw.

    Args:
        num_examples: int. Corpus size (5,531 for the original subset).
        fold_seed: int. Seed of the fold assignment (337).
        dev_seed: int. Seed of the dev/test draw, reset for every fold (3372).

    Returns:
        (folds, policy), see the module docstring. Fold k's held-out rows
        are the ones assigned to k; the 5 held-out sets partition the corpus.
    """
    rng = random.Random(fold_seed)
    assignment = np.empty(num_examples, dtype=np.int64)
    for index in range(num_examples):
        draw = rng.random()
        fold = 5
        for k, threshold in enumerate(RANDOM5_THRESHOLDS, start=1):
            if draw > threshold:
                fold = k
                break
        assignment[index] = fold
    # The same stream for every fold (re-seeded), one draw per index.
    rng = random.Random(dev_seed)
    to_dev = np.array([rng.random() > RANDOM5_DEV_THRESHOLD
                       for _ in range(num_examples)], dtype=bool)
    folds = []
    for k in range(1, 6):
        held_out = assignment == k
        folds.append((f"audio_woZ_set{k:02d}",
                      _fold(~held_out, held_out & to_dev,
                            held_out & ~to_dev)))
    policy = {"policy": "random5", "level": "utterance",
              "speaker_independent": False,
              "seeds": {"fold": fold_seed, "dev": dev_seed},
              "rng": "python random.random (Mersenne Twister)",
              "thresholds": {"fold": list(RANDOM5_THRESHOLDS),
                             "dev": RANDOM5_DEV_THRESHOLD}}
    return folds, policy


def leave_one_session_out(sessions, dev="random", dev_fraction=0.1, seed=0):
    """One fold per session: that session is the test set.

    Args:
        sessions: sequence of str, the session of each example (no None).
        dev: `"random"` (a seeded `dev_fraction` of the training sessions'
            utterances) or `"next_session"` (the next session in sorted
            order, cyclically).
        dev_fraction: float in (0, 1), for `dev="random"`.
        seed: int, for `dev="random"`.

    Returns:
        (folds, policy). Fold names `loso_<session>`.

    Raises:
        ValueError: missing sessions, fewer than 2 (3 for next_session).
    """
    sessions = np.asarray([None if s is None else str(s) for s in sessions],
                          dtype=object)
    if any(s is None or s == "" for s in sessions):
        raise ValueError("leave-one-session-out needs a session for every "
                         "example (add a `session` column to the manifest).")
    names = sorted(set(sessions))
    needed = 3 if dev == "next_session" else 2
    if len(names) < needed:
        raise ValueError(f"leave-one-session-out with dev={dev!r} needs at "
                         f"least {needed} sessions, found {names}.")
    if dev not in ("random", "next_session"):
        raise ValueError(f"dev={dev!r}: expected 'random' or "
                         "'next_session'.")
    if dev == "random" and not 0.0 < dev_fraction < 1.0:
        raise ValueError(f"dev_fraction={dev_fraction}: expected a value in "
                         "(0, 1).")
    draws = np.random.default_rng(seed).random(len(sessions))
    folds = []
    for position, name in enumerate(names):
        test = sessions == name
        if dev == "next_session":
            dev_mask = sessions == names[(position + 1) % len(names)]
        else:
            dev_mask = ~test & (draws < dev_fraction)
        folds.append((f"loso_{name}",
                      _fold(~test & ~dev_mask, dev_mask, test)))
    policy = {"policy": "loso", "level": "session", "dev": dev,
              "speaker_independent": dev == "next_session",
              "test_speaker_independent": True,
              "sessions": names}
    if dev == "random":
        policy.update(dev_fraction=dev_fraction, seeds={"dev": seed},
                      rng="numpy default_rng(seed).random(n) < dev_fraction")
    return folds, policy


def speaker_folds(speakers, num_folds=5, dev_speakers=1, seed=0):
    """Speaker-independent folds: no speaker in two splits of a fold.

    Args:
        speakers: sequence of str, the speaker of each example.
        num_folds: int >= 2; at most the number of speakers.
        dev_speakers: int >= 1 speakers per fold for dev.
        seed: int. Seeds the speaker shuffle and the dev draws.

    Returns:
        (folds, policy). Fold names `speaker_fold01` ...; the policy lists
        each fold's test and dev speakers.

    Raises:
        ValueError: too few speakers for the folds and dev speakers.
    """
    speakers = np.asarray([str(s) for s in speakers], dtype=object)
    names = sorted(set(speakers))
    if num_folds < 2 or len(names) < num_folds:
        raise ValueError(f"speaker folds: need 2 <= num_folds <= number of "
                         f"speakers, found num_folds={num_folds} and "
                         f"{len(names)} speakers.")
    rng = np.random.default_rng(seed)
    shuffled = [names[i] for i in rng.permutation(len(names))]
    groups = [sorted(g) for g in np.array_split(
        np.array(shuffled, dtype=object), num_folds)]
    folds = []
    described = []
    for k, test_group in enumerate(groups, start=1):
        others = [s for s in names if s not in test_group]
        if len(others) <= dev_speakers:
            raise ValueError(f"speaker folds: fold {k} leaves {len(others)} "
                             f"speakers outside its test set, need more than"
                             f" dev_speakers={dev_speakers}.")
        dev_group = sorted(rng.choice(others, size=dev_speakers,
                                      replace=False).tolist())
        test = np.isin(speakers, test_group)
        dev_mask = np.isin(speakers, dev_group)
        folds.append((f"speaker_fold{k:02d}",
                      _fold(~test & ~dev_mask, dev_mask, test)))
        described.append({"test": list(test_group), "dev": dev_group})
    policy = {"policy": "speaker", "level": "speaker",
              "speaker_independent": True, "num_folds": num_folds,
              "dev_speakers": dev_speakers, "seeds": {"speakers": seed},
              "folds": described}
    return folds, policy


def make_splits(policy, num_examples, speakers=None, sessions=None, seed=0,
                **options):
    """Dispatches to one split policy by name.

    Args:
        policy: one of `POLICIES`.
        num_examples: int.
        speakers: sequence of str (for `speaker`).
        sessions: sequence of str (for `loso`).
        seed: int, for `loso` / `speaker` (random5 has its fixed seeds).
        **options: passed on (`dev`, `dev_fraction`, `num_folds`,
            `dev_speakers`, `fold_seed`, `dev_seed`).

    Returns:
        (folds, policy dict).
    """
    if policy == "random5":
        return random5_folds(num_examples, **options)
    if policy == "loso":
        return leave_one_session_out(sessions, seed=seed, **options)
    if policy == "speaker":
        return speaker_folds(speakers, seed=seed, **options)
    raise ValueError(f"split policy {policy!r}: expected one of {POLICIES}.")
