"""models/fusion.py: attention over modalities and the concat/pairwise
fusions."""

import keras
import numpy as np
import pytest

from models import fusion


def test_modality_attention_weights_are_a_softmax_over_modalities():
    layer = fusion.ModalityAttentionFusion(5, seed=0)
    rng = np.random.default_rng(0)
    vectors = [rng.standard_normal((2, 3)).astype(np.float32)
               for _ in range(3)]
    fused, weights = layer(vectors, return_weights=True)
    assert layer.count_params() == 3 * 5 + 2 * 5
    np.testing.assert_allclose(weights.numpy().sum(axis=1), 1.0, rtol=1e-6)
    expected = np.einsum("bm,mbd->bd", weights.numpy(), np.stack(vectors))
    np.testing.assert_allclose(fused.numpy(), expected, rtol=1e-5)
    assert fusion.ModalityAttentionFusion.from_config(
        layer.get_config()).get_config() == layer.get_config()


def test_modality_attention_needs_vectors_of_one_size():
    layer = fusion.ModalityAttentionFusion(5)
    with pytest.raises(ValueError, match="one known size"):
        layer([np.ones((2, 3), np.float32), np.ones((2, 4), np.float32)])


@pytest.mark.parametrize("kind, width, names", [
    ("concat", 2 + 3 + 4, ["fused"]),
    ("pairwise", 3 * 6 + 3 * 6,
     ["a_fusion_projection", "b_fusion_projection", "c_fusion_projection",
      "a_b_interaction", "a_c_interaction", "b_c_interaction", "fused"]),
])
def test_fuse_widths_and_layer_names(kind, width, names):
    inputs = [keras.Input((d,)) for d in (2, 3, 4)]
    fused = fusion.fuse(inputs, ("a", "b", "c"), kind, fusion_units=6,
                        seed=0)
    model = keras.Model(inputs, fused)
    assert fused.shape == (None, width)
    assert [layer.name for layer in model.layers[3:]] == names
    if kind == "pairwise":
        assert model.count_params() == (2 + 1 + 3 + 1 + 4 + 1) * 6


def test_fuse_rejects_an_unknown_fusion():
    with pytest.raises(ValueError, match="fusion must be one of"):
        fusion.fuse([keras.Input((2,))], ("a",), "sum")
