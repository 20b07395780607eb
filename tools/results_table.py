"""Prints one markdown table of the runs below a folder.

    python tools/results_table.py RUNS_ROOT [ROW ...]

Each row is a run folder `RUNS_ROOT/<ROW>` written by train.py (its
metrics.json; `wall_seconds` when the script that ran it wrote one); without
ROWs, every run folder below RUNS_ROOT in name order. Columns: the model's
inputs, its parameters (an ensemble: its members' plus its head's), the
steps trained (best step), dev WA at the best step, test WA and UA of the
restored best weights, train and wall seconds.

    python tools/results_table.py --asr RUNS_ROOT ASR_FOLD_DIR [ROW ...]

prints the gold-vs-ASR table of `reference_script.sh --asr`: each row's run
on gold transcripts (`RUNS_ROOT/gold/<ROW>`) next to its run on ASR
transcripts (`RUNS_ROOT/asr/<ROW>`), under the recogniser and its WER/CER
per split from the ASR fold's manifest.json.
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


SPLIT_ORDER = {"train": 0, "dev": 1, "test": 2}


def _accuracy(run_dir):
    path = os.path.join(run_dir, "metrics.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)["test"]


def asr_table(root, fold_dir, labels):
    """The gold-vs-ASR table (see the module docstring)."""
    with open(os.path.join(fold_dir, "manifest.json")) as f:
        info = json.load(f)["asr"]
    print(f"Recogniser: {info['spec']} ({info['backend']}); "
          "WER / CER against the gold text: " + ", ".join(
              f"{split} {_rate(r['wer'])} / {_rate(r['cer'])} "
              f"({r['num_empty']} empty)"
              for split, r in sorted(
                  info["report"].items(),
                  key=lambda kv: SPLIT_ORDER.get(kv[0], len(SPLIT_ORDER)))))
    print()
    print("| model | gold test WA | gold test UA | ASR test WA | "
          "ASR test UA | WA change |")
    print("|---|---|---|---|---|---|")
    for label in labels:
        gold = _accuracy(os.path.join(root, "gold", label))
        heard = _accuracy(os.path.join(root, "asr", label))
        cells = []
        for result in (gold, heard):
            cells += (["(failed)", ""] if result is None else
                      [f"{result['wa']:.3f}", f"{result['ua']:.3f}"])
        change = ("" if gold is None or heard is None else
                  f"{heard['wa'] - gold['wa']:+.3f}")
        print(f"| {label} | " + " | ".join(cells) + f" | {change} |")


def _rate(value):
    return "n/a" if value is None else f"{value:.3f}"


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
    if sys.argv[1] == "--asr":
        if len(sys.argv) < 4:
            sys.exit(__doc__)
        asr_table(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        main(sys.argv[1], sys.argv[2:])
