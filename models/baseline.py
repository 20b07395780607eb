"""The classical baseline as Keras models: utterance functionals + SVM / LR.

The features are the classical speech-emotion functionals of the fold's own
arrays: the mean and the (population) standard deviation of each of the 39
MFCC-E-D-A coefficients over an utterance's REAL frames (padded frames are
ignored), followed by the 35 prosody values, x = [B, 39 + 39 + 35 = 113].
They are standardised with train-split statistics and classified by

* `BASELINE_SVM`: an RBF support-vector machine (scikit-learn `SVC`, one
  versus one). Its output is scikit-learn's one-versus-rest decision
  function: per class the pairwise votes plus the summed pairwise
  confidences squashed into (-1/3, 1/3), so its argmax is the class
  `SVC.decision_function(x).argmax()` picks;
* `BASELINE_LOGREG`: multinomial logistic regression (the logits
  x·Wᵀ + b of `LogisticRegression`).

Both are fitted in closed form by scikit-learn (`fit_svm`, `fit_logreg`, on
numpy arrays), not by gradient descent; the fitted numbers (support
vectors, pairwise dual coefficients, intercepts, weights) become the
models' weights and γ, C and the standardisation go into the config, so a
run stores them in `model.weights.h5` + `config.json` like any other model
(no pickle of a scikit-learn object anywhere) and `evaluate.py`, `export.py`
(a SavedModel with the same `serving_default` inputs as ARE) and
`predict.py` work unchanged. The weights are Keras-trainable only in name:
nothing trains them by gradient.

Inputs (the names of `models/yoon.py`): `audio_mfcc` [B, T, 39] float32
(zero-padded), `audio_length` [B] int32 (real frames), `audio_prosody`
[B, 35] float32. Output: logits [B, num_classes].
"""

import itertools

import keras
import numpy as np
import tensorflow as tf

from common import constants
from models import config_model
from models import inputs as inputs_lib
from models import layers

SVM = "BASELINE_SVM"
LOGREG = "BASELINE_LOGREG"
# Grids searched on the DEV split (never test); gamma in units of 1/D, the
# scikit-learn "scale" value for standardised features.
SVM_C_GRID = (0.1, 1.0, 10.0, 100.0)
SVM_GAMMA_GRID = (0.25, 1.0, 4.0)
LOGREG_C_GRID = (0.01, 0.1, 1.0, 10.0)


def num_functionals(mfcc_dim=constants.MFCC_DIM,
                    prosody_dim=constants.PROSODY_DIM):
    """D, the width of the functionals vector."""
    return 2 * mfcc_dim + prosody_dim


@keras.saving.register_keras_serializable(package="mse")
class UtteranceFunctionals(keras.layers.Layer):
    """[mean, std] of the real frames, then the prosody vector.

    Inputs: mfcc [B, T, F] float, lengths [B] int (clipped to [0, T]),
    prosody [B, P] float. Output [B, 2F + P]. Frames at and past an
    utterance's length are replaced by zeros before any arithmetic and not
    counted, so padding (however long, whatever its values) changes
    nothing; a length-0 utterance gets mean and std 0.
    """

    def call(self, mfcc, lengths, prosody):
        frames = tf.shape(mfcc)[1]
        lengths = tf.clip_by_value(tf.cast(lengths, tf.int32), 0, frames)
        mask = tf.sequence_mask(lengths, frames)[:, :, None]
        count = tf.maximum(tf.cast(lengths, mfcc.dtype), 1.0)[:, None]
        real = tf.where(mask, mfcc, tf.zeros_like(mfcc))
        mean = tf.reduce_sum(real, axis=1) / count
        # Two passes (not E[x²] − E[x]²): exact enough in float32.
        centred = tf.where(mask, mfcc - mean[:, None, :], tf.zeros_like(mfcc))
        std = tf.sqrt(tf.reduce_sum(tf.square(centred), axis=1) / count)
        return tf.concat([mean, std, tf.cast(prosody, mfcc.dtype)], axis=-1)

    def compute_output_shape(self, mfcc_shape, lengths_shape, prosody_shape):
        return (mfcc_shape[0], 2 * mfcc_shape[-1] + prosody_shape[-1])


def _pairs(num_classes):
    return list(itertools.combinations(range(num_classes), 2))


@keras.saving.register_keras_serializable(package="mse")
class RBFSupportVectors(keras.layers.Layer):
    """One-versus-one RBF SVM as scikit-learn's one-versus-rest decision.

    For each class pair p = (i, j), i < j (in that order):
    d_p(x) = Σ_s exp(−γ‖x − sv_s‖²)·A[s, p] + b_p, where A holds libsvm's
    dual coefficients of the pair's support vectors (0 for the others);
    d_p ≥ 0 is a vote for i. Output [B, C]: votes + c / (3(|c| + 1)), c
    the summed confidences (+d_p for i, −d_p for j), i.e.
    `sklearn.svm._base._ovr_decision_function`.

    Args:
        num_support_vectors: int S.
        num_features: int D.
        num_classes: int C >= 2.
        gamma: float γ.

    Weights: `support_vectors` [S, D], `pair_coef` [S, C(C−1)/2],
    `intercept` [C(C−1)/2] (zeros until set from `fit_svm`).
    """

    def __init__(self, num_support_vectors, num_features, num_classes, gamma,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_support_vectors = int(num_support_vectors)
        self.num_features = int(num_features)
        self.num_classes = int(num_classes)
        self.gamma = float(gamma)
        pairs = _pairs(self.num_classes)
        win_first = np.zeros((len(pairs), self.num_classes), np.float32)
        win_second = np.zeros_like(win_first)
        for p, (i, j) in enumerate(pairs):
            win_first[p, i] = 1.0
            win_second[p, j] = 1.0
        self._win_first, self._win_second = win_first, win_second

    def build(self, input_shape):
        num_pairs = len(self._win_first)
        self.support_vectors = self.add_weight(
            name="support_vectors",
            shape=(self.num_support_vectors, self.num_features),
            initializer="zeros")
        self.pair_coef = self.add_weight(
            name="pair_coef", shape=(self.num_support_vectors, num_pairs),
            initializer="zeros")
        self.intercept = self.add_weight(name="intercept", shape=(num_pairs,),
                                         initializer="zeros")

    def call(self, inputs):
        vectors = self.support_vectors
        squared = (tf.reduce_sum(tf.square(inputs), -1, keepdims=True)
                   - 2.0 * tf.matmul(inputs, vectors, transpose_b=True)
                   + tf.reduce_sum(tf.square(vectors), -1)[None, :])
        kernel = tf.exp(-self.gamma * tf.maximum(squared, 0.0))
        decision = tf.matmul(kernel, self.pair_coef) + self.intercept
        first = tf.cast(decision >= 0.0, inputs.dtype)
        votes = (tf.matmul(first, self._win_first)
                 + tf.matmul(1.0 - first, self._win_second))
        confidence = tf.matmul(decision, self._win_first - self._win_second)
        return votes + confidence / (3.0 * (tf.abs(confidence) + 1.0))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        return {**super().get_config(),
                "num_support_vectors": self.num_support_vectors,
                "num_features": self.num_features,
                "num_classes": self.num_classes, "gamma": self.gamma}


def _standardised_functionals(mfcc_dim, prosody_dim, feature_mean,
                              feature_std):
    """(inputs, standardised functionals [B, width], width) of a baseline."""
    width = num_functionals(mfcc_dim, prosody_dim)
    feature_mean, feature_std = _statistics(feature_mean, feature_std, width)
    inputs = inputs_lib.audio_inputs(mfcc_dim, prosody_dim)
    features = UtteranceFunctionals(name="functionals")(
        inputs["audio_mfcc"], inputs["audio_length"], inputs["audio_prosody"])
    features = layers.Standardize(feature_mean, feature_std,
                                  name="feature_standardize")(features)
    return inputs, features, width


def _statistics(feature_mean, feature_std, width):
    if feature_mean is None:
        return [0.0] * width, [1.0] * width
    if len(feature_mean) != width or len(feature_std) != width:
        raise ValueError(f"feature_mean/feature_std: expected {width} "
                         f"values, found {len(feature_mean)}/"
                         f"{len(feature_std)}.")
    return feature_mean, feature_std


@keras.saving.register_keras_serializable(package="mse")
class BaselineSVM(config_model.ConfigModel):
    """Functionals → standardise → RBF SVM decision [B, num_classes].

    Args:
        num_support_vectors: int. S, from the fit.
        gamma: float. RBF γ (on standardised features).
        svm_c: float. The C it was fitted with (recorded only).
        feature_mean, feature_std: lists of D floats, train-split
            statistics of the functionals (None: identity, before fitting).
        mfcc_dim, prosody_dim, num_classes: ints (39, 35, 4).
        class_weight: str or None. Recorded only ("balanced").
    """

    def __init__(self, num_support_vectors=1, gamma=1.0, svm_c=1.0,
                 feature_mean=None, feature_std=None,
                 mfcc_dim=constants.MFCC_DIM,
                 prosody_dim=constants.PROSODY_DIM,
                 num_classes=constants.NUM_CLASSES, class_weight="balanced",
                 name=SVM, **kwargs):
        config = config_model.constructor_arguments(locals())
        inputs, features, width = _standardised_functionals(
            mfcc_dim, prosody_dim, feature_mean, feature_std)
        logits = RBFSupportVectors(num_support_vectors, width, num_classes,
                                   gamma, name="logits")(features)
        self._finish(inputs, logits, config, name, kwargs)


@keras.saving.register_keras_serializable(package="mse")
class BaselineLogReg(config_model.ConfigModel):
    """Functionals → standardise → multinomial logistic regression logits.

    Args:
        logreg_c: float. The inverse regularisation C it was fitted with
            (recorded only).
        feature_mean, feature_std, mfcc_dim, prosody_dim, num_classes,
        class_weight: as `BaselineSVM`.
    """

    def __init__(self, logreg_c=1.0, feature_mean=None, feature_std=None,
                 mfcc_dim=constants.MFCC_DIM,
                 prosody_dim=constants.PROSODY_DIM,
                 num_classes=constants.NUM_CLASSES,
                 class_weight="balanced", name=LOGREG, **kwargs):
        config = config_model.constructor_arguments(locals())
        inputs, features, _ = _standardised_functionals(
            mfcc_dim, prosody_dim, feature_mean, feature_std)
        logits = keras.layers.Dense(num_classes, kernel_initializer="zeros",
                                    name="logits")(features)
        self._finish(inputs, logits, config, name, kwargs)


MODELS = {SVM: BaselineSVM, LOGREG: BaselineLogReg}


def feature_statistics(features):
    """Train-split mean and std of the functionals (std 0 → 1 later)."""
    features = np.asarray(features, np.float64)
    return features.mean(axis=0).tolist(), features.std(axis=0).tolist()


def _standardise(features, mean, std):
    std = np.asarray(std)
    return (np.asarray(features) - np.asarray(mean)) / np.where(std > 0, std,
                                                                 1.0)


def _check_classes(labels, num_classes):
    missing = sorted(set(range(num_classes)) - set(np.unique(labels)))
    if missing:
        raise ValueError(f"the training split has no example of class ids "
                         f"{missing}; the baseline needs every class.")


def _unweighted_accuracy(labels, predictions, num_classes):
    recalls = [np.mean(predictions[labels == k] == k)
               for k in range(num_classes) if np.any(labels == k)]
    return float(np.mean(recalls))


def _svm_arrays(svc, num_classes):
    """libsvm's fitted numbers as (support vectors, A [S, P], b [P])."""
    vectors = np.asarray(svc.support_vectors_, np.float32)
    # libsvm's own signs: scikit-learn flips both for two classes only.
    dual = np.asarray(svc._dual_coef_, np.float64)
    intercept = np.asarray(svc._intercept_, np.float64)
    starts = np.concatenate([[0], np.cumsum(svc.n_support_)])
    pairs = _pairs(num_classes)
    coef = np.zeros((len(vectors), len(pairs)), np.float64)
    for p, (i, j) in enumerate(pairs):
        first, second = slice(starts[i], starts[i + 1]), slice(
            starts[j], starts[j + 1])
        coef[first, p] = dual[j - 1, first]
        coef[second, p] = dual[i, second]
    return vectors, coef.astype(np.float32), intercept.astype(np.float32)


def fit_estimator(kind, train_x, train_y, c, gamma, class_weight, seed):
    """The scikit-learn estimator of `kind` (`SVM`: RBF SVC with C and γ;
    `LOGREG`: logistic regression with C) fitted on standardised
    functionals; what `fit` converts into the Keras model's weights."""
    # Imported here: scikit-learn is needed only to fit the baselines.
    from sklearn import linear_model
    from sklearn import svm

    if kind == SVM:
        return svm.SVC(C=c, kernel="rbf", gamma=gamma,
                       class_weight=class_weight,
                       decision_function_shape="ovr",
                       random_state=seed).fit(train_x, train_y)
    return linear_model.LogisticRegression(
        C=c, class_weight=class_weight, max_iter=5000,
        random_state=seed).fit(train_x, train_y)


def fit(kind, train_x, train_y, dev_x=None, dev_y=None,
        num_classes=constants.NUM_CLASSES,
        select=True, class_weight="balanced", seed=0, log=None):
    """Fits a baseline on functionals; picks C (and γ) on dev UA.

    Args:
        kind: `SVM` or `LOGREG`.
        train_x: float [n, D] functionals of the training split (raw; they
            are standardised here with their own statistics).
        train_y: int [n] class ids; every class must occur.
        dev_x, dev_y: the dev split (for `select`).
        num_classes: int.
        select: bool. Grid over `SVM_C_GRID` × `SVM_GAMMA_GRID` (or
            `LOGREG_C_GRID`), scored by dev UA, ties → the first in grid
            order; else C = 1 and γ = 1/D.
        class_weight: "balanced" (weights ∝ 1 / class frequency) or None.
        seed: int.
        log: callable(str) or None.

    Returns:
        (kwargs, weights, report): the model's constructor arguments (without
        num_classes/dims), its weights in `model.get_weights()` order, and a
        JSON-able record of the grid (dev UA per setting) and the choice.

    Raises:
        ValueError: a class absent from train, bad kind.
    """
    if kind not in MODELS:
        raise ValueError(f"baseline kind {kind!r}: expected one of "
                         f"{tuple(MODELS)}.")
    train_y = np.asarray(train_y)
    _check_classes(train_y, num_classes)
    mean, std = feature_statistics(train_x)
    x = _standardise(train_x, mean, std)
    width = x.shape[1]
    if kind == SVM:
        grid = [(c, g / width) for c in SVM_C_GRID for g in SVM_GAMMA_GRID]
        default = (1.0, 1.0 / width)
    else:
        grid = [(c, None) for c in LOGREG_C_GRID]
        default = (1.0, None)
    scores = []
    if select and dev_x is not None and len(dev_x):
        dev = _standardise(dev_x, mean, std)
        for c, gamma in grid:
            predictions = fit_estimator(kind, x, train_y, c, gamma,
                                        class_weight, seed).predict(dev)
            scores.append({"C": c, "gamma": gamma, "dev_ua":
                           _unweighted_accuracy(np.asarray(dev_y),
                                                predictions, num_classes)})
        best = max(scores, key=lambda s: s["dev_ua"])  # first on ties
        chosen = (best["C"], best["gamma"])
    else:
        chosen = default
    estimator = fit_estimator(kind, x, train_y, chosen[0], chosen[1],
                              class_weight, seed)
    kwargs = dict(feature_mean=mean, feature_std=std,
                  class_weight=class_weight)
    if kind == SVM:
        vectors, coef, intercept = _svm_arrays(estimator, num_classes)
        kwargs.update(num_support_vectors=len(vectors), gamma=chosen[1],
                      svm_c=chosen[0])
        weights = [vectors, coef, intercept]
    else:
        coef = np.asarray(estimator.coef_, np.float32)
        intercept = np.asarray(estimator.intercept_, np.float32)
        if num_classes == 2:
            # scikit-learn's binary LR has one row (for class 1).
            coef = np.concatenate([np.zeros_like(coef), coef])
            intercept = np.concatenate([np.zeros_like(intercept), intercept])
        kwargs.update(logreg_c=chosen[0])
        weights = [coef.T.copy(), intercept]
    report = {"kind": kind, "selected_on": "dev UA" if scores else None,
              "grid": scores, "C": chosen[0], "gamma": chosen[1],
              "class_weight": class_weight,
              "num_support_vectors": (int(len(weights[0])) if kind == SVM
                                      else None)}
    if log:
        log(f"[Info] {kind}: C={chosen[0]:g}"
            + (f" gamma={chosen[1]:.4g}" if chosen[1] else "")
            + (f" (best dev UA {max(s['dev_ua'] for s in scores):.3f} of "
               f"{len(scores)} settings)" if scores else " (no selection)"))
    return kwargs, weights, report
