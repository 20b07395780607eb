"""The four Yoon models: exact parameter counts, masking, attention, config."""

import keras
import numpy as np
import pytest

from models import layers
from models import registry
from tests import helpers



def _count(model):
    return helpers.count_trainable(model)


@pytest.mark.parametrize("name,expected", [
    ("ARE", lambda v: 144941),
    ("TRE", lambda v: 300 * v + 301401),
    ("MDRE", lambda v: 300 * v + 492966),
    ("MDREA", lambda v: 300 * v + 493202),
])
def test_reference_parameter_counts(name, expected):
    vocab_size = 3747
    model = registry.build_model(
        name, **registry.model_arguments(name, vocab_size=vocab_size))
    assert _count(model) == expected(vocab_size)


def test_text_count_without_glove_matches_general_formula():
    e, v = 100, 50
    model = registry.build_model("TRE", vocab_size=v, embedding_dim=e)
    assert _count(model) == e * v + 600 * (e + 201) + 801


def test_unknown_model_lists_valid_ones():
    with pytest.raises(ValueError, match="ARE, TRE, MDRE, MDREA"):
        registry.build_model("LSTM")
    with pytest.raises(ValueError, match="ARE has no option 'hiden_units'"):
        registry.build_model("ARE", hiden_units=3)


def _batch(model, lengths_audio, lengths_text, frames=12):
    return helpers.padded_batch(lengths_audio, lengths_text, frames,
                                names=[t.name for t in model.inputs])


@pytest.mark.parametrize("name", ["ARE", "TRE", "MDRE", "MDREA"])
def test_padded_batch_equals_each_example_alone(name):
    model = registry.build_model(
        name, **helpers.tiny_model_kwargs(model=name))
    lengths_audio, lengths_text = [12, 5, 1, 0], [7, 128, 1, 3]
    batch = _batch(model, lengths_audio, lengths_text)
    helpers.assert_padded_batch_equals_alone(model, batch, lengths_audio)


def test_gru_outputs_are_zero_past_length_and_state_is_at_length():
    gru = layers.TF1GRU(4, seed=0)
    sequence = np.random.default_rng(0).standard_normal(
        (2, 6, 3)).astype(np.float32)
    outputs, state = gru([sequence, np.array([4, 0], np.int32)])
    outputs, state = outputs.numpy(), state.numpy()
    assert np.all(outputs[0, 4:] == 0) and np.all(outputs[1] == 0)
    np.testing.assert_allclose(state[0], outputs[0, 3], atol=1e-6)
    assert np.all(state[1] == 0)


def test_gru_initialisation_is_tf1():
    gru = layers.TF1GRU(5, seed=0)
    gru([np.zeros((1, 2, 3), np.float32), np.array([2], np.int32)])
    cell = gru.gru.cell
    kernel = np.concatenate([cell.kernel.numpy(),
                             cell.recurrent_kernel.numpy()])  # [I+H, 3H]
    # Orthogonal as a whole, like TF1's initialiser: the gate kernel
    # [8, 10] has orthonormal rows, the candidate kernel [8, 5] columns.
    gate = np.concatenate([kernel[:, 5:10], kernel[:, :5]], axis=1)
    np.testing.assert_allclose(gate @ gate.T, np.eye(8), atol=1e-5)
    candidate = kernel[:, 10:]
    np.testing.assert_allclose(candidate.T @ candidate, np.eye(5), atol=1e-5)
    np.testing.assert_array_equal(cell.bias.numpy(), [1] * 10 + [0] * 5)
    assert not cell.reset_after


def _attention_weights(model, batch):
    attention = model.get_layer("text_attention")
    probe = keras.Model(model.inputs, attention.output)
    return probe(batch, training=False)[1].numpy()


def test_masked_attention_weights_sum_to_one_over_real_tokens():
    model = registry.build_model(
        "MDREA", **helpers.tiny_model_kwargs(model="MDREA"))
    lengths = [7, 128, 1, 0]
    weights = _attention_weights(model, _batch(model, [3, 4, 5, 6], lengths))
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)
    for row, length in enumerate(lengths[:3]):
        assert np.all(weights[row, length:] == 0)
        assert np.all(weights[row, :length] > 0)


def test_unmasked_attention_gives_padding_weight_like_the_paper_code():
    model = registry.build_model("MDREA", mask_attention=False,
                                 **helpers.tiny_model_kwargs(model="MDREA"))
    weights = _attention_weights(model, _batch(model, [3, 4], [7, 2]))
    assert weights[:, 7:].sum() > 0.5


def test_dropout_only_in_training():
    kwargs = dict(helpers.tiny_model_kwargs(model="MDREA"),
                  audio_keep_prob=0.5, text_keep_prob=0.5)
    model = registry.build_model("MDREA", **kwargs)
    batch = _batch(model, [12, 5], [7, 9])
    first = model(batch, training=False).numpy()
    np.testing.assert_array_equal(first, model(batch, training=False).numpy())
    assert not np.allclose(first, model(batch, training=True).numpy())


@pytest.mark.parametrize("name", ["ARE", "TRE", "MDRE", "MDREA"])
def test_config_round_trip(name):
    kwargs = dict(helpers.tiny_model_kwargs(model=name), audio_layers=2,
                  audio_normalization={"mfcc_mean": [0.5] * 39,
                                       "mfcc_std": [2.0] * 39,
                                       "prosody_mean": [1.0] * 35,
                                       "prosody_std": [3.0] * 35})
    model = registry.build_model(name,
                                 **registry.model_arguments(name, **kwargs))
    helpers.assert_config_round_trip(model)


def test_scalar_bias_dense_has_one_bias():
    layer = layers.ScalarBiasDense(4, seed=0)
    out = layer(np.ones((2, 3), np.float32))
    assert out.shape == (2, 4)
    assert layer.bias.shape == (1,)
    assert np.all(np.abs(layer.kernel.numpy()) <= 0.25)


def test_gru_state_only_mode_gives_the_same_state():
    sequence = np.random.default_rng(1).standard_normal(
        (2, 5, 3)).astype(np.float32)
    lengths = np.array([5, 2], np.int32)
    full = layers.TF1GRU(4, seed=2)
    state_only = layers.TF1GRU(4, return_sequences=False, seed=2)
    _, state = full([sequence, lengths])
    np.testing.assert_allclose(state_only([sequence, lengths]).numpy(),
                               state.numpy(), atol=1e-6)


def test_masked_attention_is_finite_in_float16():
    attention = layers.LuongDotAttention(mask_attention=True)
    sequence = np.ones((2, 4, 3), np.float16)
    query = np.ones((2, 3), np.float16)
    context, weights = attention([sequence, query,
                                  np.array([0, 2], np.int32)])
    assert np.all(np.isfinite(context.numpy()))
    np.testing.assert_allclose(weights.numpy()[1], [0.5, 0.5, 0, 0])
