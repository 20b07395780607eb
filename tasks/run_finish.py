"""The end of every training run: weights, metrics, export and result line.

`finish_run` sits above `tasks.serving` (it exports the run), so nothing
below it climbs back up to finish a run.
"""

import os
from typing import Any, Callable, Optional, Sequence

import keras
import numpy as np

from models import training
from tasks import run_dir as run_files
from tasks import serving


def count_parameters(weights: Sequence[Any]) -> int:
    """Number of scalars in a list of variables."""
    return int(sum(np.prod(weight.shape) for weight in weights))


def finish_run(run_dir: str, model: keras.Model,
               result: training.TrainResult, dataset: str, name: str,
               result_file: str, export: bool = True,
               log: Callable[[str], None] = print,
               parameters: Optional[int] = None) -> str:
    """Writes what a finished run leaves: `model.weights.h5` (when it has
    trainable weights), `metrics.json`, `saved_model/` (with `export`),
    `result.json` and its line in `result_file`; returns that line.

    Args:
        run_dir: str. The run folder (config.json already written).
        model: keras.Model. The trained model (best weights restored).
        result: `models.training.TrainResult`.
        dataset: str. Fold name. name: str. Run name.
        parameters: int or None. Parameters the prediction uses (default:
            the model's trainable ones; an ensemble adds its members').
    """
    if model.trainable_weights:
        model.save_weights(os.path.join(run_dir, "model.weights.h5"))
    run_files.write_json(
        os.path.join(run_dir, "metrics.json"),
        {
            "dev": result.final_dev,
            "test": result.final_test,
            "steps": result.steps,
            "best_step": result.best_step,
            "best_dev_loss": result.best_dev_loss,
            "best_dev_accuracy": result.best_dev_accuracy,
            "test_accuracy_at_best": result.test_accuracy_at_best,
            "stopped_early": result.stopped_early,
            "train_seconds": result.train_seconds,
            "trainable_parameters": count_parameters(
                model.trainable_weights),
            "parameters": (count_parameters(model.trainable_weights)
                           if parameters is None else int(parameters)),
            "inputs": [tensor.name for tensor in model.inputs],
        },
    )
    if export:
        # A self-contained export: it also carries the vocabulary, feature
        # parameters and label names, so predict.py needs nothing else.
        serving.export_run(run_dir, model=model)
    line = run_files.result_line(
        dataset, name, result.best_dev_accuracy,
        result.test_accuracy_at_best, result.final_test["ua"])
    # Once per run folder, ever (a re-run finds it in result.json).
    run_files.record_result(run_dir, result_file, line)
    log(
        f"[Result] best step {result.best_step}: dev WA "
        f"{result.best_dev_accuracy:.3f}, test WA "
        f"{result.test_accuracy_at_best:.3f}; restored best weights: test WA "
        f"{result.final_test['wa']:.3f} UA {result.final_test['ua']:.3f} "
        f"({result.train_seconds:.0f} s)"
    )
    return line
