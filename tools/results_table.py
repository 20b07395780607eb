"""Prints a table of the runs below a folder (reads each metrics.json)."""

import json
import os
import sys


def main(root):
    rows = []
    order = ["ARE", "TRE", "MDRE", "MDREA"]
    names = sorted(os.listdir(root),
                   key=lambda n: (order.index(n) if n in order else 99, n))
    for name in names:
        path = os.path.join(root, name, "metrics.json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            m = json.load(f)
        rows.append((name, m["best_step"], m["steps"],
                     m["best_dev_accuracy"], m["test_accuracy_at_best"],
                     m["test"]["wa"], m["test"]["ua"], m["train_seconds"]))
    header = ("model", "best step", "steps", "dev WA", "test WA@best",
              "test WA", "test UA", "train s")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print(f"| {row[0]} | {row[1]} | {row[2]} | {row[3]:.3f} | "
              f"{row[4]:.3f} | {row[5]:.3f} | {row[6]:.3f} | {row[7]:.0f} |")


if __name__ == "__main__":
    main(sys.argv[1])
