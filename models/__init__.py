"""Keras models of multimodal speech emotion recognition.

`build_model(name, **options)` builds any registered model (validated
options; `models.registry` lists them with their specs and options).
"""

from models.registry import build_model

__all__ = ["build_model"]
