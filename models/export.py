"""SavedModel export with an explicit, named serving signature.

`serving_default` takes the model's inputs by name (batch and time
dimensions `None`) and returns:

* `logits` float32 [B, C]: what the model computes.
* `probabilities` float32 [B, C]: softmax of the logits. (The Yoon models
  are trained with per-class sigmoid cross-entropy, so the softmax is a
  normalised score; its argmax is the model's prediction.)
* `predicted_label` int32 [B] and `predicted_name` string [B].

Every export also carries a description of itself, so that a SavedModel can
be used without anything else (`inference.export_run` adds the feature
parameters and the vocabulary through this):

* `assets/metadata.json`: a JSON object holding at least `label_names` and
  `inputs` (name → dtype and shape of each serving input), plus whatever
  `metadata` the caller passes;
* a `metadata` signature (no inputs) returning that same JSON as the string
  `metadata_json`, for clients that only see signatures (TF Serving,
  `saved_model_cli run`);
* any extra `assets` files (e.g. `assets/vocabulary.json`).

Assets are tracked by the SavedModel (`tf.saved_model.Asset`), so copying
or serving the folder keeps them. The export is written to a temporary
folder and renamed, so a crash never leaves a half-written SavedModel
behind.
"""

import json
import os
import shutil
import tempfile

import tensorflow as tf

METADATA_ASSET = "metadata.json"


class _ServingModule(tf.Module):

    def __init__(self, model, label_names, metadata_json=None,
                 asset_paths=None):
        super().__init__()
        self.model = model
        self.label_names = tf.constant(list(label_names))
        specs = {
            tensor.name: tf.TensorSpec([None] + list(tensor.shape[1:]),
                                       tensor.dtype, name=tensor.name)
            for tensor in model.inputs
        }
        self.serve = tf.function(self._serve, input_signature=[specs])
        if metadata_json is not None:
            self._metadata_json = tf.constant(metadata_json)
            self.metadata = tf.function(self._metadata, input_signature=[])
        # A dict of tracked Assets: saved into assets/ under their own
        # file names, and their loaded paths point into the export.
        self.assets = {name: tf.saved_model.Asset(path)
                       for name, path in (asset_paths or {}).items()}

    def _serve(self, inputs):
        logits = tf.cast(self.model(inputs, training=False), tf.float32)
        label = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return {
            "logits": logits,
            "probabilities": tf.nn.softmax(logits, axis=-1),
            "predicted_label": label,
            "predicted_name": tf.gather(self.label_names, label),
        }

    def _metadata(self):
        return {"metadata_json": self._metadata_json}


def serving_function(model, label_names):
    """The `serving_default` function of an export, without exporting.

    Lets a caller holding the Keras model compute exactly what the exported
    signature computes.

    Returns:
        tf.function taking a dict of the model's inputs by name and
        returning the dict of outputs described in the module docstring.
    """
    return _ServingModule(model, label_names).serve


def input_description(model):
    """name → {"dtype", "shape"} of the model's inputs (None: any size)."""
    return {
        tensor.name: {"dtype": str(tf.as_dtype(tensor.dtype).name),
                      "shape": [None] + [None if d is None else int(d)
                                         for d in tensor.shape[1:]]}
        for tensor in model.inputs
    }


def _check_asset_name(name):
    if (not isinstance(name, str) or name in ("", ".", "..")
            or os.path.basename(name) != name or name == METADATA_ASSET):
        raise ValueError(f"Asset name {name!r}: expected a plain file name "
                         f"other than {METADATA_ASSET!r}.")


def export_saved_model(model, export_dir, label_names, metadata=None,
                       assets=None):
    """Writes `model` as a SavedModel with a `serving_default` signature.

    Args:
        model: keras.Model with named inputs.
        export_dir: str. Created (replaced if it exists) atomically.
        label_names: sequence of str, one per class.
        metadata: JSON-serialisable dict or None. Stored, with
            `label_names` and `inputs` added, as `assets/metadata.json` and
            returned by the `metadata` signature.
        assets: dict file name → str or bytes, or None. Extra files written
            under `assets/` (plain file names only).

    Returns:
        str. `export_dir`.

    Raises:
        ValueError: label names that do not match the model's outputs, a
            metadata key `label_names`/`inputs` that disagrees with them,
            metadata that is not JSON, or a bad asset name.
    """
    num_classes = model.outputs[0].shape[-1]
    if num_classes != len(label_names):
        raise ValueError(f"The model has {num_classes} outputs but "
                         f"{len(label_names)} label names were given: "
                         f"{list(label_names)}.")
    description = dict(metadata or {})
    for key, value in (("label_names", list(label_names)),
                       ("inputs", input_description(model))):
        if key in description and description[key] != value:
            raise ValueError(f"metadata[{key!r}] = {description[key]!r} "
                             f"disagrees with the model's {value!r}.")
        description[key] = value
    try:
        metadata_json = json.dumps(description, indent=2, sort_keys=True)
    except (TypeError, ValueError) as error:
        raise ValueError(f"metadata is not JSON-serialisable ({error}).")
    assets = dict(assets or {})
    for name in assets:
        _check_asset_name(name)
    export_dir = os.path.normpath(export_dir)
    parent = os.path.dirname(os.path.abspath(export_dir))
    os.makedirs(parent, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=".tmp-export-", dir=parent)
    # The asset files are staged next to the export (tf.saved_model.save
    # copies them into assets/), and removed whatever happens.
    stage_dir = tempfile.mkdtemp(prefix=".tmp-assets-", dir=parent)
    try:
        asset_paths = {}
        for name, content in {METADATA_ASSET: metadata_json,
                              **assets}.items():
            path = os.path.join(stage_dir, name)
            mode = "wb" if isinstance(content, bytes) else "w"
            with open(path, mode) as f:
                f.write(content)
            asset_paths[name] = path
        module = _ServingModule(model, label_names, metadata_json,
                                asset_paths)
        tf.saved_model.save(module, tmp_dir,
                            signatures={"serving_default": module.serve,
                                        "metadata": module.metadata})
        if os.path.exists(export_dir):
            shutil.rmtree(export_dir)
        os.replace(tmp_dir, export_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(stage_dir, ignore_errors=True)
    return export_dir


def read_metadata(export_dir):
    """Returns the metadata dict of an export (`assets/metadata.json`).

    Raises:
        FileNotFoundError: no metadata (not a SavedModel written by
            `export_saved_model`, or one written before it stored any).
        ValueError: the file is not a JSON object.
    """
    path = os.path.join(export_dir, "assets", METADATA_ASSET)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: missing (not a SavedModel written "
                                "by models/export.py with metadata).")
    with open(path) as f:
        try:
            metadata = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error}).")
    if not isinstance(metadata, dict):
        raise ValueError(f"{path}: expected a JSON object, found "
                         f"{type(metadata).__name__}.")
    return metadata
