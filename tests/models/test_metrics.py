"""models/metrics.py: confusion matrix, WA, UA and per-class scores."""

import numpy as np

from models import metrics


def test_confusion_matrix_rows_are_true_classes():
    matrix = metrics.confusion_matrix([0, 0, 1, 2], [0, 1, 1, 1], 3)
    np.testing.assert_array_equal(matrix, [[1, 1, 0], [0, 1, 0], [0, 1, 0]])


def test_summarize_wa_ua_and_per_class_scores():
    # 3 of 5 right; recalls 2/3, 1/1, 0/1 -> UA 5/9.
    matrix = metrics.confusion_matrix([0, 0, 0, 1, 2], [0, 0, 1, 1, 1], 4)
    summary = metrics.summarize(matrix, ["a", "b", "c", "d"])
    assert summary["wa"] == 3 / 5
    assert np.isclose(summary["ua"], (2 / 3 + 1 + 0) / 3)  # d has no examples
    assert summary["per_class_recall"] == {"a": 2 / 3, "b": 1.0, "c": 0.0,
                                           "d": 0.0}
    assert summary["per_class_precision"]["b"] == 1 / 3
    assert summary["per_class_precision"]["d"] == 0.0  # never predicted
    assert summary["num_examples"] == 5
    assert summary["confusion_matrix"] == matrix.tolist()


def test_summarize_of_nothing_is_zero_not_nan():
    summary = metrics.summarize(np.zeros((2, 2), np.int64))
    assert summary["wa"] == 0.0 and summary["ua"] == 0.0
    assert summary["label_names"] == ["0", "1"]
