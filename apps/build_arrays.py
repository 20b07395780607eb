"""build_arrays: a raw corpus (IEMOCAP's layout or a manifest) -> fold
folders in the reference format (`mse-build-arrays`, or
`python -m preprocessing.build_arrays`).

    python -m preprocessing.build_arrays --corpus=manifest \\
        --manifest=corpus/metadata.tsv --output_dir=folds --split=speaker

The flags fill a `preprocessing.build_arrays.BuildConfig`; the build itself
is `preprocessing.build_arrays.build`.
"""

import json
from typing import Optional, Sequence

from absl import app
from absl import flags

from apps import cli
from common import constants
from preprocessing import asr
from preprocessing import build_arrays
from preprocessing import extraction
from preprocessing import manifest_corpus
from preprocessing import reference_arrays
from preprocessing import splits as splits_lib


def define_flags() -> flags.FlagValues:
    """This binary's flags."""
    flags.DEFINE_enum("corpus", None, list(build_arrays.CORPORA), "Corpus layout.")
    flags.DEFINE_string("corpus_dir", None,
                        "IEMOCAP release folder (holding Session1..5).")
    flags.DEFINE_string("manifest", None, "CSV/TSV manifest (wav, "
                        "transcript, label, speaker[, session, id]).")
    flags.DEFINE_string("output_dir", None, "Where fold folders go.")
    flags.DEFINE_enum("split", "random5", list(splits_lib.POLICIES),
                      "random5 = the original's 5 random folds; loso = "
                      "leave one session out; speaker = speaker folds.")
    flags.DEFINE_enum("features", "numpy", list(extraction.BACKENDS),
                      "numpy = this toolkit's MFCC/prosody; opensmile = "
                      "the original's openSMILE configs (pip install "
                      "opensmile).")
    flags.DEFINE_string("glove", None, "GloVe text file (any dim); none = "
                        "random embedding.")
    flags.DEFINE_integer("embedding_dim", None, "Embedding size (default: "
                         "GloVe's, else 300).")
    flags.DEFINE_integer("embedding_seed", 0, "Seed of random rows.")
    flags.DEFINE_integer("split_seed", 0, "Seed for loso/speaker splits "
                         "(random5 uses the original's 337/3372).")
    flags.DEFINE_enum("loso_dev", "speakers",
                      list(splits_lib.LOSO_DEV_POLICIES),
                      "Dev set of a loso fold: speakers = --dev_speakers "
                      "whole speakers of the training sessions (in neither "
                      "train nor test); next_session; random = "
                      "--dev_fraction of the training utterances (shares "
                      "speakers with train).")
    flags.DEFINE_float("dev_fraction", 0.1, "Dev share for loso_dev=random.")
    flags.DEFINE_integer("num_folds", 5, "Folds for split=speaker.")
    flags.DEFINE_integer("dev_speakers", 1, "Dev speakers per fold "
                         "(split=speaker, and loso with loso_dev=speakers).")
    flags.DEFINE_enum("vocabulary", "train", list(build_arrays.VOCABULARY_POLICIES),
                      "train = per fold from its train split (sorted); all "
                      "= over all data, as the original.")
    flags.DEFINE_string("vocabulary_file", None,
                        "Reuse this dic.pkl (e.g. the released one) or "
                        "a .json vocabulary.")
    flags.DEFINE_bool("vocabulary_json", False, "Also write each fold's "
                      "vocabulary as dic.json (JSON, which reading never "
                      "executes).")
    flags.DEFINE_integer("min_count", 1, "Rarer tokens map to _UNK_.")
    flags.DEFINE_string("label_map", None, "raw:id,... e.g. "
                        "'ang:0,hap:1,exc:1,sad:2,neu:3' (-1 drops).")
    flags.DEFINE_list("label_names", list(constants.LABEL_NAMES),
                      "Class names by id.")
    flags.DEFINE_bool("colon_truncation", False, "IEMOCAP: keep only text "
                      "between the 1st and 2nd colon (original's bug).")
    flags.DEFINE_list("sessions", None, "IEMOCAP sessions to read, e.g. "
                      "1,2.")
    flags.DEFINE_enum("on_bad_row", "skip", ["skip", "raise"],
                      "Bad corpus rows: skip (counted) or stop.")
    flags.DEFINE_integer("num_workers", 2, "Feature extraction processes.")
    flags.DEFINE_bool("force", False, "Rebuild even if up to date.")
    flags.DEFINE_bool("progress", True, "Show a progress line.")
    flags.DEFINE_bool("store_waveforms", False, "Also store 16 kHz int16 "
                      "waveforms + lengths (extras `waveform`, "
                      "`waveform_length`) for the wav2vec2 models.")
    flags.DEFINE_float("waveform_max_seconds", None, "With "
                       "--store_waveforms: crop longer utterances to this "
                       "many seconds (e.g. 15.375 = the public TF-Hub "
                       "wav2vec2's input).")
    flags.DEFINE_enum("transcripts", "gold", list(build_arrays.TRANSCRIPT_SOURCES),
                      "gold = the corpus transcripts; asr = what --asr "
                      "recognises, in their place; both = gold text_ids + "
                      f"the recognised text's ids as the extra {build_arrays.ASR_EXTRA}.")
    flags.DEFINE_string("asr", asr.DEFAULT_SPEC,
                        "Speech recogniser for --transcripts=asr|both: "
                        "pocketsphinx[:key=value,...] (offline English) or "
                        "ctc:SAVED_MODEL_DIR_OR_URL[,vocabulary=...] "
                        "(wav2vec2-CTC style).")
    flags.DEFINE_string("asr_cache_dir", None, "Per-utterance transcript "
                        "cache (default <output_dir>/asr_cache).")
    flags.mark_flags_as_required(["corpus", "output_dir"])
    return flags.FLAGS


def config_from_flags(flag_values: flags.FlagValues
                      ) -> build_arrays.BuildConfig:
    """`BuildConfig` from parsed absl flags (only the CLI calls this)."""
    label_names = tuple(flag_values.label_names)
    label_map = (manifest_corpus.parse_label_map(flag_values.label_map,
                                                 label_names)
                 if flag_values.label_map else None)
    return build_arrays.BuildConfig(
        corpus=flag_values.corpus, output_dir=flag_values.output_dir,
        corpus_dir=flag_values.corpus_dir, manifest=flag_values.manifest,
        split=flag_values.split, features=flag_values.features,
        glove=flag_values.glove,
        embedding_dim=flag_values.embedding_dim,
        embedding_seed=flag_values.embedding_seed,
        split_seed=flag_values.split_seed, loso_dev=flag_values.loso_dev,
        dev_fraction=flag_values.dev_fraction,
        num_folds=flag_values.num_folds,
        dev_speakers=flag_values.dev_speakers,
        vocabulary=flag_values.vocabulary,
        vocabulary_file=flag_values.vocabulary_file,
        min_count=flag_values.min_count, label_map=label_map,
        label_names=label_names,
        colon_truncation=flag_values.colon_truncation,
        sessions=(tuple(int(s) for s in flag_values.sessions)
                  if flag_values.sessions else None),
        on_bad_row=flag_values.on_bad_row,
        num_workers=flag_values.num_workers, force=flag_values.force,
        progress=flag_values.progress,
        store_waveforms=flag_values.store_waveforms,
        waveform_max_seconds=flag_values.waveform_max_seconds,
        vocabulary_json=flag_values.vocabulary_json,
        transcripts=flag_values.transcripts, asr=flag_values.asr,
        asr_cache_dir=flag_values.asr_cache_dir)


def main(argv: Sequence[str]) -> None:
    del argv  # Everything comes from flags.
    try:
        summary = build_arrays.build(config_from_flags(flags.FLAGS))
    except (reference_arrays.DataError, asr.AsrError):
        raise
    except ValueError as error:  # Inconsistent flags or split parameters.
        raise app.UsageError(str(error)) from error
    if not summary["skipped"]:
        print(json.dumps({name: fold["sizes"]
                          for name, fold in summary["folds"].items()}))


def run(argv: Optional[Sequence[str]] = None) -> None:
    """The `mse-build-arrays` console script."""
    define_flags()
    cli.run(main, "build_arrays", user_errors=(asr.AsrError,), argv=argv)
