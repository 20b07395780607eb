"""Decision-level ensembles of trained models (after Sobczak's ensembles).

Works on per-model class probabilities, float [N, C] per model, for the
same N examples in the same order (e.g. the softmax of each model's logits
over one split; the export computes the same softmax). Pure numpy: loading
run dirs and computing the probabilities is the caller's job (e.g. through
`experiment.load_trained_model(run_dir)`).

Methods (`METHODS`):

* `max_confidence`: each example takes the prediction of the model whose
  top probability is highest for it.
* `average`: the mean of the models' probabilities.
* `weighted`: Σ_m w_m p_m with w on the simplex, fitted on the DEV split by
  `fit_weights`: an exhaustive grid over the simplex with step 1/`steps`,
  keeping the weights with the highest dev accuracy (ties: the lower dev
  negative log-likelihood, then the first in grid order). Never fit on the split you report.
"""

import itertools

import numpy as np

METHODS = ("max_confidence", "average", "weighted")


def softmax(logits):
    """Row-wise softmax of float [N, C] logits."""
    logits = np.asarray(logits, np.float64)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _stack(probabilities):
    stacked = np.stack([np.asarray(p, np.float64) for p in probabilities])
    if stacked.ndim != 3 or len(stacked) < 2:
        raise ValueError("An ensemble needs >= 2 models' probabilities, "
                         "each [N, C] over the same examples; found shapes "
                         f"{[np.shape(p) for p in probabilities]}.")
    return stacked


def simplex_grid(num_models, steps=10):
    """All weight vectors with entries in {0, 1/steps, ..., 1} summing to 1."""
    grid = []
    for cut in itertools.product(range(steps + 1), repeat=num_models - 1):
        if sum(cut) <= steps:
            grid.append(list(cut) + [steps - sum(cut)])
    return np.asarray(grid, np.float64) / steps


def combine(probabilities, method="average", weights=None):
    """Combines M models' probabilities into one [N, C] array.

    Args:
        probabilities: sequence of M >= 2 float arrays [N, C].
        method: one of `METHODS`.
        weights: float [M] (non-negative, summing to 1) for "weighted".

    Returns:
        float [N, C]; its argmax is the ensemble's prediction. For
        `max_confidence` the rows are the chosen model's probabilities.
    """
    stacked = _stack(probabilities)
    if method == "average":
        return stacked.mean(axis=0)
    if method == "max_confidence":
        chosen = stacked.max(axis=2).argmax(axis=0)  # [N]
        return stacked[chosen, np.arange(stacked.shape[1])]
    if method == "weighted":
        if weights is None:
            raise ValueError("method 'weighted' needs weights (fit them on "
                             "dev with fit_weights).")
        weights = np.asarray(weights, np.float64)
        if weights.shape != (len(stacked),) or np.any(weights < 0) or (
                not np.isclose(weights.sum(), 1.0)):
            raise ValueError(f"weights must be {len(stacked)} non-negative "
                             f"numbers summing to 1; found {weights}.")
        return np.einsum("m,mnc->nc", weights, stacked)
    raise ValueError(f"Unknown ensemble method {method!r}; valid: "
                     f"{', '.join(METHODS)}.")


def fit_weights(probabilities, labels, steps=10):
    """Weights of the "weighted" method fitted on dev (see module doc).

    Args:
        probabilities: sequence of M float [N, C] dev probabilities.
        labels: int [N] dev labels.
        steps: grid resolution (weights are multiples of 1/steps).

    Returns:
        float [M] weights on the simplex.
    """
    stacked = _stack(probabilities)
    labels = np.asarray(labels)
    best, best_key = None, None
    for weights in simplex_grid(len(stacked), steps):
        mixed = np.einsum("m,mnc->nc", weights, stacked)
        accuracy = float(np.mean(mixed.argmax(axis=1) == labels))
        nll = float(-np.mean(np.log(np.maximum(
            mixed[np.arange(len(labels)), labels], 1e-12))))
        key = (accuracy, -nll)
        if best_key is None or key > best_key:
            best, best_key = weights, key
    return best
