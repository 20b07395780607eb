"""The plots of an explanation (`tasks.explanation.explain_example`):
per-frame audio attribution, words coloured by attribution, modality
ablations, prosody functionals and MDREA's attention. Each PNG is written
atomically (`common.atomic_files`).

matplotlib is an optional heavy dependency, imported in `_pyplot` only.
"""

from typing import Any, Dict, Optional

import numpy as np

from common import atomic_files
from common import constants


def _pyplot():
    # matplotlib: an optional heavy dependency, only for the plots.
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def _save(figure, path):
    """Writes a figure atomically (temporary file renamed)."""
    pyplot = _pyplot()
    try:
        atomic_files.atomic_write(
            path, lambda f: figure.savefig(f, format="png", dpi=110,
                                           bbox_inches="tight"),
            binary=True)
    finally:
        pyplot.close(figure)


def _diverging(values):
    """Red (positive) / blue (negative) colours, scaled by max |value|."""
    _pyplot()
    from matplotlib import cm  # optional heavy dependency (see _pyplot)
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


def plot_audio(explanation: Dict[str, Any], path: str,
               waveform: Optional[np.ndarray] = None,
               energy: Optional[np.ndarray] = None,
               sample_rate: int = constants.SAMPLE_RATE) -> None:
    """Waveform (or MFCC log-energy curve) above the per-frame attribution.

    Args:
        explanation: dict from `tasks.explanation.explain_example`.
        path: str. PNG to write.
        waveform: float array [samples] or None.
        energy: float array [frames] (MFCC log energy) or None.
        sample_rate: int. Of `waveform`.
    """
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


def plot_words(explanation: Dict[str, Any], path: str) -> None:
    """Words as boxes coloured by attribution (red +, blue −), values
    below."""
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
    from matplotlib import cm  # optional heavy dependency (see _pyplot)

    bar_axes = figure.add_axes([0.89, 0.08, 0.02, 0.62])
    figure.colorbar(cm.ScalarMappable(norm=norm, cmap="RdBu_r"),
                    cax=bar_axes)
    total = float(np.sum(values)) if values else 0.0
    figure.suptitle(_title(explanation, "words (embedding-space IG)")
                    + f"; Σ words {total:+.3f}; * = unknown word (_UNK_)",
                    fontsize=8)
    _save(figure, path)


def plot_modalities(explanation: Dict[str, Any], path: str) -> None:
    """Class probabilities with each modality present/absent, and the
    Shapley split of the target-class probability."""
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


def plot_prosody(explanation: Dict[str, Any], path: str) -> None:
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


def plot_attention(explanation: Dict[str, Any], path: str) -> None:
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
