"""Separate learning rates for a pretrained encoder and the rest of a model.

Fine-tuning wav2vec2 wants a much smaller learning rate for the pretrained
encoder than for the freshly initialised head (speechbrain's IEMOCAP recipe
uses 1e-5 vs 1e-4). `EncoderHeadOptimizer` holds two Adam optimizers and sends
each variable's gradient to one of them; `encoder_head_optimizer_fn` plugs it
into `training.Trainer(optimizer_fn=...)`.

Both Adams use the Trainer's settings (β1 0.9, β2 0.999, ε 1e-8, element-wise
clip ±10, as `training.make_optimizer`), so with equal learning rates the
result is the same as one Adam over all variables (Adam and value clipping
act on each variable separately).
"""

import math

import keras
import tensorflow as tf

DECAYS = ("none", "cosine", "linear")


@keras.saving.register_keras_serializable(package="mse")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up, then cosine or linear decay, over optimizer steps.

    lr(s) = base · min(1, (s + 1) / warmup_steps) · d(p), with
    p = (s − warmup_steps) / (total_steps − warmup_steps) clipped to [0, 1]
    and d = 1 (none), ½(1 + cos πp) (cosine) or 1 − p (linear), floored at
    `final_ratio`. A function of the optimizer's step counter only, so a
    resumed run (whose checkpoint holds that counter) continues exactly.

    Args:
        learning_rate: float. Peak rate.
        total_steps: int. Steps of the whole run (decay ends there).
        warmup_steps: int. 0 = no warm-up.
        decay: one of `DECAYS`.
        final_ratio: float in [0, 1]. Lowest rate as a share of the peak.
    """

    def __init__(self, learning_rate, total_steps, warmup_steps=0,
                 decay="cosine", final_ratio=0.0):
        if decay not in DECAYS:
            raise ValueError(f"decay must be one of {DECAYS}; found "
                             f"{decay!r}.")
        if total_steps < 1 or warmup_steps < 0:
            raise ValueError("WarmupDecay needs total_steps >= 1 and "
                             f"warmup_steps >= 0; found {total_steps} and "
                             f"{warmup_steps}.")
        self.learning_rate = float(learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.decay = decay
        self.final_ratio = float(final_ratio)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        rate = tf.constant(self.learning_rate, tf.float32)
        if self.warmup_steps:
            rate *= tf.minimum(1.0, (step + 1.0) / self.warmup_steps)
        if self.decay != "none":
            span = max(self.total_steps - self.warmup_steps, 1)
            progress = tf.clip_by_value(
                (step - self.warmup_steps) / span, 0.0, 1.0)
            if self.decay == "cosine":
                factor = 0.5 * (1.0 + tf.cos(math.pi * progress))
            else:
                factor = 1.0 - progress
            rate *= tf.maximum(factor, self.final_ratio)
        return rate

    def get_config(self):
        return {"learning_rate": self.learning_rate,
                "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "decay": self.decay,
                "final_ratio": self.final_ratio}


def learning_rate(base, config):
    """The rate (float) or `WarmupDecay` a `training.TrainConfig` asks for:
    a constant `base` unless it sets `warmup_steps` or a `decay` other than
    "none" (the reference schedule is constant)."""
    warmup = getattr(config, "warmup_steps", 0)
    decay = getattr(config, "lr_decay", "none")
    if not warmup and decay == "none":
        return base
    return WarmupDecay(base, config.num_train_steps, warmup, decay)


def adam(learning_rate_value, config, name=None):
    """Adam as the original (β 0.9/0.999, TF1's ε, element-wise clip), or
    AdamW (decoupled weight decay, not on biases) when
    `config.weight_decay` > 0; the rate follows `learning_rate(...)`."""
    arguments = dict(
        learning_rate=learning_rate(learning_rate_value, config),
        beta_1=0.9, beta_2=0.999, epsilon=config.adam_epsilon,
        clipvalue=config.clip_value)
    if name is not None:
        arguments["name"] = name
    weight_decay = getattr(config, "weight_decay", 0.0)
    if not weight_decay:
        return keras.optimizers.Adam(**arguments)
    optimizer = keras.optimizers.AdamW(weight_decay=weight_decay,
                                       **arguments)
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    return optimizer


def _adam(learning_rate_value, config, name):
    return adam(learning_rate_value, config, name)


class EncoderHeadOptimizer(tf.Module):
    """Two optimizers: one for the encoder's variables, one for the others.

    Has the interface `training.Trainer` needs (`build`, `apply_gradients`)
    and is checkpointable: `tf.train.Checkpoint(optimizer=...)` saves and
    restores both optimizers' iterations and slot variables, so a resumed run
    continues exactly.

    Args:
        encoder_variables: iterable of variables (e.g. a layer's
            `trainable_variables`). Variables are matched by identity, so
            pass the same objects the model's `trainable_variables` holds.
        encoder_optimizer: keras optimizer for those variables.
        head_optimizer: keras optimizer for every other variable.
        name: str.

    Attributes:
        encoder_optimizer, head_optimizer: the two optimizers.
        iterations: the head optimizer's step counter (the head always
            trains; the encoder's counter stays 0 while it is frozen).
    """

    def __init__(self, encoder_variables, encoder_optimizer, head_optimizer,
                 name="encoder_head_optimizer"):
        super().__init__(name=name)
        self.encoder_optimizer = encoder_optimizer
        self.head_optimizer = head_optimizer
        # Ids only: holding the variables here would make the checkpoint
        # track them a second time under this object.
        self._encoder_ids = frozenset(id(v) for v in encoder_variables)

    @property
    def iterations(self):
        return self.head_optimizer.iterations

    def scale_loss(self, loss):
        """As a Keras optimizer's: the loss unchanged (no loss scaling)."""
        return self.head_optimizer.scale_loss(loss)

    def is_encoder_variable(self, variable):
        return id(variable) in self._encoder_ids

    def _split(self, variables):
        encoder, head = [], []
        for variable in variables:
            (encoder if self.is_encoder_variable(variable) else head).append(
                variable)
        return encoder, head

    def build(self, variables):
        """Creates both optimizers' slots for their share of `variables`."""
        encoder, head = self._split(list(variables))
        self.encoder_optimizer.build(encoder)
        self.head_optimizer.build(head)

    def apply_gradients(self, grads_and_vars):
        """Applies each (gradient, variable) pair with its optimizer."""
        encoder, head = [], []
        for gradient, variable in grads_and_vars:
            (encoder if self.is_encoder_variable(variable) else head).append(
                (gradient, variable))
        if encoder:
            self.encoder_optimizer.apply_gradients(encoder)
        if head:
            self.head_optimizer.apply_gradients(head)
        return self.iterations


def encoder_head_optimizer_fn(encoder_learning_rate, encoder_layer_name):
    """An `optimizer_fn(config, model)` for `training.Trainer`.

    The layer `encoder_layer_name` of the model (or every layer named in
    it, when it is a sequence) gets Adam with `encoder_learning_rate`
    (one Adam for all of them); everything else Adam with
    `config.learning_rate`.

    Args:
        encoder_learning_rate: float. 0 keeps the encoder's weights fixed
            (Adam's step is then exactly 0) while its forward pass still runs
            in training mode.
        encoder_layer_name: str, or a sequence of str. Name(s) of the
            encoder layer(s) in the model (`wav2vec2_models.
            ENCODER_LAYER_NAME` for the W2V2 models; with it
            `bert_text_encoder.TEXT_ENCODER_LAYER_NAME` for a
            TRANSFORMER_FUSION with both pretrained encoders).

    Returns:
        callable (training.TrainConfig, keras.Model) → EncoderHeadOptimizer.
    """
    if encoder_learning_rate is None or encoder_learning_rate < 0:
        raise ValueError("encoder_learning_rate must be a float >= 0; found "
                         f"{encoder_learning_rate!r}.")

    names = ((encoder_layer_name,) if isinstance(encoder_layer_name, str)
             else tuple(encoder_layer_name))
    if not names:
        raise ValueError("encoder_layer_name: expected a layer name or a "
                         "non-empty sequence of them; found none.")

    def optimizer_fn(config, model):
        variables = []
        for name in names:
            try:
                encoder = model.get_layer(name)
            except ValueError as error:
                raise ValueError(
                    f"Model {model.name!r} has no layer {name!r} to give "
                    "the encoder learning rate to; its layers are "
                    f"{[layer.name for layer in model.layers]}.") from error
            variables.extend(encoder.trainable_variables)
        return EncoderHeadOptimizer(
            variables,
            _adam(encoder_learning_rate, config, "encoder_adam"),
            _adam(config.learning_rate, config, "head_adam"))

    return optimizer_fn
