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

import keras
import tensorflow as tf


def _adam(learning_rate, config, name):
    return keras.optimizers.Adam(
        learning_rate=learning_rate, beta_1=0.9, beta_2=0.999,
        epsilon=config.adam_epsilon, clipvalue=config.clip_value, name=name)


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
