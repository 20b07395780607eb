"""Corpus → reference arrays → `tf.data`: everything before the model.

This package never imports `models` (and `models` never imports it). The
feature names the pipeline emits are checked against the models' input names
by `tests/models/test_contract.py`, not by a cross-import.
"""
