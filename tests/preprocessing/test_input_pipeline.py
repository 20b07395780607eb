"""The tf.data pipeline over reference arrays."""

import numpy as np
import pytest
import tensorflow as tf

from preprocessing import input_pipeline
from tests import helpers


@pytest.fixture(scope="module")
def split():
    return helpers.random_split(37, max_frames=900, seed=1)


def test_text_lengths_first_zero_or_width():
    ids = np.array([[5, 6, 0, 7], [1, 2, 3, 4], [0, 0, 0, 0]])
    np.testing.assert_array_equal(input_pipeline.text_lengths(ids),
                                  [2, 4, 0])


def test_eval_covers_each_example_once_in_order(split):
    dataset = input_pipeline.make_dataset(split, 8, mode="eval")
    labels, lengths = [], []
    for features, label in dataset:
        labels.append(label.numpy())
        lengths.append(features["audio_length"].numpy())
    assert [len(x) for x in labels] == [8, 8, 8, 8, 5]
    np.testing.assert_array_equal(np.concatenate(labels), split.label)
    np.testing.assert_array_equal(np.concatenate(lengths),
                                  np.minimum(split.seq_len, 750))


def test_only_finite_eval_datasets_turn_the_autotuner_off(split):
    # The autotuner sporadically delays the end of a finite dataset by
    # ~0.45 s (bench/README.md); training datasets are infinite.
    def autotune(mode):
        return input_pipeline.make_dataset(
            split, 8, mode=mode).options().autotune.enabled

    assert autotune("eval") is False
    assert autotune("sample") is not False
    assert autotune("epochs") is not False


def test_shapes_dtypes_and_crop(split):
    features, label = next(iter(input_pipeline.make_dataset(
        split, 8, mode="eval", crop_multiple=50)))
    assert set(features) == set(input_pipeline.FEATURE_NAMES)
    assert label.dtype == tf.int32 and label.shape == (8,)
    longest = int(features["audio_length"].numpy().max())
    assert features["audio_mfcc"].shape[1] == min(750, -(-longest // 50) * 50)
    assert features["audio_mfcc"].dtype == tf.float32
    assert features["text_ids"].shape == (8, 128)
    assert features["audio_prosody"].shape == (8, 35)
    np.testing.assert_array_equal(
        features["text_length"].numpy(),
        input_pipeline.text_lengths(split.text_ids[:8]))
    np.testing.assert_array_equal(features["audio_mfcc"].numpy(),
                                  split.mfcc[:8, :features["audio_mfcc"]
                                             .shape[1]])


def test_sampling_with_replacement_is_seeded_and_resumable(split):
    def labels(seed, start, count):
        dataset = input_pipeline.make_dataset(split, 16, mode="sample",
                                              seed=seed, start_step=start)
        return [label.numpy() for _, label in dataset.take(count)]
    first = labels(0, 0, 5)
    np.testing.assert_array_equal(np.stack(first), np.stack(labels(0, 0, 5)))
    np.testing.assert_array_equal(np.stack(first[3:]),
                                  np.stack(labels(0, 3, 2)))
    assert not np.array_equal(np.stack(first), np.stack(labels(1, 0, 5)))


def test_epochs_mode_visits_every_example_once_per_epoch(split):
    dataset = input_pipeline.make_dataset(split, 37, mode="epochs", seed=2)
    for features, label in dataset.take(2):
        np.testing.assert_array_equal(np.sort(label.numpy()),
                                      np.sort(split.label))


def test_extras_and_errors(split):
    split.extras["waveform"] = np.arange(37 * 5, dtype=np.int16).reshape(
        37, 5)
    features, _ = next(iter(input_pipeline.make_dataset(
        split, 4, extras=["waveform"])))
    np.testing.assert_array_equal(features["waveform"].numpy(),
                                  split.extras["waveform"][:4])
    with pytest.raises(ValueError, match="not in the split"):
        input_pipeline.make_dataset(split, 4, extras=["nope"])
    with pytest.raises(ValueError, match="mode"):
        input_pipeline.make_dataset(split, 4, mode="shuffle")
