"""Classification metrics from a confusion matrix: WA, UA, per-class scores.

WA (weighted accuracy) is plain accuracy, the only metric the original code
computed; UA (unweighted accuracy) is the mean per-class recall, what the
author's later code and most IEMOCAP papers also report.
"""

import numpy as np


def confusion_matrix(labels, predictions, num_classes):
    """int64 [C, C]: rows = true class, columns = predicted class."""
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def summarize(matrix, label_names=None):
    """Metrics of a confusion matrix.

    Args:
        matrix: int array [C, C], rows = true class.
        label_names: sequence of C str, or None.

    Returns:
        dict with `wa`, `ua`, `per_class_recall`, `per_class_precision`
        (dicts name → float; NaN-free: a class with no examples or no
        predictions scores 0 and is left out of UA when it has no examples),
        `confusion_matrix` (nested lists), `label_names`, `num_examples`.
    """
    matrix = np.asarray(matrix, dtype=np.int64)
    num_classes = matrix.shape[0]
    names = list(label_names or [str(i) for i in range(num_classes)])
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    correct = np.diag(matrix)
    total = int(matrix.sum())
    recall = np.divide(correct, support, out=np.zeros(num_classes),
                       where=support > 0)
    precision = np.divide(correct, predicted, out=np.zeros(num_classes),
                          where=predicted > 0)
    present = support > 0
    return {
        "wa": float(correct.sum() / total) if total else 0.0,
        "ua": float(recall[present].mean()) if present.any() else 0.0,
        "per_class_recall": dict(zip(names, map(float, recall))),
        "per_class_precision": dict(zip(names, map(float, precision))),
        "confusion_matrix": matrix.tolist(),
        "label_names": names,
        "num_examples": total,
    }
