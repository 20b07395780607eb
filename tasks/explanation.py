"""Why a trained model decided as it did: integrated gradients, modality
ablations and attention weights (`models/attribution.py`) of one utterance
(a wav file and its transcript, or a fold row) or a word summary over a
split, written as JSON and plots (what explain.py runs).
"""

import collections
import functools
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import keras
import numpy as np
from absl import logging

from models import attribution
from preprocessing import audio_features
from preprocessing import input_pipeline
from preprocessing import mfcc
from preprocessing import reference_arrays
from preprocessing import text_features
from tasks import explanation_plots
from tasks import folds
from tasks import loading
from tasks import run_dir as run_files
from tasks import serving

# The MFCC column of the log energy: the feature order is c1..c12, logE,
# deltas, accelerations (`mfcc.parameters()["order"]`), so logE
# follows the N_CEPS cepstra.
LOG_ENERGY_COLUMN = mfcc.N_CEPS

# Relative completeness gap above which an IG result is flagged.
COMPLETENESS_TOLERANCE = 0.05


COMPLETENESS_WARNING = (
    "Σ attributions misses f(x) − f(baseline) by more than 5%: the output "
    "jumps along the straight path (seen with trained GRUs over long MFCC "
    "sequences, whose final state can flip between attractors), and "
    "gradients do not see a jump. Attributions are then incomplete: compare "
    "with the modality ablation, or try another --steps.")


ABLATION_BASELINE = ("an absent modality: audio = audio_length 0 (audio GRU "
                     "state 0), zero MFCC frames and the prosody vector at "
                     "the IG baseline; text = all ids PAD with text_length 0 "
                     "(text GRU state and attention context 0)")


def fold_example(split: reference_arrays.Split, index: int,
                 encoder_size_audio: int,
                 names: Sequence[str]) -> Dict[str, np.ndarray]:
    """Model inputs (batch of 1) of row `index` of a fold split, exactly as
    the evaluation pipeline feeds it (lengths clipped to the encoder size,
    frames cropped to the clipped length)."""
    if not 0 <= index < len(split):
        # A user error (explain.py --index), not a bug: one line, exit 1.
        raise run_files.RunError(f"--index={index}: expected a row of the "
                                 f"split, 0..{len(split) - 1}.")
    used = int(min(split.seq_len[index], encoder_size_audio,
                   split.mfcc.shape[1]))
    ids = np.asarray(split.text_ids[index:index + 1], np.int32)
    features = {
        "audio_mfcc": np.asarray(split.mfcc[index:index + 1, :max(used, 1)],
                                 np.float32),
        "audio_length": np.array([used], np.int32),
        "audio_prosody": np.asarray(split.prosody[index:index + 1],
                                    np.float32),
        "text_ids": ids,
        "text_length": input_pipeline.text_lengths(ids),
    }
    missing = [name for name in names if name not in features]
    if missing:
        raise serving.InferenceError(
            f"Cannot build inputs {missing} from a fold row (explanations "
            "support the Yoon models).")
    return {name: features[name] for name in names}


def _words(features, tokens, vocabulary_tokens, values):
    """Per real word: position, token, id, unknown flag and a value."""
    ids = features["text_ids"][0]
    length = int(features["text_length"][0])
    words = []
    for position in range(length):
        token_id = int(ids[position])
        token = (tokens[position] if tokens is not None
                 and position < len(tokens) else
                 vocabulary_tokens[token_id] if vocabulary_tokens else
                 str(token_id))
        words.append({"position": position, "token": token, "id": token_id,
                      "unknown": token_id == text_features.UNK_ID,
                      "value": float(values[position])})
    return words


def explain_example(model: keras.Model, features: Dict[str, np.ndarray],
                    label_names: Sequence[str],
                    tokens: Optional[Sequence[str]] = None,
                    vocabulary: Optional[Dict[str, int]] = None,
                    prosody_names: Optional[Sequence[str]] = None,
                    steps: int = 64, target: Any = None,
                    baseline: str = "auto",
                    explainer: Optional[attribution.Explainer] = None
                    ) -> Dict[str, Any]:
    """Integrated gradients, modality ablation and attention of one example.

    Args:
        model: keras.Model (a Yoon model).
        features: dict name → array [1, ...] of its inputs.
        label_names: sequence of str.
        tokens: list of str or None. The words behind `text_ids` (e.g. with
            unknown words spelled out); None: looked up in `vocabulary`.
        vocabulary: dict token → id or None.
        prosody_names: sequence of 35 str or None.
        steps: int. IG quadrature points.
        target: int, class name or None (the predicted class).
        baseline: "auto" or "zero", see `models/attribution.py`.
        explainer: `attribution.Explainer` to reuse, or None.

    Returns:
        JSON-able dict: logits, probabilities, predicted, target,
        integrated_gradients (words, frames, prosody, sums and completeness
        gap), modalities (ablation conditions and Shapley shares) and
        attention (MDREA).
    """
    explainer = explainer or attribution.Explainer(model, baseline=baseline)
    if any(name in explainer.input_names
           for name in serving.WAVEFORM_INPUTS + serving.LOG_MEL_INPUTS):
        raise serving.InferenceError(
            "Explanations support the Yoon models (MFCC, prosody, words); "
            "wav2vec2 and log-mel models can only be used for prediction.")
    label_names = list(label_names)
    if isinstance(target, str):
        if target not in label_names:
            raise serving.InferenceError(f"target {target!r}: not one of "
                                         f"{label_names}.")
        target = label_names.index(target)
    logits = explainer.logits(features)[0]
    probabilities = _softmax(logits)
    predicted = int(np.argmax(logits))
    target = predicted if target is None else int(target)
    ig = explainer.integrated_gradients(features, target=target, steps=steps)
    difference = ig.output - ig.baseline_output
    sums = {name: float(value.sum()) for name, value in ig.inputs.items()}
    relative_gap = abs(ig.completeness_gap) / max(abs(difference), 1e-12)
    result = {
        "model": model.name,
        "label_names": label_names,
        "logits": dict(zip(label_names, map(float, logits))),
        "probabilities": dict(zip(label_names, map(float, probabilities))),
        "predicted": label_names[predicted],
        "target": label_names[target],
        "integrated_gradients": {
            "explains": f"logit of {label_names[target]!r}",
            "baseline": explainer.describe_baseline(),
            "steps": ig.steps, "method": ig.method,
            "output": ig.output, "baseline_output": ig.baseline_output,
            "output_difference": difference,
            "sum": ig.total,
            "completeness_gap": ig.completeness_gap,
            "relative_gap": relative_gap,
            "completeness_ok": relative_gap <= COMPLETENESS_TOLERANCE,
            "by_input": sums,
        },
    }
    section = result["integrated_gradients"]
    if relative_gap > COMPLETENESS_TOLERANCE:
        section["warning"] = COMPLETENESS_WARNING
    if "audio_mfcc" in ig.inputs:
        length = int(features["audio_length"][0])
        section["frame_seconds"] = serving.FRAME_SECONDS
        section["frames"] = [float(v) for v in
                             ig.per_step("audio_mfcc")[:length]]
    if "audio_prosody" in ig.inputs:
        names = list(prosody_names or
                     [f"prosody_{i}" for i in
                      range(len(ig.inputs["audio_prosody"]))])
        section["prosody"] = [
            {"name": name, "value": float(value), "attribution": float(a)}
            for name, value, a in zip(names, features["audio_prosody"][0],
                                      ig.inputs["audio_prosody"])]
    vocabulary_tokens = (serving.vocabulary_list(vocabulary) if vocabulary
                         else None)
    if attribution.EMBEDDED_TEXT in ig.inputs:
        words = _words(features, tokens, vocabulary_tokens,
                       ig.per_step(attribution.EMBEDDED_TEXT))
        for word in words:
            word["attribution"] = word.pop("value")
        section["words"] = words
    ablation = explainer.modality_ablation(features)
    target_logit = {c: float(v[target]) for c, v in ablation.items()}
    target_probability = {c: float(_softmax(v)[target])
                          for c, v in ablation.items()}
    result["modalities"] = {
        "baseline": ABLATION_BASELINE,
        "conditions": {
            condition: {
                "probabilities": dict(zip(label_names,
                                          map(float, _softmax(values)))),
                "target_logit": target_logit[condition],
                "target_probability": target_probability[condition]}
            for condition, values in ablation.items()},
        "shapley_logit": attribution.shapley_modalities(target_logit),
        "shapley_probability": attribution.shapley_modalities(
            target_probability),
    }
    weights = explainer.attention_weights(features)
    if weights is not None:
        weights = weights[0]
        words = _words(features, tokens, vocabulary_tokens, weights)
        for word in words:
            word["weight"] = word.pop("value")
        result["attention"] = {
            "words": words,
            "mass_on_words": float(sum(w["weight"] for w in words)),
            "mass_on_padding": float(weights[len(words):].sum()),
        }
    return result


def _softmax(logits):
    logits = np.asarray(logits, np.float64)
    exp = np.exp(logits - logits.max())
    return exp / exp.sum()


def summarize_words(model: keras.Model, split: reference_arrays.Split,
                    encoder_size_audio: int, vocabulary: Dict[str, int],
                    label_names: Sequence[str], steps: int = 32,
                    max_examples: Optional[int] = None, top_k: int = 10,
                    min_count: int = 2, baseline: str = "auto",
                    log: Optional[Callable[[str], None]] = None
                    ) -> Dict[str, Any]:
    """Words with the highest mean IG attribution per predicted class.

    Every example of `split` (up to `max_examples`) is explained for its
    predicted class (integrated gradients of that logit, embedding-space
    for words, as `explain_example`); each word's attribution is averaged
    over its occurrences in utterances predicted as that class.

    Args:
        model: keras.Model with a text input.
        split: `reference_arrays.Split`.
        encoder_size_audio: int.
        vocabulary: dict token → id.
        label_names: sequence of str.
        steps: int. IG points per example.
        max_examples: int or None. The first examples only.
        top_k: int. Words listed per class.
        min_count: int. Words seen fewer times in a class are not listed
            (a single occurrence says little).
        baseline: "auto" or "zero", see `models/attribution.py`.
        log: callable(str) or None. Progress.

    Returns:
        JSON-able dict: per class the number of examples predicted as it
        and `top_words` [{token, mean_attribution, count}], best first;
        plus the settings used.
    """
    explainer = attribution.Explainer(model, baseline=baseline)
    if attribution.EMBEDDED_TEXT not in explainer.attributed:
        raise serving.InferenceError(
            f"{model.name} reads no words; a word summary needs a text model "
            "(TRE, MDRE, MDREA).")
    tokens = serving.vocabulary_list(vocabulary)
    label_names = list(label_names)
    count = len(split) if max_examples is None else min(len(split),
                                                        max_examples)
    sums = collections.defaultdict(lambda: collections.defaultdict(float))
    counts = collections.defaultdict(collections.Counter)
    per_class = collections.Counter()
    gaps = []
    for index in range(count):
        features = fold_example(split, index, encoder_size_audio,
                                explainer.input_names)
        ig = explainer.integrated_gradients(features, steps=steps)
        per_class[ig.target] += 1
        gaps.append(abs(ig.completeness_gap) / max(
            abs(ig.output - ig.baseline_output), 1e-12))
        values = ig.per_step(attribution.EMBEDDED_TEXT)
        for position in range(int(features["text_length"][0])):
            token = tokens[int(features["text_ids"][0, position])]
            sums[ig.target][token] += float(values[position])
            counts[ig.target][token] += 1
        if log and (index + 1) % 25 == 0:
            log(f"[summary] {index + 1}/{count}")
    classes = {}
    for label, name in enumerate(label_names):
        means = [(token, sums[label][token] / n, n)
                 for token, n in counts[label].items() if n >= min_count]
        means.sort(key=lambda item: (-item[1], item[0]))
        classes[name] = {
            "num_predicted": per_class[label],
            "top_words": [{"token": t, "mean_attribution": m, "count": n}
                          for t, m, n in means[:top_k]]}
    return {
        "explains": "logit of the predicted class; words in embedding "
                    "space against " + explainer.describe_baseline(),
        "num_examples": count, "steps": steps, "top_k": top_k,
        "min_count": min_count,
        "completeness": {
            "median_relative_gap": float(np.median(gaps)) if gaps else 0.0,
            "num_over_tolerance": int(sum(g > COMPLETENESS_TOLERANCE
                                          for g in gaps)),
            "tolerance": COMPLETENESS_TOLERANCE,
        },
        "classes": classes,
    }


def write_explanation(explanation: Dict[str, Any], output_dir: str,
                      waveform: Optional[np.ndarray] = None,
                      energy: Optional[np.ndarray] = None) -> List[str]:
    """Writes explanation.json and the plots; returns the written paths."""
    os.makedirs(output_dir, exist_ok=True)
    paths = [os.path.join(output_dir, "explanation.json")]
    run_files.write_json(paths[0], explanation)
    ig = explanation["integrated_gradients"]
    plots = []
    if "frames" in ig:
        plots.append(("audio_attribution.png", functools.partial(
            explanation_plots.plot_audio, waveform=waveform, energy=energy)))
    if "prosody" in ig:
        plots.append(("prosody_attribution.png",
                      explanation_plots.plot_prosody))
    if "words" in ig:
        plots.append(("word_attribution.png", explanation_plots.plot_words))
    plots.append(("modalities.png", explanation_plots.plot_modalities))
    if explanation.get("attention"):
        plots.append(("attention.png", explanation_plots.plot_attention))
    for name, plot in plots:
        path = os.path.join(output_dir, name)
        plot(explanation, path)
        paths.append(path)
    return paths


def _fold(config, data_dir, split):
    data_dir = data_dir or config["data"]["data_dir"]
    if folds.manifest_digest(data_dir) != config["data"].get("digest"):
        logging.warning("%s differs from the data the run trained on.",
                        data_dir)
    fold = reference_arrays.load_fold(data_dir, splits=(split,),
                                      load_embedding=False)
    return fold, fold.splits[split]


def explain(run_dir: str, output_dir: Optional[str] = None,
            wav: Optional[str] = None, text: Optional[str] = None,
            data_dir: Optional[str] = None, split: str = "test",
            index: int = 0, steps: int = 64, target: Any = None,
            baseline: str = "auto") -> Tuple[Dict[str, Any], List[str]]:
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
    run_files.check_settings(index=index, steps=steps)
    model, config = loading.load_trained_model(run_dir)
    waveform = energy = None
    if wav is not None:
        exported = os.path.join(run_dir, "saved_model")
        assets = (serving.ServingAssets.from_export(exported)
                  if serving.is_inference_export(exported) else
                  serving.ServingAssets.from_run(run_dir, model, config))
        features, info = assets.example(wav, text)
        tokens = info.get("tokens")
        waveform, _ = assets.load_audio(wav) if assets.uses_audio else (
            None, None)
        vocabulary = assets.vocabulary
        source = {"wav": os.path.abspath(wav), "transcript": text, **info}
        name = os.path.splitext(os.path.basename(wav))[0]
    else:
        fold, rows = _fold(config, data_dir, split)
        features = fold_example(
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
                                           rows.mfcc.shape[1])),
                           LOG_ENERGY_COLUMN]
        source = {"data_dir": os.path.abspath(fold.path), "split": split,
                  "index": index,
                  "label": fold.label_names[int(rows.label[index])]}
        name = f"{split}_{index:04d}"
    explanation = explain_example(
        model, features, config["data"]["label_names"], tokens=tokens,
        vocabulary=vocabulary, prosody_names=audio_features.PROSODY_NAMES,
        steps=steps, target=target, baseline=baseline)
    explanation["source"] = source
    explanation["run_dir"] = os.path.abspath(run_dir)
    output_dir = output_dir or os.path.join(run_dir, "explain", name)
    if waveform is None and energy is None and "audio_mfcc" in features:
        energy = features["audio_mfcc"][0, :, LOG_ENERGY_COLUMN]
    paths = write_explanation(explanation, output_dir, waveform, energy)
    return explanation, paths


def summary(run_dir: str, output_dir: Optional[str] = None,
            data_dir: Optional[str] = None, split: str = "test",
            steps: int = 32, max_examples: Optional[int] = None,
            top_k: int = 10, min_count: int = 2, baseline: str = "auto",
            log: Optional[Callable[[str], None]] = print
            ) -> Tuple[Dict[str, Any], str]:
    """Top words per predicted class over a split; writes word_summary.json.

    Returns:
        (summary dict, path written).
    """
    run_files.check_settings(steps=steps, max_examples=max_examples,
                             top_k=top_k, min_count=min_count)
    model, config = loading.load_trained_model(run_dir)
    fold, rows = _fold(config, data_dir, split)
    result = summarize_words(
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
