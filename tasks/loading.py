"""A finished run's model back in memory: rebuilt from `config.json` and its
weights (checked to be the trained ones), ensembles from their member runs.

Both live here because an ensemble run is loaded by loading its members,
each of them a run like any other.
"""

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import keras
import numpy as np

from models import ensembles
from models import registry
from tasks import folds
from tasks import run_dir as run_files


def load_trained_model(run_dir: str) -> Tuple[keras.Model, Dict[str, Any]]:
    """Rebuilds a trained model from `run_dir/config.json` and its weights.

    Returns:
        (keras.Model, config dict).

    An ensemble run (train.py --ensemble_members) is rebuilt from its
    member runs; a decision-level one has no weights file of its own.

    Raises:
        FileNotFoundError: no config.json or model.weights.h5 in run_dir.
        ValueError: the restored weights did not change the model's outputs
            (they would then not be the trained ones).
    """
    config = run_files.read_json(os.path.join(run_dir, "config.json"))
    model_name, kwargs = config["model"]["name"], config["model"]["kwargs"]
    is_ensemble = model_name == folds.ENSEMBLE_MODEL
    if is_ensemble and kwargs["method"] != "feature":
        # A decision-level ensemble has no weights of its own.
        return build_from_config(
            kwargs, len(config["data"]["label_names"])), config
    weights = os.path.join(run_dir, "model.weights.h5")
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"{weights}: missing (the run did not "
                                "finish; resume it with train.py "
                                f"--run_dir={run_dir}).")
    if is_ensemble:
        model = build_from_config(
            kwargs, len(config["data"]["label_names"]))
    else:
        model = registry.build_model(model_name, **kwargs)
    probe = _probe_batch(model)
    before = model(probe, training=False).numpy()
    model.load_weights(weights)
    after = model(probe, training=False).numpy()
    if np.allclose(before, after):
        raise run_files.RunError(
            f"{weights}: loading it did not change the model's outputs; "
            "these are not trained weights.")
    return model, config


# Probe sizes of variable dimensions per input; 20 otherwise. A waveform
# needs more than the 400-sample receptive field of wav2vec2 to give frames.
_PROBE_SIZES = {"waveform": 4000}


_PROBE_LENGTHS = {"waveform_length": [4000, 1500]}


def _probe_batch(model):
    """A small deterministic batch matching the model's inputs."""
    rng = np.random.default_rng(0)
    batch = {}
    for tensor in model.inputs:
        size = _PROBE_SIZES.get(tensor.name, 20)
        shape = [2] + [d or size for d in tensor.shape[1:]]
        if tensor.name in _PROBE_LENGTHS:
            batch[tensor.name] = np.array(_PROBE_LENGTHS[tensor.name],
                                          np.int32)
        elif tensor.dtype == "int32" and len(shape) == 1:
            batch[tensor.name] = np.array([20, 7], np.int32)
        elif tensor.dtype == "int32":
            batch[tensor.name] = rng.integers(1, 3, shape).astype(np.int32)
        else:
            batch[tensor.name] = rng.standard_normal(shape).astype(
                tensor.dtype)
    return batch


def load_members(run_dirs: Sequence[str]
                 ) -> List[Tuple[str, keras.Model, Dict[str, Any]]]:
    """Loads trained member runs; returns [(run_dir, model, config)].

    Raises:
        ValueError: fewer than two runs, runs trained on different fold
            folders, or with different audio lengths (one input pipeline
            feeds them all).
    """
    run_dirs = [os.path.abspath(run_dir) for run_dir in run_dirs]
    if len(run_dirs) < 2:
        raise ValueError(f"An ensemble needs at least two runs, got "
                         f"{run_dirs}.")
    members = []
    for run_dir in run_dirs:
        model, config = load_trained_model(run_dir)
        members.append((run_dir, model, config))
    for key, what in (("digest", "fold folders (manifest/vocabulary "
                                 "digests differ)"),
                      ("encoder_size_audio", "audio lengths "
                                             "(--encoder_size_audio)"),
                      ("speaker_norm", "features (--speaker_norm on and "
                                       "off)")):
        values = {run_dir: config["data"].get(key)
                  for run_dir, _, config in members}
        if len(set(values.values())) > 1:
            raise ValueError(f"The runs were trained on different {what}: "
                             f"{values}; an ensemble needs the same "
                             "examples and inputs.")
    return members


def build_from_config(kwargs: Dict[str, Any], num_classes: int,
                      members: Optional[Sequence[keras.Model]] = None
                      ) -> keras.Model:
    """The ensemble model of a config's `model.kwargs` (members loaded from
    their run folders unless given as keras models)."""
    if members is None:
        members = [model for _, model, _ in load_members(kwargs["members"])]
    return ensembles.build_ensemble(
        members, kwargs["method"], num_classes, kwargs.get("weights"),
        kwargs.get("seed"))
