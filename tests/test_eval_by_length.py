"""Length-grouped evaluation: each example once, results unchanged."""

import numpy as np
import tensorflow as tf

import experiment
from models import registry
from models import training
from tests import helpers

FRAMES = 60


def test_batches_group_by_length_and_cover_each_example_once():
    split = helpers.random_split(23, max_frames=80, seed=4)
    batches = list(experiment.eval_dataset(split, 5, FRAMES, by_length=True))
    lengths = np.concatenate([f["audio_length"].numpy() for f, _ in batches])
    assert np.all(np.diff(lengths) >= 0)
    # Each example exactly once: its (length, label, prosody) rows match the
    # split's, as multisets.
    prosody = np.concatenate([f["audio_prosody"].numpy() for f, _ in batches])
    order = np.argsort(np.minimum(split.seq_len, FRAMES), kind="stable")
    np.testing.assert_array_equal(prosody, split.prosody[order])
    # Short batches are cropped to their own longest length (rounded up).
    assert batches[0][0]["audio_mfcc"].shape[1] < FRAMES


def test_grouped_evaluation_gives_the_same_metrics():
    split = helpers.random_split(37, max_frames=80, seed=5)
    model = registry.build_model(
        "MDREA", **helpers.tiny_model_kwargs(model="MDREA"))
    evaluator = training.Evaluator(model, tf.distribute.get_strategy(), 4)
    plain = evaluator(experiment.eval_dataset(split, 8, FRAMES))
    grouped = evaluator(experiment.eval_dataset(split, 8, FRAMES,
                                                by_length=True))
    np.testing.assert_array_equal(grouped["confusion_matrix"],
                                  plain["confusion_matrix"])
    np.testing.assert_allclose(grouped["loss_sum"], plain["loss_sum"],
                               rtol=1e-6)
    assert grouped["num_examples"] == len(split)
