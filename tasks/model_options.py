"""A model's options: its constructor arguments, from file, flags and
overrides, validated against the chosen model.

Each model's constructor arguments are its configuration (they are what
`get_config` stores and what a run's `config.json` keeps). The user sets
them in three places, later ones winning:

1. the model's own defaults (its constructor),
2. `--model_config=FILE`: a JSON object {option: value},
3. the Yoon et al. flag names (`--hidden_dim_audio`, `--dr_audio`, …; see
   `FLAG_ALIASES`), which keep working so that `reference_script.sh` runs
   the original's commands exactly,
4. `--model_override=key=value,...`.

An option the chosen model does not take is an error naming the model, the
key and the options it does take: `--model=ARE --transformer_layers=8`
used to be accepted and ignored. Options computed from the fold (class
count, vocabulary size, normalisation statistics, …; `FROM_FOLD`) cannot be
set by hand.
"""

import json
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple

from models import registry

# Yoon et al. flag name -> the constructor argument it sets.
FLAG_ALIASES: Dict[str, str] = {
    "num_layer_audio": "audio_layers",
    "hidden_dim_audio": "audio_units",
    "dr_audio": "audio_keep_prob",
    "num_layer_text": "text_layers",
    "hidden_dim_text": "text_units",
    "dr_text": "text_keep_prob",
    "embedding_trainable": "embedding_trainable",
    "mask_attention": "mask_attention",
    "gru_impl": "gru_impl",
    # The pretrained encoders: a path or URL every user of those models
    # sets, so it keeps a flag of its own.
    "hub_handle": "hub_handle",
    "text_encoder_handle": "text_encoder_handle",
}

# Constructor arguments set by the toolkit from the fold or the fit, never
# by hand (the seed comes from the common --seed).
FROM_FOLD: Tuple[str, ...] = (
    "num_classes", "vocab_size", "embedding_dim", "audio_normalization",
    "side_dim", "text_encoder_pieces", "feature_mean", "feature_std",
    "num_support_vectors", "gamma", "svm_c", "logreg_c", "seed", "name",
    "kwargs")

# Lower bounds of integer options, by suffix (a model may refuse more).
_MINIMUM_BY_SUFFIX = (("_units", 1), ("_heads", 1), ("_layers", 1),
                      ("n_mels", 1), ("_kernel_size", 1), ("_stride", 1),
                      ("_length", 1))
# ARE_POOL without a GRU is an MLP over pooled frames (small_corpus.py).
_MINIMUM_EXCEPTIONS = {("ARE_POOL", "audio_layers"): 0,
                       ("ARE_POOL", "hidden_units"): 0}


class OptionError(ValueError):
    """A model option the chosen model cannot take (one line)."""


def options_of(model: str) -> Dict[str, registry.ModelOption]:
    """The options a user may set for `model` (constructor order): the
    registry's, less those set from the fold.

    Raises:
        OptionError: an unknown model name.
    """
    try:
        options = registry.model_options(model)
    except ValueError as error:
        raise OptionError(str(error)) from None
    return {name: option for name, option in options.items()
            if name not in FROM_FOLD}


def alias_example(flag: str) -> registry.ModelOption:
    """The option a Yoon flag sets, as the first model taking it declares
    it (its type and a typical default, for the flag's definition)."""
    option = FLAG_ALIASES[flag]
    return next(options_of(model)[option] for model in registry.names()
                if option in options_of(model))


def _split_items(text: str) -> Iterable[str]:
    """`text` split at the commas outside [...] (lists stay whole)."""
    depth, start = 0, 0
    for index, char in enumerate(text):
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char == "," and depth == 0:
            yield text[start:index]
            start = index + 1
    yield text[start:]


def _parse_value(text: str) -> Any:
    """JSON when it parses (numbers, true/false, null, [lists]), a few
    Python spellings, else the string itself."""
    text = text.strip()
    python = {"True": True, "False": False, "None": None}
    if text in python:
        return python[text]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_overrides(texts: Optional[Sequence[str]]) -> Dict[str, Any]:
    """`["k=v,k2=[1,2]", "k3=x"]` -> {"k": v, "k2": [1, 2], "k3": "x"}.

    Raises:
        OptionError: an item without `=`.
    """
    overrides = {}
    for text in texts or ():
        for item in _split_items(text):
            if not item.strip():
                continue
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise OptionError(f"--model_override: expected key=value "
                                  f"items separated by commas; found "
                                  f"{item!r}.")
            overrides[key.strip()] = _parse_value(value)
    return overrides


def read_config_file(path: str) -> Dict[str, Any]:
    """A `--model_config` file: a JSON object {option: value}.

    A run's `config.json` is also accepted (its model kwargs are read), so
    that a trained run's model can be trained again on another fold.

    Raises:
        OptionError: unreadable, not JSON, not an object.
    """
    try:
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
    except OSError as error:
        raise OptionError(f"{path}: cannot read the model config "
                          f"({error.strerror or error}).") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise OptionError(f"{path}: expected a JSON object of model "
                          f"options; found invalid JSON ({error}).") from None
    if isinstance(values, dict) and isinstance(values.get("model"), dict):
        values = values["model"].get("kwargs", {})
    if not isinstance(values, dict):
        raise OptionError(f"{path}: expected a JSON object of model options;"
                          f" found {type(values).__name__}.")
    return values


def _coerce(model: str, option: registry.ModelOption, value: Any,
            origin: str) -> Any:
    """`value` as the type of the option's default (checked)."""
    def refuse(expected: str):
        raise OptionError(f"{origin}: {model} option {option.name} expects "
                          f"{expected}; found {value!r}.")

    default = option.default
    if value is None or default is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            refuse("true or false")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            refuse("an integer")
        minimum = _MINIMUM_EXCEPTIONS.get((model, option.name))
        if minimum is None:
            minimum = next((low for suffix, low in _MINIMUM_BY_SUFFIX
                            if option.name.endswith(suffix)), None)
        if minimum is not None and value < minimum:
            refuse(f"an integer >= {minimum}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            refuse("a number")
        value = float(value)
        if option.name.endswith("keep_prob") and not 0 < value <= 1:
            refuse("a keep probability in (0, 1]")
        if option.name.endswith("dropout") and not 0 <= value < 1:
            refuse("a dropout rate in [0, 1)")
        return value
    if isinstance(default, (tuple, list)):
        if isinstance(value, str):
            value = [_parse_value(v) for v in value.replace("-", ",")
                     .split(",")]
        if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 1
                for v in value):
            refuse("a list of integers >= 1, e.g. [32,64]")
        return list(value)
    if isinstance(default, str) and not isinstance(value, str):
        refuse("a string")
    return value


def check(model: str, values: Mapping[str, Any],
          origin: str = "--model_override") -> Dict[str, Any]:
    """`values` validated and typed for `model`.

    Raises:
        OptionError: a key `model` does not take (naming the valid ones), a
            key set from the fold, or a value of the wrong type or range.
    """
    options = options_of(model)
    checked = {}
    for key, value in values.items():
        if key in FROM_FOLD:
            raise OptionError(f"{origin}: {key} is set by the toolkit from "
                              f"the fold (or --seed), not by hand.")
        if key not in options:
            owners = [other for other in registry.names()
                      if key in options_of(other)]
            owned = (f" (an option of {', '.join(owners)})" if owners
                     else "")
            raise OptionError(
                f"{origin}: {model} takes no option {key!r}{owned}; its "
                f"options are: {', '.join(options)} (python train.py "
                f"--model={model} --model_help).")
        checked[key] = _coerce(model, options[key], value, origin)
    return checked


def resolve(model: str, config_file: Optional[str] = None,
            flag_values: Optional[Mapping[str, Any]] = None,
            overrides: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """A model's options from the four sources (see the module docstring).

    Args:
        model: registered model name.
        config_file: `--model_config` path or None.
        flag_values: the alias flags (`FLAG_ALIASES` keys) given on the
            command line; a flag the model does not take is an error.
        overrides: the `--model_override` strings.

    Returns:
        dict of the options set (the model's defaults fill in the rest).
    """
    values: Dict[str, Any] = {}
    if config_file:
        values.update(check(model, read_config_file(config_file),
                            config_file))
    for flag, value in (flag_values or {}).items():
        if flag not in FLAG_ALIASES:
            raise OptionError(f"--{flag} is not a model option flag.")
        values.update(check(model, {FLAG_ALIASES[flag]: value},
                            f"--{flag}"))
    values.update(check(model, parse_overrides(overrides)))
    return values


def describe(model: str) -> str:
    """The options of `model`, one per line, for `--model_help`."""
    aliases = {option: flag for flag, option in FLAG_ALIASES.items()}
    lines = [f"{model} options (--model_config=FILE, "
             "--model_override=key=value,...):"]
    for option in options_of(model).values():
        default = "required" if option.required else json.dumps(
            option.default if not isinstance(option.default, tuple)
            else list(option.default))
        alias = (f" (flag --{aliases[option.name]})"
                 if option.name in aliases else "")
        lines.append(f"  {option.name} = {default}{alias}"
                     + (f": {option.doc}" if option.doc else ""))
    return "\n".join(lines)
