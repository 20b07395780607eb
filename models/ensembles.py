"""Ensembles of trained models (after Sobczak's ensembles), in one place.

Decision level, in numpy (`combine`, `fit_weights`): works on per-model
class probabilities, float [N, C] per model, for the same N examples in the
same order (e.g. the softmax of each model's logits over one split; the
export computes the same softmax). Loading run dirs and computing the
probabilities is the caller's job.

Methods (`DECISION_METHODS`):

* `max_confidence`: each example takes the prediction of the model whose
  top probability is highest for it.
* `average`: the mean of the models' probabilities.
* `weighted`: Σ_m w_m p_m with w on the simplex, fitted on the DEV split by
  `fit_weights`: an exhaustive grid over the simplex with step 1/`steps`,
  keeping the weights with the highest dev accuracy (ties: the lower dev
  negative log-likelihood, then the first in grid order). Never fit on the
  split you report.

As Keras models (`build_ensemble`; `METHODS` = the decision methods and
"feature"): functional models over the union of the members' named inputs
(members sharing an input name share the tensor), so they train, evaluate,
export and serve like any other model of the toolkit. The members run
frozen and in inference mode (no dropout); padding is handled by each
member as in its own model.

* Decision level (`build_decision_ensemble`): each member's softmax
  probabilities p_m [B, C] are combined as `combine` does in numpy (fixed
  weights for "weighted"); the output is log(p) [B, C], so that
  softmax(output) = p and the argmax is the ensemble's prediction. No
  trainable parameters.
* Feature level (`build_feature_ensemble`): each member with a layer named
  `logits` contributes its input to that layer (e.g. MDRE's fused vector,
  ARE's e_A) as its feature vector; the concatenated features feed one new
  linear classifier (`ScalarBiasDense`, like the Yoon heads), the only
  trainable part.
"""

import itertools
from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from models import layers

DECISION_METHODS = ("max_confidence", "average", "weighted")
METHODS = DECISION_METHODS + ("feature",)
# log(0) would make the loss infinite; probabilities are floored at this.
_PROBABILITY_FLOOR = 1e-30

# ------------------------------------------------------ numpy (decision) ---


def softmax(logits: np.ndarray) -> np.ndarray:
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


def simplex_grid(num_models: int, steps: int = 10) -> np.ndarray:
    """All weight vectors with entries in {0, 1/steps, ..., 1} summing to 1."""
    grid = []
    for cut in itertools.product(range(steps + 1), repeat=num_models - 1):
        if sum(cut) <= steps:
            grid.append(list(cut) + [steps - sum(cut)])
    return np.asarray(grid, np.float64) / steps


def combine(probabilities: Sequence[np.ndarray], method: str = "average",
            weights: Optional[Sequence[float]] = None) -> np.ndarray:
    """Combines M models' probabilities into one [N, C] array.

    Args:
        probabilities: sequence of M >= 2 float arrays [N, C].
        method: one of `DECISION_METHODS`.
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
                     f"{', '.join(DECISION_METHODS)}.")


def fit_weights(probabilities: Sequence[np.ndarray], labels: np.ndarray,
                steps: int = 10) -> np.ndarray:
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


# ----------------------------------------------------------- as Keras ---


@keras.saving.register_keras_serializable(package="mse")
class CombineProbabilities(keras.layers.Layer):
    """Members' logits → log of the combined softmax probabilities.

    Inputs: a list of M >= 2 logits tensors [B, C]. Output: float32 [B, C],
    log(combine(softmax(logits_1), ..)) (see `combine`;
    ties in `max_confidence` go to the first member, as there).

    Args:
        method: one of `DECISION_METHODS`.
        weights: M floats on the simplex, for "weighted" only.
    """

    def __init__(self, method, weights=None, **kwargs):
        super().__init__(**kwargs)
        if method not in DECISION_METHODS:
            raise ValueError(f"Unknown decision method {method!r}; valid: "
                             f"{', '.join(DECISION_METHODS)}.")
        if (method == "weighted") != (weights is not None):
            raise ValueError("weights are needed by, and only by, method "
                             f"'weighted' (method {method!r}, weights "
                             f"{weights}).")
        self.method = method
        self.weights_ = None if weights is None else [float(w)
                                                      for w in weights]

    def call(self, logits):
        probabilities = tf.stack(
            [tf.nn.softmax(tf.cast(member, tf.float32), axis=-1)
             for member in logits], axis=1)  # [B, M, C]
        if self.method == "max_confidence":
            chosen = tf.argmax(tf.reduce_max(probabilities, axis=-1),
                               axis=1, output_type=tf.int32)  # [B]
            combined = tf.gather(probabilities, chosen, batch_dims=1)
        else:
            count = len(logits)
            weights = (self.weights_ if self.method == "weighted"
                       else [1.0 / count] * count)
            if len(weights) != count:
                raise ValueError(f"{len(weights)} weights for {count} "
                                 "members.")
            combined = tf.einsum("bmc,m->bc", probabilities,
                                 tf.constant(weights, tf.float32))
        return tf.math.log(tf.maximum(combined, _PROBABILITY_FLOOR))

    def compute_output_spec(self, logits):
        return keras.KerasTensor(logits[0].shape, dtype="float32")

    def get_config(self):
        return {**super().get_config(), "method": self.method,
                "weights": self.weights_}


def _union_inputs(members):
    """The members' named inputs, shared by name: (inputs dict, per-member
    dicts of those inputs)."""
    if len(members) < 2:
        raise ValueError(f"An ensemble needs at least two members, got "
                         f"{len(members)}.")
    inputs, per_member = {}, []
    for member in members:
        member_inputs = {}
        for tensor in member.inputs:
            if tensor.name not in inputs:
                inputs[tensor.name] = keras.Input(
                    shape=tensor.shape[1:], dtype=tensor.dtype,
                    name=tensor.name)
            elif tuple(inputs[tensor.name].shape[1:]) != tuple(
                    tensor.shape[1:]):
                raise ValueError(
                    f"Members disagree on input {tensor.name!r}: "
                    f"{inputs[tensor.name].shape} vs {tensor.shape}.")
            member_inputs[tensor.name] = inputs[tensor.name]
        per_member.append(member_inputs)
    return inputs, per_member


def _frozen(member, index, outputs):
    """A frozen sub-model `member_<index>_<name>`: inputs → `outputs`."""
    extractor = keras.Model(member.input, outputs,
                            name=f"member_{index}_{member.name}")
    extractor.trainable = False
    return extractor


def build_decision_ensemble(members: Sequence[keras.Model], method: str,
                            weights: Optional[Sequence[float]] = None,
                            name: str = "DECISION_ENSEMBLE") -> keras.Model:
    """Decision-level ensemble of trained models (see the module doc).

    Args:
        members: sequence of >= 2 trained keras.Model (dict inputs, logits
            [B, C] output).
        method: "max_confidence", "average" or "weighted".
        weights: M floats on the simplex for "weighted" (fit them on dev
            with `fit_weights`).
        name: str.

    Returns:
        keras.Model over the union of the members' inputs → log
        probabilities [B, C]; no trainable weights.
    """
    inputs, per_member = _union_inputs(members)
    logits = [_frozen(member, index, member.output)(member_inputs,
                                                    training=False)
              for index, (member, member_inputs)
              in enumerate(zip(members, per_member))]
    combined = CombineProbabilities(method, weights, name="logits")(logits)
    return keras.Model(inputs, combined, name=name)


def build_feature_ensemble(members: Sequence[keras.Model], num_classes: int,
                           seed: Optional[int] = None,
                           name: str = "FEATURE_ENSEMBLE") -> keras.Model:
    """Feature-level ensemble; only its head is trainable.

    Args:
        members: sequence of >= 2 trained keras.Model (functional, dict
            inputs, a `logits` layer).
        num_classes: int.
        seed: int or None. Seed of the head's initialiser.
        name: str.

    Returns:
        keras.Model over the union of the members' inputs → logits [B, C].
    """
    inputs, per_member = _union_inputs(members)
    features = [
        _frozen(member, index, member.get_layer("logits").input)(
            member_inputs, training=False)
        for index, (member, member_inputs)
        in enumerate(zip(members, per_member))]
    fused = keras.layers.Concatenate(name="member_features")(features)
    logits = layers.ScalarBiasDense(num_classes, seed=seed,
                                    name="logits")(fused)
    return keras.Model(inputs, logits, name=name)


def build_ensemble(members: Sequence[keras.Model], method: str,
                   num_classes: int,
                   weights: Optional[Sequence[float]] = None,
                   seed: Optional[int] = None) -> keras.Model:
    """`build_decision_ensemble`, or `build_feature_ensemble` for method
    "feature"."""
    if method == "feature":
        return build_feature_ensemble(members, num_classes, seed=seed)
    return build_decision_ensemble(members, method, weights)
