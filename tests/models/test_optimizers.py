"""models/optimizers.py: schedules, Adam/AdamW, the encoder/head split."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from models import optimizers
from models import training


def test_constant_rate_unless_warmup_or_decay():
    config = training.TrainConfig(learning_rate=0.1, num_train_steps=10)
    assert optimizers.learning_rate(0.1, config) == 0.1
    config = training.TrainConfig(learning_rate=0.1, num_train_steps=10,
                                  warmup_steps=2, lr_decay="linear")
    schedule = optimizers.learning_rate(0.1, config)
    assert isinstance(schedule, optimizers.WarmupDecay)
    # Warm-up: (s + 1) / 2; then linear decay over the remaining 8 steps.
    np.testing.assert_allclose([float(schedule(s)) for s in (0, 1, 6, 10)],
                               [0.05, 0.1, 0.05, 0.0], atol=1e-7)
    assert optimizers.WarmupDecay(**schedule.get_config()).get_config() == (
        schedule.get_config())
    with pytest.raises(ValueError, match="decay must be one of"):
        optimizers.WarmupDecay(1.0, 10, decay="step")


def test_adam_or_adamw_by_weight_decay():
    config = training.TrainConfig(learning_rate=0.01)
    adam = optimizers.adam(0.01, config, name="a")
    assert type(adam) is keras.optimizers.Adam and adam.name == "a"
    assert adam.clipvalue == config.clip_value
    adamw = optimizers.adam(0.01, training.TrainConfig(weight_decay=0.1),
                            None)
    assert isinstance(adamw, keras.optimizers.AdamW)


def _model():
    inputs = keras.Input((2,))
    hidden = keras.layers.Dense(2, name="encoder")(inputs)
    return keras.Model(inputs, keras.layers.Dense(1, name="head")(hidden))


def test_encoder_head_optimizer_updates_each_part_at_its_rate():
    model = _model()
    config = training.TrainConfig(learning_rate=0.1)
    optimizer = optimizers.encoder_head_optimizer_fn(0.0, "encoder")(
        config, model)
    optimizer.build(model.trainable_variables)
    before = [v.numpy().copy() for v in model.trainable_variables]
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(tf.ones((3, 2))) ** 2)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    encoder = model.get_layer("encoder").trainable_variables
    for variable, old in zip(model.trainable_variables, before):
        moved = not np.allclose(variable.numpy(), old)
        assert moved == (not any(variable is e for e in encoder))
    assert int(optimizer.iterations) == 1


def test_encoder_head_optimizer_names_a_missing_layer():
    with pytest.raises(ValueError, match="no layer 'wav2vec2'"):
        optimizers.encoder_head_optimizer_fn(1e-5, "wav2vec2")(
            training.TrainConfig(), _model())
    with pytest.raises(ValueError, match="encoder_learning_rate"):
        optimizers.encoder_head_optimizer_fn(-1.0, "encoder")
