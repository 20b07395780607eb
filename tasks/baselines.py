"""The classical baseline as a run like any other (train.py's BASELINE_*).

`python train.py --model=BASELINE_SVM --data_dir=FOLD` (or BASELINE_LOGREG)
calls `train_baseline`: utterance functionals of every split are computed by
the model's own `functionals` layer over the same eval pipeline the neural
models read (so training, evaluation and serving see identical features),
scikit-learn fits the classifier on TRAIN (standardised with train
statistics; class-balanced), C (and γ) are picked on DEV UA (never on
test; `--nobaseline_select`: C = 1, γ = 1/D), and the fitted numbers become
the Keras model's weights (`models/baseline.py`). The run folder then gets
what every run gets: `config.json`, `model.weights.h5`, `metrics.json`,
`saved_model/`, one line in TEST_run_result.txt, plus `baseline.json` (the
grid and its dev scores). `evaluate.py`, `export.py`, `predict.py` and
`tools/results_table.py` work on it unchanged. Steps are 0 (nothing is
trained by gradient).
"""

import os
import time
from typing import Callable, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from common import constants
from models import baseline
from models import registry
from models import training
from preprocessing import reference_arrays
from tasks import datasets
from tasks import folds
from tasks import model_setup
from tasks import run_dir as run_files
from tasks import run_finish

MODELS = tuple(baseline.MODELS)


def split_functionals(extractor: keras.Model,
                      split: reference_arrays.Split, batch_size: int,
                      encoder_size_audio: int
                      ) -> Tuple[np.ndarray, np.ndarray]:
    """Functionals [n, D] and labels [n] of a split, in order."""
    features, labels = [], []
    names = [tensor.name for tensor in extractor.inputs]
    for batch, label in datasets.eval_dataset(split, batch_size,
                                              encoder_size_audio):
        features.append(extractor({name: batch[name] for name in names},
                                  training=False).numpy())
        labels.append(label.numpy())
    return np.concatenate(features), np.concatenate(labels)


def functionals_extractor(model: keras.Model) -> keras.Model:
    """The model's inputs → its raw (unstandardised) functionals."""
    return keras.Model(model.inputs, model.get_layer("functionals").output)


def train_baseline(model: str, data_dir: str, output_dir: str = "runs",
                   run_dir: Optional[str] = None,
                   result_file: str = "TEST_run_result.txt",
                   graph_prefix: Optional[str] = None,
                   batch_size: int = 128,
                   encoder_size_audio: int = constants.MFCC_FRAMES,
                   seed: int = 0, export: bool = True,
                   baseline_select: bool = True,
                   baseline_class_weight: str = "balanced",
                   speaker_norm: bool = False,
                   log: Callable[[str], None] = print
                   ) -> Tuple[str, training.TrainResult, str]:
    """Fits one baseline on a fold; returns (run_dir, TrainResult, line).

    Args: as train.py's flags; `baseline_select` picks C/γ on dev UA,
    `baseline_class_weight` is "balanced" or "none", `speaker_norm`
    standardises each split's MFCC and prosody per speaker first (as the
    neural recipe does), so both are compared on the same features.

    Raises:
        reference_arrays.DataError: a bad fold folder.
        ValueError: unknown model, a class absent from train, or an
            existing run folder holding another run.
    """
    if model not in MODELS:
        raise ValueError(f"{model!r} is not a baseline; expected one of "
                         f"{MODELS}.")
    class_weight = (None if baseline_class_weight in (None, "none")
                    else baseline_class_weight)
    started = time.time()
    fold = folds.load_fold(data_dir, model)
    if speaker_norm:
        folds.normalize_speakers(fold, encoder_size_audio)
    probe = model_setup.build_model(model, {"num_classes": fold.num_classes})
    extractor = functionals_extractor(probe)
    arrays = {name: split_functionals(extractor, split, batch_size,
                                      encoder_size_audio)
              for name, split in fold.splits.items()}
    (train_x, train_y), (dev_x, dev_y) = arrays["train"], arrays["dev"]
    fitted, weights, report = baseline.fit(
        model, train_x, train_y, dev_x, dev_y, fold.num_classes,
        select=baseline_select, class_weight=class_weight, seed=seed,
        log=log)
    kwargs = model_setup.model_kwargs(model, fold, False, 0, **fitted)
    keras_model = model_setup.build_model(model, kwargs)
    keras_model.set_weights(weights)
    train_seconds = time.time() - started
    parts = [("C", f"{report['C']:g}")]
    if report["gamma"] is not None:
        parts.append(("g", f"{report['gamma']:.3g}"))
    name = run_files.run_name(
        graph_prefix or registry.spec(model).run_prefix, fold.name,
        batch_size, parts)
    run_dir = run_dir or os.path.join(output_dir, name)
    config_path = os.path.join(run_dir, "config.json")
    if os.path.exists(config_path):
        previous = run_files.read_json(config_path)
        if previous["model"]["name"] != model or (
                previous["data"]["digest"]
                != folds.manifest_digest(data_dir)):
            raise ValueError(f"{config_path}: holds another run (model or "
                             "data differ); use a new --run_dir.")
    run_files.write_json(config_path, {
        "run_name": name,
        "model": {"name": model, "kwargs": kwargs},
        "data": {"data_dir": os.path.abspath(data_dir),
                 "dataset": fold.name,
                 "digest": folds.manifest_digest(data_dir),
                 "label_names": list(fold.label_names),
                 "encoder_size_audio": encoder_size_audio,
                 **({"speaker_norm": True} if speaker_norm else {})},
        "train": {"fitted_by": "scikit-learn", "batch_size": batch_size,
                  "seed": seed, "select": bool(baseline_select),
                  "class_weight": class_weight},
    })
    run_files.write_json(os.path.join(run_dir, "baseline.json"), report)
    log(f"[Info] run {name} -> {run_dir}")
    evaluator = training.Evaluator(keras_model, tf.distribute.get_strategy(),
                                   fold.num_classes)
    final = {split: evaluator(datasets.eval_dataset(
        fold.splits[split], batch_size, encoder_size_audio),
        fold.label_names) for split in ("dev", "test")}
    result = training.TrainResult(
        steps=0, best_step=0, best_dev_loss=final["dev"]["loss_sum"],
        best_dev_accuracy=final["dev"]["wa"],
        test_accuracy_at_best=final["test"]["wa"], stopped_early=False,
        validation_frequency=0, final_dev=final["dev"],
        final_test=final["test"], train_seconds=train_seconds)
    line = run_finish.finish_run(run_dir, keras_model, result, fold.name,
                                name, result_file, export, log)
    return run_dir, result, line
