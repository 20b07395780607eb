"""Decision-level ensembles: combination rules and dev-fitted weights."""

import numpy as np
import pytest

from models import ensembles


def _probabilities():
    # Model a is right on examples 0-1, model b on 2-3.
    a = np.array([[.9, .1], [.8, .2], [.6, .4], [.55, .45]])
    b = np.array([[.4, .6], [.45, .55], [.1, .9], [.3, .7]])
    return [a, b], np.array([0, 0, 1, 1])


def test_average_and_max_confidence():
    (a, b), _ = _probabilities()
    np.testing.assert_allclose(ensembles.combine([a, b], "average"),
                               (a + b) / 2)
    chosen = ensembles.combine([a, b], "max_confidence")
    # Row 0: a is surer (0.9 > 0.6); row 2: b (0.9 > 0.6).
    np.testing.assert_allclose(chosen, [a[0], a[1], b[2], b[3]])


def test_weighted_with_fitted_weights_beats_each_model_on_dev():
    (a, b), labels = _probabilities()
    weights = ensembles.fit_weights([a, b], labels, steps=10)
    assert weights.sum() == pytest.approx(1.0) and np.all(weights >= 0)
    mixed = ensembles.combine([a, b], "weighted", weights)
    accuracy = np.mean(mixed.argmax(axis=1) == labels)
    for single in (a, b):
        assert accuracy >= np.mean(single.argmax(axis=1) == labels)
    assert accuracy == 1.0


def test_simplex_grid_and_errors():
    grid = ensembles.simplex_grid(3, 4)
    assert len(grid) == 15  # C(4 + 2, 2)
    np.testing.assert_allclose(grid.sum(axis=1), 1.0)
    (a, b), _ = _probabilities()
    with pytest.raises(ValueError, match=">= 2 models"):
        ensembles.combine([a], "average")
    with pytest.raises(ValueError, match="needs weights"):
        ensembles.combine([a, b], "weighted")
    with pytest.raises(ValueError, match="summing to 1"):
        ensembles.combine([a, b], "weighted", [0.7, 0.7])
    with pytest.raises(ValueError, match="Unknown ensemble method"):
        ensembles.combine([a, b], "vote")


def test_softmax_rows_sum_to_one():
    probabilities = ensembles.softmax([[1.0, 2.0, 3.0], [1000.0, 0.0, 0.0]])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert probabilities[1, 0] == pytest.approx(1.0)
