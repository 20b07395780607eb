"""The training loop: learning, early stopping, resume, metrics."""


import keras
import numpy as np
import pytest
import tensorflow as tf

import experiment
from models import metrics
from models import training
from tests import helpers

# Encoder size for the tests: clipping the demo's utterances to 1 s keeps
# the GRU loops short.
FRAMES = 100


def _trainer(fold, run_dir, model_name="MDRE", steps=10, lr=0.01,
             batch_size=32, **model_overrides):
    hparams = dict(helpers.tiny_model_kwargs(), **model_overrides)
    for derived in ("vocab_size", "embedding_dim"):
        hparams.pop(derived)
    kwargs = experiment.model_kwargs(model_name, fold, use_glove=False,
                                     embedding_dim=8, normalize_audio=True,
                                     **hparams)
    config = training.TrainConfig(batch_size=batch_size, learning_rate=lr,
                                  num_train_steps=steps)
    keras.utils.set_random_seed(0)
    trainer = training.Trainer(
        lambda: experiment.build_model(model_name, kwargs),
        tf.distribute.get_strategy(), str(run_dir), config, 4,
        fold.label_names, log=lambda _: None)
    train_fn = experiment.train_dataset_fn(fold.splits["train"], batch_size,
                                           "sample", 0, FRAMES)
    datasets = [experiment.eval_dataset(fold.splits[s], 64, FRAMES)
                for s in ("dev", "test")]
    return trainer, (train_fn, *datasets, len(fold.splits["train"]))


def test_validation_frequency_matches_original():
    assert training.validation_frequency(4445, 128) == 11
    assert training.validation_frequency(100, 128) == 1


def test_short_run_lowers_dev_loss_and_beats_chance(demo_fold, tmp_path):
    trainer, args = _trainer(demo_fold, tmp_path, steps=60, lr=0.01)
    dev = experiment.eval_dataset(demo_fold.splits["dev"], 64, FRAMES)
    before = trainer.evaluate(tf.distribute.get_strategy()
                              .experimental_distribute_dataset(dev))
    result = trainer.fit(*args)
    assert result.final_dev["loss_sum"] < 0.8 * before["loss_sum"]
    assert result.final_test["wa"] > 0.45  # chance is 0.25
    # Best weights restored: the final dev loss is the best one seen.
    assert result.final_dev["loss_sum"] == pytest.approx(
        result.best_dev_loss, rel=1e-4)
    assert result.final_dev["wa"] == pytest.approx(result.best_dev_accuracy)
    assert result.final_test["wa"] == pytest.approx(
        result.test_accuracy_at_best)


def test_early_stopping_at_eighth_non_improving_validation(demo_fold,
                                                           tmp_path):
    trainer, args = _trainer(demo_fold, tmp_path, steps=1000, lr=0.0)
    result = trainer.fit(*args)
    # lr 0: only the first validation improves; patience 7 lets 7 more
    # pass and the run stops at the 9th validation.
    assert result.stopped_early
    assert result.steps == 9 * result.validation_frequency
    assert result.best_step == result.validation_frequency


def test_resume_continues_exactly(demo_fold, tmp_path):
    full, args = _trainer(demo_fold, tmp_path / "full", steps=14)
    full.fit(*args)
    first, args = _trainer(demo_fold, tmp_path / "split", steps=7)
    first.fit(*args)
    # A new process would rebuild everything; a new Trainer does the same.
    second, args = _trainer(demo_fold, tmp_path / "split", steps=14)
    result = second.fit(*args)
    assert result.steps == 14
    for a, b in zip(full.model.weights, second.model.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


def test_no_retracing_across_batches_of_different_lengths(demo_fold,
                                                          tmp_path):
    trainer, args = _trainer(demo_fold, tmp_path, steps=12)
    trainer.fit(*args)
    # One trace for the train step, however many audio lengths were seen.
    train_step = trainer._last_train_step
    assert train_step.experimental_get_tracing_count() == 1


def test_metrics_wa_ua():
    matrix = metrics.confusion_matrix([0, 0, 0, 1, 2, 2], [0, 0, 1, 1, 2, 0],
                                      4)
    result = metrics.summarize(matrix, ["a", "b", "c", "d"])
    assert result["wa"] == pytest.approx(4 / 6)
    assert result["ua"] == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)
    assert result["per_class_precision"]["a"] == pytest.approx(2 / 3)
    assert result["confusion_matrix"][0] == [2, 1, 0, 0]
