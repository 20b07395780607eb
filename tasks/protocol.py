"""One protocol for every model: train each model on every fold of a build.

`python protocol.py --fold_root=BUILD --models=ARE,BASELINE_SVM
--output_dir=OUT [any train.py flag, e.g. --recipe=real]` calls
`run_protocol`: for each model, for each fold of the build (the folds
listed in `BUILD/manifest.json`, as `preprocessing.build_arrays` writes
it; else every sub-folder holding a fold `manifest.json`), in sequence and
in this process, it calls `train_run.run` (the same library call as
train.py, every other flag passed through) with the run folder
`OUT/<MODEL>/<fold>`.

Resumable: a fold whose run finished (its `protocol_fold.json`, written
after the run's own files) is skipped; a fold that was killed mid-training
resumes from its last checkpoint (train.py's own resume).
So rerunning the same command after a kill continues where it stopped,
and a finished protocol reruns in seconds (just the summary).

Writes (atomically) into OUT and prints:

* `protocol.json`: per model the per-fold test metrics, and over folds the
  mean ± std (population, ddof 0) of WA and UA, per-class recall (mean
  over the folds whose test split has the class, and pooled), the pooled
  confusion matrix and its WA/UA, steps (best step), train and wall
  seconds; plus the command's settings;
* `protocol.csv`: one row per model (the summary), `protocol_folds.csv`:
  one row per model and fold;
* `<MODEL>_confusion.png`: the pooled test confusion matrix of all folds.
"""

import csv
import io
import json
import os
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from common import atomic_files
from models import metrics
from tasks import ensemble_run
from tasks import evaluation
from tasks import run_dir as run_files
from tasks import train_run

DONE_FILE = "protocol_fold.json"
SUMMARY_JSON = "protocol.json"
SUMMARY_CSV = "protocol.csv"
FOLDS_CSV = "protocol_folds.csv"


def fold_dirs(fold_root: str, names: Optional[Sequence[str]] = None
              ) -> List[Tuple[str, str]]:
    """The folds of a build, in order: [(name, path)].

    Args:
        fold_root: str. A build folder (`build_arrays --output_dir`).
        names: sequence of str or None. Keep only these folds (in this
            order).

    Raises:
        FileNotFoundError: no such folder, or no fold in it, or a named fold
            missing.
    """
    if not os.path.isdir(fold_root):
        raise FileNotFoundError(f"{fold_root}: no such folder (expected a "
                                "build of preprocessing.build_arrays).")
    summary_path = os.path.join(fold_root, "manifest.json")
    listed = None
    if os.path.isfile(summary_path):
        with open(summary_path) as f:
            try:
                listed = list(json.load(f).get("folds", {}))
            except (json.JSONDecodeError, AttributeError) as error:
                raise FileNotFoundError(
                    f"{summary_path}: not a build summary ({error}).")
    if not listed:
        listed = sorted(
            name for name in os.listdir(fold_root)
            if os.path.isfile(os.path.join(fold_root, name, "manifest.json")))
    folds = [(name, os.path.join(fold_root, name)) for name in sorted(listed)]
    if names:
        known = dict(folds)
        missing = [name for name in names if name not in known]
        if missing:
            raise FileNotFoundError(f"{fold_root}: no fold {missing}; its "
                                    f"folds are {sorted(known)}.")
        folds = [(name, known[name]) for name in names]
    if not folds:
        raise FileNotFoundError(f"{fold_root}: no fold folders (expected "
                                "sub-folders with a manifest.json, as "
                                "preprocessing.build_arrays writes).")
    return folds


def _read_json(path):
    with open(path) as f:
        return json.load(f)


def fold_record(run_dir: str, wall_seconds: float) -> Dict[str, Any]:
    """What the summary keeps of one finished fold run."""
    run_metrics = _read_json(os.path.join(run_dir, "metrics.json"))
    test = run_metrics["test"]
    return {"run_dir": os.path.abspath(run_dir),
            "wa": test["wa"], "ua": test["ua"],
            "dev_wa": run_metrics["dev"]["wa"],
            "dev_ua": run_metrics["dev"]["ua"],
            "per_class_recall": test["per_class_recall"],
            "confusion_matrix": test["confusion_matrix"],
            "label_names": test["label_names"],
            "num_test": test["num_examples"],
            "steps": run_metrics["steps"],
            "best_step": run_metrics["best_step"],
            "train_seconds": run_metrics["train_seconds"],
            "wall_seconds": wall_seconds}


def _mean_std(values):
    values = np.asarray(values, np.float64)
    return float(values.mean()), float(values.std())


def summarize_model(records: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    """Mean ± std over folds and pooled metrics of one model's folds.

    Args:
        records: dict fold name → `fold_record(...)`.
    """
    folds = list(records.values())
    names = folds[0]["label_names"]
    pooled = np.sum([np.asarray(f["confusion_matrix"]) for f in folds],
                    axis=0)
    pooled_metrics = metrics.summarize(pooled, names)
    recall = {}
    for k, name in enumerate(names):
        # Only folds whose test split has the class: a recall of an absent
        # class is no measurement.
        values = [f["per_class_recall"][name] for f in folds
                  if np.asarray(f["confusion_matrix"])[k].sum() > 0]
        mean, std = _mean_std(values) if values else (float("nan"),) * 2
        recall[name] = {"mean": mean, "std": std, "folds": len(values),
                        "pooled": pooled_metrics["per_class_recall"][name]}
    summary = {"folds": len(folds)}
    for key in ("wa", "ua", "dev_wa", "dev_ua", "steps", "best_step"):
        summary[f"{key}_mean"], summary[f"{key}_std"] = _mean_std(
            [f[key] for f in folds])
    summary.update(
        per_class_recall=recall, pooled_wa=pooled_metrics["wa"],
        pooled_ua=pooled_metrics["ua"],
        pooled_confusion_matrix=pooled.tolist(),
        label_names=names,
        train_seconds=float(sum(f["train_seconds"] for f in folds)),
        wall_seconds=float(sum(f["wall_seconds"] for f in folds)))
    return summary


def _atomic_text(path, text):
    atomic_files.atomic_write(path, lambda f: f.write(text))


def _csv_text(header, rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def summary_csv(results: Dict[str, Any]) -> str:
    """`protocol.csv`: one row per model."""
    names = next(iter(results.values()))["summary"]["label_names"]
    header = (["model", "folds", "ua_mean", "ua_std", "wa_mean", "wa_std",
               "pooled_ua", "pooled_wa"]
              + [f"recall_{name}" for name in names]
              + ["steps_mean", "best_step_mean", "train_seconds",
                 "wall_seconds"])
    rows = []
    for model, result in results.items():
        s = result["summary"]
        rows.append([model, s["folds"]] + [
            f"{s[k]:.4f}" for k in ("ua_mean", "ua_std", "wa_mean", "wa_std",
                                    "pooled_ua", "pooled_wa")]
            + [f"{s['per_class_recall'][n]['mean']:.4f}" for n in names]
            + [f"{s['steps_mean']:.1f}", f"{s['best_step_mean']:.1f}",
               f"{s['train_seconds']:.1f}", f"{s['wall_seconds']:.1f}"])
    return _csv_text(header, rows)


def folds_csv(results: Dict[str, Any]) -> str:
    """`protocol_folds.csv`: one row per model and fold."""
    names = next(iter(results.values()))["summary"]["label_names"]
    header = (["model", "fold", "ua", "wa", "dev_ua", "dev_wa", "num_test"]
              + [f"recall_{name}" for name in names]
              + ["steps", "best_step", "train_seconds", "wall_seconds"])
    rows = []
    for model, result in results.items():
        for fold, f in result["folds"].items():
            rows.append([model, fold] + [f"{f[k]:.4f}" for k in (
                "ua", "wa", "dev_ua", "dev_wa")] + [f["num_test"]]
                + [f"{f['per_class_recall'][n]:.4f}" for n in names]
                + [f["steps"], f["best_step"], f"{f['train_seconds']:.1f}",
                   f"{f['wall_seconds']:.1f}"])
    return _csv_text(header, rows)


def format_table(results: Dict[str, Any]) -> str:
    """A markdown table: mean ± std over folds, per-class recall, time."""
    names = next(iter(results.values()))["summary"]["label_names"]
    lines = ["| model | folds | UA mean ± std | WA mean ± std | "
             + " | ".join(f"{n} recall" for n in names)
             + " | steps (best) | train s | wall s |",
             "|---|---|---|---|" + "---|" * len(names) + "---|---|---|"]
    for model, result in results.items():
        s = result["summary"]
        lines.append(
            f"| {model} | {s['folds']} | {s['ua_mean']:.3f} ± "
            f"{s['ua_std']:.3f} | {s['wa_mean']:.3f} ± {s['wa_std']:.3f} | "
            + " | ".join(f"{s['per_class_recall'][n]['mean']:.3f}"
                         for n in names)
            + f" | {s['steps_mean']:.0f} ({s['best_step_mean']:.0f}) | "
            f"{s['train_seconds']:.0f} | {s['wall_seconds']:.0f} |")
    return "\n".join(lines)


def write_outputs(output_dir: str, results: Dict[str, Any],
                  settings: Dict[str, Any]) -> None:
    """protocol.json, the two CSVs and one pooled confusion PNG per model."""
    run_files.write_json(os.path.join(output_dir, SUMMARY_JSON),
                         {"settings": settings, "models": results})
    _atomic_text(os.path.join(output_dir, SUMMARY_CSV), summary_csv(results))
    _atomic_text(os.path.join(output_dir, FOLDS_CSV), folds_csv(results))
    for model, result in results.items():
        s = result["summary"]
        evaluation.plot_confusion_matrix(
            s["pooled_confusion_matrix"], s["label_names"],
            os.path.join(output_dir, f"{model}_confusion.png"),
            f"{model}, {s['folds']} folds pooled: UA {s['pooled_ua']:.3f} "
            f"(mean {s['ua_mean']:.3f} ± {s['ua_std']:.3f})")


def _train_seed_ensemble(train_fn, seeds, run_dir, result_file, log,
                         **kwargs):
    """One run per seed in `run_dir/seed<k>`, then their average (an
    ENSEMBLE run, tasks/ensemble_run.py) in `run_dir` itself."""
    members = []
    for seed in seeds:
        member = os.path.join(run_dir, f"seed{seed}")
        train_fn(**kwargs, seed=seed, run_dir=member,
                 result_file=result_file, log=log)
        members.append(member)
    ensemble_run.train_ensemble(
        members, "average", run_dir=run_dir, result_file=result_file,
        export=kwargs.get("export", True), log=log)


def run_protocol(fold_root: str, models: Sequence[str], output_dir: str,
                 train_kwargs: Optional[Dict[str, Any]] = None,
                 folds: Optional[Sequence[str]] = None,
                 log: Callable[[str], None] = print,
                 train_fn: Optional[Callable[..., Any]] = None,
                 seeds: Optional[Sequence[int]] = None) -> Dict[str, Any]:
    """Trains every model on every fold (resumable); returns the results.

    Args:
        fold_root: str. A build folder.
        models: sequence of str. Model names (train.py's --model).
        output_dir: str. Run folders go to `<output_dir>/<MODEL>/<fold>`.
        train_kwargs: dict. Other `train_run.run` arguments (flags, recipe);
            model, data_dir, run_dir and result_file are set here.
        folds: sequence of str or None. Only these folds.
        log: callable(str).
        train_fn: callable like `train_run.run` (default: it).
        seeds: sequence of int or None. With two or more, each fold trains
            one run per seed and scores their averaged probabilities (a
            decision-level ENSEMBLE run; `train_kwargs` must not set seed).

    Returns:
        dict model → {"folds": {fold: fold_record}, "summary": ...}.
    """
    if train_fn is None:
        train_fn = train_run.run
    if not models:
        raise ValueError("run_protocol: no models given.")
    train_kwargs = dict(train_kwargs or {})
    seeds = list(seeds or ())
    if len(seeds) > 1:
        train_kwargs.pop("seed", None)
    reserved = {"model", "data_dir", "run_dir", "result_file", "log",
                "output_dir"} & set(train_kwargs)
    if reserved:
        raise ValueError(f"run_protocol sets {sorted(reserved)} itself.")
    fold_list = fold_dirs(fold_root, folds)
    result_file = os.path.join(output_dir, "TEST_run_result.txt")
    results = {}
    total = len(models) * len(fold_list)
    done = 0
    for model in models:
        records = {}
        for name, path in fold_list:
            done += 1
            run_dir = os.path.join(output_dir, model, name)
            marker = os.path.join(run_dir, DONE_FILE)
            if os.path.isfile(marker):
                records[name] = _read_json(marker)
                log(f"[protocol] {done}/{total} {model} {name}: finished "
                    f"before (test UA {records[name]['ua']:.3f}), skipped")
                continue
            log(f"[protocol] {done}/{total} {model} {name} -> {run_dir}")
            started = time.time()
            if len(seeds) > 1:
                _train_seed_ensemble(train_fn, seeds, run_dir, result_file,
                                     log, model=model, data_dir=path,
                                     **train_kwargs)
            else:
                train_fn(model=model, data_dir=path, run_dir=run_dir,
                         result_file=result_file, log=log, **train_kwargs)
            records[name] = fold_record(run_dir, time.time() - started)
            # Last: only a fold with every file of its run is "finished".
            run_files.write_json(marker, records[name])
            log(f"[protocol] {model} {name}: test UA "
                f"{records[name]['ua']:.3f} WA {records[name]['wa']:.3f} "
                f"({records[name]['wall_seconds']:.0f} s)")
        results[model] = {"folds": records,
                          "summary": summarize_model(records)}
    settings = {"fold_root": os.path.abspath(fold_root),
                "folds": [name for name, _ in fold_list],
                "models": list(models), "seeds": seeds,
                "train_kwargs": {k: v for k, v in train_kwargs.items()
                                 if _jsonable(v)}}
    write_outputs(output_dir, results, settings)
    log(format_table(results))
    return results


def _jsonable(value):
    try:
        json.dumps(value)
    except TypeError:
        return False
    return True
