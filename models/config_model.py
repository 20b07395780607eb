"""Functional Keras models whose config is exactly their constructor args.

Every model of the toolkit builds its graph in `__init__` and records its
constructor arguments (via `constructor_arguments(locals())`, taken first
thing in `__init__`) as its whole config, so `from_config(get_config())`
rebuilds it and `config.json` of a run is enough to rebuild the model.
"""

import keras


def constructor_arguments(arguments):
    """The constructor's own arguments: they are the model's whole config."""
    return {key: value for key, value in arguments.items()
            if key not in ("self", "name", "kwargs", "__class__")}


def offset_seed(seed, offset):
    """A derived seed for one layer (None stays None: unseeded)."""
    return None if seed is None else seed + offset


def glorot(seed):
    return keras.initializers.GlorotUniform(seed=seed)


def check_keep_prob(name, value):
    """Raises ValueError unless `value` is a keep probability in (0, 1]."""
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be a keep probability in (0, 1]; "
                         f"found {value}.")


def check_choice(name, value, choices):
    """Raises ValueError unless `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}; found {value!r}.")


class ConfigModel(keras.Model):
    """Base of the toolkit's functional models (see the module docstring)."""

    def _finish(self, inputs, outputs, config, name, kwargs):
        """Builds the functional graph and records the config."""
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        self._config = config

    def get_config(self):
        return {"name": self.name, **self._config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
