"""TF-Hub handles / SavedModels as the weights of Keras 3 layers.

This is the only module of the project that imports `tensorflow_hub`. It holds
what every pretrained-encoder layer (`models/wav2vec2_encoder.py`,
`models/bert_text_encoder.py`) needs, whatever the encoder computes:

* `resolve_handle` / `load_saved_model`: a TF-Hub URL or a local directory →
  a loaded TF2 SavedModel, with errors that name the handle and the path.
* `find_endpoint` and `traced_calls`: which function of the SavedModel to
  call (its `__call__` in TF-Hub's reusable form, else a signature) and the
  argument/output specs it was traced for, for the encoder to check.
* `track_saved_model_variables`: registers each of the SavedModel's
  `tf.Variable`s on a layer as a `keras.Variable` that wraps (not copies) it.

Why not `hub.KerasLayer`: it is a tf_keras layer and does not work inside
Keras 3 models (it cannot take KerasTensors, and wrapped in a Keras 3 layer its
variables are invisible, so the encoder silently stays frozen). With the
variables registered as above, Keras optimizers update exactly the variables
the SavedModel's functions read, and `model.export()` / `tf.saved_model.save`
write them out again.
"""

import contextlib
import os
import re
import socket

import keras
import tensorflow as tf
import tensorflow_hub as hub

# Per-socket-operation timeout while resolving URL handles: an unreachable
# host fails within this many seconds instead of hanging, while a slow but
# live download (each read makes progress) is not cut off.
_URL_TIMEOUT_S = 30.0
_URL_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@contextlib.contextmanager
def _socket_timeout(seconds):
    # urllib (used by tensorflow_hub) waits forever by default on a host that
    # never answers; a default socket timeout bounds each connect/read.
    previous = socket.getdefaulttimeout()
    if previous is None:
        socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        if previous is None:
            socket.setdefaulttimeout(None)


def is_url(handle):
    """Whether a handle is a URL resolved through TF-Hub (not a path)."""
    return bool(_URL_PATTERN.match(handle)) and not handle.startswith(
            "file://")


def resolve_handle(handle, owner="SavedModel"):
    """Turns a TF-Hub handle into a local SavedModel directory.

    URL handles (https://tfhub.dev/..., gs://...) go through
    `tensorflow_hub.resolve`, which downloads once into the TF-Hub cache
    (`$TFHUB_CACHE_DIR`, by default `<tmp>/tfhub_modules`) and afterwards
    answers from the cache without the network. Anything else is a path.

    Args:
        handle: str. URL or SavedModel directory.
        owner: str. Who asks (e.g. "Wav2Vec2Encoder"); starts the errors.

    Returns:
        str, a directory holding `saved_model.pb`.

    Raises:
        ValueError: the handle cannot be reached, or is not a TF2 SavedModel.
    """
    if not isinstance(handle, str) or not handle:
        raise ValueError(f"{owner} handle must be a non-empty string "
                         "(a TF-Hub URL or a SavedModel directory); found "
                         f"{handle!r}.")
    if is_url(handle):
        try:
            with _socket_timeout(_URL_TIMEOUT_S):
                path = hub.resolve(handle)
        except Exception as error:  # urllib, HTTP, tarfile and gfile errors.
            cache_dir = (os.environ.get("TFHUB_CACHE_DIR")
                         or "<system tmp>/tfhub_modules")
            raise ValueError(
                    f"Could not fetch the TF-Hub handle {handle!r} "
                    f"({type(error).__name__}: {error}). Expected a reachable "
                    "URL or a copy in the TF-Hub cache (TFHUB_CACHE_DIR="
                    f"{cache_dir}). Without network access, download the "
                    "model elsewhere and pass its SavedModel directory as "
                    "the handle.") from error
    else:
        path = handle[len("file://"):] if handle.startswith("file://") else (
                handle)
    if not tf.io.gfile.isdir(path):
        raise ValueError(f"{owner} handle {handle!r}: expected a "
                         f"SavedModel directory, but {path!r} does not exist "
                         "or is not a directory.")
    found = sorted(tf.io.gfile.listdir(path))
    if "saved_model.pb" not in found and "saved_model.pbtxt" not in found:
        hint = (" It holds tfhub_module.pb: a TF1 Hub module, which is not "
                "supported; use a TF2 SavedModel version of the model."
                if "tfhub_module.pb" in found else "")
        raise ValueError(f"{owner} handle {handle!r}: expected "
                         f"saved_model.pb in {path!r}, found {found[:10]}."
                         + hint)
    return path


def load_saved_model(handle, owner="SavedModel"):
    """Resolves and loads a handle with `tf.saved_model.load`.

    Every call loads a fresh copy: two layers built from one handle never
    share variables (fine-tuning one must not change the other).

    Returns:
        (path, loaded object).

    Raises:
        ValueError: as `resolve_handle`, or the SavedModel does not load.
    """
    path = resolve_handle(handle, owner)
    try:
        return path, tf.saved_model.load(path)
    except Exception as error:  # Any failure of the loader: name the path.
        raise ValueError(f"{owner} handle {handle!r}: could not load the "
                         f"SavedModel in {path!r} ({type(error).__name__}: "
                         f"{error}).") from error


def is_spec(value):
    return isinstance(value, tf.TensorSpec)


def describe(value):
    """A readable description of a TensorSpec (or any traced value)."""
    if is_spec(value):
        return f"{value.dtype.name} tensor of shape {value.shape}"
    return repr(value)


def find_endpoint(saved_model, signature, where):
    """Which function of a loaded SavedModel an encoder calls.

    Args:
        saved_model: the loaded object.
        signature: str or None. None: the `__call__` tf.function (TF-Hub's
            reusable form), else the `serving_default` signature. A name:
            that signature, or else the tf.function attribute of that name.
        where: str. Describes the SavedModel in errors.

    Returns:
        (function, is_signature, where): `where` extended with what was
        picked. Signatures take keyword tensors only, return a dict and take
        no `training` argument.

    Raises:
        ValueError: nothing callable under that name.
    """
    signatures = dict(getattr(saved_model, "signatures", {}))
    if signature is None:
        if callable(saved_model) and hasattr(saved_model.__call__,
                                             "function_type"):
            return saved_model.__call__, False, f"{where} __call__"
        if "serving_default" in signatures:
            return (signatures["serving_default"], True,
                    f"{where} signature 'serving_default'")
        raise ValueError(f"{where} has neither a __call__ function nor a "
                         "'serving_default' signature; found signatures "
                         f"{sorted(signatures)}. Pass signature=.")
    if signature in signatures:
        return (signatures[signature], True,
                f"{where} signature {signature!r}")
    function = getattr(saved_model, signature, None)
    if function is not None and hasattr(function, "function_type"):
        return function, False, f"{where} function {signature!r}"
    raise ValueError(f"{where} has no signature or function {signature!r}; "
                     f"found signatures {sorted(signatures)}.")


def traced_calls(function, where, expected):
    """The argument and output specs a restored tf.function was traced for.

    Args:
        function: a restored tf.function (not a signature).
        where: str. Describes it in errors.
        expected: str. What the caller expects it to take, for the error
            when it was never traced.

    Returns:
        list of (bound, outputs): `bound` maps each parameter name (the
        first one included) to its traced value (TensorSpec, nested dict of
        TensorSpecs or Python value, e.g. `training`); `outputs` is the
        traced output structure.

    Raises:
        ValueError: the function has no traced concrete functions.
    """
    names = list(function.function_type.parameters)
    concrete_functions = list(getattr(function, "concrete_functions", []))
    if not concrete_functions:
        raise ValueError(f"{where} has no traced concrete functions; "
                         f"expected a tf.function traced for {expected}.")
    calls = []
    for concrete in concrete_functions:
        args, kwargs = concrete.structured_input_signature
        bound = dict(zip(names, args))
        bound.update(kwargs)
        calls.append((bound, concrete.structured_outputs))
    return calls


def first_parameter(function):
    """Name of a restored tf.function's first parameter (None: none)."""
    names = list(function.function_type.parameters)
    return names[0] if names else None


def track_saved_model_variables(layer, saved_model, function,
                                is_frozen=None):
    """Registers a SavedModel's variables on a Keras 3 layer.

    Each `tf.Variable` is tracked as a `keras.Variable` wrapping the same
    object (on the TF backend nothing is copied), so optimizers update what
    the SavedModel's functions read and exports write it. Variables come
    from the SavedModel's `variables` attribute (TF-Hub reusable form), else
    from those captured by `function`'s concrete functions.

    Args:
        layer: keras.layers.Layer. Gets the variables (its `trainable` flag
            then decides whether any of them trains).
        saved_model: the loaded object.
        function: the called function (fallback source of variables).
        is_frozen: callable (variable name → bool) or None. Variables it
            selects are tracked as non-trainable even if the SavedModel marks
            them trainable.

    Returns:
        (names of all variables, names of the frozen ones), in tracking
        order.
    """
    variables = list(getattr(saved_model, "variables", None) or [])
    if not variables:
        # Plain SavedModels (no reusable attributes): the variables the
        # called function captures.
        concrete_functions = list(getattr(function, "concrete_functions",
                                          [function]))
        variables = [v for concrete in concrete_functions
                     for v in concrete.variables]
    seen = set()
    names, frozen_names = [], []
    for variable in variables:
        if id(variable) in seen:
            continue
        seen.add(id(variable))
        frozen = bool(is_frozen and is_frozen(variable.name))
        if frozen:
            frozen_names.append(variable.name)
        names.append(variable.name)
        layer._track_variable(keras.Variable(
                initializer=variable,
                # Only floating variables can have gradients; others (step
                # counters, flags) must never reach an optimizer.
                trainable=(bool(variable.trainable) and not frozen
                           and variable.dtype.is_floating),
                # Keras names cannot hold '/'; ':' breaks optimizer slot
                # names.
                name=re.sub(r"[/:]", "_", variable.name)))
    return names, frozen_names


def training_argument(training_values, training, trainable):
    """The `training=` keyword for a call of a restored function, as
    hub.KerasLayer chooses it: a frozen encoder always runs in inference
    mode (no dropout), and a function traced for one mode only gets that
    mode.

    Args:
        training_values: set of bool. The `training` values the function
            was traced for (empty: it takes no `training`).
        training: bool or None. The Keras call's training flag.
        trainable: bool. Whether the encoder is being fine-tuned.

    Returns:
        dict: {} or {"training": bool}.
    """
    if not training_values:
        return {}
    wanted = bool(training) and trainable
    return {"training": wanted if wanted in training_values
            else next(iter(training_values))}
