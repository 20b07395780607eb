"""Emotion probabilities from wav files and transcripts (what predict.py
runs): `Predictor` serves a SavedModel written by `tasks.serving.export_run`
(nothing else needed), or a run folder (its `saved_model/` if that is such
an export, otherwise the model is rebuilt from the run with the run's fold
folder); plus the command line's inputs (transcript files, manifests) and
its table.

A text model can also predict from a wav alone: a speech recogniser
(`preprocessing/asr.py`) transcribes each file that has no transcript. It is
the one given (`--asr`), else the one recorded in the metadata (`text.asr`:
backend, spec, parameters, and whether the fold's text ids were ASR or gold
text) when the run's fold was built with `build_arrays --transcripts=asr` or
`both`. An empty recognised text is fed as no words (text_length 0), as the
ASR folds store it.
"""

import io
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from models import export as export_lib
from preprocessing import asr
from preprocessing import manifest
from tasks import loading
from tasks import raw_serving
from tasks import run_dir as run_files
from tasks import serving
from tasks.serving import InferenceError
from tasks.serving import ServingAssets

ENGINES = ("python", "graph")


class Predictor:
    """Emotion probabilities from wav files and transcripts.

    Build it with `Predictor.load(model_dir, engine)`. Engines:

    * "python": the features are computed here (`ServingAssets.example`)
      and fed to `serving_default`;
    * "graph": the waveform and transcript are fed to `serve_raw`, which
      computes the features in the graph (`tasks.raw_serving`), as a TF
      Serving client would use the export.

    Attributes:
        assets: `ServingAssets`.
        source: str. What was loaded (export folder, or the run rebuilt).
        engine: str. One of ENGINES.
    """

    def __init__(self, serve, assets, source, keep=None, engine="python"):
        self._serve = serve
        self._keep = keep  # Keeps a loaded SavedModel's objects alive.
        self.assets = assets
        self.source = source
        self.engine = engine

    @classmethod
    def load(cls, model_dir, engine="python"):
        """Loads a SavedModel from `export_run`, or a run folder.

        A run folder uses its `saved_model/` when that carries the
        inference assets; otherwise the model is rebuilt from config.json
        and model.weights.h5 and the assets come from its fold folder (the
        graph engine then traces `serve_raw` in memory).

        Raises:
            FileNotFoundError: neither a SavedModel nor a run folder.
            InferenceError: a SavedModel without inference assets (an
                older export: re-export it with export.py), a model with an
                input not computable from a wav and a transcript (e.g. a
                side input from a fold extra), or the graph engine on an
                export without `serve_raw`.
        """
        if engine not in ENGINES:
            raise InferenceError(f"engine {engine!r}: expected one of "
                                 f"{ENGINES}.")
        signature = ("serving_default" if engine == "python"
                     else raw_serving.RAW_SIGNATURE)
        if os.path.isfile(os.path.join(model_dir, "saved_model.pb")):
            if not serving.is_inference_export(model_dir):
                raise InferenceError(
                    f"{model_dir}: a SavedModel without inference assets "
                    "(vocabulary, feature parameters); re-export its run "
                    "with `python export.py --run_dir=<run>`.")
            assets = ServingAssets.from_export(model_dir)
            assets.check_servable(model_dir)
            loaded = tf.saved_model.load(model_dir)
            if signature not in loaded.signatures:
                why = assets.metadata.get(
                    "raw_signatures_missing",
                    "it was exported before serve_raw existed; re-export "
                    "its run with `python export.py --run_dir=<run>`")
                raise InferenceError(
                    f"{model_dir}: no {signature} signature ({why}); use "
                    "--engine=python.")
            serve = loaded.signatures[signature]

            def call(features):
                return serve(**{name: tf.constant(value)
                                for name, value in features.items()})
            return cls(call, assets, os.path.abspath(model_dir), loaded,
                       engine)
        if os.path.isfile(os.path.join(model_dir, "config.json")):
            exported = os.path.join(model_dir, "saved_model")
            if serving.is_inference_export(exported):
                return cls.load(exported, engine)
            model, config = loading.load_trained_model(model_dir)
            assets = ServingAssets.from_run(model_dir, model, config)
            assets.check_servable(model_dir)
            if engine == "python":
                serve = export_lib.serving_function(model,
                                                    assets.label_names)
            else:
                signatures, resources = raw_serving.raw_input_signatures(
                    assets)
                if not signatures:
                    raise InferenceError(
                        f"{model_dir}: no {signature} for this model ("
                        f"{raw_serving.unsupported_reason(assets)}); use "
                        "--engine=python.")
                serve = export_lib.serving_function(
                    model, assets.label_names, signatures,
                    resources)[signature]

            def call(features):
                return serve({name: tf.constant(value)
                              for name, value in features.items()})
            return cls(call, assets,
                       f"{os.path.abspath(model_dir)} (rebuilt run)", model,
                       engine)
        raise FileNotFoundError(
            f"{model_dir}: neither a SavedModel (saved_model.pb) nor a run "
            "folder (config.json).")

    @property
    def label_names(self):
        return self.assets.label_names

    def predict_features(self, features):
        """Runs the serving function on a batch of its inputs (the model's
        inputs; with the graph engine, those of `serve_raw`).

        Returns:
            dict: logits, probabilities float32 [B, C]; predicted_label
            int32 [B].
        """
        names = (self.assets.input_names if self.engine == "python"
                 else ("waveform", "waveform_length", "transcript"))
        outputs = self._serve({name: features[name] for name in names})
        return {key: np.asarray(outputs[key])
                for key in ("logits", "probabilities", "predicted_label")}

    def predict_file(self, wav_path, transcript=None, recognized_by=None):
        """Prediction of one utterance as a JSON-able dict.

        Any failure specific to this file (unreadable or empty audio, no
        transcript for a text model) is returned as {"file", "error"}
        instead of raised, so that other files still get predicted.
        `recognized_by` (a recogniser spec) marks an ASR transcript.
        """
        result = {"file": wav_path, "transcript": transcript}
        if recognized_by:
            result["transcript_source"] = f"asr {recognized_by}"
        try:
            example = (self.assets.example if self.engine == "python"
                       else self.assets.raw_example)
            features, info = example(wav_path, transcript,
                                     recognized=bool(recognized_by))
            outputs = self.predict_features(features)
        except Exception as error:  # noqa: BLE001 - one file must not
            # stop the others; the message names the file and the cause.
            message = str(error)
            if not isinstance(error, (ValueError, OSError)):
                message = f"{type(error).__name__}: {message}"
            if wav_path not in message:
                message = f"{wav_path}: {message}"
            result["error"] = message
            return result
        label = int(outputs["predicted_label"][0])
        result.update(
            predicted=self.label_names[label], predicted_label=label,
            probabilities=dict(zip(self.label_names, map(
                float, outputs["probabilities"][0]))),
            logits=dict(zip(self.label_names, map(float,
                                                   outputs["logits"][0]))),
            **info)
        if not result["notes"]:
            del result["notes"]
        return result

    def predict_files(self, items, recognizer=None, num_workers=1,
                      asr_cache_dir=None):
        """Predicts each (wav_path, transcript or None); one dict per item.

        With a `recognizer` (`asr.Recognizer`), a text model's files without
        a transcript are transcribed first (in parallel, cached in
        `asr_cache_dir` if given); a given transcript always wins. Models
        without text never run it.
        """
        items = list(items)
        sources = [None] * len(items)
        missing = [i for i, (_, text) in enumerate(items)
                   if text is None or not str(text).strip()]
        if recognizer is not None and self.assets.uses_text and missing:
            heard = asr.transcribe_many(
                recognizer, [items[i][0] for i in missing],
                num_workers=num_workers, progress=len(missing) > 1,
                cache_dir=asr_cache_dir, on_error="return")
            for i, result in zip(missing, heard):
                # An unreadable file keeps no transcript: predict_file
                # reports its audio error.
                if isinstance(result, asr.Transcription):
                    items[i] = (items[i][0], result.text)
                    sources[i] = recognizer.spec
        return [self.predict_file(path, transcript, source)
                for (path, transcript), source in zip(items, sources)]


def recognizer_for(assets: ServingAssets, spec: Optional[str] = None
                   ) -> Optional[asr.Recognizer]:
    """The recogniser for a model's files without a transcript.

    Args:
        assets: `ServingAssets`.
        spec: str or None. `--asr`; None = the one recorded in the export.

    Returns:
        `asr.Recognizer`, or None (a model without text, or nothing given
        or recorded).

    Raises:
        asr.AsrError: the recogniser is not installed or cannot be loaded.
    """
    if not assets.uses_text:
        return None
    spec = spec or (assets.metadata["text"].get("asr") or {}).get("spec")
    return asr.make_recognizer(spec) if spec else None


def predict(model_dir: str, items: Sequence[Tuple[str, Optional[str]]],
            output_json: Optional[str] = None, asr: Optional[str] = None,
            asr_cache_dir: Optional[str] = None,
            engine: str = "python") -> Tuple[List[Dict[str, Any]],
                                             Tuple[str, ...]]:
    """Predicts every item; returns (results, label names).

    Files without a transcript are transcribed by `asr` (a recogniser spec)
    or the export's recorded recogniser, for text models. Writes
    `output_json` (atomically) when given.
    """
    predictor = Predictor.load(model_dir, engine)
    recognizer = None
    if any(text is None or not str(text).strip() for _, text in items):
        recognizer = recognizer_for(predictor.assets, asr)
    results = predictor.predict_files(items, recognizer,
                                      asr_cache_dir=asr_cache_dir)
    if output_json:
        run_files.write_json(output_json, {
            "model_dir": os.path.abspath(model_dir),
            "source": predictor.source,
            "engine": predictor.engine,
            "model": predictor.assets.model_name,
            "label_names": list(predictor.label_names),
            "num_files": len(results),
            "num_failed": sum("error" in r for r in results),
            "results": results,
        })
    return results, predictor.label_names


# ---- command-line inputs and outputs ------------------------------------

def read_text_file(path: str) -> List[Optional[str]]:
    """One transcript per line (empty line: none), in file order."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: missing transcript file.")
    # Not UTF-8: a DataError naming the file and line.
    text = io.StringIO(manifest.read_utf8(path), newline=None)
    return [line.rstrip("\r\n").strip() or None for line in text]


def read_manifest(path: str) -> List[Tuple[str, Optional[str]]]:
    """(wav path, transcript or None) per row of a CSV/TSV manifest.

    The one manifest parser of training (`preprocessing.manifest`): a wav
    column (wav, wav_path, path, audio, file) and optionally a transcript
    column (transcript, text, transcription); relative wav paths are
    resolved against the manifest's folder.

    Raises:
        reference_arrays.DataError: missing file, no header, no wav column
            or a bad row (naming its line).
    """
    return manifest.read_wav_transcripts(path)


def format_table(results: Sequence[Dict[str, Any]],
                 label_names: Sequence[str]) -> str:
    """A fixed-width table: file, prediction, one column per class, notes."""
    names = [os.path.basename(r["file"]) or r["file"] for r in results]
    width = max([len("file")] + [len(n) for n in names])
    columns = [max(7, len(name)) for name in label_names]
    header = (f"{'file':<{width}}  {'predicted':<9}  "
              + "  ".join(f"{n:>{w}}" for n, w in zip(label_names, columns))
              + "  notes")
    lines = [header, "-" * len(header)]
    for name, result in zip(names, results):
        if "error" in result:
            lines.append(f"{name:<{width}}  ERROR      {result['error']}")
            continue
        notes = list(result.get("notes", []))
        if result.get("unknown_words"):
            notes.append(f"{len(result['unknown_words'])} unknown word(s): "
                         + ", ".join(result["unknown_words"][:5]))
        if result.get("transcript_source"):
            heard = result["transcript"] or ""
            notes.append("heard: " + (repr(heard) if len(heard) <= 60
                                      else repr(heard[:57] + "...")))
        if result.get("resampled_to"):
            notes.append(f"resampled from {result['sample_rate']} Hz")
        if result.get("frames", 0) > result.get("frames_used", 0):
            notes.append(f"first {result['frames_used']} of "
                         f"{result['frames']} frames")
        probabilities = "  ".join(
            f"{result['probabilities'][n]:>{w}.3f}"
            for n, w in zip(label_names, columns))
        lines.append(f"{name:<{width}}  {result['predicted']:<9}  "
                     f"{probabilities}  {'; '.join(notes)}")
    return "\n".join(lines)
