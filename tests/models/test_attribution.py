"""Integrated gradients, ablations and attention (models/attribution.py)."""

import numpy as np
import pytest

from models import attribution
from models import registry
from tests import helpers


def _model(name, **overrides):
    kwargs = dict(helpers.tiny_model_kwargs(model=name), **overrides)
    model = registry.build_model(name, **kwargs)
    if name != "ARE":
        # Word vectors of GloVe's scale (the initialiser's std is 0.01), so
        # that words move the logits as much as audio does.
        embedding = model.get_layer("word_embedding").embeddings
        embedding.assign(embedding.numpy() * 40.0)
    return model


def _example(model, audio_length=30, text_length=6, frames=40, seed=0,
             scale=3.0):
    """One padded example; large-scale features so the GRUs saturate and
    the model is far from linear (a harder completeness check)."""
    batch = helpers.padded_batch([audio_length], [text_length],
                                 frames=frames, seed=seed,
                                 names=[t.name for t in model.inputs])
    for name in ("audio_mfcc", "audio_prosody"):
        if name in batch:
            batch[name] = batch[name] * scale
    return batch


def test_quadrature_rules_integrate_polynomials():
    for method, steps in (("gausslegendre", 8), ("trapezoid", 200),
                          ("riemann_middle", 200)):
        nodes, weights = attribution.quadrature(steps, method)
        assert weights.sum() == pytest.approx(1.0)
        assert np.all((nodes >= 0) & (nodes <= 1))
        assert np.dot(weights, nodes ** 3) == pytest.approx(0.25, rel=1e-3)
    with pytest.raises(ValueError, match="method"):
        attribution.quadrature(8, "simpson")


@pytest.mark.parametrize("name", ["ARE", "TRE", "MDRE", "MDREA"])
def test_integrated_gradients_completeness(name):
    model = _model(name)
    explainer = attribution.Explainer(model)
    features = _example(model)
    result = explainer.integrated_gradients(features, steps=64)
    difference = result.output - result.baseline_output
    assert abs(difference) > 0.05  # a non-trivial check
    assert abs(result.completeness_gap) <= 0.03 * abs(difference)
    # The cruder trapezoid rule is within a few % as well.
    trapezoid = explainer.integrated_gradients(features, steps=64,
                                               method="trapezoid")
    assert abs(trapezoid.completeness_gap) <= 0.05 * abs(difference)
    # The outputs are the model's own logits.
    logits = model(features, training=False).numpy()[0]
    assert result.target == int(np.argmax(logits))
    assert result.output == pytest.approx(float(logits[result.target]),
                                          abs=1e-5)
    expected = {"ARE": {"audio_mfcc", "audio_prosody"},
                "TRE": {"word_embedding"}}.get(
        name, {"audio_mfcc", "audio_prosody", "word_embedding"})
    assert set(result.inputs) == expected


@pytest.mark.parametrize("mask_attention", [True, False])
def test_padding_gets_exactly_zero_attribution(mask_attention):
    model = _model("MDREA", mask_attention=mask_attention)
    explainer = attribution.Explainer(model)
    features = _example(model, audio_length=17, text_length=5, frames=40)
    result = explainer.integrated_gradients(features, target=2, steps=16)
    words = result.per_step("word_embedding")
    frames = result.per_step("audio_mfcc")
    assert words.shape == (128,) and frames.shape == (40,)
    assert np.all(result.inputs["word_embedding"][5:] == 0.0)
    assert np.all(result.inputs["audio_mfcc"][17:] == 0.0)
    assert np.all(words[:5] != 0.0) and np.all(frames[:17] != 0.0)
    assert result.target == 2


def test_word_attributions_do_not_depend_on_padding_width():
    model = _model("MDRE")
    explainer = attribution.Explainer(model)
    short = _example(model, frames=30)
    long = _example(model, frames=60)  # same utterance, more padded frames
    a = explainer.integrated_gradients(short, target=1, steps=16)
    b = explainer.integrated_gradients(long, target=1, steps=16)
    np.testing.assert_allclose(a.per_step("word_embedding"),
                               b.per_step("word_embedding"), atol=1e-5)
    np.testing.assert_allclose(a.per_step("audio_mfcc"),
                               b.per_step("audio_mfcc")[:30], atol=1e-5)


def test_attention_weights_sum_to_one_over_real_words():
    model = _model("MDREA")
    explainer = attribution.Explainer(model)
    features = _example(model, text_length=7)
    weights = explainer.attention_weights(features)[0]
    assert weights[:7].sum() == pytest.approx(1.0, abs=1e-5)
    assert np.all(weights[7:] == 0.0)
    assert attribution.Explainer(_model("MDRE")).attention_weights(
        features) is None


def test_modality_ablation_and_shapley():
    model = _model("MDRE")
    explainer = attribution.Explainer(model)
    features = _example(model)
    logits = explainer.modality_ablation(features)
    assert list(logits) == ["both", "audio_only", "text_only", "neither"]
    np.testing.assert_allclose(
        logits["both"], model(features, training=False).numpy()[0],
        atol=1e-5)
    no_text = dict(features, text_ids=np.zeros_like(features["text_ids"]),
                   text_length=np.zeros(1, np.int32))
    np.testing.assert_allclose(
        logits["audio_only"], model(no_text, training=False).numpy()[0],
        atol=1e-5)
    values = {condition: float(v[0]) for condition, v in logits.items()}
    shares = attribution.shapley_modalities(values)
    assert sum(shares.values()) == pytest.approx(
        values["both"] - values["neither"])
    single = attribution.Explainer(_model("ARE")).modality_ablation(
        _example(_model("ARE")))
    assert list(single) == ["both", "neither"]
    assert list(attribution.shapley_modalities(
        {k: float(v[0]) for k, v in single.items()})) == ["all"]


def test_rejects_batches():
    model = _model("TRE")
    batch = helpers.padded_batch([3, 4], [2, 3],
                                 names=[t.name for t in model.inputs])
    with pytest.raises(ValueError, match="one example"):
        attribution.Explainer(model).integrated_gradients(batch)


def test_standardised_inputs_get_their_training_mean_as_baseline():
    rng = np.random.default_rng(4)
    statistics = {"mfcc_mean": rng.normal(5, 1, 39).tolist(),
                  "mfcc_std": rng.uniform(1, 2, 39).tolist(),
                  "prosody_mean": rng.normal(100, 10, 35).tolist(),
                  "prosody_std": rng.uniform(5, 9, 35).tolist()}
    model = _model("MDRE", audio_normalization=statistics)
    features = _example(model, audio_length=12, frames=20)
    auto = attribution.Explainer(model)
    baselines = auto.baseline_values(features)
    np.testing.assert_allclose(baselines["audio_prosody"][0],
                               statistics["prosody_mean"], rtol=1e-6)
    np.testing.assert_allclose(baselines["audio_mfcc"][0, :12],
                               np.tile(statistics["mfcc_mean"], (12, 1)),
                               rtol=1e-6)
    assert np.all(baselines["audio_mfcc"][0, 12:] == 0.0)
    assert np.all(baselines["word_embedding"] == 0.0)
    assert "training-split means" in auto.describe_baseline()
    result = auto.integrated_gradients(features, steps=32)
    difference = result.output - result.baseline_output
    assert abs(result.completeness_gap) <= 0.03 * abs(difference) + 1e-6
    ablated = auto.ablated(features, "audio")
    assert ablated["audio_length"][0] == 0
    np.testing.assert_allclose(ablated["audio_prosody"][0],
                               statistics["prosody_mean"], rtol=1e-6)
    zero = attribution.Explainer(model, baseline="zero")
    assert np.all(zero.baseline_values(features)["audio_prosody"] == 0.0)
    assert np.all(zero.ablated(features, "audio")["audio_prosody"] == 0.0)
    with pytest.raises(ValueError, match="baseline"):
        attribution.Explainer(model, baseline="mean")
