"""Explains a trained model's decision on one utterance, or summarises a split.

Examples:

    # A wav file and its transcript:
    python explain.py --run_dir=runs/SE_multi_attn_prosody_D... \
        --wav=hello.wav --text="I love it" --output_dir=/tmp/why
    # Utterance 3 of the demo fold's test split:
    python explain.py --run_dir=runs/... --data_dir=demo_data/demo_set01 \
        --split=test --index=3
    # Words with the highest mean attribution per predicted class:
    python explain.py --run_dir=runs/... --summary --split=test

Writes to `--output_dir` (default `<run_dir>/explain/<utterance>`):

* `explanation.json`: probabilities; integrated gradients of the target
  class logit (default: the predicted class) per word (embedding space), per
  audio frame (summed over the 39 MFCC dims) and per prosody feature, with
  the completeness check (Σ attributions vs. f(input) − f(baseline));
  modality contributions by ablation (both / audio only / text only /
  neither, and their Shapley split); MDREA's attention weights over words.
* `audio_attribution.png` (waveform, or the MFCC log-energy curve without
  one, above the per-frame attribution), `word_attribution.png` (words
  coloured by attribution), `modalities.png`, `prosody_attribution.png`,
  and `attention.png` for MDREA.

With `--summary`: `word_summary.json` (default folder
`<run_dir>/explain/summary_<split>`). See `tasks.explanation` and
`models/attribution.py` for the baselines.
"""

from typing import Optional, Sequence

from absl import app
from absl import flags
from absl import logging

from apps import cli
from apps import common_flags
from tasks import explanation as explanation_lib
from tasks import serving


def define_flags() -> None:
    common_flags.define_run_dir()
    flags.DEFINE_string("wav", None, "Audio file to explain.")
    flags.DEFINE_string("text", None, "Its transcript (text models).")
    common_flags.define_data_dir(
        "Without --wav: fold folder whose utterance to explain (default: "
        "the one the run trained on).")
    common_flags.define_split("Split of --data_dir.")
    flags.DEFINE_integer("index", 0, "Row of the split to explain.")
    common_flags.define_output_dir(
        "Output folder (default: <run_dir>/explain/<utterance>).")
    flags.DEFINE_integer(
        "steps", 64, "Integrated-gradients quadrature points."
    )
    flags.DEFINE_string(
        "target", None, "Class to explain (default: the predicted one)."
    )
    flags.DEFINE_enum(
        "baseline",
        "auto",
        ["auto", "zero"],
        "IG/ablation baseline of MFCC and prosody: auto = zero in the "
        "model's input space (training means for --normalize_audio models, "
        "raw zeros otherwise); zero = raw zeros.",
    )
    flags.DEFINE_boolean(
        "summary",
        False,
        "Summarise the split instead: top words per predicted class.",
    )
    flags.DEFINE_integer(
        "max_examples", None, "--summary: the first N examples only."
    )
    flags.DEFINE_integer("top_k", 10, "--summary: words listed per class.")
    flags.DEFINE_integer(
        "min_count",
        2,
        "--summary: minimum occurrences of a word in a class to be listed.",
    )


def main(argv: Sequence[str]) -> None:
    common_flags.no_arguments(argv)
    logging.set_verbosity(logging.WARNING)
    values = flags.FLAGS
    if values.summary:
        result, path = explanation_lib.summary(
            values.run_dir, values.output_dir, values.data_dir, values.split,
            values.steps, values.max_examples, values.top_k,
            values.min_count, values.baseline)
        for name, entry in result["classes"].items():
            words = ", ".join(f"{w['token']} ({w['mean_attribution']:+.3f})"
                              for w in entry["top_words"][:5])
            print(f"{name:>8s} ({entry['num_predicted']} predicted): "
                  f"{words or '-'}")
        completeness = result["completeness"]
        if completeness["num_over_tolerance"]:
            print(f"warning: IG completeness off by more than 5% for "
                  f"{completeness['num_over_tolerance']} of "
                  f"{result['num_examples']} examples: their output jumps "
                  "along the IG path, so their word attributions are "
                  "incomplete")
        print(path)
        return
    if values.text is not None and values.wav is None:
        raise app.UsageError("--text goes with --wav.")
    explanation, paths = explanation_lib.explain(
        values.run_dir, values.output_dir, values.wav, values.text,
        values.data_dir, values.split, values.index, values.steps,
        values.target, values.baseline)
    ig = explanation["integrated_gradients"]
    print(f"predicted {explanation['predicted']} "
          f"(p = {explanation['probabilities'][explanation['predicted']]:.3f})"
          f"; IG of the {explanation['target']} logit: Σ {ig['sum']:+.4f} vs "
          f"f(x) − f(baseline) {ig['output_difference']:+.4f}")
    if not ig["completeness_ok"]:
        print(f"warning: {ig['warning']}")
    if "words" in ig:
        top = sorted(ig["words"], key=lambda w: -abs(w["attribution"]))[:5]
        print("words: " + ", ".join(f"{w['token']} {w['attribution']:+.3f}"
                                    for w in top))
    print("\n".join(paths))


def run(argv: Optional[Sequence[str]] = None) -> None:
    """The `explain` console script (and `python explain.py`)."""
    define_flags()
    flags.mark_flags_as_required(["run_dir"])
    cli.run(main, "explain.py", (serving.InferenceError,), argv)
