"""Ensembles of trained runs as runs of their own.

`python train.py --ensemble_members=runs/x/CNN_SPEC,runs/x/BLSTM_SA_TEXT
--ensemble_method=weighted` calls `train_ensemble`: it loads the members
(each a run folder written by train.py, all trained on the same fold folder
and audio length), builds the ensemble (`models/ensembles.py`) and
writes a run folder like any other: `config.json` (model "ENSEMBLE" with
the member folders, method and weights), `metrics.json`, `saved_model/`
(over the union of the members' inputs), one line in TEST_run_result.txt.
`evaluate.py --run_dir=<it>` and `export.py` then work on it unchanged,
through `tasks.loading.load_trained_model`.

* `max_confidence`, `average`: nothing is trained; dev and test are
  evaluated.
* `weighted`: the weights are fitted on DEV (grid over the simplex,
  `models/ensembles.fit_weights`), never on test.
* `feature`: a linear head on the members' frozen features, trained with
  the original schedule (early stopping on dev loss), saved as
  `model.weights.h5` (the head only needs the member folders to rebuild).
"""

import os
from typing import Callable, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from models import ensembles
from models import training
from preprocessing import reference_arrays
from tasks import datasets
from tasks import folds
from tasks import loading
from tasks import run_dir as run_files
from tasks import run_finish

PREFIX = "SE_ensemble"


def split_probabilities(model: keras.Model, split: reference_arrays.Split,
                        encoder_size_audio: int, batch_size: int = 128
                        ) -> Tuple[np.ndarray, np.ndarray]:
    """Softmax probabilities [n, C] and labels [n] of a split, in order."""
    names = [tensor.name for tensor in model.inputs]
    probabilities, labels = [], []
    for features, label in datasets.eval_dataset(
            split, batch_size, encoder_size_audio,
            **datasets.dataset_options(model)):
        logits = model({name: features[name] for name in names},
                       training=False)
        probabilities.append(tf.nn.softmax(logits, axis=-1).numpy())
        labels.append(label.numpy())
    return np.concatenate(probabilities), np.concatenate(labels)


def train_ensemble(ensemble_members: Sequence[str],
                   ensemble_method: str = "weighted",
                   output_dir: str = "runs", run_dir: Optional[str] = None,
                   result_file: str = "TEST_run_result.txt",
                   batch_size: int = 128, lr: float = 0.001,
                   num_train_steps: int = 2000, patience: int = 7,
                   seed: int = 0, grid_steps: int = 10, export: bool = True,
                   log: Callable[[str], None] = print
                   ) -> Tuple[str, Optional[training.TrainResult], str]:
    """Builds (and for "feature" trains) an ensemble run; returns
    (run_dir, TrainResult, result line); for a run folder that already
    finished, (run_dir, None, its result line)."""
    if ensemble_method not in ensembles.METHODS:
        raise ValueError(f"Unknown ensemble method {ensemble_method!r}; "
                         f"valid: {', '.join(ensembles.METHODS)}.")
    run_files.check_settings(batch_size=batch_size, lr=lr,
                             num_train_steps=num_train_steps,
                             patience=patience, grid_steps=grid_steps)
    if run_dir is not None:
        line = run_files.finished_run(run_dir, result_file, log)
        if line is not None:
            return run_dir, None, line
    members = loading.load_members(ensemble_members)
    # Counted now: building the ensemble freezes the members' layers.
    member_parameters = sum(
        run_finish.count_parameters(member.trainable_weights)
        for _, member, _ in members)
    first = members[0][2]
    data = dict(first["data"])
    fold = folds.load_fold(data["data_dir"])
    frames = data["encoder_size_audio"]
    if data.get("speaker_norm"):
        # The members read per-speaker normalised features (load_members
        # checks they all do); evaluate.py reads this flag back from "data".
        folds.normalize_speakers(fold, frames)
    weights = None
    if ensemble_method == "weighted":
        dev = [split_probabilities(model, fold.splits["dev"], frames,
                                   batch_size)
               for _, model, _ in members]
        weights = ensembles.fit_weights([p for p, _ in dev], dev[0][1],
                                        steps=grid_steps).tolist()
        log(f"[Info] dev-fitted weights {weights}")
    kwargs = {"members": [run_dir for run_dir, _, _ in members],
              "method": ensemble_method, "weights": weights, "seed": seed}
    names = "+".join(config["model"]["name"] for _, _, config in members)
    name = run_files.run_name(PREFIX, fold.name, batch_size,
                              [("M", names), ("E", ensemble_method)])
    run_dir = run_dir or os.path.join(output_dir, name)
    train_config = training.TrainConfig(
        batch_size=batch_size, learning_rate=lr,
        num_train_steps=num_train_steps, patience=patience)
    config = {
        "run_name": name,
        "model": {"name": folds.ENSEMBLE_MODEL, "kwargs": kwargs},
        "data": data,
        "train": dict(vars(train_config), seed=seed,
                      member_names=names.split("+")),
    }
    run_files.write_json(os.path.join(run_dir, "config.json"), config)
    log(f"[Info] run {name} -> {run_dir}")

    def build():
        return loading.build_from_config(kwargs, fold.num_classes,
                                         [model for _, model, _ in members])

    keras.utils.set_random_seed(seed)
    if ensemble_method == "feature":
        trainer = training.Trainer(build, tf.distribute.get_strategy(),
                                   run_dir, train_config, fold.num_classes,
                                   fold.label_names, log=log)
        model = trainer.model
        options = datasets.dataset_options(model)
        result = trainer.fit(
            datasets.train_dataset_fn(fold.splits["train"], batch_size,
                                      "sample", seed, frames, **options),
            datasets.eval_dataset(fold.splits["dev"], batch_size, frames,
                                  **options),
            datasets.eval_dataset(fold.splits["test"], batch_size, frames,
                                  **options),
            num_train=len(fold.splits["train"]))
    else:
        model = build()
        options = datasets.dataset_options(model)
        evaluator = training.Evaluator(model, tf.distribute.get_strategy(),
                                       fold.num_classes)
        dev, test = (
            evaluator(datasets.eval_dataset(fold.splits[split], batch_size,
                                            frames, **options),
                      fold.label_names)
            for split in ("dev", "test"))
        result = training.TrainResult(
            steps=0, best_step=0, best_dev_loss=dev["loss_mean"],
            best_dev_accuracy=dev["wa"], test_accuracy_at_best=test["wa"],
            stopped_early=False, validation_frequency=0, final_dev=dev,
            final_test=test, train_seconds=0.0)
    parameters = member_parameters + run_finish.count_parameters(
        model.trainable_weights)
    line = run_finish.finish_run(run_dir, model, result, fold.name, name,
                                result_file, export, log, parameters)
    member_wa = {}
    for run_dir_, member, _ in members:
        member_result = training.Evaluator(
            member, tf.distribute.get_strategy(), fold.num_classes)(
                datasets.eval_dataset(
                    fold.splits["test"], batch_size, frames,
                    **datasets.dataset_options(member)))
        member_wa[run_dir_] = member_result["wa"]
        log(f"  member {run_dir_}: test WA {member_result['wa']:.4f}")
    metrics_path = os.path.join(run_dir, "metrics.json")
    metrics = run_files.read_json(metrics_path)
    metrics.update(method=ensemble_method, weights=weights,
                   member_test_wa=member_wa)
    run_files.write_json(metrics_path, metrics)
    return run_dir, result, line
