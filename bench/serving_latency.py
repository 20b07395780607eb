"""Serving latency at batch 1: `serve_raw` (features in the graph) against
`serving_default` fed features computed in Python (what predict.py does).

Not a test. For one utterance of `--seconds` (demo-corpus speech joined up
to that length, written as a 16 kHz PCM16 wav) and its transcript it times,
over `--repeats` calls after `--warmup` calls, each from the wav file on
disk to the logits:

* python: `audio_features.load_wav` + `ServingAssets.example` (numpy MFCC,
  prosody, nltk tokens, vocabulary) + `serving_default`;
* serve_raw: `audio_features.load_wav` + `serve_raw`(waveform, length,
  transcript);
* serve_wav: reading the file's bytes + `serve_wav`(wav, transcript);

through `tf.saved_model.load`, and prints p50/p90 in ms. Without
`--model_dir` it builds a demo corpus and trains MDREA for a few steps at
the reference sizes (200 GRU units, 750 frames), exporting it to a
temporary folder. Example (about 3 minutes on 2 CPU cores):

    python bench/serving_latency.py --seconds=4 --repeats=30
"""

import argparse
import os
import sys
import tempfile
import time
from tasks import serving

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _demo_export(root, model):
    import csv

    from tasks import train_run
    from preprocessing import demo_corpus

    fold_dir = demo_corpus.generate(os.path.join(root, "demo"),
                                    num_utterances=60, num_workers=1,
                                    log=lambda _: None)
    run_dir = os.path.join(root, "run")
    train_run.run(model=model, data_dir=fold_dir, run_dir=run_dir,
                num_train_steps=4, batch_size=16, export=False,
                log=lambda _: None,
                result_file=os.path.join(root, "results.txt"))
    with open(os.path.join(root, "demo", "metadata.tsv")) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    waves = [os.path.join(root, "demo", row["wav_path"]) for row in rows]
    return serving.export_run(run_dir), waves, rows[0]["transcript"]


def _utterance(path, wav_paths, seconds):
    import numpy as np
    import soundfile

    from preprocessing import audio_features

    rate = audio_features.SAMPLE_RATE
    pieces, total = [], 0
    for wav_path in wav_paths:
        wave = audio_features.load_wav(wav_path)
        pieces.append(wave)
        total += len(wave)
        if total >= seconds * rate:
            break
    wave = np.concatenate(pieces)
    wave = np.resize(wave, int(seconds * rate))
    soundfile.write(path, wave, rate, subtype="PCM_16")
    return path


def _time(function, warmup, repeats):
    import numpy as np

    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000.0)
    return np.percentile(times, 50), np.percentile(times, 90)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", default=None,
                        help="An export with serve_raw (default: a demo "
                             "MDREA trained here).")
    parser.add_argument("--wav", default=None,
                        help="Speech to time (looped or cut to --seconds); "
                             "needed with --model_dir.")
    parser.add_argument("--model", default="MDREA")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--transcript", default=None)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()

    import tensorflow as tf

    from preprocessing import audio_features

    root = tempfile.mkdtemp(prefix="serving_latency-")
    transcript = args.transcript
    if args.model_dir:
        if not args.wav:
            raise SystemExit("--model_dir needs --wav (speech to time).")
        export_dir, waves = args.model_dir, [args.wav]
    else:
        export_dir, waves, demo_text = _demo_export(root, args.model)
        transcript = transcript or demo_text
    if args.wav:
        waves = [args.wav]
    transcript = transcript or "I can't believe you did that."
    wav_path = _utterance(os.path.join(root, "utterance.wav"), waves,
                          args.seconds)
    assets = serving.ServingAssets.from_export(export_dir)
    loaded = tf.saved_model.load(export_dir)
    serve = loaded.signatures["serving_default"]
    serve_raw = loaded.signatures["serve_raw"]
    serve_wav = loaded.signatures["serve_wav"]
    text = tf.constant([transcript])

    def python_path():
        features, _ = assets.example(wav_path, transcript)
        return serve(**{k: tf.constant(v) for k, v in features.items()})

    def raw_path():
        wave = audio_features.load_wav(wav_path)
        return serve_raw(waveform=tf.constant(wave[None]),
                         waveform_length=tf.constant([len(wave)]),
                         transcript=text)

    def wav_path_bytes():
        with open(wav_path, "rb") as f:
            contents = f.read()
        return serve_wav(wav=tf.constant([contents]), transcript=text)

    print(f"model {assets.model_name}, {args.seconds:g} s utterance, batch "
          f"1, {args.repeats} calls after {args.warmup} warm-up, "
          f"{os.cpu_count()} CPU(s); TF {tf.__version__}")
    for name, function in (("python features + serving_default",
                            python_path),
                           ("serve_raw (waveform)", raw_path),
                           ("serve_wav (wav bytes)", wav_path_bytes)):
        p50, p90 = _time(function, args.warmup, args.repeats)
        print(f"{name:<36} p50 {p50:8.1f} ms   p90 {p90:8.1f} ms")


if __name__ == "__main__":
    main()
