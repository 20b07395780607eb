"""Ensembles of trained runs as runs of their own.

`python train.py --ensemble_members=runs/x/CNN_SPEC,runs/x/BLSTM_SA_TEXT
--ensemble_method=weighted` calls `train_ensemble`: it loads the members
(each a run folder written by train.py, all trained on the same fold folder
and audio length), builds the ensemble (`models/ensemble_models.py`) and
writes a run folder like any other: `config.json` (model "ENSEMBLE" with
the member folders, method and weights), `metrics.json`, `saved_model/`
(over the union of the members' inputs), one line in TEST_run_result.txt.
`evaluate.py --run_dir=<it>` and `export.py` then work on it unchanged,
through `experiment.load_trained_model`.

* `max_confidence`, `average`: nothing is trained; dev and test are
  evaluated.
* `weighted`: the weights are fitted on DEV (grid over the simplex,
  `models/ensembles.fit_weights`), never on test.
* `feature`: a linear head on the members' frozen features, trained with
  the original schedule (early stopping on dev loss), saved as
  `model.weights.h5` (the head only needs the member folders to rebuild).
"""

import os

import numpy as np

from experiment import ENSEMBLE_MODEL  # noqa: F401 (re-exported)

PREFIX = "SE_ensemble"


def load_members(run_dirs):
    """Loads trained member runs; returns [(run_dir, model, config)].

    Raises:
        ValueError: fewer than two runs, runs trained on different fold
            folders, or with different audio lengths (one input pipeline
            feeds them all).
    """
    import experiment

    run_dirs = [os.path.abspath(run_dir) for run_dir in run_dirs]
    if len(run_dirs) < 2:
        raise ValueError(f"An ensemble needs at least two runs, got "
                         f"{run_dirs}.")
    members = []
    for run_dir in run_dirs:
        model, config = experiment.load_trained_model(run_dir)
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


def split_probabilities(model, split, encoder_size_audio, batch_size=128):
    """Softmax probabilities [n, C] and labels [n] of a split, in order."""
    import tensorflow as tf

    import experiment

    names = [tensor.name for tensor in model.inputs]
    probabilities, labels = [], []
    for features, label in experiment.eval_dataset(
            split, batch_size, encoder_size_audio,
            **experiment.dataset_options(model)):
        logits = model({name: features[name] for name in names},
                       training=False)
        probabilities.append(tf.nn.softmax(logits, axis=-1).numpy())
        labels.append(label.numpy())
    return np.concatenate(probabilities), np.concatenate(labels)


def build_from_config(kwargs, num_classes, members=None):
    """The ensemble model of a config's `model.kwargs` (members loaded from
    their run folders unless given as keras models)."""
    from models import ensemble_models

    if members is None:
        members = [model for _, model, _ in load_members(kwargs["members"])]
    return ensemble_models.build_ensemble(
        members, kwargs["method"], num_classes, kwargs.get("weights"),
        kwargs.get("seed"))


def train_ensemble(ensemble_members, ensemble_method="weighted",
                   output_dir="runs", run_dir=None,
                   result_file="TEST_run_result.txt", batch_size=128,
                   lr=0.001, num_train_steps=2000, patience=7, seed=0,
                   grid_steps=10, export=True, log=print):
    """Builds (and for "feature" trains) an ensemble run; returns
    (run_dir, TrainResult, result line); for a run folder that already
    finished, (run_dir, None, its result line)."""
    import keras
    import tensorflow as tf

    import experiment
    from models import ensemble_models
    from models import ensembles
    from models import run_files
    from models import training

    if ensemble_method not in ensemble_models.METHODS:
        raise ValueError(f"Unknown ensemble method {ensemble_method!r}; "
                         f"valid: {', '.join(ensemble_models.METHODS)}.")
    experiment.check_settings(batch_size=batch_size, lr=lr,
                              num_train_steps=num_train_steps,
                              patience=patience, grid_steps=grid_steps)
    if run_dir is not None:
        line = experiment.finished_run(run_dir, result_file, log)
        if line is not None:
            return run_dir, None, line
    members = load_members(ensemble_members)
    # Counted now: building the ensemble freezes the members' layers.
    member_parameters = sum(
        experiment.count_parameters(member.trainable_weights)
        for _, member, _ in members)
    first = members[0][2]
    data = dict(first["data"])
    fold = experiment.load_fold(data["data_dir"])
    frames = data["encoder_size_audio"]
    if data.get("speaker_norm"):
        # The members read per-speaker normalised features (load_members
        # checks they all do); evaluate.py reads this flag back from "data".
        experiment.normalize_speakers(fold, frames)
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
        "model": {"name": ENSEMBLE_MODEL, "kwargs": kwargs},
        "data": data,
        "train": dict(vars(train_config), seed=seed,
                      member_names=names.split("+")),
    }
    run_files.write_json(os.path.join(run_dir, "config.json"), config)
    log(f"[Info] run {name} -> {run_dir}")

    def build():
        return build_from_config(kwargs, fold.num_classes,
                                 [model for _, model, _ in members])

    keras.utils.set_random_seed(seed)
    if ensemble_method == "feature":
        trainer = training.Trainer(build, tf.distribute.get_strategy(),
                                   run_dir, train_config, fold.num_classes,
                                   fold.label_names, log=log)
        model = trainer.model
        options = experiment.dataset_options(model)
        result = trainer.fit(
            experiment.train_dataset_fn(fold.splits["train"], batch_size,
                                        "sample", seed, frames, **options),
            experiment.eval_dataset(fold.splits["dev"], batch_size, frames,
                                    **options),
            experiment.eval_dataset(fold.splits["test"], batch_size, frames,
                                    **options),
            num_train=len(fold.splits["train"]))
    else:
        model = build()
        options = experiment.dataset_options(model)
        evaluator = training.Evaluator(model, tf.distribute.get_strategy(),
                                       fold.num_classes)
        dev, test = (
            evaluator(experiment.eval_dataset(fold.splits[split], batch_size,
                                              frames, **options),
                      fold.label_names)
            for split in ("dev", "test"))
        result = training.TrainResult(
            steps=0, best_step=0, best_dev_loss=dev["loss_mean"],
            best_dev_accuracy=dev["wa"], test_accuracy_at_best=test["wa"],
            stopped_early=False, validation_frequency=0, final_dev=dev,
            final_test=test, train_seconds=0.0)
    parameters = member_parameters + experiment.count_parameters(
        model.trainable_weights)
    line = experiment.finish_run(run_dir, model, result, fold.name, name,
                                 result_file, export, log, parameters)
    member_wa = {}
    for run_dir_, member, _ in members:
        member_result = training.Evaluator(
            member, tf.distribute.get_strategy(), fold.num_classes)(
                experiment.eval_dataset(
                    fold.splits["test"], batch_size, frames,
                    **experiment.dataset_options(member)))
        member_wa[run_dir_] = member_result["wa"]
        log(f"  member {run_dir_}: test WA {member_result['wa']:.4f}")
    metrics_path = os.path.join(run_dir, "metrics.json")
    metrics = run_files.read_json(metrics_path)
    metrics.update(method=ensemble_method, weights=weights,
                   member_test_wa=member_wa)
    run_files.write_json(metrics_path, metrics)
    return run_dir, result, line
