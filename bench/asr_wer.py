"""WER, CER and decoding speed of a recogniser on a manifest corpus.

Not a test. Decodes the first `--limit` rows (all by default) of a CSV/TSV
manifest with a wav column and a gold transcript column, then prints the
error report (`preprocessing.asr.error_report`) and the speed (seconds per
clip, real-time factor). Example (EmoDB, German speech, the default English
pocketsphinx recogniser; ~2.5 s per clip on one shared core):

    python bench/asr_wer.py --manifest=/work/shared/devcorpus/emodb/metadata.tsv \\
        --asr=pocketsphinx --num_workers=1 --cache_dir=/tmp/asr_cache

With `--cache_dir`, a rerun reads the transcripts back (the speed line then
counts only the clips decoded by this run).
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from preprocessing import asr  # noqa: E402
from preprocessing import manifest  # noqa: E402


def read_rows(path, limit=None):
    """(wav column value, wav path, gold transcript) of the first `limit`
    rows, read by the toolkit's one manifest parser."""
    table = manifest.read_table(path, required=("wav", "transcript"))
    rows = []
    for row in table.rows:
        if row.problem or not row.wav_path:
            sys.exit(f"{path}:{row.line}: {row.problem or 'empty wav path'}")
        rows.append((row.fields["wav"], row.wav_path,
                     row.fields["transcript"]))
    return rows[:limit] if limit else rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--asr", default=asr.DEFAULT_SPEC)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--num_workers", type=int, default=1)
    parser.add_argument("--cache_dir", default=None)
    parser.add_argument("--output_json", default=None)
    args = parser.parse_args()

    rows = read_rows(args.manifest, args.limit)
    recognizer = asr.make_recognizer(args.asr)
    start = time.perf_counter()
    results = asr.transcribe_many(recognizer, [r[1] for r in rows],
                                  num_workers=args.num_workers,
                                  cache_dir=args.cache_dir)
    wall = time.perf_counter() - start
    report = asr.error_report([r[2] for r in rows],
                              [t.text for t in results],
                              ids=[r[0] for r in rows])
    speed = {**asr.speed(results), "wall_seconds": round(wall, 1),
             "num_workers": args.num_workers}
    print(f"{args.asr} on {len(rows)} clips of {args.manifest}")
    print(asr.format_report(report))
    print("speed: " + json.dumps(speed))
    print("top substitutions: " + ", ".join(
        f"{s['reference']}→{s['hypothesis']} ×{s['count']}"
        for s in report.get("top_substitutions", [])[:10]))
    for (name, _, gold), t in list(zip(rows, results))[:5]:
        print(f"  {name}: gold {gold!r} → {t.text!r}")
    if args.output_json:
        with open(args.output_json, "w") as f:
            json.dump({"recognizer": recognizer.describe(), "report": report,
                       "speed": speed,
                       "transcripts": {r[0]: t.text
                                       for r, t in zip(rows, results)}},
                      f, indent=2, ensure_ascii=False)


if __name__ == "__main__":
    main()
