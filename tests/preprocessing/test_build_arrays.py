"""End-to-end tests for preprocessing/build_arrays.py on generated corpora."""

import json
import os
import pickle
import pickletools
import subprocess
import sys

import numpy as np
import pytest

from apps import build_arrays as build_arrays_app
from tests.apps import flags_once
from tests.corpus_fixtures import make_iemocap_tree, make_manifest_corpus
from tests.corpus_fixtures import write_tone
from common import constants
from preprocessing import audio_io
from preprocessing import extraction
from preprocessing import opensmile_features
from preprocessing import build_arrays
from preprocessing import reference_arrays as ra
from preprocessing import splits
from preprocessing import text_features

NBSP = "\u00a0"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))


def _quiet(message):
    del message


@pytest.fixture(scope="module")
def iemocap_build(tmp_path_factory):
    """One random5 build of a tiny IEMOCAP tree with a GloVe file."""
    root = tmp_path_factory.mktemp("iemocap_build")
    corpus_dir = str(root / "IEMOCAP")
    truth = make_iemocap_tree(corpus_dir)
    glove_path = root / "glove.txt"
    glove_path.write_text("\n".join([
        ", 0.1 0.2 0.3 0.4",
        "well 1 1 1 1",
        f"wh{NBSP}at 9 9 9 9",
        "sorry 2 2 2 2",
        ". . . 5 5 5 5",
    ]) + "\n", encoding="utf-8")
    config = build_arrays.BuildConfig(
        corpus="iemocap", corpus_dir=corpus_dir,
        output_dir=str(root / "out"), split="random5", glove=str(glove_path),
        num_workers=1, progress=False)
    summary = build_arrays.build(config, log=_quiet)
    return config, summary, truth


def test_random5_folds_load_and_match_the_split(iemocap_build):
    config, summary, _ = iemocap_build
    expected, _ = splits.random5_folds(26)
    assert sorted(summary["folds"]) == [name for name, _ in expected]
    assert summary["skipped"] is False
    for name, rows in expected:
        fold = ra.load_fold(os.path.join(config.output_dir, name))
        for split_name in ra.SPLITS:
            assert len(fold.splits[split_name]) == len(rows[split_name])
        assert fold.manifest["sizes"] == {k: len(v) for k, v in rows.items()}
        assert fold.embedding.shape == (len(fold.vocabulary), 4)
        with open(os.path.join(config.output_dir, name,
                               name + ".txt")) as f:
            lines = f.read().splitlines()
        assert [list(map(int, line.split())) for line in lines] == [
            rows[s].tolist() for s in ra.SPLITS]


def test_arrays_equal_direct_computation(iemocap_build):
    config, _, truth = iemocap_build
    fold = ra.load_fold(os.path.join(config.output_dir, "audio_woZ_set01"))
    ids = fold.manifest["split_ids"]["train"]
    train = fold.splits["train"]
    for row in (0, len(ids) - 1):
        utterance = ids[row]
        dialog = utterance.rsplit("_", 1)[0]
        wav = os.path.join(config.corpus_dir, f"Session{int(utterance[3:5])}",
                           "sentences", "wav", dialog, utterance + ".wav")
        mfcc, prosody = extraction.extract_features(audio_io.load_wav(wav))
        assert train.seq_len[row] == len(mfcc)
        np.testing.assert_allclose(train.mfcc[row, :len(mfcc)], mfcc)
        np.testing.assert_array_equal(train.mfcc[row, len(mfcc):], 0.0)
        np.testing.assert_allclose(train.prosody[row], prosody)
        raw, text = truth[utterance]
        assert train.label[row] == {"ang": 0, "hap": 1, "exc": 1, "sad": 2,
                                    "neu": 3}[raw]
        tokens = text_features.tokenize(text)
        inverse = {i: t for t, i in fold.vocabulary.items()}
        decoded = [inverse[i] for i in train.text_ids[row] if i != 0]
        assert decoded == tokens  # Train tokens are all in the vocabulary.


def test_vocabulary_train_only_sorted_and_glove_rows(iemocap_build):
    config, summary, truth = iemocap_build
    fold_dir = os.path.join(config.output_dir, "audio_woZ_set03")
    fold = ra.load_fold(fold_dir)
    train_ids = set(fold.manifest["split_ids"]["train"])
    train_tokens = {t for u in train_ids
                    for t in text_features.tokenize(truth[u][1])}
    words = sorted(w for w in fold.vocabulary if w not in ("_PAD_", "_UNK_"))
    assert set(words) == train_tokens
    assert [fold.vocabulary[w] for w in words] == list(range(2, len(words)
                                                             + 2))
    np.testing.assert_array_equal(fold.embedding[0], 0.0)
    np.testing.assert_array_equal(fold.embedding[fold.vocabulary["well"]],
                                  1.0)
    report = fold.manifest["embedding"]
    assert report["found"] == 2 and report["source"] == config.glove
    assert fold.manifest["text"]["vocabulary_size"] == len(fold.vocabulary)
    # Test-only tokens map to _UNK_ (1) and are counted.
    unknown = fold.manifest["text"]["unknown_tokens"]
    assert unknown["train"] == 0
    assert unknown["test"] == int(np.sum(fold.splits["test"].text_ids == 1))


def test_dic_pkl_is_python2_protocol0(iemocap_build):
    config, _, _ = iemocap_build
    path = os.path.join(config.output_dir, "audio_woZ_set01", ra.VOCAB_NAME)
    with open(path, "rb") as f:
        data = f.read()
    assert not data.startswith(b"\x80")  # No PROTO opcode: protocol 0.
    assert max(op.proto for op, _, _ in pickletools.genops(data)) == 0
    assert pickle.loads(data, encoding="latin-1") == ra.load_vocabulary(path)


def test_manifests_record_policy_counts_and_hash(iemocap_build):
    config, summary, _ = iemocap_build
    with open(os.path.join(config.output_dir, ra.MANIFEST_NAME)) as f:
        top = json.load(f)
    assert top["build_hash"] == summary["build_hash"]
    assert top["split"]["seeds"] == {"fold": 337, "dev": 3372}
    assert top["corpus"]["class_counts"] == {"angry": 6, "happy": 10,
                                             "sad": 5, "neutral": 5}
    assert top["corpus"]["dropped_labels"] == {"fru": 2, "sur": 2, "xxx": 2}
    assert top["features"]["mfcc"]["n_mels"] == 26
    fold = ra.load_manifest(os.path.join(config.output_dir,
                                         "audio_woZ_set02"))
    assert fold["label_names"] == list(constants.LABEL_NAMES)
    assert fold["build_hash"] == top["build_hash"]
    totals = {name: sum(fold["counts"][s][name] for s in ra.SPLITS)
              for name in constants.LABEL_NAMES}
    assert totals == top["corpus"]["class_counts"]
    assert top["folds"]["audio_woZ_set02"]["counts"] == fold["counts"]


def test_rerun_skips_and_changes_rebuild(iemocap_build, tmp_path):
    config, summary, _ = iemocap_build
    marker = os.path.join(config.output_dir, "audio_woZ_set01",
                          "train_label.npy")
    before = os.stat(marker).st_mtime_ns
    again = build_arrays.build(config, log=_quiet)
    assert again["skipped"] is True
    assert again["build_hash"] == summary["build_hash"]
    assert os.stat(marker).st_mtime_ns == before
    changed = build_arrays.BuildConfig(**{**config.__dict__,
                                          "embedding_seed": 1})
    assert (build_arrays.build_hash(changed, build_arrays.read_corpus(
        changed)) != summary["build_hash"])


def test_manifest_corpus_speaker_split_all_vocab_and_bad_rows(tmp_path):
    root = str(tmp_path)
    manifest = make_manifest_corpus(root, num=24, num_speakers=6)
    # One long clip (> 750 frames) and one bad row.
    write_tone(os.path.join(root, "wav", "long.wav"), 140.0, seconds=7.7)
    with open(manifest, "a") as f:
        f.write("wav/long.wav\tokay okay\tsad\tspk5\tsess2\n")
        f.write("wav/absent.wav\thello\tsad\tspk5\tsess2\n")
    config = build_arrays.BuildConfig(
        corpus="manifest", manifest=manifest, output_dir=root + "/out",
        split="speaker", num_folds=3, dev_speakers=1, split_seed=4,
        vocabulary="all", embedding_dim=8, num_workers=1, progress=False)
    messages = []
    summary = build_arrays.build(config, log=messages.append)
    assert any("absent.wav" in m and "metadata.tsv:27" in m
               for m in messages)
    assert summary["corpus"]["num_skipped_rows"] == 1
    assert "metadata.tsv:27: missing wav file" in summary["skipped_rows"][0]
    vocabularies = []
    for name in ("speaker_fold01", "speaker_fold02", "speaker_fold03"):
        fold = ra.load_fold(os.path.join(config.output_dir, name))
        assert fold.embedding.shape[1] == 8
        assert "no GloVe file" in fold.manifest["embedding"]["message"]
        vocabularies.append(fold.vocabulary)
        lengths = np.concatenate([s.seq_len for s in fold.splits.values()])
        assert lengths.max() == audio_io.num_frames(int(7.7 * 16000)) > 750
        assert sum(len(ids) for ids in
                   fold.manifest["split_ids"].values()) == 25
    assert vocabularies[0] == vocabularies[1] == vocabularies[2]


def test_loso_via_cli_and_stale_folds_removed(tmp_path, capsys):
    root = str(tmp_path)
    manifest = make_manifest_corpus(root, num=24, num_speakers=6,
                                    num_sessions=3)
    output = os.path.join(root, "out")
    # A first build with another policy leaves folders the CLI must remove.
    build_arrays.build(build_arrays.BuildConfig(
        corpus="manifest", manifest=manifest, output_dir=output,
        split="speaker", num_folds=2, embedding_dim=4, num_workers=1,
        progress=False), log=_quiet)
    assert os.path.isdir(os.path.join(output, "speaker_fold01"))
    env = dict(os.environ, PYTHONPATH=REPO)
    command = [sys.executable, "-m", "preprocessing.build_arrays",
               "--corpus=manifest", f"--manifest={manifest}",
               f"--output_dir={output}", "--split=loso",
               "--loso_dev=next_session", "--embedding_dim=4",
               "--num_workers=2", "--label_map=angry:0,happy:1,sad:2,"
               "neutral:3"]
    result = subprocess.run(command, capture_output=True, text=True,
                            env=env, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(output)) == ["loso_sess1", "loso_sess2",
                                          "loso_sess3", "manifest.json"]
    fold = ra.load_fold(os.path.join(output, "loso_sess2"))
    assert fold.manifest["split"]["policy"] == "loso"
    assert fold.manifest["split"]["dev"] == "next_session"
    sizes = json.loads(result.stdout.strip().splitlines()[-1])
    assert sizes["loso_sess2"] == fold.manifest["sizes"]
    # The same flags again, in-process (apps/build_arrays.py): up to date.
    with flags_once.binary_flags(build_arrays_app):
        flags_once.command(build_arrays_app, *command[3:])
    captured = capsys.readouterr()
    assert captured.out == "" and "up to date" in captured.err


def test_released_python2_vocabulary_file(tmp_path):
    root = str(tmp_path)
    manifest = make_manifest_corpus(root, num=24, num_speakers=4)
    dic = tmp_path / "released_dic.pkl"
    # What Python 2's pickle.dump(dict, text-mode file) wrote: protocol 0
    # with byte-string (STRING) keys.
    dic.write_bytes(b"(dp0\nS'_PAD_'\np1\nI0\nsS'_UNK_'\np2\nI1\n"
                    b"sS'well'\np3\nI2\nsS'okay'\np4\nI3\ns.")
    config = build_arrays.BuildConfig(
        corpus="manifest", manifest=manifest, output_dir=root + "/out",
        split="speaker", num_folds=2, vocabulary_file=str(dic),
        embedding_dim=4, num_workers=1, progress=False)
    build_arrays.build(config, log=_quiet)
    fold = ra.load_fold(os.path.join(config.output_dir, "speaker_fold01"))
    assert fold.vocabulary == {"_PAD_": 0, "_UNK_": 1, "well": 2, "okay": 3}
    ids = np.concatenate([s.text_ids for s in fold.splits.values()])
    assert set(np.unique(ids)) <= {0, 1, 2, 3}


def test_bad_settings_and_empty_splits(tmp_path):
    root = str(tmp_path)
    manifest = make_manifest_corpus(root, num=6, num_speakers=2)
    with pytest.raises(ValueError, match="corpus_dir"):
        build_arrays.build(build_arrays.BuildConfig(
            corpus="iemocap", output_dir=root + "/o"), log=_quiet)
    with pytest.raises(ValueError, match="split='kfold'"):
        build_arrays.build(build_arrays.BuildConfig(
            corpus="manifest", manifest=manifest, output_dir=root + "/o",
            split="kfold"), log=_quiet)
    with pytest.raises(ra.DataError, match="split is empty"):
        build_arrays.build(build_arrays.BuildConfig(
            corpus="manifest", manifest=manifest, output_dir=root + "/o",
            split="random5", num_workers=1, progress=False), log=_quiet)
    bad_manifest = tmp_path / "bad.tsv"
    bad_manifest.write_text("wav\ttranscript\tlabel\tspeaker\n"
                            "wav/utt000.wav\thi\tbored\ts\n")
    with pytest.raises(ra.DataError, match="bad.tsv:2: unknown label"):
        build_arrays.build(build_arrays.BuildConfig(
            corpus="manifest", manifest=str(bad_manifest),
            output_dir=root + "/o", on_bad_row="raise"), log=_quiet)


def test_opensmile_feature_backend(tmp_path):
    pytest.importorskip("opensmile")
    root = str(tmp_path)
    manifest = make_manifest_corpus(root, num=8, num_speakers=4)
    config = build_arrays.BuildConfig(
        corpus="manifest", manifest=manifest, output_dir=root + "/out",
        split="speaker", num_folds=2, features="opensmile", embedding_dim=4,
        num_workers=1, progress=False)
    summary = build_arrays.build(config, log=_quiet)
    assert summary["features"]["backend"] == "opensmile"
    fold = ra.load_fold(os.path.join(config.output_dir, "speaker_fold01"))
    utterance = fold.manifest["split_ids"]["test"][0]
    waveform = audio_io.load_wav(os.path.join(root, "wav", utterance + ".wav"))
    np.testing.assert_allclose(fold.splits["test"].prosody[0],
                               opensmile_features.opensmile_prosody_functionals(waveform),
                               rtol=1e-5)
    mfcc = opensmile_features.opensmile_mfcc_e_d_a(waveform)
    np.testing.assert_allclose(fold.splits["test"].mfcc[0, :len(mfcc)],
                               mfcc, rtol=1e-5)


# Slow: two training runs on built folds; test_asr trains on a built fold by default, and the fold format is pinned by the fast tests here.
@pytest.mark.slow
def test_train_py_trains_on_built_folds_unchanged(iemocap_build, tmp_path):
    """Both corpus kinds → fold folders that train.py uses as they are."""
    from tasks import train_run

    root = str(tmp_path)
    manifest = make_manifest_corpus(root, num=24, num_speakers=6)
    config = build_arrays.BuildConfig(
        corpus="manifest", manifest=manifest, output_dir=root + "/out",
        split="speaker", num_folds=3, embedding_dim=8, num_workers=1,
        progress=False)
    build_arrays.build(config, log=_quiet)
    iemocap_config = iemocap_build[0]
    result_file = str(tmp_path / "TEST_run_result.txt")
    for model, fold_dir in (
            ("MDREA", os.path.join(iemocap_config.output_dir,
                                   "audio_woZ_set01")),
            ("MDRE", os.path.join(config.output_dir, "speaker_fold01"))):
        train_run.run(model, fold_dir, run_dir=str(tmp_path / model),
                      result_file=result_file, batch_size=8,
                      num_train_steps=3, hidden_dim_audio=4,
                      hidden_dim_text=4, export=False, log=_quiet)
    with open(result_file) as f:
        lines = f.read().splitlines()
    assert [line.split("\t")[1] for line in lines] == [
        "audio_woZ_set01", "speaker_fold01"]
