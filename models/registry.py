"""Every model of the toolkit by name: one `ModelSpec` per model.

The spec states once what the rest of the toolkit needs to know about a
model without building it: its class, the inputs it reads, its run-name
prefix, whether it reads text or raw waveforms, whether it standardises its
audio with train-split statistics. A model's options are its constructor's
keyword arguments (flat: they are its whole config, `config.json` "model"
"kwargs"); `model_options` lists them with their defaults and docs (parsed
from the class docstring's Args section), `check_options` rejects an option
the model does not take, and `build_model` builds a validated model:

    from models import build_model
    model = build_model("ARE", audio_units=64)
"""

import dataclasses
import inspect
import re
from typing import (Any, Callable, Dict, Mapping, Optional, Tuple, Type)

import keras

from models import baseline
from models import inputs
from models import seed_models
from models import small_corpus
from models import transformer_fusion
from models import wav2vec2_models
from models import yoon

# Constructor parameters that are not options of the model.
_NOT_OPTIONS = ("self", "name", "kwargs")


def _never(options: Mapping[str, Any]) -> bool:
    return False


def _always(options: Mapping[str, Any]) -> bool:
    return True


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What the toolkit knows about one model before building it.

    Attributes:
        name: str. The registry name (`--model`).
        model_class: the keras.Model subclass; its constructor arguments
            are its options and its whole config.
        family: str. "yoon", "wav2vec2", "seed", "small_corpus" or
            "baseline" (the baselines are fitted by scikit-learn, not by
            the Trainer).
        inputs: the model inputs it reads with its default options (some
            options change them: CNN_SPEC's audio_input/use_prosody,
            TRANSFORMER_FUSION's audio_encoder/side features).
        run_prefix: str. The first field of its run names (the original's
            `graph_prefix` defaults, e.g. "SE_prosody" for ARE).
        reads_text: bool. Reads `text_ids` (and so needs the vocabulary
            size and, with GloVe, the embedding of the fold).
        reads_waveforms: function options → bool. Whether the model with
            these options reads the fold's raw waveforms (the wav2vec2
            models; a log-mel CNN_SPEC; a wav2vec2 TRANSFORMER_FUSION).
            Options the model does not take are ignored here.
        normalizes_audio: bool. Takes `audio_normalization`, train-split
            statistics (train.py --normalize_audio).
        exportable: bool. Exported as a SavedModel with the serving
            signatures (models/export.py).
        description: str. One line for --help.
    """

    name: str
    model_class: Type[keras.Model]
    family: str
    inputs: Tuple[str, ...]
    run_prefix: str
    reads_text: bool
    reads_waveforms: Callable[[Mapping[str, Any]], bool]
    normalizes_audio: bool
    exportable: bool
    description: str


@dataclasses.dataclass(frozen=True)
class ModelOption:
    """One constructor argument of a model.

    Attributes:
        name: str.
        default: its default value (None when `required`).
        required: bool. The constructor has no default for it (e.g.
            vocab_size, filled in from the fold).
        doc: str. One line, from the class docstring's Args section.
    """

    name: str
    default: Any
    required: bool
    doc: str


def _option_value(name: str, options: Mapping[str, Any], key: str) -> Any:
    """`options[key]` if given, else the constructor's default of `key`."""
    if key in options:
        return options[key]
    parameter = inspect.signature(_SPECS[name].model_class).parameters.get(
        key)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return None
    return parameter.default


def _cnn_spec_waveforms(options: Mapping[str, Any]) -> bool:
    # The log-mel spectrogram is computed from the fold's waveforms.
    return _option_value("CNN_SPEC", options, "audio_input") == "logmel"


def _transformer_fusion_waveforms(options: Mapping[str, Any]) -> bool:
    return _option_value("TRANSFORMER_FUSION", options,
                         "audio_encoder") == "wav2vec2"


_AUDIO = inputs.AUDIO_INPUTS
_MFCC = (inputs.MFCC, inputs.AUDIO_LENGTH)
_TEXT = inputs.TEXT_INPUTS
_WAVEFORM = inputs.WAVEFORM_INPUTS


def _spec(name: str, model_class: Type[keras.Model], family: str,
          model_inputs: Tuple[str, ...], run_prefix: str, description: str,
          reads_waveforms: Callable[[Mapping[str, Any]], bool] = _never
          ) -> ModelSpec:
    parameters = inspect.signature(model_class).parameters
    return ModelSpec(
        name=name, model_class=model_class, family=family,
        inputs=model_inputs, run_prefix=run_prefix,
        reads_text=inputs.TEXT_IDS in model_inputs,
        reads_waveforms=reads_waveforms,
        normalizes_audio="audio_normalization" in parameters,
        exportable=True, description=description)


_SPECS: Dict[str, ModelSpec] = {spec.name: spec for spec in (
    _spec("ARE", yoon.ARE, "yoon", _AUDIO, "SE_prosody",
          "Yoon's audio recurrent encoder: GRU over MFCC + prosody."),
    _spec("TRE", yoon.TRE, "yoon", _TEXT, "SE_nlp",
          "Yoon's text recurrent encoder: word embedding → GRU."),
    _spec("MDRE", yoon.MDRE, "yoon", _AUDIO + _TEXT, "SE_multi",
          "Yoon's multimodal dual recurrent encoder (ARE + TRE, linear "
          "fusion)."),
    _spec("MDREA", yoon.MDREA, "yoon", _AUDIO + _TEXT,
          "SE_multi_attn_prosody",
          "MDRE with attention: the audio vector queries the text GRU."),
    _spec("W2V2", wav2vec2_models.W2V2, "wav2vec2", _WAVEFORM, "SE_w2v2",
          "wav2vec2 encoder (TF-Hub handle) → pooling → linear classifier.",
          _always),
    _spec("W2V2_TRE", wav2vec2_models.W2V2_TRE, "wav2vec2",
          _WAVEFORM + _TEXT, "SE_w2v2_nlp",
          "wav2vec2 audio vector + TRE text state, fused as MDRE.", _always),
    _spec("W2V2_TREA", wav2vec2_models.W2V2_TREA, "wav2vec2",
          _WAVEFORM + _TEXT, "SE_w2v2_nlp_attn",
          "wav2vec2 audio vector queries the TRE text outputs, as MDREA.",
          _always),
    _spec("BLSTM_SA_TEXT", seed_models.BLSTM_SA_TEXT, "seed", _TEXT,
          "SE_blstm_sa",
          "Sobczak's text model: BLSTM → self-attention pooling."),
    _spec("CNN_SPEC", seed_models.CNN_SPEC, "seed", _MFCC, "SE_cnn_spec",
          "Sobczak's acoustic 2-D CNN over MFCC or log-mel frames.",
          _cnn_spec_waveforms),
    _spec("MMMF", seed_models.MMMF, "seed", _MFCC + _TEXT, "SE_mmmf",
          "Multi-modal multi-focus: BLSTM per modality, attention fusion."),
    _spec("TRANSFORMER_FUSION", transformer_fusion.TRANSFORMER_FUSION,
          "seed", _MFCC + (inputs.PROSODY,) + _TEXT,
          "SE_transformer_fusion",
          "Transformer text encoder + GRU/CNN/wav2vec2 audio + side input.",
          _transformer_fusion_waveforms),
    _spec("ARE_POOL", small_corpus.ARE_POOL, "small_corpus", _AUDIO,
          "SE_prosody_pool",
          "ARE for small corpora: (Bi)GRU, pooled frames, hidden layer."),
    _spec(baseline.SVM, baseline.BaselineSVM, "baseline", _AUDIO,
          "SE_baseline_svm",
          "Utterance functionals → RBF SVM (fitted by scikit-learn)."),
    _spec(baseline.LOGREG, baseline.BaselineLogReg, "baseline", _AUDIO,
          "SE_baseline_logreg",
          "Utterance functionals → logistic regression (scikit-learn)."),
)}

# name → model class, for code that only builds (e.g. from_config).
MODELS: Dict[str, Type[keras.Model]] = {
    name: spec.model_class for name, spec in _SPECS.items()}


def register(spec: ModelSpec) -> None:
    """Adds a model (a keras.Model whose config is its arguments)."""
    _SPECS[spec.name] = spec
    MODELS[spec.name] = spec.model_class


def names() -> Tuple[str, ...]:
    """The registered model names, in registration order."""
    return tuple(_SPECS)


def model_names() -> Tuple[str, ...]:
    """Same as `names()` (the older name)."""
    return names()


def spec(name: str) -> ModelSpec:
    """The spec of model `name`.

    Raises:
        ValueError: `name` is not registered (naming the valid ones).
    """
    if name not in _SPECS:
        raise ValueError(f"Unknown model {name!r}; valid models are: "
                         f"{', '.join(_SPECS)}.")
    return _SPECS[name]


def model_options(name: str) -> Dict[str, ModelOption]:
    """The options of model `name`: its constructor's arguments (in
    signature order), each with its default and a one-line doc."""
    model_class = spec(name).model_class
    docs = _docs(model_class)
    options = {}
    for key, parameter in inspect.signature(model_class).parameters.items():
        if key in _NOT_OPTIONS or parameter.kind in (
                inspect.Parameter.VAR_KEYWORD,
                inspect.Parameter.VAR_POSITIONAL):
            continue
        required = parameter.default is inspect.Parameter.empty
        doc = docs.get(key, "")
        if not doc or doc.startswith("as "):
            doc = _shared_doc(key) or doc
        options[key] = ModelOption(key, None if required
                                   else parameter.default, required, doc)
    return options


def check_options(name: str, options: Mapping[str, Any]) -> None:
    """Raises ValueError for an option model `name` does not take.

    The message names the model, the offending keys (and which other
    models take them) and the model's valid options.
    """
    valid = model_options(name)
    unknown = [key for key in options if key not in valid]
    if not unknown:
        return
    described = []
    for key in unknown:
        owners = [other for other in _SPECS if other != name
                  and key in model_options(other)]
        described.append(f"{key!r} (an option of {', '.join(owners)})"
                         if owners else f"{key!r} (no model takes it)")
    raise ValueError(f"Model {name} has no option {', '.join(described)}; "
                     f"valid options of {name}: {', '.join(valid)}.")


def model_arguments(name: str, **kwargs: Any) -> Dict[str, Any]:
    """Keeps the arguments model `name` takes, dropping other models' ones.

    Only for callers that hold one union of every model's settings (the
    Yoon-named flags of train.py); a per-model config is checked with
    `check_options` instead.

    Raises:
        ValueError: for an argument that no registered model takes.
    """
    accepted = model_options(name)
    known = set().union(*(model_options(other) for other in _SPECS))
    unknown = set(kwargs) - known
    if unknown:
        raise ValueError(f"Unknown model arguments {sorted(unknown)}; "
                         f"{name} takes {sorted(accepted)}.")
    return {k: v for k, v in kwargs.items() if k in accepted}


def build_model(name: str, **options: Any) -> keras.Model:
    """Builds model `name` with `options` (validated by `check_options`).

    Raises:
        ValueError: an unknown model, or an option it does not take.
    """
    check_options(name, options)
    return spec(name).model_class(**options)


# ------------------------------------------------------- docstring Args ---

_PARENTHESES = re.compile(r"\([^()]*\)")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A full stop and a space, not the one of "e.g." or "i.e.".
_SENTENCE_END = re.compile(r"(?<!e\.g\.)(?<!i\.e\.)(?<=\.) ")


def _docs(model_class: type) -> Dict[str, str]:
    """argument → one-line doc, from the Args section of the docstring
    (entries "name: doc" or "name_1, name_2 (X): doc"; continuation lines
    are indented further)."""
    lines = inspect.getdoc(model_class).splitlines() if (
        model_class.__doc__) else []
    start = next((i for i, line in enumerate(lines)
                  if line.strip().startswith("Args:")), None)
    if start is None:
        return {}
    header_indent = len(lines[start]) - len(lines[start].lstrip())
    entries, indent = [], None
    for line in lines[start + 1:]:
        if not line.strip():
            continue
        line_indent = len(line) - len(line.lstrip())
        if line_indent <= header_indent:
            break
        if indent is None or line_indent <= indent:
            indent = line_indent
            entries.append(line.strip())
        else:
            entries[-1] += " " + line.strip()
    docs = {}
    for entry in entries:
        head, _, doc = entry.partition(": ")
        keys = [key.strip() for key in
                _PARENTHESES.sub("", head).rstrip(".").split(",")]
        if not all(_IDENTIFIER.match(key) for key in keys):
            continue
        for key in keys:
            docs.setdefault(key, _one_line(doc))
    return docs


def _one_line(doc: str) -> str:
    """The first sentences of `doc`, cut at about 100 characters (a bare
    type such as "int." keeps the sentence after it)."""
    sentences = _SENTENCE_END.split(" ".join(doc.split()))
    line = sentences[0]
    for sentence in sentences[1:]:
        if len(line) >= 30 and len(line) + len(sentence) > 100:
            break
        line += " " + sentence
    if len(line) > 100:
        line = line[:97].rsplit(" ", 1)[0] + " ..."
    return line


def _shared_doc(key: str) -> str:
    """The doc of `key` from another model that documents it (models that
    say "as ARE" or "the union of ARE's and TRE's")."""
    for other in _SPECS.values():
        doc = _docs(other.model_class).get(key)
        if doc and not doc.startswith("as "):
            return doc
    return ""
