"""The recipe for real corpora, part by part, on tiny data (recipes.py)."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import app
from absl import flags

from apps import common_flags
from models import optimizers
from models import registry
from models import small_corpus
from models import training
from preprocessing import augment
from preprocessing import input_pipeline
from preprocessing import speaker_norm
from tasks import folds
from tasks import recipes
from tasks import search
from tests import helpers


# --- SpecAugment masks and waveform perturbation ---------------------------

def test_spec_masks_mask_real_frames_with_the_utterance_mean():
    split = helpers.random_split(6, frames=80, max_frames=80, seed=1)
    lengths = np.minimum(split.seq_len, 80)
    frames = tf.constant(split.mfcc)
    options = augment.Augmentation(freq_masks=2, freq_width=8, time_masks=2,
                                   time_width=15, time_ratio=0.5)
    masked = augment.spec_masks(frames, lengths, tf.constant([3, 4],
                                                            tf.int64),
                                options).numpy()
    changed = masked != split.mfcc
    assert changed.any()
    for row, length in enumerate(lengths):
        # Padding untouched; masked cells hold the mean over real frames.
        assert not changed[row, length:].any()
        mean = split.mfcc[row, :length].mean(axis=0)
        rows, columns = np.nonzero(changed[row])
        np.testing.assert_allclose(masked[row, rows, columns],
                                   mean[columns], rtol=1e-5, atol=1e-6)
    # Frequency bands of at most 2 × 8 features per utterance.
    assert (changed.all(axis=1).sum(axis=1) <= 16).all()


def test_augmentation_only_in_training_modes_and_seeded_by_step():
    split = helpers.random_split(12, frames=60, max_frames=60, seed=2)
    options = augment.Augmentation(freq_masks=2, freq_width=8, time_masks=1,
                                   time_width=10)

    def first(mode, augmentation, start_step=0):
        dataset = input_pipeline.make_dataset(
            split, 4, mode=mode, seed=5, start_step=start_step,
            augmentation=augmentation)
        return [f["audio_mfcc"].numpy() for f, _ in dataset.take(3)]

    plain_eval, augmented_eval = first("eval", None), first("eval", options)
    for a, b in zip(plain_eval, augmented_eval):
        np.testing.assert_array_equal(a, b)
    plain, augmented = first("epochs", None), first("epochs", options)
    assert any((a != b).any() for a, b in zip(plain, augmented))
    # Resuming at step 1 replays the same augmented batches.
    resumed = first("epochs", options, start_step=1)
    np.testing.assert_array_equal(resumed[0], augmented[1])


def test_waveform_perturbation_changes_length_with_speed_and_zero_pads():
    rng = np.random.default_rng(0)
    waveform = np.zeros((3, 1600), np.float32)
    lengths = np.array([1600, 800, 1000], np.int32)
    for row, length in enumerate(lengths):
        waveform[row, :length] = rng.uniform(-0.5, 0.5, length)
    options = augment.Augmentation(gain_db=6.0, snr_db_min=10.0,
                                   snr_db_max=20.0, speed=0.2)
    out, new_lengths = augment.perturb_waveform(
        tf.constant(waveform), tf.constant(lengths),
        tf.constant([1, 2], tf.int64), options)
    out, new_lengths = out.numpy(), new_lengths.numpy()
    ratio = new_lengths / lengths
    assert ((ratio > 1 / 1.21) & (ratio < 1 / 0.79)).all()
    assert not np.array_equal(new_lengths, lengths)
    for row, length in enumerate(new_lengths):
        assert not out[row, length:].any()
        assert np.abs(out[row, :length]).max() <= 1.0


# --- per-speaker normalisation ---------------------------------------------

def test_speaker_norm_uses_each_speakers_own_statistics():
    split = helpers.random_split(9, frames=50, max_frames=50, seed=3)
    # Speaker "b" is louder and offset: per-speaker statistics remove it.
    split.mfcc[3:6] = (split.mfcc[3:6] * 5.0 + 7.0) * (
        np.arange(50)[None, :, None] < split.seq_len[3:6, None, None])
    speakers = ["a"] * 3 + ["b"] * 3 + [None] * 3
    fallback = speaker_norm.global_statistics(split.mfcc, split.seq_len,
                                              split.prosody)
    mfcc, prosody = speaker_norm.normalize(
        split.mfcc, split.seq_len, split.prosody, speakers, fallback)
    for rows in (slice(0, 3), slice(3, 6)):
        lengths = split.seq_len[rows]
        real = np.concatenate([mfcc[rows][i, :n]
                               for i, n in enumerate(lengths)])
        np.testing.assert_allclose(real.mean(axis=0), 0.0, atol=1e-4)
        np.testing.assert_allclose(real.std(axis=0), 1.0, atol=1e-3)
        np.testing.assert_allclose(prosody[rows].mean(axis=0), 0, atol=1e-5)
    # Padding stays 0; the unknown speakers get the fallback statistics.
    for i, n in enumerate(split.seq_len):
        assert not mfcc[i, n:].any()
    expected = (split.prosody[6:] - np.array(fallback["prosody_mean"])) / \
        np.array(fallback["prosody_std"])
    np.testing.assert_allclose(prosody[6:], expected, rtol=1e-4, atol=1e-5)
    # The same speaker gives the same result alone as in a mixed group
    # (train, eval and serving all call this function on their rows).
    alone_mfcc, alone_prosody = speaker_norm.normalize(
        split.mfcc[3:6], split.seq_len[3:6], split.prosody[3:6], ["b"] * 3)
    np.testing.assert_allclose(alone_mfcc, mfcc[3:6], atol=1e-5)
    np.testing.assert_allclose(alone_prosody, prosody[3:6], atol=1e-5)


def test_fold_speaker_norm_needs_split_speakers(tmp_path):
    from preprocessing import reference_arrays

    path = helpers.write_random_fold(tmp_path / "fold", sizes=(6, 4, 4))
    fold = reference_arrays.load_fold(path)
    with pytest.raises(reference_arrays.DataError, match="split_speakers"):
        folds.normalize_speakers(fold)
    fold.manifest["split_speakers"] = {
        "train": ["a", "a", "a", "b", "b", "b"], "dev": ["c"] * 4,
        "test": ["d", "d", None, None]}
    raw_test = fold.splits["test"].mfcc.copy()
    folds.normalize_speakers(fold)
    dev = fold.splits["dev"]
    real = np.concatenate([dev.mfcc[i, :n] for i, n in
                           enumerate(np.minimum(dev.seq_len, 750))])
    np.testing.assert_allclose(real.mean(axis=0), 0.0, atol=1e-4)
    assert not np.array_equal(fold.splits["test"].mfcc, raw_test)


# --- schedule, early stopping, weights -------------------------------------

def test_warmup_decay_values():
    schedule = optimizers.WarmupDecay(1.0, total_steps=10, warmup_steps=2,
                                      decay="cosine")
    values = [float(schedule(step)) for step in range(11)]
    np.testing.assert_allclose(values[:3], [0.5, 1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(values[6], 0.5, atol=1e-6)
    np.testing.assert_allclose(values[10], 0.0, atol=1e-6)
    linear = optimizers.WarmupDecay(2.0, total_steps=10, decay="linear")
    np.testing.assert_allclose(float(linear(5)), 1.0, atol=1e-6)
    # The reference config keeps a constant float rate and plain Adam.
    reference = training.TrainConfig()
    optimizer = training.make_optimizer(reference)
    assert type(optimizer) is keras.optimizers.Adam
    assert float(optimizer.learning_rate) == pytest.approx(0.001)
    decayed = training.make_optimizer(training.TrainConfig(
        weight_decay=0.01, warmup_steps=3, lr_decay="linear"))
    assert isinstance(decayed, keras.optimizers.AdamW)
    assert decayed.weight_decay == pytest.approx(0.01)


def test_class_weights_balance_the_classes():
    weights = recipes.class_weights([0, 0, 0, 0, 1, 1, 2, 3], 4)
    assert weights == pytest.approx((0.5, 1.0, 2.0, 2.0))
    # Every class then contributes the same total weight.
    assert recipes.class_weights([0, 0, 1], 3) == pytest.approx(
        (0.75, 1.5, 0.0))


def test_recipe_options_and_epoch_schedule():
    assert recipes.resolve() == recipes.REFERENCE
    reference = recipes.train_config(recipes.resolve(), 230)
    assert reference == training.TrainConfig()
    options = recipes.resolve("real", class_balance=False, patience=3)
    config = recipes.train_config(options, 230, labels=[0, 1], num_classes=4)
    epoch = 230 // 32
    assert config.validation_every == epoch
    assert config.num_train_steps == options["max_epochs"] * epoch
    assert config.min_steps == options["min_epochs"] * epoch
    assert config.warmup_steps == options["warmup_epochs"] * epoch
    assert config.patience == 3 and config.class_weights is None
    with pytest.raises(ValueError, match="Unknown recipe"):
        recipes.resolve("fast")


def _constant_trainer(tmp_path, **config):
    """A tiny model trained at learning rate 0: its dev loss never
    improves after the first validation."""
    split = helpers.random_split(16, frames=10, max_frames=10, seed=4)

    def build():
        inputs = keras.Input((35,), name="audio_prosody")
        return keras.Model(inputs, keras.layers.Dense(4, name="logits")(
            inputs))

    trainer = training.Trainer(
        build, tf.distribute.get_strategy(), str(tmp_path),
        training.TrainConfig(batch_size=4, learning_rate=0.0, **config), 4,
        log=lambda _: None)

    def make_train(context, start_step):
        return input_pipeline.make_dataset(split, 4, mode="epochs",
                                           start_step=start_step)

    evaluation = input_pipeline.make_dataset(split, 8)
    return trainer.fit(make_train, evaluation, evaluation, num_train=16)


def test_patience_in_epochs_stops_where_it_should(tmp_path):
    # One validation per epoch of 4 steps; improvement only at epoch 1;
    # patience 2: stop at the 3rd non-improving validation = epoch 4.
    result = _constant_trainer(tmp_path / "a", validation_every=4,
                               patience=2, num_train_steps=400)
    assert (result.steps, result.best_step) == (16, 4)
    assert result.stopped_early
    # A minimum of 7 epochs (28 steps) delays the stop to epoch 7.
    result = _constant_trainer(tmp_path / "b", validation_every=4,
                               patience=2, num_train_steps=400, min_steps=28)
    assert result.steps == 28 and result.stopped_early


# --- the small-corpus model -------------------------------------------------

def test_are_pool_padded_batch_equals_alone_and_round_trips():
    for stride, pooling, layers in ((1, "mean_max", 1), (3, "attention", 1),
                                    (2, "mean_std", 0)):
        model = registry.build_model("ARE_POOL", audio_units=5,
                                     audio_layers=layers, hidden_units=4,
                                     frame_stride=stride, pooling=pooling,
                                     seed=1)
        lengths = [13, 7, 1]
        batch = helpers.padded_batch(lengths, [1, 1, 1], frames=20,
                                     names=[t.name for t in model.inputs])
        helpers.assert_padded_batch_equals_alone(model, batch, lengths)
        helpers.assert_config_round_trip(model)


def test_are_pool_vector_norm_and_no_gru_settings():
    from tasks import model_options

    # Without a GRU ARE_POOL is an MLP over the pooled frames: 0 layers is
    # a valid option for it (and only for it).
    assert model_options.check("ARE_POOL", {"audio_layers": 0}) == {
        "audio_layers": 0}
    with pytest.raises(model_options.OptionError, match=">= 1"):
        model_options.check("ARE", {"audio_layers": 0})
    model = registry.build_model("ARE_POOL", audio_layers=0,
                                 pooling="mean_std", hidden_units=4,
                                 vector_norm=True, seed=1)
    # 2·39 pooled + 35 prosody, normalised: gamma, beta and 2 moving stats.
    assert model.get_layer("vector_norm").count_params() == 4 * (78 + 35)
    lengths = [13, 7, 1]
    batch = helpers.padded_batch(lengths, [1, 1, 1], frames=20,
                                 names=[t.name for t in model.inputs])
    helpers.assert_padded_batch_equals_alone(model, batch, lengths)
    helpers.assert_config_round_trip(model)


def test_frame_stride_averages_real_frames_only():
    frames = np.arange(2 * 5 * 1, dtype=np.float32).reshape(2, 5, 1)
    frames[1, 3:] = 99.0  # padding of a length-3 example
    out, lengths = small_corpus.FrameStride(2)(
        [tf.constant(frames), tf.constant([5, 3])])
    np.testing.assert_array_equal(lengths.numpy(), [3, 2])
    np.testing.assert_allclose(out.numpy()[:, :, 0],
                               [[0.5, 2.5, 4.0], [5.5, 7.0, 0.0]])


# --- configuration files ----------------------------------------------------

def test_config_file_is_read_back_and_command_line_wins(tmp_path):

    values = flags.FlagValues()
    flags.DEFINE_integer("batch_size", None, "", flag_values=values)
    flags.DEFINE_float("lr", None, "", flag_values=values)
    values(["prog", "--lr=0.5"])
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"flags": {"batch_size": 16, "lr": 0.1}}))
    applied, others = common_flags.apply_config_file(values, str(path))
    assert applied == {"batch_size": 16} and others == {}
    assert (values.batch_size, values.lr) == (16, 0.5)
    # Model options are handed back, not set; other names are errors.
    path.write_text(json.dumps({"frame_stride": 4}))
    assert common_flags.apply_config_file(
        values, str(path), {"frame_stride"}) == ({}, {"frame_stride": 4})
    path.write_text(json.dumps({"nonsense": 1}))
    with pytest.raises(app.UsageError, match="unknown flags"):
        common_flags.apply_config_file(values, str(path))
    assert os.path.exists(path)


# --- hyperparameter search --------------------------------------------------

def test_search_writes_a_config_train_reads_back(tmp_path):
    pytest.importorskip("optuna")
    from tasks import train_run

    fold = helpers.write_random_fold(tmp_path / "fold", sizes=(16, 8, 8))
    space = tmp_path / "space.json"
    space.write_text(json.dumps({
        "fixed": {"model": "ARE_POOL", "recipe": "real", "max_epochs": 1,
                  "batch_size": 8, "encoder_size_audio": 20,
                  "hidden_units": 4, "use_glove": False,
                  "speaker_norm": False},
        "params": {"hidden_dim_audio": {"type": "int", "low": 2, "high": 4,
                                        "step": 2},
                   "lr": {"type": "float", "low": 1e-3, "high": 1e-2,
                          "log": True}}}))
    output = tmp_path / "best.json"
    config = search.search(str(space), [fold], str(output),
                           str(tmp_path / "trials"), n_trials=1,
                           storage=f"sqlite:///{tmp_path / 'study.db'}",
                           log=lambda _: None)
    assert config["search"]["trials"] == 1
    assert 0.0 <= config["search"]["best_dev_ua"] <= 1.0
    # Resuming the study with the same trial count trains nothing more.
    again = search.search(str(space), [fold], str(output),
                          str(tmp_path / "trials"), n_trials=1,
                          storage=f"sqlite:///{tmp_path / 'study.db'}",
                          log=lambda _: None)
    assert again["flags"] == config["flags"]
    known = search.train_arguments()
    values = recipes.read_config_file(str(output), known)
    assert values["hidden_dim_audio"] in (2, 4)
    run_dir, result, _ = train_run.run(
        **values, data_dir=fold, run_dir=str(tmp_path / "run"),
        result_file=str(tmp_path / "results.txt"), export=False,
        log=lambda _: None)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model"]["kwargs"]["audio_units"] == values[
        "hidden_dim_audio"]
    assert saved["train"]["learning_rate"] == pytest.approx(values["lr"])
    with pytest.raises(search.SpaceError, match="unknown train.py flags"):
        space.write_text(json.dumps({"params": {"nope": {"type": "int",
                                                         "low": 1,
                                                         "high": 2}}}))
        search.load_space(str(space), known)
