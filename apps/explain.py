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
`<run_dir>/explain/summary_<split>`). See `inference.explain_example` and
`models/attribution.py` for the baselines.
"""

import os

from absl import app
from absl import flags
from absl import logging


def define_flags():
    """Defines this binary's flags (only when it runs as a program, so that
    the binaries stay importable together, e.g. by the tests)."""
    flags.DEFINE_string("run_dir", None, "Run folder written by train.py.")
    flags.DEFINE_string("wav", None, "Audio file to explain.")
    flags.DEFINE_string("text", None, "Its transcript (text models).")
    flags.DEFINE_string(
        "data_dir",
        None,
        "Without --wav: fold folder whose utterance to explain (default: "
        "the one the run trained on).",
    )
    flags.DEFINE_enum(
        "split", "test", ["train", "dev", "test"], "Split of --data_dir."
    )
    flags.DEFINE_integer("index", 0, "Row of the split to explain.")
    flags.DEFINE_string(
        "output_dir",
        None,
        "Output folder (default: <run_dir>/explain/<utterance>).",
    )
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


# ---- plots ---------------------------------------------------------------

def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def _save(figure, path):
    """Writes a figure atomically (temporary file renamed)."""
    pyplot = _pyplot()
    tmp_path = path + ".tmp.png"
    figure.savefig(tmp_path, dpi=110, bbox_inches="tight")
    pyplot.close(figure)
    os.replace(tmp_path, path)


def _diverging(values):
    """Red (positive) / blue (negative) colours, scaled by max |value|."""
    import numpy as np
    from matplotlib import cm
    from matplotlib import colors

    values = np.asarray(values, dtype=float)
    limit = float(np.abs(values).max()) if values.size else 0.0
    norm = colors.Normalize(-(limit or 1.0), limit or 1.0)
    return cm.RdBu_r(norm(values)), norm


def _title(explanation, what):
    ig = explanation["integrated_gradients"]
    return (f"{explanation['model']}: {what} for the {explanation['target']!r}"
            f" logit (predicted {explanation['predicted']!r})\nIG total "
            f"{ig['sum']:+.3f} = f(x) − f(baseline) "
            f"{ig['output_difference']:+.3f}")


def plot_audio(explanation, path, waveform=None, energy=None,
               sample_rate=16000):
    """Waveform (or MFCC log-energy curve) above the per-frame attribution.

    Args:
        explanation: dict from `inference.explain_example`.
        path: str. PNG to write.
        waveform: float array [samples] or None.
        energy: float array [frames] (MFCC log energy) or None.
        sample_rate: int. Of `waveform`.
    """
    import numpy as np

    pyplot = _pyplot()
    ig = explanation["integrated_gradients"]
    frames = np.asarray(ig["frames"])
    step = ig["frame_seconds"]
    # Frame i covers [i·10 ms, i·10 ms + 25 ms]; drawn at its centre.
    times = np.arange(len(frames)) * step + 0.0125
    figure, (top, bottom) = pyplot.subplots(
        2, 1, figsize=(9, 4.6), sharex=True,
        gridspec_kw={"height_ratios": [1, 1.2]})
    if waveform is not None:
        top.plot(np.arange(len(waveform)) / sample_rate, waveform,
                 color="0.35", linewidth=0.5)
        top.set_ylabel("waveform")
        end = len(waveform) / sample_rate
    else:
        top.plot(np.arange(len(energy)) * step + 0.0125, energy,
                 color="0.35")
        top.set_ylabel("MFCC log energy")
        end = len(energy) * step + 0.025
    fed_end = len(frames) * step + 0.015
    if end > fed_end + step:
        # Frames past the encoder size are never fed to the model.
        for axes in (top, bottom):
            axes.axvspan(fed_end, end, color="0.85", zorder=0)
        top.text(fed_end, top.get_ylim()[1], " not fed to the model",
                 va="top", fontsize=8, color="0.4")
    colours, _ = _diverging(frames)
    bottom.bar(times, frames, width=step, color=colours)
    bottom.axhline(0.0, color="black", linewidth=0.5)
    bottom.set_ylabel("attribution / frame")
    bottom.set_xlabel("time (s)")
    bottom.set_xlim(0, max(end, fed_end))
    top.set_title(_title(explanation, "audio frames (MFCC, Σ over 39 dims)")
                  + f"; Σ frames {sum(frames):+.3f}", fontsize=8)
    figure.tight_layout()
    _save(figure, path)


def plot_words(explanation, path):
    """Words as boxes coloured by attribution (red +, blue −), values
    below."""
    import numpy as np

    pyplot = _pyplot()
    words = explanation["integrated_gradients"]["words"]
    values = [w["attribution"] for w in words]
    colours, norm = _diverging(values)
    per_line = 10
    lines = max(1, -(-len(words) // per_line))
    figure = pyplot.figure(figsize=(10, 1.2 + 0.8 * lines))
    axes = figure.add_axes([0.02, 0.02, 0.84, 0.72])
    axes.set_axis_off()
    axes.set_xlim(0, per_line)
    axes.set_ylim(lines, 0)
    for i, (word, colour) in enumerate(zip(words, colours)):
        x, y = i % per_line + 0.5, i // per_line + 0.35
        dark = abs(norm(word["attribution"]) - 0.5) > 0.35
        label = word["token"] + ("*" if word["unknown"] else "")
        axes.text(x, y, label, ha="center", va="center", fontsize=11,
                  color="white" if dark else "black",
                  bbox={"boxstyle": "round,pad=0.3", "facecolor": colour,
                        "edgecolor": "0.5"})
        axes.text(x, y + 0.38, f"{word['attribution']:+.3f}", ha="center",
                  va="center", fontsize=8, color="0.3")
    from matplotlib import cm

    bar_axes = figure.add_axes([0.89, 0.08, 0.02, 0.62])
    figure.colorbar(cm.ScalarMappable(norm=norm, cmap="RdBu_r"),
                    cax=bar_axes)
    total = float(np.sum(values)) if values else 0.0
    figure.suptitle(_title(explanation, "words (embedding-space IG)")
                    + f"; Σ words {total:+.3f}; * = unknown word (_UNK_)",
                    fontsize=8)
    _save(figure, path)


def plot_modalities(explanation, path):
    """Class probabilities with each modality present/absent, and the
    Shapley split of the target-class probability."""
    import numpy as np

    pyplot = _pyplot()
    modalities = explanation["modalities"]
    conditions = modalities["conditions"]
    labels = explanation["label_names"]
    figure, (left, right) = pyplot.subplots(
        1, 2, figsize=(9, 3.6), gridspec_kw={"width_ratios": [2.2, 1]})
    width = 0.8 / len(conditions)
    for k, (condition, values) in enumerate(conditions.items()):
        probabilities = [values["probabilities"][n] for n in labels]
        left.bar(np.arange(len(labels)) + (k - (len(conditions) - 1) / 2)
                 * width, probabilities, width=width,
                 label=condition.replace("_", " "))
    left.set_xticks(range(len(labels)), labels)
    left.set_ylabel("probability")
    left.set_ylim(0, 1)
    left.legend(fontsize=7, title="input", title_fontsize=7)
    left.set_title("ablation: an absent modality has length 0 (prosody at "
                   "the IG baseline)", fontsize=8)
    shares = modalities["shapley_probability"]
    colours = ["tab:red" if v > 0 else "tab:blue" for v in shares.values()]
    right.bar(list(shares), list(shares.values()), color=colours)
    right.axhline(0.0, color="black", linewidth=0.5)
    right.set_title(f"Shapley share of P({explanation['target']})",
                    fontsize=8)
    for i, value in enumerate(shares.values()):
        right.text(i, value, f"{value:+.3f}", ha="center",
                   va="bottom" if value >= 0 else "top", fontsize=8)
    figure.suptitle(f"{explanation['model']}: modality contributions "
                    f"(predicted {explanation['predicted']!r})", fontsize=9)
    figure.tight_layout()
    _save(figure, path)


def plot_prosody(explanation, path):
    """Horizontal bars: attribution of each prosody functional."""
    pyplot = _pyplot()
    prosody = explanation["integrated_gradients"]["prosody"]
    values = [p["attribution"] for p in prosody]
    colours, _ = _diverging(values)
    figure, axes = pyplot.subplots(figsize=(9, 0.2 * len(prosody) + 1.4))
    axes.barh(range(len(prosody)), values, color=colours)
    axes.set_yticks(range(len(prosody)), [p["name"] for p in prosody],
                    fontsize=6)
    axes.invert_yaxis()
    axes.axvline(0.0, color="black", linewidth=0.5)
    axes.set_xlabel("attribution")
    axes.set_title(_title(explanation, "prosody functionals")
                   + f"; Σ prosody {sum(values):+.3f}", fontsize=8)
    figure.tight_layout()
    _save(figure, path)


def plot_attention(explanation, path):
    """MDREA's attention weight on each word."""
    pyplot = _pyplot()
    attention = explanation["attention"]
    words = attention["words"]
    figure, axes = pyplot.subplots(figsize=(max(4, 0.6 * len(words) + 2),
                                            3.2))
    axes.bar(range(len(words)), [w["weight"] for w in words],
             color="tab:purple")
    axes.set_xticks(range(len(words)), [w["token"] for w in words],
                    rotation=45, ha="right")
    axes.set_ylabel("attention weight")
    axes.set_title(f"{explanation['model']}: attention of the audio query "
                   f"over words (Σ = {attention['mass_on_words']:.3f})",
                   fontsize=8)
    figure.tight_layout()
    _save(figure, path)


def write_explanation(explanation, output_dir, waveform=None, energy=None):
    """Writes explanation.json and the plots; returns the written paths."""
    from models import run_files

    os.makedirs(output_dir, exist_ok=True)
    paths = [os.path.join(output_dir, "explanation.json")]
    run_files.write_json(paths[0], explanation)
    ig = explanation["integrated_gradients"]
    plots = []
    if "frames" in ig:
        plots.append(("audio_attribution.png",
                      lambda p: plot_audio(explanation, p, waveform, energy)))
    if "prosody" in ig:
        plots.append(("prosody_attribution.png",
                      lambda p: plot_prosody(explanation, p)))
    if "words" in ig:
        plots.append(("word_attribution.png",
                      lambda p: plot_words(explanation, p)))
    plots.append(("modalities.png",
                  lambda p: plot_modalities(explanation, p)))
    if explanation.get("attention"):
        plots.append(("attention.png",
                      lambda p: plot_attention(explanation, p)))
    for name, plot in plots:
        path = os.path.join(output_dir, name)
        plot(path)
        paths.append(path)
    return paths


# ---- library entry points -------------------------------------------------

def _fold(config, data_dir, split):
    import experiment
    from preprocessing import reference_arrays

    data_dir = data_dir or config["data"]["data_dir"]
    if experiment.manifest_digest(data_dir) != config["data"].get("digest"):
        logging.warning("%s differs from the data the run trained on.",
                        data_dir)
    fold = reference_arrays.load_fold(data_dir, splits=(split,),
                                      load_embedding=False)
    return fold, fold.splits[split]


def explain(run_dir, output_dir=None, wav=None, text=None, data_dir=None,
            split="test", index=0, steps=64, target=None, baseline="auto"):
    """Explains one utterance of a run's model and writes JSON + plots.

    Args:
        run_dir: str. Run folder.
        output_dir: str or None. Default `<run_dir>/explain/<utterance>`.
        wav, text: an audio file and its transcript; or None to explain
            row `index` of `split` of `data_dir` (default: the run's fold).
        steps: int. IG quadrature points.
        target: str (class name), int or None (the predicted class).
        baseline: "auto" or "zero" (see models/attribution.py).

    Returns:
        (explanation dict, list of written paths).
    """
    import numpy as np

    import experiment
    import inference
    from preprocessing import input_pipeline

    experiment.check_settings(index=index, steps=steps)
    model, config = experiment.load_trained_model(run_dir)
    waveform = energy = None
    if wav is not None:
        exported = os.path.join(run_dir, "saved_model")
        assets = (inference.ServingAssets.from_export(exported)
                  if inference.is_inference_export(exported) else
                  inference.ServingAssets.from_run(run_dir, model, config))
        features, info = assets.example(wav, text)
        tokens = info.get("tokens")
        waveform, _ = assets.load_audio(wav) if assets.uses_audio else (
            None, None)
        vocabulary = assets.vocabulary
        source = {"wav": os.path.abspath(wav), "transcript": text, **info}
        name = os.path.splitext(os.path.basename(wav))[0]
    else:
        fold, rows = _fold(config, data_dir, split)
        features = inference.fold_example(
            rows, index, config["data"]["encoder_size_audio"],
            [tensor.name for tensor in model.inputs])
        tokens = None
        vocabulary = fold.vocabulary
        if "waveform" in rows.extras:
            length = int(rows.extras["waveform_length"][index])
            waveform = (np.asarray(rows.extras["waveform"][index, :length],
                                   np.float32)
                        / input_pipeline.PCM16_SCALE)
        energy = rows.mfcc[index, :int(min(rows.seq_len[index],
                                           rows.mfcc.shape[1])), 12]
        source = {"data_dir": os.path.abspath(fold.path), "split": split,
                  "index": index,
                  "label": fold.label_names[int(rows.label[index])]}
        name = f"{split}_{index:04d}"
    from preprocessing import audio_features

    explanation = inference.explain_example(
        model, features, config["data"]["label_names"], tokens=tokens,
        vocabulary=vocabulary, prosody_names=audio_features.PROSODY_NAMES,
        steps=steps, target=target, baseline=baseline)
    explanation["source"] = source
    explanation["run_dir"] = os.path.abspath(run_dir)
    output_dir = output_dir or os.path.join(run_dir, "explain", name)
    if waveform is None and energy is None and "audio_mfcc" in features:
        energy = features["audio_mfcc"][0, :, 12]
    paths = write_explanation(explanation, output_dir, waveform, energy)
    return explanation, paths


def summary(run_dir, output_dir=None, data_dir=None, split="test", steps=32,
            max_examples=None, top_k=10, min_count=2, baseline="auto",
            log=print):
    """Top words per predicted class over a split; writes word_summary.json.

    Returns:
        (summary dict, path written).
    """
    import experiment
    import inference
    from models import run_files

    experiment.check_settings(steps=steps, max_examples=max_examples,
                              top_k=top_k, min_count=min_count)
    model, config = experiment.load_trained_model(run_dir)
    fold, rows = _fold(config, data_dir, split)
    result = inference.summarize_words(
        model, rows, config["data"]["encoder_size_audio"], fold.vocabulary,
        config["data"]["label_names"], steps=steps,
        max_examples=max_examples, top_k=top_k, min_count=min_count,
        baseline=baseline, log=log)
    result.update(run_dir=os.path.abspath(run_dir),
                  data_dir=os.path.abspath(fold.path), split=split)
    output_dir = output_dir or os.path.join(run_dir, "explain",
                                            f"summary_{split}")
    path = os.path.join(output_dir, "word_summary.json")
    run_files.write_json(path, result)
    return result, path


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    values = flags.FLAGS
    if values.summary:
        result, path = summary(values.run_dir, values.output_dir,
                               values.data_dir, values.split, values.steps,
                               values.max_examples, values.top_k,
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
    explanation, paths = explain(
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


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    define_flags()
    flags.mark_flags_as_required(["run_dir"])
    import inference
    from models import run_files
    from preprocessing import cli

    cli.run(main, "explain.py", (run_files.RunError, inference.InferenceError))
