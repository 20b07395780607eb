"""Builds a model by name; the single place that knows every model class."""

import inspect

from models import baseline
from models import wav2vec2_models
from models import seed_models
from models import small_corpus
from models import yoon

MODELS = {
    "ARE": yoon.ARE,
    "TRE": yoon.TRE,
    "MDRE": yoon.MDRE,
    "MDREA": yoon.MDREA,
    # wav2vec2 from a TF-Hub handle (or SavedModel dir), alone and with TRE.
    **wav2vec2_models.MODELS,
    # The other seed systems: BLSTM_SA_TEXT, CNN_SPEC, MMMF,
    # TRANSFORMER_FUSION (models/seed_models.py).
    **seed_models.MODELS,
    # For small real corpora (models/small_corpus.py).
    **small_corpus.MODELS,
    # The classical baseline: functionals + RBF SVM / logistic regression,
    # fitted by scikit-learn (models/baseline.py).
    **baseline.MODELS,
}


def register(name, model_class):
    """Adds a model class (a keras.Model whose config is its arguments)."""
    MODELS[name] = model_class


def model_names():
    return tuple(MODELS)


def _model_class(name):
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; valid models are: "
                         f"{', '.join(MODELS)}.")
    return MODELS[name]


def model_arguments(name, **kwargs):
    """Keeps the arguments model `name` takes, dropping other models' ones.

    Raises:
        ValueError: for an argument that no registered model takes.
    """
    model_class = _model_class(name)
    accepted = set(inspect.signature(model_class).parameters)
    known = set().union(*(inspect.signature(cls).parameters
                          for cls in MODELS.values()))
    unknown = set(kwargs) - known
    if unknown:
        raise ValueError(f"Unknown model arguments {sorted(unknown)}; "
                         f"{name} takes {sorted(accepted - {'kwargs'})}.")
    return {k: v for k, v in kwargs.items() if k in accepted}


def build_model(name, **kwargs):
    """Builds model `name`, ignoring arguments that belong to other models.

    Args:
        name: str. One of `model_names()`.
        **kwargs: constructor arguments. Arguments of other registered
            models are dropped (so one set of flags serves every model); a
            name no model takes is an error.

    Returns:
        keras.Model.
    """
    return _model_class(name)(**model_arguments(name, **kwargs))
