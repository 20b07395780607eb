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
* `loso`: leave one session out; test = one session, dev =
  `dev_speakers` whole speakers drawn (seeded) from the other sessions
  (`dev="speakers"`, the default: no speaker in two splits of a fold), the
  whole next session (`dev="next_session"`, also speaker-independent) or a
  seeded random `dev_fraction` of the other sessions' utterances
  (`dev="random"`, the old default: dev then shares speakers with train, so
  early stopping on it selects speaker-overfit weights).
* `speaker`: speakers shuffled (seeded) into `num_folds` disjoint groups;
  test = one group, dev = `dev_speakers` speakers drawn (seeded) from the
  others, train = the rest. No speaker is in two splits of a fold. With
  `num_folds` = the number of speakers it is leave-one-speaker-out.

Dev speakers are drawn stratification-aware when the labels are given: in
the seeded order, speakers having every class of the fold's non-test data
come first, so a dev set does not miss a class a candidate could have had.
"""

import random

import numpy as np

RANDOM5_FOLD_SEED = 337
RANDOM5_DEV_SEED = 3372
RANDOM5_THRESHOLDS = (0.8, 0.6, 0.4, 0.2)
RANDOM5_DEV_THRESHOLD = 0.70
POLICIES = ("random5", "loso", "speaker")
LOSO_DEV_POLICIES = ("speakers", "next_session", "random")
DEV_DRAW = ("seeded speaker permutation; with labels, speakers having every "
            "class of the fold's non-test data first")


def _indices(mask):
    return np.flatnonzero(mask).astype(np.int64)


def _fold(train_mask, dev_mask, test_mask):
    return {"train": _indices(train_mask), "dev": _indices(dev_mask),
            "test": _indices(test_mask)}


def _draw_dev_speakers(candidates, speakers, labels, allowed, count, rng):
    """`count` speakers from `candidates`, seeded, covering classes first.

    Args:
        candidates: sorted list of str, the speakers that may go to dev.
        speakers: object array [n], the speaker of each example.
        labels: int array [n] or None (then a plain seeded draw).
        allowed: bool array [n], the examples outside the test split.
        count: int, how many speakers.
        rng: numpy Generator (consumed once per call).

    Returns:
        sorted list of str.
    """
    order = [candidates[i] for i in rng.permutation(len(candidates))]
    if labels is not None:
        classes = set(labels[allowed].tolist())
        covers = {s: set(labels[speakers == s].tolist()) >= classes
                  for s in order}
        # Stable: the seeded order is kept within each group.
        order.sort(key=lambda s: not covers[s])
    return sorted(order[:count])


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


def leave_one_session_out(sessions, dev="speakers", dev_fraction=0.1,
                          seed=0, speakers=None, labels=None,
                          dev_speakers=1):
    """One fold per session: that session is the test set.

    Args:
        sessions: sequence of str, the session of each example (no None).
        dev: `"speakers"` (`dev_speakers` whole speakers of the training
            sessions, seeded; needs `speakers`), `"next_session"` (the next
            session in sorted order, cyclically) or `"random"` (a seeded
            `dev_fraction` of the training sessions' utterances; dev shares
            speakers with train).
        dev_fraction: float in (0, 1), for `dev="random"`.
        seed: int, for `dev="random"` and `dev="speakers"`.
        speakers: sequence of str, the speaker of each example (for
            `dev="speakers"`).
        labels: int sequence or None. Makes the `dev="speakers"` draw prefer
            speakers having every class.
        dev_speakers: int >= 1, for `dev="speakers"`.

    Returns:
        (folds, policy). Fold names `loso_<session>`.

    Raises:
        ValueError: missing sessions or speakers, too few sessions or
            speakers for the dev policy, a speaker in two sessions.
    """
    sessions = np.asarray([None if s is None else str(s) for s in sessions],
                          dtype=object)
    if any(s is None or s == "" for s in sessions):
        raise ValueError("leave-one-session-out needs a session for every "
                         "example (add a `session` column to the manifest).")
    if dev not in LOSO_DEV_POLICIES:
        raise ValueError(f"dev={dev!r}: expected one of "
                         f"{LOSO_DEV_POLICIES}.")
    names = sorted(set(sessions))
    needed = 3 if dev == "next_session" else 2
    if len(names) < needed:
        raise ValueError(f"leave-one-session-out with dev={dev!r} needs at "
                         f"least {needed} sessions, found {names}.")
    if dev == "random" and not 0.0 < dev_fraction < 1.0:
        raise ValueError(f"dev_fraction={dev_fraction}: expected a value in "
                         "(0, 1).")
    if dev == "speakers":
        if speakers is None or len(speakers) != len(sessions):
            raise ValueError("leave-one-session-out with dev='speakers' "
                             "needs a speaker for every example.")
        speakers = np.asarray([str(s) for s in speakers], dtype=object)
        if dev_speakers < 1:
            raise ValueError(f"dev_speakers={dev_speakers}: expected >= 1.")
        labels = None if labels is None else np.asarray(labels)
        rng = np.random.default_rng(seed)
    draws = (np.random.default_rng(seed).random(len(sessions))
             if dev == "random" else None)
    folds, described = [], []
    for position, name in enumerate(names):
        test = sessions == name
        if dev == "next_session":
            dev_mask = sessions == names[(position + 1) % len(names)]
        elif dev == "random":
            dev_mask = ~test & (draws < dev_fraction)
        else:
            candidates = sorted(set(speakers[~test]) - set(speakers[test]))
            if len(candidates) <= dev_speakers:
                raise ValueError(
                    f"leave-one-session-out: fold loso_{name} has "
                    f"{len(candidates)} speakers outside its test session, "
                    f"need more than dev_speakers={dev_speakers}.")
            group = _draw_dev_speakers(candidates, speakers, labels, ~test,
                                       dev_speakers, rng)
            # A speaker also recorded in the test session is no candidate:
            # dev keeps no speaker of test.
            dev_mask = ~test & np.isin(speakers, group)
            described.append({"test": name, "dev": group})
        folds.append((f"loso_{name}",
                      _fold(~test & ~dev_mask, dev_mask, test)))
    policy = {"policy": "loso", "level": "session", "dev": dev,
              "speaker_independent": dev != "random",
              "test_speaker_independent": True,
              "sessions": names}
    if dev == "random":
        policy.update(dev_fraction=dev_fraction, seeds={"dev": seed},
                      rng="numpy default_rng(seed).random(n) < dev_fraction")
    elif dev == "speakers":
        policy.update(dev_speakers=dev_speakers, seeds={"dev": seed},
                      dev_draw=DEV_DRAW, stratified=labels is not None,
                      folds=described)
    return folds, policy


def speaker_folds(speakers, num_folds=5, dev_speakers=1, seed=0,
                  labels=None):
    """Speaker-independent folds: no speaker in two splits of a fold.

    Args:
        speakers: sequence of str, the speaker of each example.
        num_folds: int >= 2; at most the number of speakers.
        dev_speakers: int >= 1 speakers per fold for dev.
        seed: int. Seeds the speaker shuffle and the dev draws.
        labels: int sequence or None. Makes the dev draw prefer speakers
            having every class (None: the plain seeded draw of builds made
            before it).

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
        test = np.isin(speakers, test_group)
        if labels is None:
            dev_group = sorted(rng.choice(others, size=dev_speakers,
                                          replace=False).tolist())
        else:
            dev_group = _draw_dev_speakers(others, speakers,
                                           np.asarray(labels), ~test,
                                           dev_speakers, rng)
        dev_mask = np.isin(speakers, dev_group)
        folds.append((f"speaker_fold{k:02d}",
                      _fold(~test & ~dev_mask, dev_mask, test)))
        described.append({"test": list(test_group), "dev": dev_group})
    policy = {"policy": "speaker", "level": "speaker",
              "speaker_independent": True, "num_folds": num_folds,
              "dev_speakers": dev_speakers, "seeds": {"speakers": seed},
              "dev_draw": (DEV_DRAW if labels is not None else
                           "numpy Generator.choice over the other speakers"),
              "stratified": labels is not None, "folds": described}
    return folds, policy


def make_splits(policy, num_examples, speakers=None, sessions=None, seed=0,
                labels=None, **options):
    """Dispatches to one split policy by name.

    Args:
        policy: one of `POLICIES`.
        num_examples: int.
        speakers: sequence of str (for `speaker`).
        sessions: sequence of str (for `loso`).
        seed: int, for `loso` / `speaker` (random5 has its fixed seeds).
        labels: int sequence or None, for a class-aware dev speaker draw
            (`loso` / `speaker`; random5 ignores it and stays exact).
        **options: passed on (`dev`, `dev_fraction`, `num_folds`,
            `dev_speakers`, `fold_seed`, `dev_seed`).

    Returns:
        (folds, policy dict).
    """
    if policy == "random5":
        return random5_folds(num_examples, **options)
    if policy == "loso":
        return leave_one_session_out(sessions, seed=seed, speakers=speakers,
                                     labels=labels, **options)
    if policy == "speaker":
        return speaker_folds(speakers, seed=seed, labels=labels, **options)
    raise ValueError(f"split policy {policy!r}: expected one of {POLICIES}.")
