"""Feature-level ensemble: a new head on frozen trained models' features.

Each member is a trained functional model with a layer named `logits`; its
input to that layer (e.g. MDRE's fused vector, ARE's e_A) is its feature
vector. The ensemble feeds the union of the members' named inputs (members
sharing an input name share the tensor), runs every member frozen and in
inference mode (no dropout), concatenates their feature vectors and learns
one linear classifier on top (`ScalarBiasDense`, like the Yoon heads).
Padding is handled by each member as in its own model.
"""

import keras

from models import layers


def member_features(member, index):
    """A frozen sub-model: the member's named inputs → its feature vector."""
    extractor = keras.Model(member.input, member.get_layer("logits").input,
                            name=f"member_{index}_{member.name}")
    extractor.trainable = False
    return extractor


def build_feature_ensemble(members, num_classes, seed=None,
                           name="FEATURE_ENSEMBLE"):
    """Builds the ensemble model; only its head is trainable.

    Args:
        members: sequence of trained keras.Model (functional, dict inputs,
            a `logits` layer).
        num_classes: int.
        seed: int or None. Seed of the head's initialiser.
        name: str.

    Returns:
        keras.Model over the union of the members' inputs → logits [B, C].
    """
    if len(members) < 2:
        raise ValueError(f"A feature ensemble needs at least two members, "
                         f"got {len(members)}.")
    inputs, features = {}, []
    for index, member in enumerate(members):
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
        features.append(member_features(member, index)(member_inputs,
                                                        training=False))
    fused = keras.layers.Concatenate(name="member_features")(features)
    logits = layers.ScalarBiasDense(num_classes, seed=seed,
                                    name="logits")(fused)
    return keras.Model(inputs, logits, name=name)
