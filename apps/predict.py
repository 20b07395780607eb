"""Predicts the emotion of wav files (with transcripts) from a trained model.

Examples:

    python predict.py --model_dir=/tmp/mdrea a.wav b.wav \
        --text "I can't believe you did that" --text "Okay, see you then."
    python predict.py --model_dir=runs/SE_multi_D... --manifest=calls.tsv

`--model_dir` is a SavedModel written by export.py / train.py (it carries
the vocabulary, feature parameters and label names: nothing else is
needed) or a run folder (its `saved_model/`, or the model rebuilt from the
run and its fold folder). Transcripts come from repeated `--text` (one per
wav file, in order), `--text_file` (one per line) or a `--manifest` CSV/TSV
(columns wav_path and transcript; relative paths from the manifest's
folder). Models without text (ARE) ignore transcripts; a text model's
file without one is transcribed by a speech recogniser: `--asr=SPEC`
(`pocketsphinx`, or `ctc:SAVED_MODEL_DIR`; see preprocessing/asr.py), else
the one recorded in the export when its fold was built with ASR
transcripts. The table shows what it heard; `--text` always wins. Models
without text never run a recogniser.

Prints a table and writes `--output_json`. A file that cannot be used (empty,
not audio, no transcript for a text model) gets an error line of its own and
the others are still predicted. Exit status: 0 when at least one file was
predicted, 1 when all failed, 2 when the model (or a --text_file/--manifest)
cannot be read.

`--engine=graph` feeds the waveform and transcript to the export's
`serve_raw` signature, which computes the features inside the SavedModel
(as a TF Serving client would use it); the default `--engine=python`
computes them here and feeds `serving_default`.
"""

import sys
from typing import Callable, List, Optional, Sequence, Tuple

from absl import app
from absl import flags
from absl import logging

from apps import cli
from preprocessing import asr
from preprocessing import reference_arrays
from tasks import prediction
from tasks import serving

Items = List[Tuple[str, Optional[str]]]


def define_flags() -> None:
    flags.DEFINE_string("model_dir", None,
                        "SavedModel from export.py, or a run folder.")
    flags.DEFINE_multi_string(
        "text", [], "Transcript of each wav file, in order (repeat it).")
    flags.DEFINE_string("text_file", None,
                        "Transcripts, one line per wav file.")
    flags.DEFINE_string(
        "manifest", None,
        "CSV/TSV with a wav_path (or wav/path/audio/file) column and an "
        "optional transcript (or text) column; adds its rows to the wav "
        "files given as arguments.")
    flags.DEFINE_enum(
        "engine", "python", ["python", "graph"],
        "python: features computed in Python, fed to serving_default; "
        "graph: waveform + transcript fed to the serve_raw signature, which "
        "computes the features in the SavedModel (as TF Serving would).")
    flags.DEFINE_string(
        "asr", None,
        "Speech recogniser for files without a transcript (text models): "
        "pocketsphinx[:key=value,...] or ctc:SAVED_MODEL_DIR_OR_URL; "
        "default: the one recorded in the export (ASR-built folds), else "
        "none.")
    flags.DEFINE_string("asr_cache_dir", None,
                        "Per-utterance transcript cache (default: none).")
    flags.DEFINE_string("output_json", "predictions.json",
                        "Where the per-file results go ('' = do not write).")


def gather_items(wav_paths: Sequence[str], texts: Sequence[str] = (),
                 text_file: Optional[str] = None,
                 manifest: Optional[str] = None) -> Items:
    """(wav path, transcript or None) pairs from the command-line inputs.

    Raises:
        app.UsageError: transcripts that do not pair up with the files.
    """
    wav_paths = list(wav_paths)
    if texts and text_file:
        raise app.UsageError("Give transcripts with --text or --text_file, "
                             "not both.")
    transcripts = list(texts) if texts else (
        prediction.read_text_file(text_file) if text_file else [])
    if transcripts and len(transcripts) != len(wav_paths):
        raise app.UsageError(
            f"{len(transcripts)} transcript(s) for {len(wav_paths)} wav "
            "file(s): give exactly one per file, in order.")
    items = list(zip(wav_paths, transcripts or [None] * len(wav_paths)))
    if manifest:
        items += prediction.read_manifest(manifest)
    if not items:
        raise app.UsageError("No input: give wav files as arguments and/or "
                             "--manifest.")
    return items


def predict_and_report(model_dir: str, wav_paths: Sequence[str],
                       texts: Sequence[str] = (),
                       text_file: Optional[str] = None,
                       manifest: Optional[str] = None,
                       output_json: Optional[str] = None,
                       log: Callable[[str], None] = print,
                       asr: Optional[str] = None,
                       asr_cache_dir: Optional[str] = None,
                       engine: str = "python") -> int:
    """predict.py without flags: predicts, prints the table and a summary.

    Returns:
        int. Exit status: 0 if at least one file was predicted, 1 if all
        failed.
    """
    items = gather_items(wav_paths, texts, text_file, manifest)
    results, label_names = prediction.predict(model_dir, items, output_json,
                                              asr, asr_cache_dir, engine)
    log(prediction.format_table(results, label_names))
    failed = sum("error" in r for r in results)
    summary = f"{len(results) - failed} of {len(results)} file(s) predicted"
    if output_json:
        summary += f"; results in {output_json}"
    log(summary)
    return 1 if failed == len(results) else 0


def main(argv: Sequence[str]) -> int:
    values = flags.FLAGS
    logging.set_verbosity(logging.WARNING)
    try:
        return predict_and_report(
            values.model_dir, argv[1:], values.text, values.text_file,
            values.manifest, values.output_json, asr=values.asr,
            asr_cache_dir=values.asr_cache_dir, engine=values.engine)
    except (FileNotFoundError, serving.InferenceError,
            reference_arrays.DataError, asr.AsrError) as error:
        # The model (or a transcript/manifest file) is unusable: nothing
        # to predict with, so no table.
        print(f"predict.py: {error}", file=sys.stderr)
        return 2


def run(argv: Optional[Sequence[str]] = None) -> None:
    """The `predict` console script (and `python predict.py`)."""
    define_flags()
    flags.mark_flags_as_required(["model_dir"])
    cli.run(main, "predict.py", (serving.InferenceError,), argv)
