"""Fusion of per-modality vectors into one representation.

* `ModalityAttentionFusion`: attention over the modalities (MMMF).
* `fuse`: "concat" ([v_1; ..; v_M]) or "pairwise" (each modality projected,
  then the projections and their pairwise products), TRANSFORMER_FUSION's
  two fusions.

Fusion works on per-utterance vectors [B, D_m]; padding was already handled
by the encoders that produced them.
"""

from typing import Optional, Sequence

import keras
import tensorflow as tf

from models import config_model

FUSIONS = ("concat", "pairwise")

_seed = config_model.offset_seed
_glorot = config_model.glorot


@keras.saving.register_keras_serializable(package="mse")
class ModalityAttentionFusion(keras.layers.Layer):
    """Attention over modalities (MMMF's attention-based modality fusion).

    Each modality vector h_m [B, D] gets a score s_m = v · tanh(W h_m + b)
    (W [D, units], b [units], v [units] shared by the modalities); the
    weights a = softmax_m(s) and the output is Σ_m a_m h_m [B, D]. All
    modality vectors must have the same size D.

    Args:
        units: int. Width of the scoring projection.
        seed: int or None.

    Inputs: a list of M >= 2 tensors [B, D]. Output [B, D] (with
    `return_weights=True` also the weights [B, M]).
    Trainable parameters: D·units + 2·units.
    """

    def __init__(self, units, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.seed = seed

    def build(self, input_shape):
        sizes = {tuple(shape)[-1] for shape in input_shape}
        if len(input_shape) < 2 or len(sizes) != 1 or None in sizes:
            raise ValueError(f"{self.name}: expects >= 2 modality vectors of "
                             f"one known size; found {input_shape}.")
        (size,) = sizes
        self.kernel = self.add_weight(name="kernel", shape=(size, self.units),
                                      initializer=_glorot(self.seed))
        self.bias = self.add_weight(name="bias", shape=(self.units,),
                                    initializer="zeros")
        self.context = self.add_weight(
            name="context", shape=(self.units,),
            initializer=_glorot(_seed(self.seed, 1)))

    def call(self, inputs, return_weights=False):
        stacked = tf.stack(inputs, axis=1)  # [B, M, D]
        keys = tf.tanh(tf.einsum("bmd,du->bmu", stacked, self.kernel)
                       + self.bias)
        weights = tf.nn.softmax(tf.einsum("bmu,u->bm", keys, self.context),
                                axis=-1)
        fused = tf.einsum("bm,bmd->bd", weights, stacked)
        if return_weights:
            return fused, weights
        return fused

    def compute_output_spec(self, inputs, return_weights=False):
        fused = keras.KerasTensor(inputs[0].shape, dtype=self.compute_dtype)
        if return_weights:
            return fused, keras.KerasTensor(
                (inputs[0].shape[0], len(inputs)), dtype=self.compute_dtype)
        return fused

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "seed": self.seed}


def fuse(vectors: Sequence[keras.KerasTensor], names: Sequence[str],
         fusion: str = "concat", fusion_units: int = 64,
         seed: Optional[int] = None,
         seed_offset: int = 9) -> keras.KerasTensor:
    """Fuses M per-modality vectors [B, D_m] into one [B, F].

    "concat": F = Σ D_m, the layer `fused`. "pairwise": each v_m → Dense(U,
    tanh) p_m (layer `<name>_fusion_projection`, seed + seed_offset + m),
    then `fused` = [p_1; ..; p_M; p_i ⊙ p_j for i < j] (layers
    `<name_i>_<name_j>_interaction`): F = M·U + M(M−1)/2·U.

    Args:
        vectors: M tensors [B, D_m].
        names: M modality names (layer-name prefixes).
        fusion: one of `FUSIONS`.
        fusion_units: U ("pairwise" only).
        seed: int or None.
        seed_offset: seed offset of the first projection.
    """
    config_model.check_choice("fusion", fusion, FUSIONS)
    if fusion == "concat":
        return keras.layers.Concatenate(name="fused")(list(vectors))
    projected = [keras.layers.Dense(
        fusion_units, activation="tanh",
        kernel_initializer=_glorot(_seed(seed, seed_offset + index)),
        name=f"{names[index]}_fusion_projection")(vector)
        for index, vector in enumerate(vectors)]
    products = [
        keras.layers.Multiply(
            name=f"{names[i]}_{names[j]}_interaction")(
                [projected[i], projected[j]])
        for i in range(len(projected))
        for j in range(i + 1, len(projected))]
    return keras.layers.Concatenate(name="fused")(projected + products)
