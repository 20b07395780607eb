"""Tests for preprocessing/splits.py."""

import os

import numpy as np
import pytest

from preprocessing import splits

# yoon_spec §1.3 / §1.2: fold sizes of the original for n = 5,531.
ORIGINAL_SIZES = {
    "audio_woZ_set01": (4445, 313, 773),
    "audio_woZ_set02": (4374, 386, 771),
    "audio_woZ_set03": (4399, 353, 779),
    "audio_woZ_set04": (4432, 343, 756),
    "audio_woZ_set05": (4474, 307, 750),
}


def _check_partition(fold, n):
    joined = np.concatenate([fold["train"], fold["dev"], fold["test"]])
    np.testing.assert_array_equal(np.sort(joined), np.arange(n))


def test_random5_reproduces_original_fold_sizes():
    folds, policy = splits.random5_folds(5531)
    sizes = {name: (len(f["train"]), len(f["dev"]), len(f["test"]))
             for name, f in folds}
    assert sizes == ORIGINAL_SIZES
    for _, fold in folds:
        _check_partition(fold, 5531)
    # Held-out sets partition the corpus; dev/test role is fold-independent.
    held = np.concatenate([np.concatenate([f["dev"], f["test"]])
                           for _, f in folds])
    np.testing.assert_array_equal(np.sort(held), np.arange(5531))
    assert policy["seeds"] == {"fold": 337, "dev": 3372}
    assert policy["speaker_independent"] is False


def test_random5_prefix_stable():
    # Each index's draws depend only on its position: a prefix corpus keeps
    # the same assignments.
    big, _ = splits.random5_folds(200)
    small, _ = splits.random5_folds(100)
    for (_, b), (_, s) in zip(big, small):
        for key in ("train", "dev", "test"):
            np.testing.assert_array_equal(b[key][b[key] < 100], s[key])


def test_leave_one_session_out():
    sessions = ["s1"] * 20 + ["s2"] * 30 + ["s3"] * 25
    folds, policy = splits.leave_one_session_out(sessions, dev="random",
                                                 dev_fraction=0.2, seed=3)
    assert [name for name, _ in folds] == ["loso_s1", "loso_s2", "loso_s3"]
    sessions = np.array(sessions)
    for (name, fold), held in zip(folds, ("s1", "s2", "s3")):
        _check_partition(fold, len(sessions))
        assert set(sessions[fold["test"]]) == {held}
        assert held not in set(sessions[fold["train"]])
        assert held not in set(sessions[fold["dev"]])
        assert 0 < len(fold["dev"]) < len(fold["train"])
    again, _ = splits.leave_one_session_out(list(sessions), dev="random",
                                            dev_fraction=0.2, seed=3)
    for (_, a), (_, b) in zip(folds, again):
        np.testing.assert_array_equal(a["dev"], b["dev"])
    assert policy["seeds"] == {"dev": 3}
    folds, policy = splits.leave_one_session_out(list(sessions),
                                                 dev="next_session")
    assert set(sessions[folds[2][1]["dev"]]) == {"s1"}
    assert policy["speaker_independent"] is True
    with pytest.raises(ValueError, match="`session` column"):
        splits.leave_one_session_out(["s1", None])
    with pytest.raises(ValueError, match="at least 2 sessions"):
        splits.leave_one_session_out(["s1", "s1"], dev="random")


def test_speaker_folds_are_speaker_disjoint():
    speakers = np.array([f"spk{i % 7}" for i in range(70)])
    folds, policy = splits.speaker_folds(speakers, num_folds=3,
                                         dev_speakers=2, seed=5)
    tested = []
    for (name, fold), described in zip(folds, policy["folds"]):
        _check_partition(fold, len(speakers))
        sets = {k: set(speakers[v]) for k, v in fold.items()}
        assert not sets["train"] & sets["test"]
        assert not sets["train"] & sets["dev"]
        assert not sets["dev"] & sets["test"]
        assert sets["test"] == set(described["test"])
        assert len(sets["dev"]) == 2
        tested += described["test"]
    assert sorted(tested) == sorted(set(speakers))
    assert policy["seeds"] == {"speakers": 5}
    with pytest.raises(ValueError, match="num_folds"):
        splits.speaker_folds(["a", "b"], num_folds=3)


def test_make_splits_dispatch():
    folds, policy = splits.make_splits("random5", 30)
    assert len(folds) == 5 and policy["policy"] == "random5"
    with pytest.raises(ValueError, match="expected one of"):
        splits.make_splits("kfold", 30)


def _iemocap_like(num_sessions=4, per_speaker=12):
    """Two speakers per session (as IEMOCAP); labels cycle over 4 classes."""
    sessions, speakers = [], []
    for session in range(1, num_sessions + 1):
        for gender in "FM":
            sessions += [f"Ses{session}"] * per_speaker
            speakers += [f"Ses{session}{gender}"] * per_speaker
    labels = np.arange(len(sessions)) % 4
    return np.array(sessions), np.array(speakers), labels


def test_loso_default_dev_is_whole_speakers_disjoint_from_train_and_test():
    sessions, speakers, labels = _iemocap_like()
    folds, policy = splits.leave_one_session_out(
        sessions, speakers=speakers, labels=labels, seed=1)
    assert policy["dev"] == "speakers" and policy["speaker_independent"]
    assert policy["stratified"] is True and policy["dev_speakers"] == 1
    dev_speakers = []
    for (name, fold), described in zip(folds, policy["folds"]):
        _check_partition(fold, len(sessions))
        sets = {k: set(speakers[v]) for k, v in fold.items()}
        assert not sets["dev"] & sets["train"]
        assert not sets["dev"] & sets["test"]
        assert not sets["train"] & sets["test"]
        assert sets["dev"] == set(described["dev"]) and len(sets["dev"]) == 1
        assert set(sessions[fold["test"]]) == {described["test"]}
        dev_speakers += described["dev"]
    # Seeded: the same draw again, another one with another seed.
    again, _ = splits.make_splits("loso", len(sessions), speakers=speakers,
                                  sessions=sessions, labels=labels, seed=1)
    for (_, a), (_, b) in zip(folds, again):
        np.testing.assert_array_equal(a["dev"], b["dev"])
    others = [splits.leave_one_session_out(
        sessions, speakers=speakers, seed=seed)[1]["folds"]
        for seed in range(2, 8)]
    assert any([f["dev"] for f in o] != [[s] for s in dev_speakers]
               for o in others)
    with pytest.raises(ValueError, match="needs a speaker"):
        splits.leave_one_session_out(sessions)
    with pytest.raises(ValueError, match="dev_speakers=8"):
        splits.leave_one_session_out(sessions, speakers=speakers,
                                     dev_speakers=8)


def test_dev_speaker_draw_prefers_speakers_with_every_class():
    # Speakers a..e have every class; x has only class 0: with labels it
    # never goes to dev, without labels some seed draws it.
    speakers = np.array([s for s in "abcde" for _ in range(8)] + ["x"] * 8)
    labels = np.array([i % 4 for i in range(40)] + [0] * 8)
    drawn_plain, drawn_aware = set(), set()
    for seed in range(12):
        _, plain = splits.speaker_folds(speakers, num_folds=2, seed=seed)
        _, aware = splits.speaker_folds(speakers, num_folds=2, seed=seed,
                                        labels=labels)
        assert plain["stratified"] is False and aware["stratified"] is True
        for fold in plain["folds"]:
            drawn_plain.update(fold["dev"])
        for fold in aware["folds"]:
            drawn_aware.update(fold["dev"])
    assert "x" in drawn_plain and "x" not in drawn_aware


def test_random5_ignores_labels_and_stays_exact():
    plain, _ = splits.make_splits("random5", 300)
    given, _ = splits.make_splits("random5", 300,
                                  labels=np.arange(300) % 4)
    for (_, a), (_, b) in zip(plain, given):
        for key in ("train", "dev", "test"):
            np.testing.assert_array_equal(a[key], b[key])


# The development corpus: ../shared/devcorpus next to the checkout, or
# $DEVCORPUS (e.g. from a git worktree elsewhere).
EMODB = os.path.join(os.environ.get("DEVCORPUS", os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
        __file__)))), "..",
    "shared", "devcorpus")), "emodb")


@pytest.mark.skipif(not os.path.isfile(os.path.join(EMODB, "metadata.tsv")),
                    reason="needs ../shared/devcorpus/emodb (or $DEVCORPUS)")
def test_emodb_leave_one_speaker_out_build(tmp_path):
    """The development protocol on real speech: 10 folds, each speaker
    tested once, dev speakers in neither train nor test (one utterance
    per speaker and class, to keep it small)."""
    from preprocessing import build_arrays

    rows, seen = [], set()
    with open(os.path.join(EMODB, "metadata.tsv")) as f:
        header = f.readline()
        for line in f:
            wav, _, label, speaker = line.rstrip("\n").split("\t")
            if label in ("angry", "happy", "sad", "neutral") and (
                    speaker, label) not in seen:
                seen.add((speaker, label))
                rows.append(line.replace(wav, os.path.join(EMODB, wav), 1))
    manifest = tmp_path / "metadata.tsv"
    manifest.write_text(header + "".join(rows))
    summary = build_arrays.build(build_arrays.BuildConfig(
        corpus="manifest", manifest=str(manifest),
        output_dir=str(tmp_path / "folds"), split="speaker", num_folds=10,
        dev_speakers=2, embedding_dim=4, num_workers=1, progress=False,
        label_map={"angry": 0, "happy": 1, "sad": 2, "neutral": 3,
                   "fear": -1, "disgust": -1, "boredom": -1}),
        log=lambda _: None)
    policy = summary["split"]
    assert policy["speaker_independent"] and policy["stratified"]
    tested = [fold["test"] for fold in policy["folds"]]
    assert sorted(s for group in tested for s in group) == sorted(
        {speaker for speaker, _ in seen})
    for name, fold in summary["folds"].items():
        assert fold["sizes"] == {"train": 28, "dev": 8, "test": 4}
        assert all(count == 1 for count in fold["counts"]["test"].values())
    for described in policy["folds"]:
        assert len(described["dev"]) == 2
        assert not set(described["dev"]) & set(described["test"])
