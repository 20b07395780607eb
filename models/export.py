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
or serving the folder keeps them.

Extra signatures (`input_signatures`, e.g. `serve_raw` from
`inference.export_run`) take other inputs, turn them into the model's
inputs in the graph and return the same outputs as `serving_default`; the
resources they use (lookup tables) are tracked through `resources`, so that
the SavedModel's init op initialises them.

Variables: the SavedModel tracks the `tf.Variable`s the serving functions
read, not the Keras model. A Keras 3 variable is a wrapper around a
`tf.Variable`; saving a tracked Keras model writes each weight twice into
the graph: the wrapper's own copy (restored by the SavedModel's saver) and
the inner `tf.Variable` that the traced functions actually read (restored
by nobody). `tf.saved_model.load` resolves the functions' captures through
the object graph and hides this, but the TF1 session loader of
`saved_model_cli run` and TensorFlow Serving runs the saver's restore op
and then finds the read variables uninitialised ("Could not find variable
logits/bias"). Tracking the captured variables themselves gives one copy of
each, which the saver restores and the functions read, for any model
(pretrained encoders included: their restored variables are captured too).

Target folders: an export only ever replaces an earlier export written by
this module (`is_export`), and only with `overwrite`; any other existing
folder (unless empty) is an `ExportError` and is left untouched. The export
is written to a temporary folder next to the target and renamed into place,
so a crash never leaves a half-written SavedModel behind and a model
server watching the parent folder never sees one. `version_dir` picks the
TF Serving layout `<base>/<version>/`.
"""

import json
import os
import shutil
import tempfile

import tensorflow as tf

METADATA_ASSET = "metadata.json"


class ExportError(ValueError):
    """A target folder the export must not write to (message: one line)."""


def input_specs(model):
    """name → TensorSpec of the model's inputs (batch and time: None)."""
    return {
        tensor.name: tf.TensorSpec([None] + list(tensor.shape[1:]),
                                   tensor.dtype, name=tensor.name)
        for tensor in model.inputs
    }


def _captured_variables(functions):
    """The tf.Variables the traced functions read (deduplicated, in order).

    Each function has an input signature, so it has one concrete function.
    """
    variables, seen = [], set()
    for function in functions:
        for variable in function.get_concrete_function().variables:
            if id(variable) not in seen:
                seen.add(id(variable))
                variables.append(variable)
    return variables


class _ServingModule(tf.Module):

    def __init__(self, model, label_names, metadata_json=None,
                 asset_paths=None, input_signatures=None, resources=()):
        super().__init__()
        # The model stays out of the tracked attributes (see the module
        # docstring, "Variables"): only a closure holds it.
        self._call_model = lambda inputs: model(inputs, training=False)
        self.label_names = tf.constant(list(label_names))
        self.serve = tf.function(self._serve,
                                 input_signature=[input_specs(model)])
        self._signature_names = ["serving_default"]
        for name, (to_inputs, specs) in (input_signatures or {}).items():
            setattr(self, name, tf.function(self._from(to_inputs),
                                            input_signature=[specs]))
            self._signature_names.append(name)
        if metadata_json is not None:
            self._metadata_json = tf.constant(metadata_json)
            self.metadata = tf.function(self._metadata, input_signature=[])
            self._signature_names.append("metadata")
        # Tracked: the resources of the input functions (their tables are
        # initialised by the SavedModel's init op) ...
        self.resources = list(resources)
        # ... and exactly the variables the functions read.
        self.model_variables = _captured_variables(
            self.signatures().values())
        # A dict of tracked Assets: saved into assets/ under their own
        # file names, and their loaded paths point into the export.
        self.assets = {name: tf.saved_model.Asset(path)
                       for name, path in (asset_paths or {}).items()}

    def signatures(self):
        """name → tf.function of every signature of the export."""
        return {name: getattr(self, "serve" if name == "serving_default"
                              else name)
                for name in self._signature_names}

    def _serve(self, inputs):
        logits = tf.cast(self._call_model(inputs), tf.float32)
        label = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return {
            "logits": logits,
            "probabilities": tf.nn.softmax(logits, axis=-1),
            "predicted_label": label,
            "predicted_name": tf.gather(self.label_names, label),
        }

    def _from(self, to_inputs):
        def serve_from(inputs):
            return self._serve(to_inputs(inputs))
        return serve_from

    def _metadata(self):
        return {"metadata_json": self._metadata_json}


def serving_function(model, label_names, input_signatures=None,
                     resources=()):
    """The signature functions of an export, without exporting.

    Lets a caller holding the Keras model compute exactly what the exported
    signatures compute.

    Args:
        model, label_names, input_signatures, resources: as
            `export_saved_model`.

    Returns:
        The `serving_default` tf.function (taking a dict of the model's
        inputs by name and returning the dict of outputs described in the
        module docstring) when `input_signatures` is None; else a dict
        signature name → tf.function (`serving_default` included).
    """
    module = _ServingModule(model, label_names,
                            input_signatures=input_signatures,
                            resources=resources)
    if input_signatures is None:
        return module.serve
    return module.signatures()


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


def is_export(directory):
    """Whether `directory` is a SavedModel written by `export_saved_model`
    (saved_model.pb and assets/metadata.json; not a symbolic link)."""
    return (os.path.isdir(directory) and not os.path.islink(directory)
            and os.path.isfile(os.path.join(directory, "saved_model.pb"))
            and os.path.isfile(os.path.join(directory, "assets",
                                            METADATA_ASSET)))


def check_target(export_dir, overwrite=False):
    """Raises ExportError unless an export may be written to `export_dir`.

    Allowed: a missing path, an empty folder, or (with `overwrite`) an
    earlier export (`is_export`).
    """
    if not os.path.lexists(export_dir):
        return
    if (os.path.isdir(export_dir) and not os.path.islink(export_dir)
            and not os.listdir(export_dir)):
        return
    if not is_export(export_dir):
        raise ExportError(
            f"{export_dir}: exists and is not an export of this toolkit (no "
            f"saved_model.pb with assets/{METADATA_ASSET}); it is left "
            "untouched: choose another folder.")
    if not overwrite:
        raise ExportError(f"{export_dir}: an export already exists; pass "
                          "--overwrite to replace it.")


def version_dir(export_base, version=None, overwrite=False):
    """`<export_base>/<version>`, the layout TensorFlow Serving loads.

    Args:
        export_base: str. The model's base folder (created if missing).
            Entries whose names are not integers are ignored, as the
            model server does.
        version: int or None. None: one more than the highest existing
            version (1 in an empty base).
        overwrite: bool. Whether an existing export of that version may be
            replaced.

    Returns:
        str. The version folder (not created yet).

    Raises:
        ExportError: `export_base` is not a folder, a version < 1, or a
            version folder that may not be replaced (`check_target`).
    """
    if os.path.lexists(export_base) and not os.path.isdir(export_base):
        raise ExportError(f"{export_base}: --export_base must be a folder "
                          "(holding one sub-folder per version); found a "
                          "file.")
    if version is None:
        existing = [int(name) for name in (os.listdir(export_base)
                                           if os.path.isdir(export_base)
                                           else [])
                    if name.isdigit()]
        version = max(existing, default=0) + 1
    if int(version) < 1:
        raise ExportError(f"--version must be a positive integer; found "
                          f"{version}.")
    path = os.path.join(export_base, str(int(version)))
    check_target(path, overwrite)
    return path


def export_saved_model(model, export_dir, label_names, metadata=None,
                       assets=None, input_signatures=None, resources=(),
                       overwrite=False):
    """Writes `model` as a SavedModel with a `serving_default` signature.

    Args:
        model: keras.Model with named inputs.
        export_dir: str. Created atomically; see `check_target` for what
            may already be there.
        label_names: sequence of str, one per class.
        metadata: JSON-serialisable dict or None. Stored, with
            `label_names` and `inputs` added, as `assets/metadata.json` and
            returned by the `metadata` signature.
        assets: dict file name → str or bytes, or None. Extra files written
            under `assets/` (plain file names only).
        input_signatures: dict signature name → (to_inputs, specs) or None.
            Each is one more signature taking the inputs `specs` (dict
            name → TensorSpec) and returning the `serving_default` outputs
            of the model inputs `to_inputs(dict of tensors)` computes (a
            dict name → tensor; traced, so TensorFlow ops only).
        resources: sequence of trackables (e.g. tf.Modules holding lookup
            tables) that the `to_inputs` functions use.
        overwrite: bool. Whether an earlier export at `export_dir` may be
            replaced.

    Returns:
        str. `export_dir`.

    Raises:
        ExportError: `export_dir` holds something else than an earlier
            export, or one without `overwrite` (nothing is written).
        ValueError: label names that do not match the model's outputs, a
            metadata key `label_names`/`inputs` that disagrees with them,
            metadata that is not JSON, or a bad asset or signature name.
    """
    num_classes = model.outputs[0].shape[-1]
    if num_classes != len(label_names):
        raise ValueError(f"The model has {num_classes} outputs but "
                         f"{len(label_names)} label names were given: "
                         f"{list(label_names)}.")
    reserved = {"serving_default", "metadata", "serve"}
    for name in input_signatures or {}:
        if name in reserved or not name.isidentifier():
            raise ValueError(f"Signature name {name!r}: expected an "
                             f"identifier other than {sorted(reserved)}.")
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
    check_target(export_dir, overwrite)
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
                                asset_paths, input_signatures, resources)
        tf.saved_model.save(module, tmp_dir,
                            signatures=module.signatures())
        _replace_directory(tmp_dir, export_dir, parent)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(stage_dir, ignore_errors=True)
    return export_dir


def _replace_directory(new_dir, target, parent):
    """Renames `new_dir` to `target`. An existing export at `target`
    (allowed by `check_target`) is moved aside first and deleted only once
    the new one is in place (restored if that rename fails)."""
    # Not common.atomic_files.atomic_directory: that one deletes the old
    # folder before renaming the new one in, so a failed rename would leave
    # no export at all; a served export must stay in place until its
    # replacement is.
    if not os.path.lexists(target):
        os.replace(new_dir, target)
        return
    if not os.listdir(target):
        os.rmdir(target)
        os.replace(new_dir, target)
        return
    aside = tempfile.mkdtemp(prefix=".tmp-replaced-", dir=parent)
    os.rmdir(aside)
    os.replace(target, aside)
    try:
        os.replace(new_dir, target)
    except BaseException:
        os.replace(aside, target)
        raise
    shutil.rmtree(aside, ignore_errors=True)


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
