"""Hostile files, corrupt state and bad numbers: refused clearly, with
nothing run and nothing lost (README "What the toolkit refuses, and why").

One test per case of issue 16, in-process; the one-line error of a binary
(train.py, build_arrays) as a user sees it through the binary's error path
(`apps.cli.guard`, as its `run()` wraps `main`), and a static check that
every binary goes through `apps.cli`. (A binary's error line from a real
subprocess: tests/apps/test_train.py.)
"""

import glob
import hashlib
import os
import pickle
import shutil

import numpy as np
import pytest
import soundfile

from tasks import train_run
from apps import build_arrays as build_arrays_app
from apps import cli
from apps import train as train_app
from tasks import model_options
from preprocessing import audio_features
from preprocessing import build_arrays
from preprocessing import extraction
from preprocessing import manifest_corpus
from preprocessing import reference_arrays
from tasks import run_dir as run_files
from tests import helpers
from tests.apps import flags_once
from tests.corpus_fixtures import make_manifest_corpus

DataError = reference_arrays.DataError
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Where each binary's entry point is: `run()` of the apps modules (the
# top-level train.py, evaluate.py, ... and `python -m
# preprocessing.build_arrays` only call it).
SHIMS = ("train", "evaluate", "explain", "export", "predict", "protocol",
         "search")
BINARIES = {f"apps/{name}.py": "def run(" for name in SHIMS + (
    "build_arrays",)}
# A tiny ARE run: 12 training examples in batches of 4, so a validation
# and a checkpoint every int(12·0.3/4)+1 = 1 step.
TINY = dict(batch_size=4, hidden_dim_audio=4, encoder_size_audio=20,
            export=False, log=lambda _: None)


def _quiet(_):
    pass


def _lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return f.read().splitlines()


def _tree_digest(folder):
    digest = hashlib.sha256()
    for path in sorted(glob.glob(os.path.join(folder, "**"),
                                 recursive=True)):
        if os.path.isfile(path):
            digest.update(path.encode())
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def fold_dir(tmp_path_factory):
    return helpers.write_random_fold(tmp_path_factory.mktemp("data") /
                                     "f", sizes=(12, 4, 4))


@pytest.fixture(scope="module")
def finished(fold_dir, tmp_path_factory):
    """A finished 3-step ARE run (checkpoints ckpt-2 and ckpt-3)."""
    root = tmp_path_factory.mktemp("finished")
    result_file = str(root / "results.txt")
    run_dir, result, line = train_run.run(
        "ARE", fold_dir, run_dir=str(root / "run"), result_file=result_file,
        num_train_steps=3, **TINY)
    assert result.steps == 3 and _lines(result_file) == [line]
    return {"run_dir": run_dir, "result_file": result_file, "line": line}


def _copy_unfinished(finished, tmp_path):
    """A copy of the finished run as if it had been killed after its last
    checkpoint (before metrics.json and its result line)."""
    run_dir = str(tmp_path / "run")
    shutil.copytree(finished["run_dir"], run_dir)
    for name in ("metrics.json", run_files.FINISHED_NAME):
        os.remove(os.path.join(run_dir, name))
    return run_dir


# 1. A dic.pkl that runs code when unpickled.
class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _hostile_vocabulary(path, marker):
    vocabulary = {f"w{i}": i for i in range(30)}
    vocabulary["w3"] = _Payload(marker)
    with open(path, "wb") as f:
        pickle.dump(vocabulary, f, protocol=2)


def test_pickle_payload_in_a_fold_runs_nothing(fold_dir, tmp_path):
    hostile = str(tmp_path / "hostile")
    shutil.copytree(fold_dir, hostile)
    marker = str(tmp_path / "pwned")
    _hostile_vocabulary(os.path.join(hostile, "dic.pkl"), marker)
    result_file = str(tmp_path / "r.txt")
    with pytest.raises(DataError, match="dic.pkl: refused: the pickle asks "
                       "for posix.mkdir"):
        train_run.run("ARE", hostile, output_dir=str(tmp_path / "runs"),
                    result_file=result_file, num_train_steps=1, **TINY)
    assert not os.path.exists(marker)
    assert not os.path.exists(tmp_path / "runs") and not _lines(result_file)
    # build_arrays --vocabulary_file: refused before the corpus is read.
    vocabulary_file = str(tmp_path / "dic.pkl")
    _hostile_vocabulary(vocabulary_file, marker)
    config = build_arrays.BuildConfig(
        corpus="manifest", manifest=str(tmp_path / "not_read.tsv"),
        output_dir=str(tmp_path / "out"), vocabulary_file=vocabulary_file)
    with pytest.raises(DataError, match="refused"):
        build_arrays.build(config, log=_quiet)
    assert not os.path.exists(marker) and not os.path.exists(config.output_dir)


# 3. A run name that would leave --output_dir.
def test_graph_prefix_cannot_leave_output_dir(fold_dir, tmp_path):
    output_dir = tmp_path / "deep" / "runs"
    for prefix in ("../../x", "a/b", ".."):
        with pytest.raises(run_files.RunError, match="plain folder name"):
            train_run.run("ARE", fold_dir, output_dir=str(output_dir),
                        graph_prefix=prefix, num_train_steps=1,
                        result_file=str(tmp_path / "r.txt"), **TINY)
    assert os.listdir(tmp_path) == []


# 4. NaN and Inf in the arrays; features computed from audio.
def test_nan_in_prosody_is_one_line_from_train_py(fold_dir, tmp_path,
                                                  capsys):
    bad = str(tmp_path / "bad")
    shutil.copytree(fold_dir, bad)
    path = os.path.join(bad, "dev_audio_prosody.npy")
    prosody = np.load(path)
    prosody[2, 7] = np.nan
    np.save(path, prosody)
    result_file = str(tmp_path / "r.txt")
    with flags_once.binary_flags(train_app):
        line = flags_once.user_error_line(
            capsys, train_app, "train.py", (model_options.OptionError,),
            model="ARE", data_dir=bad, output_dir=str(tmp_path / "runs"),
            result_file=result_file, num_train_steps=1)
    for text in (path, "dev split, row 2", "found NaN"):
        assert text in line, line
    assert not os.path.exists(tmp_path / "runs") and not _lines(result_file)


def test_non_finite_audio_samples_are_refused(tmp_path):
    path = str(tmp_path / "nan.wav")
    samples = np.zeros(1600, np.float32)
    samples[700] = np.inf
    soundfile.write(path, samples, 16000, subtype="FLOAT")
    with pytest.raises(DataError, match="nan.wav: expected finite samples, "
                       "found NaN or Inf at sample 700"):
        audio_features.load_wav(path)


# 5. A 10-sample wav and a wav whose data chunk was cut short.
def _short_and_truncated(folder):
    os.makedirs(folder, exist_ok=True)
    short = os.path.join(folder, "short.wav")
    soundfile.write(short, np.full(10, 0.1, np.float32), 16000,
                    subtype="PCM_16")
    truncated = os.path.join(folder, "truncated.wav")
    soundfile.write(truncated, np.full(16000, 0.1, np.float32), 16000,
                    subtype="PCM_16")
    with open(truncated, "rb") as f:
        data = f.read()
    with open(truncated, "wb") as f:
        f.write(data[:44 + 2 * 500])  # 500 of the 16,000 samples
    return short, truncated


def test_short_and_truncated_wavs_are_refused(tmp_path):
    short, truncated = _short_and_truncated(str(tmp_path))
    with pytest.raises(DataError, match=r"short.wav: audio too short: 10 "
                       r"samples .* at least one 25 ms analysis window"):
        audio_features.load_wav(short)
    with pytest.raises(DataError, match="truncated.wav: truncated audio: its "
                       r"header declares 16000 samples .*, the file holds "
                       "500"):
        audio_features.load_wav(truncated)
    # Per --on_bad_row: the manifest reader reports (skip) or refuses.
    manifest = make_manifest_corpus(str(tmp_path), num=8, num_speakers=4)
    with open(manifest, "a") as f:
        f.write(f"{short}\twell okay\tsad\tspk0\tsess1\n"
                f"{truncated}\tyes\tsad\tspk1\tsess1\n")
    corpus = manifest_corpus.read_manifest(manifest)
    assert len(corpus.examples) == 8
    assert [p.split(": ")[1].split(":")[0] for p in corpus.problems] == [
        "audio too short", "truncated audio"]
    with pytest.raises(DataError, match=":10: audio too short"):
        manifest_corpus.read_manifest(manifest, on_bad_row="raise")
    # Feature extraction (a file that changed after the manifest was read)
    # returns the same errors for build_arrays to skip or raise.
    results = audio_features.extract_many([short, truncated], num_workers=1,
                                          progress=False, on_error="return")
    assert all(isinstance(r, DataError) for r in results)


# 6. Settings no run can use, refused before any output exists.
@pytest.mark.parametrize("setting,value", [
    ("num_train_steps", 0), ("batch_size", 0), ("dr_audio", 1.5),
    ("lr", float("nan")), ("patience", -1), ("num_layer_audio", 0)])
def test_bad_settings_refused_before_any_output(fold_dir, tmp_path, setting,
                                                value):
    result_file = str(tmp_path / "r.txt")
    arguments = dict(TINY, num_train_steps=1, output_dir=str(tmp_path / "o"),
                     result_file=result_file)
    arguments[setting] = value
    # Common settings are RunErrors; model options (here the Yoon name of
    # audio_keep_prob) OptionErrors. Both are user errors of train.py.
    with pytest.raises((run_files.RunError, model_options.OptionError),
                       match=rf"--{setting}[=:]"):
        train_run.run("ARE", fold_dir, **arguments)
    assert os.listdir(tmp_path) == []


# 7. Re-running a finished run.
def test_rerunning_a_finished_run_appends_nothing(finished):
    messages = []
    config = run_files.read_json(os.path.join(finished["run_dir"],
                                              "config.json"))
    run_dir, result, line = train_run.run(
        "ARE", config["data"]["data_dir"], run_dir=finished["run_dir"],
        result_file=finished["result_file"], num_train_steps=3,
        **dict(TINY, log=messages.append))
    assert result is None and line == finished["line"]
    assert any("already finished" in message for message in messages)
    assert _lines(finished["result_file"]) == [finished["line"]]


# 8. A truncated latest checkpoint.
def test_resume_falls_back_from_a_damaged_checkpoint(finished, tmp_path):
    run_dir = _copy_unfinished(finished, tmp_path)
    data = glob.glob(os.path.join(run_dir, "checkpoints",
                                  "ckpt-3.data-*"))[0]
    with open(data, "r+b") as f:
        f.truncate(os.path.getsize(data) // 2)
    messages = []
    result_file = str(tmp_path / "r.txt")
    config = run_files.read_json(os.path.join(run_dir, "config.json"))
    _, result, line = train_run.run(
        "ARE", config["data"]["data_dir"], run_dir=run_dir,
        result_file=result_file, num_train_steps=4,
        **dict(TINY, log=messages.append))
    warning = [m for m in messages if m.startswith("[Warning]")]
    assert warning == [f"[Warning] {data}: damaged checkpoint (IndexError: "
                       "Read less bytes than requested); trying the "
                       "previous one."]
    assert any("ckpt-2 at step 2" in m for m in messages)
    assert result.steps == 4 and _lines(result_file) == [line]


# 9. A garbled checkpoint state file.
def test_unreadable_checkpoint_state_is_refused_and_nothing_changes(
        finished, tmp_path):
    run_dir = _copy_unfinished(finished, tmp_path)
    with open(os.path.join(run_dir, "checkpoints", "checkpoint"), "w") as f:
        f.write('model_checkpoint_path: "ckpt-3\n}}} garbled')
    before = _tree_digest(run_dir)
    result_file = str(tmp_path / "r.txt")
    config = run_files.read_json(os.path.join(run_dir, "config.json"))
    with pytest.raises(run_files.RunError, match="checkpoints/checkpoint: "
                       "the checkpoint state cannot be read"):
        train_run.run("ARE", config["data"]["data_dir"], run_dir=run_dir,
                    result_file=result_file, num_train_steps=6, **TINY)
    assert _tree_digest(run_dir) == before and not _lines(result_file)
    # Checkpoints without a state file are not taken for a fresh run.
    os.remove(os.path.join(run_dir, "checkpoints", "checkpoint"))
    with pytest.raises(run_files.RunError, match="missing, but"):
        train_run.run("ARE", config["data"]["data_dir"], run_dir=run_dir,
                    result_file=result_file, num_train_steps=6, **TINY)


# 10. A result file on a full disk.
def test_full_disk_names_the_result_file(fold_dir, tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    run_dir = str(tmp_path / "run")
    with pytest.raises(OSError) as error:
        train_run.run("ARE", fold_dir, run_dir=run_dir, num_train_steps=1,
                    result_file="/dev/full", **TINY)
    assert error.value.filename == "/dev/full" and error.value.errno == 28
    assert cli.describe(error.value) == (
        "/dev/full: No space left on device")
    # The run keeps its result; a re-run only retries the line.
    assert os.path.exists(os.path.join(run_dir, run_files.FINISHED_NAME))
    with pytest.raises(OSError, match="No space left"):
        train_run.run("ARE", fold_dir, run_dir=run_dir, num_train_steps=1,
                    result_file=str(tmp_path / "r.txt"), **TINY)
    assert not os.path.exists(tmp_path / "r.txt")


# 11. A manifest that is not UTF-8.
def test_non_utf8_manifest_names_file_and_line(tmp_path, capsys):
    manifest = make_manifest_corpus(str(tmp_path), num=4, num_speakers=2)
    with open(manifest, "ab") as f:
        f.write(b"wav/utt000.wav\tcaf\xe9 au lait\tsad\tspk0\tsess1\n")
    with flags_once.binary_flags(build_arrays_app):
        line = flags_once.user_error_line(
            capsys, build_arrays_app, "build_arrays", (), corpus="manifest",
            manifest=manifest, output_dir=str(tmp_path / "out"),
            num_workers=1)
    assert line.startswith(f"build_arrays: {manifest}:6: not UTF-8 text "
                           "(byte 0xe9 at column 19)"), line
    assert not os.path.exists(tmp_path / "out")


# 12. --split=speaker with fewer speakers than --num_folds.
def test_split_parameters_checked_before_feature_extraction(tmp_path,
                                                            monkeypatch):
    manifest = make_manifest_corpus(str(tmp_path), num=8, num_speakers=3)

    def no_extraction(*args, **kwargs):
        raise AssertionError("features were extracted")

    monkeypatch.setattr(extraction, "extract_many", no_extraction)
    config = build_arrays.BuildConfig(
        corpus="manifest", manifest=manifest, output_dir=str(tmp_path / "o"),
        split="speaker", num_folds=5, num_workers=1, progress=False)
    with pytest.raises(DataError, match=r"metadata.tsv: --split=speaker: "
                       r"speaker folds: need 2 <= num_folds <= number of "
                       r"speakers, found num_folds=5 and 3 speakers"):
        build_arrays.build(config, log=_quiet)
    assert not os.path.exists(config.output_dir)


# 13. One error path in every binary.
def test_every_binary_uses_the_one_error_path():
    for binary, entry in BINARIES.items():
        with open(os.path.join(ROOT, binary)) as f:
            source = f.read()
        main_block = source[source.index(entry):]
        assert "cli.run(main, " in main_block, binary
        assert "app.run(" not in main_block, binary
    for name in SHIMS:
        with open(os.path.join(ROOT, f"{name}.py")) as f:
            assert f"    {name}.run()" in f.read(), name
    with open(os.path.join(ROOT, "preprocessing", "build_arrays.py")) as f:
        assert "    build_arrays_app.run()" in f.read()


@pytest.mark.parametrize("error", [
    DataError("/data/f/dev_label.npy: expected labels in 0..3, found 9."),
    run_files.RunError("--batch_size=0: expected an integer >= 1."),
    cli.app.UsageError("--text goes with --wav."),
    FileNotFoundError(2, "No such file or directory", "/x/config.json"),
    OSError(28, "No space left on device", "/dev/full")])
def test_user_errors_are_one_line_and_exit_1(error, capsys):
    def main(argv):
        raise error

    with pytest.raises(SystemExit) as done:
        cli.guard(main, "evaluate.py", (run_files.RunError,))(["evaluate.py"])
    assert done.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("evaluate.py: ")
    assert cli.describe(error) in err


def test_bugs_keep_their_traceback():
    def main(argv):
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        cli.guard(main, "train.py", (run_files.RunError,))(["train.py"])


# Property: any corruption of a valid fold folder either trains or is
# refused with a DataError, and a refused run leaves no result line.
def _corrupt(fold, kind, rng, marker):
    """Applies one corruption of `kind` to the fold folder; describes it."""
    arrays = sorted(name for name in os.listdir(fold)
                    if name.endswith(".npy"))
    name = arrays[rng.integers(len(arrays))]
    path = os.path.join(fold, name)
    if kind == "flip":
        with open(path, "r+b") as f:
            data = bytearray(f.read())
            for _ in range(int(rng.integers(1, 4))):
                data[rng.integers(len(data))] = int(rng.integers(256))
            f.seek(0)
            f.write(data)
        return f"bytes flipped in {name}"
    if kind == "truncate":
        with open(path, "r+b") as f:
            f.truncate(int(rng.integers(os.path.getsize(path))))
        return f"{name} truncated"
    if kind == "non_finite":
        name = ["train_audio_mfcc.npy", "test_audio_prosody.npy",
                "W_embedding.npy"][rng.integers(3)]
        path = os.path.join(fold, name)
        array = np.load(path)
        array.flat[rng.integers(array.size)] = [np.nan, np.inf][
            rng.integers(2)]
        np.save(path, array)
        return f"NaN/Inf in {name}"
    if kind == "delete":
        os.remove(path)
        return f"{name} deleted"
    if kind == "pickle":
        _hostile_vocabulary(os.path.join(fold, "dic.pkl"), marker)
        return "dic.pkl runs code"
    if kind == "pickle_bytes":
        path = os.path.join(fold, "dic.pkl")
        with open(path, "r+b") as f:
            data = bytearray(f.read())
            data[rng.integers(len(data))] = int(rng.integers(32, 127))
            f.seek(0)
            f.write(data)
        return "a byte of dic.pkl changed"
    if kind == "manifest":
        with open(os.path.join(fold, "manifest.json"), "w") as f:
            f.write('{"label_names": ["a", "b"]' * int(rng.integers(1, 3)))
        return "manifest.json damaged or with 2 classes"
    raise AssertionError(kind)


def test_random_corruptions_train_or_are_refused(fold_dir, tmp_path):
    rng = np.random.default_rng(16)
    kinds = ["flip", "truncate", "non_finite", "delete", "pickle",
             "pickle_bytes", "manifest", "flip", "flip"]
    outcomes = []
    for case, kind in enumerate(kinds):
        fold = str(tmp_path / f"fold{case}")
        shutil.copytree(fold_dir, fold)
        marker = str(tmp_path / f"pwned{case}")
        what = _corrupt(fold, kind, rng, marker)
        result_file = str(tmp_path / f"results{case}.txt")
        try:
            _, _, line = train_run.run(
                "MDRE", fold, output_dir=str(tmp_path / f"runs{case}"),
                result_file=result_file, num_train_steps=1,
                hidden_dim_text=4, **TINY)
        except DataError:
            assert not _lines(result_file), what
            outcomes.append("refused")
        else:
            assert _lines(result_file) == [line], what
            outcomes.append("trained")
        assert not os.path.exists(marker), what
    assert set(outcomes) == {"refused", "trained"}, outcomes
