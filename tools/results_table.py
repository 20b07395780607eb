"""Prints one markdown table of the runs below a folder.

    python tools/results_table.py RUNS_ROOT [ROW ...]

Each row is a run folder `RUNS_ROOT/<ROW>` written by train.py (its
metrics.json; `wall_seconds` when the script that ran it wrote one); without
ROWs, every run folder below RUNS_ROOT in name order. Columns: the model's
inputs, its parameters (an ensemble: its members' plus its head's), the
steps trained (best step), dev WA at the best step, test WA and UA of the
restored best weights, train and wall seconds.
"""

import json
import os
import sys

# Short names of the models' inputs (lengths are implied).
INPUT_NAMES = {"audio_mfcc": "MFCC", "audio_prosody": "prosody",
               "audio_logmel": "log-mel", "waveform": "waveform",
               "text_ids": "text"}


def row(run_dir, label):
    with open(os.path.join(run_dir, "metrics.json")) as f:
        m = json.load(f)
    wall = ""
    if os.path.exists(os.path.join(run_dir, "wall_seconds")):
        with open(os.path.join(run_dir, "wall_seconds")) as f:
            wall = f.read().strip()
    inputs = " + ".join(INPUT_NAMES[name] for name in m.get("inputs", [])
                        if name in INPUT_NAMES)
    params = m.get("parameters")
    return (f"| {label} | {inputs} | "
            f"{'' if params is None else f'{params:,}'} | "
            f"{m['steps']} ({m['best_step']}) | "
            f"{m['best_dev_accuracy']:.3f} | {m['test']['wa']:.3f} | "
            f"{m['test']['ua']:.3f} | {m['train_seconds']:.0f} | {wall} |")


def main(root, labels):
    labels = labels or sorted(
        name for name in os.listdir(root)
        if os.path.exists(os.path.join(root, name, "metrics.json")))
    print("| model | inputs | params | steps (best) | dev WA | test WA | "
          "test UA | train s | wall s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label in labels:
        run_dir = os.path.join(root, label)
        if not os.path.exists(os.path.join(run_dir, "metrics.json")):
            print(f"| {label} | (no metrics.json: the run failed or was "
                  "skipped) | | | | | | | |")
            continue
        print(row(run_dir, label))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
