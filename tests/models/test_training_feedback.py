"""What a person sees while training: progress, validation lines, no test."""

import glob
import os

import keras
import pytest
import tensorflow as tf

import experiment
from models import training
from preprocessing import reference_arrays
from tests import helpers

FRAMES = 40


def _fit(tmp_path, steps, sizes=(40, 12, 7), progress=True):
    """A tiny ARE trained `steps` steps; returns (result, log lines, the
    number of examples of each evaluation in call order)."""
    fold_dir = helpers.write_random_fold(tmp_path / "fold", sizes=sizes)
    fold = reference_arrays.load_fold(fold_dir)
    kwargs = experiment.model_kwargs("ARE", fold, False, 8, True,
                                     audio_units=4, seed=1)
    config = training.TrainConfig(batch_size=8, learning_rate=0.01,
                                  num_train_steps=steps)
    keras.utils.set_random_seed(0)
    lines = []
    trainer = training.Trainer(
        lambda: experiment.build_model("ARE", kwargs),
        tf.distribute.get_strategy(), str(tmp_path / "run"), config, 4,
        fold.label_names, log=lines.append, progress=progress)
    evaluated = []
    evaluate = trainer.evaluate

    def spy(dataset):
        result = evaluate(dataset)
        evaluated.append(result["num_examples"])
        return result

    trainer.evaluate = spy
    result = trainer.fit(
        experiment.train_dataset_fn(fold.splits["train"], 8, "sample", 0,
                                    FRAMES),
        experiment.eval_dataset(fold.splits["dev"], 16, FRAMES),
        experiment.eval_dataset(fold.splits["test"], 16, FRAMES),
        len(fold.splits["train"]))
    return result, lines, evaluated


def test_validation_lines_name_fields_and_test_is_scored_once(tmp_path,
                                                             capsys):
    result, lines, evaluated = _fit(tmp_path, steps=12)
    # 40 train / batch 8 → a validation every 2 steps: 6 of them, dev only
    # (12 examples); test (7) exactly once, after training.
    assert result.validation_frequency == 2
    assert evaluated == [12] * 6 + [12, 7]
    valid = [line for line in lines if line.startswith("[valid]")]
    assert len(valid) == 6
    for field in ("step ", "epoch ", "train loss ", "dev loss ", "dev WA ",
                  " UA ", "patience ", "steps/s"):
        assert all(field in line for line in valid), field
    assert "new best" in valid[0]
    assert not any("test" in line.lower() for line in valid)
    assert valid[-1].startswith("[valid] step 12 | epoch 2.40 |")
    # "Test accuracy at best dev" is the final test on the best weights.
    assert result.test_accuracy_at_best == result.final_test["wa"]
    # Progress with the rate and the time left, on stderr (no terminal
    # here: plain lines, no bar redraws).
    err = capsys.readouterr().err
    assert "[train] step 12/12 | " in err and " steps/s | ETA" in err
    assert "\r" not in err
    # TensorBoard gets the learning rate and the speed too.
    events = glob.glob(os.path.join(tmp_path, "run", "tensorboard",
                                    "events*"))
    tags = set()
    for event in tf.compat.v1.train.summary_iterator(events[0]):
        tags.update(value.tag for value in event.summary.value)
    assert {"learning_rate", "steps_per_second", "valid_ua",
            "mean_loss"} <= tags
    assert not any(tag.startswith("test") for tag in tags)


def test_run_shorter_than_one_validation_reports_real_metrics(tmp_path):
    # 40 train / batch 8 → first validation at step 2; stop after 1 step.
    result, lines, evaluated = _fit(tmp_path, steps=1, progress=False)
    assert not any(line.startswith("[valid]") for line in lines)
    assert evaluated == [12, 7]
    assert result.best_step == 1
    assert result.best_dev_accuracy == pytest.approx(result.final_dev["wa"])
    assert result.best_dev_loss == pytest.approx(result.final_dev["loss_sum"])
    assert result.test_accuracy_at_best == result.final_test["wa"]
    assert result.best_dev_accuracy > 0.0


def test_progress_line_eta_counts_whole_hours(capsys):
    import time

    progress = training.Progress(0, 10000, enabled=True)
    progress.started = time.time() - 100.0
    progress.update(10)  # 0.1 steps/s: 9,990 steps left = 27 h 45 min
    assert progress.line().startswith("[train] step 10/10000 | 0.10 steps/s"
                                      " | ETA to the step limit 27:4")
    progress.close()
    assert "[train] step 10/10000" in capsys.readouterr().err
