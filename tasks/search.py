"""Hyperparameter search with optuna, scored on dev folds only (what
search.py runs).

    python search.py --space=search_space.json \\
        --data_dirs=/work/devfolds/emodb/speaker_fold01,.../speaker_fold03 \\
        --n_trials=20 --storage=sqlite:///runs/search/study.db \\
        --output_config=runs/search/best.json
    python train.py --config=runs/search/best.json --data_dir=FOLD

Each trial calls the training function it is given (train.py's `train`)
with the space's fixed flags plus the
sampled ones on every fold in `--data_dirs`, and scores it by the mean
UA of the DEV split (best weights restored): the test split is never
read for the score (each fold's dev speakers are disjoint from its train
and test speakers). After each fold the running mean is reported, so
optuna's median pruner stops poor trials early. With `--storage` (an
optuna RDB URL, e.g. sqlite:///study.db) a killed search resumes: rerun
the same command and it continues the study, counting the finished trials
towards `--n_trials`.

The search space is a JSON file:

    {"fixed": {"model": "ARE_POOL", "recipe": "real", "frame_stride": 4},
     "params": {
        "lr": {"type": "float", "low": 3e-4, "high": 3e-3, "log": true},
        "hidden_dim_audio": {"type": "int", "low": 32, "high": 128,
                             "step": 32},
        "are_pooling": {"type": "categorical",
                        "choices": ["mean_max", "attention"]}}}

Names are `train.py` flags. `--output_config` gets {"flags": fixed + best
values, "search": study name, best dev UA, trials}: `train.py --config`
and the protocol command read its "flags" back.

Why optuna: maintained, define-by-run spaces (a plain JSON file maps onto
`suggest_*` calls), pruning of bad trials after their first folds, and
RDB storage for resuming; keras-tuner wants `fit`-style models, while
these runs go through the toolkit's own trainer.
"""

import json
import os
from typing import Any, Callable, Collection, Dict, Optional, Sequence, Tuple

from tasks import run_dir as run_files
from tasks import train_run

PARAM_TYPES = ("float", "int", "categorical")


class SpaceError(ValueError):
    """A bad search-space file (one line: file, what, found)."""


def train_arguments() -> frozenset:
    """The names a search space may set: `train_run.run`'s (train.py's
    flags, the Yoon names and any model's options) and the model."""
    return frozenset(train_run.accepted_names()) | {"model"}


def load_space(path: str, known: Collection[str]
               ) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Reads and validates a search space; returns (fixed, params).

    Args:
        path: str. The JSON search space.
        known: collection of str. The valid names (train.py's flags).

    Raises:
        SpaceError: unreadable, not {"fixed": {...}, "params": {...}}, an
            unknown flag, or a parameter without a valid type and range.
    """
    try:
        with open(path) as f:
            space = json.load(f)
    except (OSError, json.JSONDecodeError) as error:
        raise SpaceError(f"{path}: not a readable JSON search space "
                         f"({error}).") from error
    if not isinstance(space, dict) or not isinstance(
            space.get("params"), dict) or not space["params"]:
        raise SpaceError(f"{path}: expected {{\"fixed\": {{...}}, "
                         "\"params\": {name: {type, ...}}} with at least one"
                         " parameter.")
    fixed = space.get("fixed", {})
    params = space["params"]
    unknown = sorted((set(fixed) | set(params)) - known)
    if unknown:
        raise SpaceError(f"{path}: unknown train.py flags {unknown}.")
    for name, spec in params.items():
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind not in PARAM_TYPES:
            raise SpaceError(f"{path}: parameter {name!r} needs a type in "
                             f"{PARAM_TYPES}; found {spec!r}.")
        needed = ("choices",) if kind == "categorical" else ("low", "high")
        if any(key not in spec for key in needed):
            raise SpaceError(f"{path}: parameter {name!r} ({kind}) needs "
                             f"{list(needed)}; found {sorted(spec)}.")
    return fixed, params


def suggest(trial: Any, params: Dict[str, Any]) -> Dict[str, Any]:
    """The trial's values for a space's params (optuna define-by-run)."""
    values = {}
    for name, spec in params.items():
        if spec["type"] == "float":
            values[name] = trial.suggest_float(
                name, spec["low"], spec["high"], log=spec.get("log", False))
        elif spec["type"] == "int":
            values[name] = trial.suggest_int(
                name, spec["low"], spec["high"], step=spec.get("step", 1),
                log=spec.get("log", False))
        else:
            values[name] = trial.suggest_categorical(name, spec["choices"])
    return values


def search(space_path: str, data_dirs: Sequence[str], output_config: str,
           work_dir: str, n_trials: int = 20, storage: Optional[str] = None,
           study_name: str = "search", seed: int = 0,
           log: Callable[[str], None] = print,
           train_fn: Optional[Callable[..., Any]] = None) -> Dict[str, Any]:
    """Runs (or resumes) a study; writes the best configuration.

    Args:
        space_path: str. The JSON search space.
        data_dirs: sequence of str. Fold folders, scored on their dev split.
        output_config: str. Where the best configuration goes.
        work_dir: str. Trial run folders go below it.
        n_trials: int. Trials in the study in all (finished ones counted).
        storage: str or None. optuna storage URL (None: in memory).
        study_name: str.
        seed: int. Seed of the sampler (TPE).
        train_fn: callable like `train_run.run` (the default; returns
            run_dir, TrainResult, line).

    Returns:
        dict written to `output_config`.
    """
    # optuna: an optional heavy dependency, only for the search.
    import optuna

    fixed, params = load_space(space_path, train_arguments())
    train_fn = train_fn or train_run.run
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=study_name, storage=storage, load_if_exists=True,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3))

    def objective(trial):
        values = suggest(trial, params)
        scores = []
        for index, data_dir in enumerate(data_dirs):
            run_dir = os.path.join(work_dir, f"trial{trial.number:03d}",
                                   f"fold{index:02d}")
            _, result, _ = train_fn(
                **{**fixed, **values}, data_dir=data_dir, run_dir=run_dir,
                result_file=os.path.join(work_dir, "TEST_run_result.txt"),
                export=False, log=lambda _: None)
            scores.append(result.final_dev["ua"])
            trial.report(sum(scores) / len(scores), index)
            if trial.should_prune():
                raise optuna.TrialPruned()
        score = sum(scores) / len(scores)
        log(f"[search] trial {trial.number}: dev UA {score:.3f} {values}")
        return score

    done = len([t for t in study.trials if t.state.is_finished()])
    if n_trials > done:
        study.optimize(objective, n_trials=n_trials - done)
    best = study.best_trial
    config = {"flags": {**fixed, **best.params},
              "search": {"study": study_name, "space": os.path.abspath(
                  space_path), "score": "mean dev UA over the folds",
                  "best_dev_ua": best.value, "best_trial": best.number,
                  "trials": len(study.trials),
                  "data_dirs": [os.path.abspath(d) for d in data_dirs]}}
    run_files.write_json(output_config, config)
    log(f"[search] best dev UA {best.value:.3f} (trial {best.number}) -> "
        f"{output_config}")
    return config
