"""Small generated data for the tests (not collected as a test module)."""

import json
import os
import subprocess
import sys

import numpy as np

from models import registry
from preprocessing import reference_arrays

LABEL_NAMES = reference_arrays.LABEL_NAMES


def random_split(n, vocab_size=30, frames=750, max_frames=60, seed=0):
    """A valid `Split` of random arrays with realistic padding.

    Frame counts are drawn in [1, max_frames] (some above `frames` when
    max_frames > frames, to exercise clipping); MFCC rows are zero past them.
    """
    rng = np.random.default_rng(seed)
    seq_len = rng.integers(1, max_frames + 1, n)
    mfcc = np.zeros((n, frames, 39), np.float32)
    for row, length in enumerate(np.minimum(seq_len, frames)):
        mfcc[row, :length] = rng.standard_normal((length, 39))
    text_len = rng.integers(1, 20, n)
    text_ids = np.zeros((n, 128), np.int32)
    for row, length in enumerate(text_len):
        text_ids[row, :length] = rng.integers(2, vocab_size, length)
    return reference_arrays.Split(
        mfcc=mfcc, seq_len=seq_len.astype(np.int32),
        prosody=rng.standard_normal((n, 35)).astype(np.float32),
        text_ids=text_ids, label=rng.integers(0, 4, n).astype(np.int32))


def write_random_fold(path, sizes=(40, 12, 12), vocab_size=30,
                      embedding_dim=8, seed=0):
    """Writes a random fold folder; returns its path."""
    splits = {name: random_split(n, vocab_size, seed=seed + i)
              for i, (name, n) in enumerate(zip(("train", "dev", "test"),
                                                sizes))}
    vocabulary = {"_PAD_": 0, "_UNK_": 1}
    vocabulary.update({f"w{i}": i for i in range(2, vocab_size)})
    embedding = np.random.default_rng(seed).uniform(
        -0.25, 0.25, (vocab_size, embedding_dim)).astype(np.float32)
    reference_arrays.write_fold(str(path), splits, vocabulary, embedding,
                                {"label_names": list(LABEL_NAMES)})
    return str(path)


def tiny_model_kwargs(vocab_size=30, model=None):
    """Small, fast model arguments for every Yoon model (with `model`: only
    the ones that model takes, as `registry.build_model` wants them)."""
    kwargs = dict(vocab_size=vocab_size, embedding_dim=8, audio_units=6,
                  text_units=5, audio_keep_prob=1.0, text_keep_prob=1.0,
                  seed=3)
    if model is None:
        return kwargs
    return registry.model_arguments(model, **kwargs)


def padded_batch(audio_lengths, text_lengths, frames=None, names=None,
                 seed=0):
    """A batch of model features with the given true lengths.

    MFCC frames past each audio length and ids past each text length are 0,
    as the pipeline delivers them. `frames` defaults to the longest audio
    length; `names` keeps only those features (e.g. a model's input names).
    """
    rng = np.random.default_rng(seed)
    n = len(audio_lengths)
    frames = frames or max(max(audio_lengths), 1)
    mfcc = np.zeros((n, frames, 39), np.float32)
    ids = np.zeros((n, 128), np.int32)
    for i, (audio, text) in enumerate(zip(audio_lengths, text_lengths)):
        mfcc[i, :audio] = rng.standard_normal((audio, 39))
        ids[i, :text] = rng.integers(2, 30, text)
    features = {"audio_mfcc": mfcc,
                "audio_length": np.array(audio_lengths, np.int32),
                "audio_prosody": rng.standard_normal((n, 35)).astype(
                    np.float32),
                "text_ids": ids,
                "text_length": np.array(text_lengths, np.int32)}
    if names is not None:
        features = {name: features[name] for name in names}
    return features


def tiny_demo_run(root, model="MDREA", num_utterances=24):
    """A small demo corpus and a tiny trained run in `root`, for the
    prediction/explanation tests.

    Returns:
        dict with root, fold_dir, run_dir and rows (metadata.tsv rows with
        absolute `wav_path`).
    """
    import csv
    import os

    from tasks import train_run
    from preprocessing import demo_corpus

    corpus_dir = os.path.join(str(root), "demo")
    fold_dir = demo_corpus.generate(corpus_dir, num_utterances=num_utterances,
                                    num_workers=1, log=lambda _: None)
    run_dir = os.path.join(str(root), "run")
    train_run.run(model=model, data_dir=fold_dir, **for_model(
        model, run_dir=run_dir, num_train_steps=6, batch_size=16,
        hidden_dim_audio=4, hidden_dim_text=4, encoder_size_audio=100,
        export=False, log=lambda _: None,
        result_file=os.path.join(str(root), "results.txt")))
    with open(os.path.join(corpus_dir, "metadata.tsv")) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for row in rows:
        row["wav_path"] = os.path.join(corpus_dir, row["wav_path"])
    return {"root": root, "fold_dir": fold_dir, "run_dir": run_dir,
            "rows": rows}


def copy_demo_run(source, root):
    """A private copy of a `tiny_demo_run` (and its export, if any) in
    `root`, so that tests which rename, hide or write into the run, the
    fold or the export cannot see each other's changes.

    Absolute paths of `source["root"]` in the copied text files (the run's
    config.json, the fold's manifest, result lines) are rewritten to `root`,
    so nothing in the copy points back at the source. Exports hold no
    paths and are copied byte for byte.

    Returns:
        the same dict as `tiny_demo_run`, for the copy (plus `export_dir`
        when the source has one).
    """
    import os
    import shutil

    old, new = os.path.abspath(str(source["root"])), os.path.abspath(
        str(root))
    os.makedirs(new, exist_ok=True)
    for name in os.listdir(old):
        source_path, target = os.path.join(old, name), os.path.join(new, name)
        if os.path.isdir(source_path):
            shutil.copytree(source_path, target)
        else:
            shutil.copy2(source_path, target)
    export_dir = source.get("export_dir")
    exports = [] if export_dir is None else [
        os.path.join(new, os.path.relpath(export_dir, old))]
    for folder, _, files in os.walk(new):
        if any(folder == e or folder.startswith(e + os.sep)
               for e in exports):
            continue
        for name in files:
            if not name.endswith((".json", ".tsv", ".txt")) and (
                    name != "checkpoint"):
                continue
            path = os.path.join(folder, name)
            with open(path, encoding="utf-8") as f:
                text = f.read()
            if old in text:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text.replace(old, new))
    copied = {key: (os.path.join(new, os.path.relpath(value, old))
                    if key in ("fold_dir", "run_dir", "export_dir")
                    else value) for key, value in source.items()}
    copied["root"] = root
    copied["rows"] = [dict(row, wav_path=os.path.join(
        new, os.path.relpath(row["wav_path"], old))) for row in
        source["rows"]]
    return copied


def assert_padded_batch_equals_alone(model, batch, audio_lengths, atol=1e-5):
    """Each example alone (audio cropped to its own length, at least one
    frame) gives the same output as inside the padded batch."""
    together = model(batch, training=False).numpy()
    for i, length in enumerate(audio_lengths):
        alone = {key: value[i:i + 1] for key, value in batch.items()}
        if "audio_mfcc" in alone:
            alone["audio_mfcc"] = alone["audio_mfcc"][:, :max(length, 1)]
        np.testing.assert_allclose(model(alone, training=False).numpy()[0],
                                   together[i], atol=atol)


def count_trainable(model):
    """Trainable scalars of a Keras model."""
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def assert_config_round_trip(model):
    """from_config(get_config()) and Keras (de)serialisation rebuild the
    same config and parameter count; returns the config."""
    import keras

    config = model.get_config()
    clone = model.__class__.from_config(config)
    assert clone.get_config() == config
    assert count_trainable(clone) == count_trainable(model)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(model))
    assert restored.get_config() == config
    return config


def separable_split(n, seed, frames=750):
    """A split whose class shifts every MFCC mean and 10 prosody values (n
    may be below the 113 functionals of the baseline: the signal is
    broad). Labels cycle 0..3."""
    split = random_split(n, frames=frames, max_frames=70, seed=seed)
    label = np.arange(n, dtype=np.int32) % 4
    lengths = np.minimum(split.seq_len, frames)
    for row in range(n):
        split.mfcc[row, :lengths[row]] += 1.5 * label[row]
    split.prosody[:, :10] += 1.5 * label[:, None]
    split.label = label
    return split


def write_separable_fold(path, sizes=(48, 16, 20), seed=0):
    """Writes a fold of `separable_split`s; returns its path."""
    splits = {name: separable_split(n, seed + i)
              for i, (name, n) in enumerate(zip(reference_arrays.SPLITS,
                                                sizes))}
    vocabulary = {"_PAD_": 0, "_UNK_": 1}
    vocabulary.update({f"w{i}": i for i in range(2, 30)})
    embedding = np.zeros((30, 4), np.float32)
    reference_arrays.write_fold(str(path), splits, vocabulary, embedding,
                                {"label_names": list(LABEL_NAMES)})
    return str(path)


def write_fold_build(root, names, sizes=(32, 12, 12)):
    """A build folder of separable folds `names` with its build summary
    (`manifest.json`), as build_arrays writes one; returns its path."""
    root = str(root)
    for seed, name in enumerate(names):
        write_separable_fold(os.path.join(root, name), sizes=sizes,
                             seed=10 * seed)
    with open(os.path.join(root, "manifest.json"), "w") as f:
        json.dump({"folds": {name: {} for name in names}}, f)
    return root


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_train_script(flags, result_file):
    """Runs `python train.py FLAGS` as a user does; asserts it succeeded
    and printed its result; returns the fields of the result file's first
    line."""
    done = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"),
                           *flags], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[Result]" in done.stdout
    with open(result_file) as f:
        return f.read().splitlines()[0].split("\t")


def for_model(model, **values):
    """The `train_run.run` arguments of `values` that `model` takes.

    Tests share one table of tiny sizes across models; `train_run.run`
    itself refuses an option the model does not take, so the table is cut
    to the model here, explicitly.
    """
    from tasks import train_run

    accepted = set(train_run.accepted_names(model)) | {"log"}
    return {name: value for name, value in values.items()
            if name in accepted}


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_png(path):
    """`path` is a real PNG image of some size (a plot, not an empty file)."""
    import os

    with open(path, "rb") as f:
        header = f.read(8)
    assert header == PNG_SIGNATURE, path
    assert os.path.getsize(path) > 5000, path
