"""SavedModel export with an explicit, named serving signature.

`serving_default` takes the model's inputs by name (batch and time
dimensions `None`) and returns:

* `logits` float32 [B, C]: what the model computes.
* `probabilities` float32 [B, C]: softmax of the logits. (The Yoon models
  are trained with per-class sigmoid cross-entropy, so the softmax is a
  normalised score; its argmax is the model's prediction.)
* `predicted_label` int32 [B] and `predicted_name` string [B].

The export is written to a temporary folder and renamed, so a crash never
leaves a half-written SavedModel behind.
"""

import os
import shutil
import tempfile

import tensorflow as tf


class _ServingModule(tf.Module):

    def __init__(self, model, label_names):
        super().__init__()
        self.model = model
        self.label_names = tf.constant(list(label_names))
        specs = {
            tensor.name: tf.TensorSpec([None] + list(tensor.shape[1:]),
                                       tensor.dtype, name=tensor.name)
            for tensor in model.inputs
        }
        self.serve = tf.function(self._serve, input_signature=[specs])

    def _serve(self, inputs):
        logits = tf.cast(self.model(inputs, training=False), tf.float32)
        label = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return {
            "logits": logits,
            "probabilities": tf.nn.softmax(logits, axis=-1),
            "predicted_label": label,
            "predicted_name": tf.gather(self.label_names, label),
        }


def export_saved_model(model, export_dir, label_names):
    """Writes `model` as a SavedModel with a `serving_default` signature.

    Args:
        model: keras.Model with named inputs.
        export_dir: str. Created (replaced if it exists) atomically.
        label_names: sequence of str, one per class.

    Returns:
        str. `export_dir`.
    """
    num_classes = model.outputs[0].shape[-1]
    if num_classes != len(label_names):
        raise ValueError(f"The model has {num_classes} outputs but "
                         f"{len(label_names)} label names were given: "
                         f"{list(label_names)}.")
    export_dir = os.path.normpath(export_dir)
    parent = os.path.dirname(os.path.abspath(export_dir))
    os.makedirs(parent, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=".tmp-export-", dir=parent)
    try:
        module = _ServingModule(model, label_names)
        tf.saved_model.save(module, tmp_dir,
                            signatures={"serving_default": module.serve})
        if os.path.exists(export_dir):
            shutil.rmtree(export_dir)
        os.replace(tmp_dir, export_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return export_dir
