"""What drove a prediction: integrated gradients, modality ablation, attention.

Works on any functional model of this package whose inputs are named as in
`models/yoon.py` (ARE, TRE, MDRE, MDREA; the wav2vec2 models' `waveform` is
treated like any other float input). Everything here is per example: inputs
are dicts name → array with a batch dimension of 1.

Integrated gradients (Sundararajan et al., 2017) of the target class LOGIT:

    IG_i(x) = (x_i − b_i) · ∫_0^1 ∂f(b + α(x − b)) / ∂x_i dα,

approximated with `steps`-point Gauss–Legendre quadrature (Captum's default
rule), so that Σ_i IG_i ≈ f(x) − f(b) (completeness; `Attributions`
reports the gap).

* Continuous inputs (`audio_mfcc`, `audio_prosody`, `waveform`) are
  attributed directly, against a zero baseline — zero in the space the
  network sees (`baseline="auto"`, the default): raw zeros for models that
  take raw features (the original's setting), and for models trained with
  `--normalize_audio` (a `Standardize` layer on the input) the training-split
  mean, i.e. a standardised 0. Raw zeros there (F0 = 0 Hz, loudness 0) lie
  many standard deviations outside the data and would dominate every
  explanation; `baseline="zero"` uses raw zeros regardless.
* Token ids are discrete, so words are attributed in EMBEDDING space: the
  model is re-wired (`keras.Model` over the `word_embedding` layer's output,
  sharing all weights) so that the embedded sequence is an input, and IG
  runs from the zero vector to each word's embedding.
* Lengths (`audio_length`, `text_length`, `waveform_length`) are held fixed:
  the baseline is an utterance of the same lengths whose frames, prosody and
  word vectors are all at the baseline.
* Padding: the GRUs ignore steps at or past the length (their outputs are 0
  there and the state is carried over), so the gradient at a padded frame or
  PAD word is exactly 0; the attributions are also multiplied by the length
  masks, so PAD positions get exactly 0 by construction.

Modality ablation: the model is run with each modality replaced by "absent"
input — audio: `audio_length` 0 (the audio GRU's final state is then 0),
MFCC frames zero and the prosody vector at its baseline (as above); text: all
ids PAD (0) and `text_length` 0 (the text GRU state and MDREA's attention
context are 0). Two-player Shapley values split f(both) − f(neither) exactly
between the modalities.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from models import inputs as inputs_lib

EMBEDDING_LAYER = "word_embedding"
ATTENTION_LAYER = "text_attention"
TEXT_IDS = inputs_lib.TEXT_IDS
# Attributed view input that replaces `text_ids`.
EMBEDDED_TEXT = "word_embedding"
# Which length masks which sequence input (time on axis 1).
SEQUENCE_LENGTHS = {
    "audio_mfcc": "audio_length",
    EMBEDDED_TEXT: "text_length",
    "waveform": "waveform_length",
}
# Input → the Standardize layer a model with --normalize_audio applies to it.
STANDARDIZE_LAYERS = {"audio_mfcc": "mfcc_standardize",
                      "audio_prosody": "prosody_standardize"}
BASELINES = ("auto", "zero")
# The inputs of each modality (what a modality's baseline replaces).
AUDIO_INPUTS = inputs_lib.AUDIO_INPUTS + inputs_lib.WAVEFORM_INPUTS
TEXT_INPUTS = inputs_lib.TEXT_INPUTS


def quadrature(steps, method="gausslegendre"):
    """Nodes α in [0, 1] and weights summing to 1 for ∫_0^1 g(α) dα.

    Args:
        steps: int >= 1. Number of gradient evaluations.
        method: "gausslegendre" (exact for polynomials of degree
            2·steps − 1) or "trapezoid" (steps >= 2 nodes, endpoints
            included) or "riemann_middle".

    Returns:
        (float64 [steps] nodes, float64 [steps] weights).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}.")
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return (nodes + 1.0) / 2.0, weights / 2.0
    if method == "trapezoid":
        if steps < 2:
            raise ValueError("trapezoid needs steps >= 2.")
        nodes = np.linspace(0.0, 1.0, steps)
        weights = np.full(steps, 1.0 / (steps - 1))
        weights[[0, -1]] /= 2.0
        return nodes, weights
    if method == "riemann_middle":
        return (np.arange(steps) + 0.5) / steps, np.full(steps, 1.0 / steps)
    raise ValueError(f"method={method!r}: expected gausslegendre, trapezoid "
                     "or riemann_middle.")


@dataclasses.dataclass
class Attributions:
    """Integrated gradients of one example.

    Attributes:
        inputs: dict name → float array without the batch dimension: the
            per-element attributions of each attributed input
            (`audio_mfcc` [T, 39], `audio_prosody` [35], `word_embedding`
            [L, E], `waveform` [S]); exactly 0 past each length.
        target: int. Class whose logit is explained.
        output: float. f(x), the target logit at the input.
        baseline_output: float. f(b), the target logit at the baseline.
        steps: int. Gradient evaluations.
        method: str. Quadrature rule.
    """

    inputs: dict
    target: int
    output: float
    baseline_output: float
    steps: int
    method: str

    @property
    def total(self):
        """Σ of all attributions (≈ output − baseline_output)."""
        return float(sum(np.sum(value, dtype=np.float64)
                         for value in self.inputs.values()))

    @property
    def completeness_gap(self):
        """total − (output − baseline_output); 0 for exact integration."""
        return self.total - (self.output - self.baseline_output)

    def per_step(self, name):
        """Attribution per time step of a sequence input, summed over the
        feature axis (per frame, per word); None if not attributed."""
        value = self.inputs.get(name)
        if value is None:
            return None
        return value.reshape(value.shape[0], -1).sum(axis=1)


def _as_batch(features):
    return {name: np.asarray(value) for name, value in features.items()}


def _check_single(features):
    sizes = {name: value.shape[0] for name, value in features.items()}
    if set(sizes.values()) != {1}:
        raise ValueError(f"Expected one example (batch dimension 1) per "
                         f"input, found {sizes}.")


class Explainer:
    """Attributions, ablations and attention weights of one model.

    Args:
        model: functional keras.Model over named inputs, returning logits.
        embedding_layer: str. Name of the token embedding layer (words are
            attributed on its output); absent for audio-only models.
        attention_layer: str. Name of a `LuongDotAttention` layer whose
            weights to report (MDREA); absent otherwise.
        baseline: "auto" (zero in the standardised space of models with
            `Standardize` input layers, raw zero otherwise) or "zero" (raw
            zeros); see the module docstring.
    """

    def __init__(self, model, embedding_layer=EMBEDDING_LAYER,
                 attention_layer=ATTENTION_LAYER, baseline="auto"):
        if baseline not in BASELINES:
            raise ValueError(f"baseline={baseline!r}: expected one of "
                             f"{BASELINES}.")
        self.model = model
        self.baseline = baseline
        # Per-feature baseline vectors of standardised inputs ("auto").
        self._feature_means = {}
        if baseline == "auto":
            for name, layer_name in STANDARDIZE_LAYERS.items():
                layer = _layer_or_none(model, layer_name)
                if layer is not None and hasattr(layer, "mean"):
                    self._feature_means[name] = np.asarray(layer.mean,
                                                           np.float32)
        self.input_names = [tensor.name for tensor in model.inputs]
        self.embedding = _layer_or_none(model, embedding_layer)
        if self.embedding is not None and TEXT_IDS not in self.input_names:
            raise ValueError(f"Layer {embedding_layer!r} found but no "
                             f"{TEXT_IDS!r} input; inputs: "
                             f"{self.input_names}.")
        attention = _layer_or_none(model, attention_layer)
        kept = [t for t in model.inputs
                if self.embedding is None or t.name != TEXT_IDS]
        view_inputs = kept + ([self.embedding.output]
                              if self.embedding is not None else [])
        # The view's own input tensors are clones: keep our names, in order.
        self.view_names = [t.name for t in kept] + (
            [EMBEDDED_TEXT] if self.embedding is not None else [])
        outputs = [model.outputs[0]]
        if attention is not None:
            outputs.append(attention.output[1])
        # Re-wires the same layers (shared weights) with the embedded
        # sequence as an input, so that gradients reach it.
        self._view = keras.Model(view_inputs, outputs)
        self.has_attention = attention is not None
        self.attributed = [
            name for name, tensor in zip(self.view_names, view_inputs)
            if tf.as_dtype(tensor.dtype).is_floating]
        # Graph functions: the GRUs' step loops are far too slow eagerly.
        # Shapes vary (frames, path points), hence reduce_retracing.
        self._forward = tf.function(self._run_graph, reduce_retracing=True)
        self._gradients = tf.function(self._gradients_fn,
                                      reduce_retracing=True)

    @property
    def modalities(self):
        """The modalities the model reads: subset of ("audio", "text")."""
        found = []
        if any(name in AUDIO_INPUTS for name in self.input_names):
            found.append("audio")
        if any(name in TEXT_INPUTS for name in self.input_names):
            found.append("text")
        return tuple(found)

    def view_inputs(self, features):
        """Model features → the view's inputs (ids → embedded sequence).

        Returns:
            dict name → np.ndarray, keys `view_names`.
        """
        features = _as_batch(features)
        missing = [n for n in self.input_names if n not in features]
        if missing:
            raise ValueError(f"Missing model inputs {missing}; the model "
                             f"takes {self.input_names}.")
        values = {name: features[name] for name in self.view_names
                  if name != EMBEDDED_TEXT}
        if self.embedding is not None:
            values[EMBEDDED_TEXT] = np.asarray(
                self.embedding(tf.constant(features[TEXT_IDS])))
        return values

    def describe_baseline(self):
        """The baseline in words (for reports)."""
        standardised = sorted(self._feature_means)
        text = ("zero frames, zero prosody and zero word vectors, with the "
                "utterance's own lengths")
        if standardised:
            text += ("; zero in the standardised space of the model's "
                     "--normalize_audio inputs " + ", ".join(standardised)
                     + " (i.e. their training-split means)")
        return text

    def baseline_values(self, features):
        """The IG baseline of each attributed input, as arrays [1, ...].

        Zeros, except standardised inputs under `baseline="auto"`: their
        training mean at every real step (frames past the length keep the
        input's own zeros, so that nothing moves there).
        """
        values = self.view_inputs(features)
        baselines = {}
        for name in self.attributed:
            value = np.zeros_like(values[name], dtype=np.float32)
            mean = self._feature_means.get(name)
            if mean is not None:
                if value.ndim == 3:
                    length = int(np.asarray(
                        values[SEQUENCE_LENGTHS[name]])[0])
                    value[:, :length] = mean
                else:
                    value[:] = mean
            baselines[name] = value
        return baselines

    def _run_graph(self, values):
        outputs = self._view([values[name] for name in self.view_names],
                             training=False)
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        return list(outputs)

    def _run(self, values):
        """[logits, attention weights (if any)] of the view's inputs."""
        return self._forward({name: tf.convert_to_tensor(values[name])
                              for name in self.view_names})

    def logits(self, features):
        """float32 [B, C] logits of model features (via the view)."""
        return np.asarray(self._run(self.view_inputs(features))[0])

    def attention_weights(self, features):
        """float32 [B, T] attention weights, or None without attention."""
        if not self.has_attention:
            return None
        return np.asarray(self._run(self.view_inputs(features))[1])

    def _gradients_fn(self, attributed, fixed, target):
        with tf.GradientTape() as tape:
            tape.watch(attributed)
            values = dict(fixed)
            values.update(attributed)
            logits = self._run_graph(values)[0]
            score = tf.reduce_sum(logits[:, target])
        return tape.gradient(score, attributed)

    def integrated_gradients(self, features, target=None, steps=64,
                             batch_size=32, baselines=None,
                             method="gausslegendre"):
        """Integrated gradients of one example's target logit.

        Args:
            features: dict name → array [1, ...] of the model's inputs.
            target: int or None. Class to explain (None: the predicted one).
            steps: int. Gradient evaluations along the path.
            batch_size: int. Path points evaluated per batch.
            baselines: dict view-input name → array [1, ...] or None.
                `baseline_values(features)` for every attributed input not
                given.
            method: see `quadrature`.

        Returns:
            `Attributions`.
        """
        values = self.view_inputs(features)
        _check_single(values)
        baselines = dict(self.baseline_values(features), **(baselines or {}))
        baseline_values = dict(values, **baselines)
        logits = np.asarray(self._run(values)[0])[0]
        if target is None:
            target = int(np.argmax(logits))
        if not 0 <= target < logits.shape[-1]:
            raise ValueError(f"target {target} outside 0..{len(logits) - 1}.")
        baseline_logits = np.asarray(self._run(baseline_values)[0])[0]
        nodes, weights = quadrature(steps, method)
        deltas = {name: values[name].astype(np.float32)
                  - baselines[name].astype(np.float32)
                  for name in self.attributed}
        totals = {name: np.zeros(values[name].shape[1:], np.float64)
                  for name in self.attributed}
        fixed_names = [n for n in self.view_names if n not in self.attributed]
        for start in range(0, steps, batch_size):
            alphas = nodes[start:start + batch_size].astype(np.float32)
            count = len(alphas)
            attributed = {}
            for name in self.attributed:
                shape = (count,) + (1,) * (values[name].ndim - 1)
                attributed[name] = tf.constant(
                    baselines[name].astype(np.float32)
                    + alphas.reshape(shape) * deltas[name])
            fixed = {name: tf.constant(np.repeat(values[name], count, axis=0))
                     for name in fixed_names}
            gradients = self._gradients(attributed, fixed,
                                        tf.constant(target, tf.int32))
            chunk_weights = weights[start:start + count]
            for name in self.attributed:
                totals[name] += np.tensordot(
                    chunk_weights, np.asarray(gradients[name], np.float64),
                    axes=1)
        result = {}
        for name in self.attributed:
            attribution = deltas[name][0].astype(np.float64) * totals[name]
            length_name = SEQUENCE_LENGTHS.get(name)
            if length_name in values:
                length = int(np.asarray(values[length_name])[0])
                attribution[length:] = 0.0
            result[name] = attribution
        return Attributions(inputs=result, target=int(target),
                            output=float(logits[target]),
                            baseline_output=float(baseline_logits[target]),
                            steps=int(steps), method=method)

    def ablated(self, features, modality):
        """A copy of `features` with one modality made absent (see module
        docstring): its lengths, ids and frames zero, and its utterance-level
        vectors (prosody) at their baseline."""
        if modality not in ("audio", "text"):
            raise ValueError(f"modality={modality!r}: expected audio/text.")
        names = AUDIO_INPUTS if modality == "audio" else TEXT_INPUTS
        result = {}
        for name, value in _as_batch(features).items():
            if name not in names:
                result[name] = value
                continue
            absent = np.zeros_like(value)
            mean = self._feature_means.get(name)
            if mean is not None and value.ndim == 2:
                absent[:] = mean
            result[name] = absent
        return result

    def modality_ablation(self, features):
        """Logits with each modality present/absent.

        Returns:
            dict condition → float32 [C] logits. Conditions: "both" (as
            given), "audio_only" (text absent), "text_only" (audio absent)
            and "neither"; a single-modality model gets "both" and
            "neither" only.
        """
        features = _as_batch(features)
        _check_single(features)
        conditions = {"both": features}
        if len(self.modalities) == 2:
            conditions["audio_only"] = self.ablated(features, "text")
            conditions["text_only"] = self.ablated(features, "audio")
        neither = features
        for modality in self.modalities:
            neither = self.ablated(neither, modality)
        conditions["neither"] = neither
        batch = {name: np.concatenate([c[name] for c in conditions.values()])
                 for name in features}
        logits = self.logits(batch)
        return dict(zip(conditions, logits))


def shapley_modalities(values):
    """Two-player Shapley split of f(both) − f(neither).

    Args:
        values: dict condition → float, conditions as returned by
            `Explainer.modality_ablation` (any scalar of them, e.g. the
            target logit or probability).

    Returns:
        dict modality → float; they sum to both − neither exactly. A
        single-modality model gets everything assigned to "all".
    """
    both, neither = values["both"], values["neither"]
    if "audio_only" not in values:
        return {"all": both - neither}
    audio = 0.5 * ((both - values["text_only"])
                   + (values["audio_only"] - neither))
    text = 0.5 * ((both - values["audio_only"])
                  + (values["text_only"] - neither))
    return {"audio": audio, "text": text}


def _layer_or_none(model, name):
    try:
        return model.get_layer(name)
    except ValueError:
        return None
