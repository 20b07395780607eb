"""Raw corpus → reference fold folders (the arrays `train.py` reads).

    python -m preprocessing.build_arrays --corpus=iemocap \\
        --corpus_dir=/data/IEMOCAP_full_release --output_dir=data/iemocap \\
        --split=random5 --glove=glove.840B.300d.txt

    python -m preprocessing.build_arrays --corpus=manifest \\
        --manifest=demo_data/metadata.tsv --output_dir=data/demo --split=speaker

Steps: read the corpus (IEMOCAP release layout or a CSV/TSV manifest), extract
MFCC-E-D-A and prosody in parallel (`extraction`), tokenise
(`text_features`), split (`splits`), then per fold: vocabulary (training
split only, sorted, by default; `--vocabulary=all` builds it over all data as
the original did, `--vocabulary_file` reuses a released `dic.pkl`), ids
padded to 128, GloVe or random embedding (`glove`), and the fold folder
written atomically by `reference_arrays.write_fold`, with a `manifest.json`
(feature parameters, label names, split policy and seeds, counts per class
and split, vocabulary size, embedding coverage, utterance ids per split) and
the original's `<fold>.txt` (train/dev/test row indices, one line each).

`<output_dir>/manifest.json` summarises the build and stores a hash of the
inputs (corpus rows, file sizes and times, GloVe file) and parameters; a
rerun with the same hash and complete fold folders does nothing (`--force`
rebuilds). `--features=opensmile` computes the features with the original's
openSMILE configs instead (needs the optional `opensmile` package).

`--store_waveforms` also stores the raw audio for the wav2vec2 models, as
the demo corpus does: per split `{split}_waveform.npy` (int16 16 kHz PCM
[n, S], zero-padded to the split's longest utterance) and
`{split}_waveform_length.npy` (int32 [n], true samples), declared as extras
in the fold's `manifest.json`. `--waveform_max_seconds` crops longer
utterances (keeping their start) to bound the padded size, e.g. 15.375 s =
the 246,000 samples the public TF-Hub wav2vec2 reads anyway.

`--transcripts=asr` puts what a speech recogniser (`--asr`, default
pocketsphinx; see `preprocessing/asr.py`) hears in place of the gold
transcripts: same tokeniser, vocabulary policy and embedding, so `train.py`
trains on the fold unchanged. `--transcripts=both` keeps the gold text and
stores the recognised text's ids (gold vocabulary, unknown words `_UNK_`) as
the extra `asr_text_ids` (int32 [n, 128]). Either way the fold manifest's
`asr` entry records the recogniser (backend, spec, parameters), the
recognised text per split, WER/CER against the gold text per split with the
most frequent substitutions (`asr.error_report`), the number of empty
transcripts and the decoding speed. Transcripts are cached per utterance in
`--asr_cache_dir` (default `<output_dir>/asr_cache`), so a rebuild decodes
only new audio.
"""

import dataclasses
import hashlib
import json
import os
import shutil
import sys

import numpy as np

from common import atomic_files
from common import constants
from preprocessing import asr
from preprocessing import audio_io
from preprocessing import extraction
from preprocessing import glove
from preprocessing import iemocap
from preprocessing import manifest_corpus
from preprocessing import prosody as prosody_lib
from preprocessing import reference_arrays
from preprocessing import splits as splits_lib
from preprocessing import text_features

# Bump when the arrays written for the same inputs would change.
# 2: dev speakers drawn class-aware; loso's default dev = whole speakers.
BUILD_VERSION = 2
CORPORA = ("iemocap", "manifest")
VOCABULARY_POLICIES = ("train", "all")
TRANSCRIPT_SOURCES = ("gold", "asr", "both")
ASR_EXTRA = "asr_text_ids"
MAX_LISTED_PROBLEMS = 1000
ORIGINAL_IEMOCAP_SIZE = 5531
# Options added after the first release are hashed only when they differ
# from these defaults, so builds made before them stay up to date.
_LATER_OPTION_DEFAULTS = {"store_waveforms": False,
                          "waveform_max_seconds": None,
                          "vocabulary_json": False,
                          "transcripts": "gold", "asr": asr.DEFAULT_SPEC}
# int16 PCM full scale: a 16-bit file read as float (x / 32768) is stored
# back exactly.
PCM16_SCALE = 32768


@dataclasses.dataclass
class BuildConfig:
    """Everything a build depends on (see the module docstring).

    Attributes:
        corpus: `"iemocap"` or `"manifest"`.
        output_dir: str. Gets one folder per fold plus `manifest.json`.
        corpus_dir: str. IEMOCAP release folder (corpus `iemocap`).
        manifest: str. CSV/TSV manifest (corpus `manifest`).
        split: one of `splits.POLICIES`.
        features: `"numpy"` or `"opensmile"` (the original's configs; needs
            the optional opensmile package).
        glove: str or None. GloVe text file; None = random embedding.
        embedding_dim: int or None. None = GloVe's size, or 300.
        embedding_seed: int. Seed of the random embedding rows.
        split_seed: int. Seed for `loso` (random dev) and `speaker` splits.
        loso_dev: `"speakers"` (whole speakers of the training sessions,
            disjoint from train and test), `"next_session"` or `"random"`
            (utterances; dev shares speakers with train).
        dev_fraction: float. Dev share for `loso_dev="random"`.
        num_folds: int. Folds for the `speaker` split.
        dev_speakers: int. Dev speakers per `speaker` fold and per `loso`
            fold with `loso_dev="speakers"`.
        vocabulary: `"train"` (per fold, train split only) or `"all"`.
        vocabulary_file: str or None. A `dic.pkl` to reuse instead.
        min_count: int. Rarer tokens map to `_UNK_`.
        label_map: dict raw label → class id (-1 = drop) or None (default).
        label_names: tuple of str.
        colon_truncation: bool. IEMOCAP transcript bug (yoon_spec §8.13).
        sessions: tuple of int or None. IEMOCAP sessions to read.
        on_bad_row: `"skip"` or `"raise"`.
        num_workers: int. Feature-extraction processes.
        force: bool. Rebuild even when up to date.
        progress: bool. Progress line while extracting.
        store_waveforms: bool. Also store 16 kHz int16 waveforms and their
            lengths as the extras `waveform` / `waveform_length`.
        waveform_max_seconds: float or None. Crop stored waveforms to this
            many seconds (None: whole utterances).
        vocabulary_json: bool. Also write each fold's vocabulary as
            `dic.json` (JSON cannot run code when read; a pickle can).
        transcripts: `"gold"`, `"asr"` (recognised text instead of gold) or
            `"both"` (gold text + the extra `asr_text_ids`).
        asr: str. Recogniser spec (`asr.parse_spec`), used unless gold.
        asr_cache_dir: str or None. Transcript cache (None:
            `<output_dir>/asr_cache`).
    """

    corpus: str
    output_dir: str
    corpus_dir: str = None
    manifest: str = None
    split: str = "random5"
    features: str = "numpy"
    glove: str = None
    embedding_dim: int = None
    embedding_seed: int = 0
    split_seed: int = 0
    loso_dev: str = "speakers"
    dev_fraction: float = 0.1
    num_folds: int = 5
    dev_speakers: int = 1
    vocabulary: str = "train"
    vocabulary_file: str = None
    min_count: int = 1
    label_map: dict = None
    label_names: tuple = constants.LABEL_NAMES
    colon_truncation: bool = False
    sessions: tuple = None
    on_bad_row: str = "skip"
    num_workers: int = 2
    force: bool = False
    progress: bool = True
    store_waveforms: bool = False
    waveform_max_seconds: float = None
    vocabulary_json: bool = False
    transcripts: str = "gold"
    asr: str = asr.DEFAULT_SPEC
    asr_cache_dir: str = None

    def validate(self):
        """Raises ValueError for inconsistent settings."""
        if self.corpus not in CORPORA:
            raise ValueError(f"corpus={self.corpus!r}: expected one of "
                             f"{CORPORA}.")
        if self.corpus == "iemocap" and not self.corpus_dir:
            raise ValueError("corpus=iemocap needs corpus_dir (the folder "
                             "holding Session1..5).")
        if self.corpus == "manifest" and not self.manifest:
            raise ValueError("corpus=manifest needs manifest (a CSV/TSV "
                             "file).")
        if self.split not in splits_lib.POLICIES:
            raise ValueError(f"split={self.split!r}: expected one of "
                             f"{splits_lib.POLICIES}.")
        if self.features not in extraction.BACKENDS:
            raise ValueError(f"features={self.features!r}: expected one of "
                             f"{extraction.BACKENDS}.")
        if self.vocabulary not in VOCABULARY_POLICIES:
            raise ValueError(f"vocabulary={self.vocabulary!r}: expected one "
                             f"of {VOCABULARY_POLICIES}.")
        if self.on_bad_row not in manifest_corpus.BAD_ROW_POLICIES:
            raise ValueError(f"on_bad_row={self.on_bad_row!r}: expected one "
                             f"of {manifest_corpus.BAD_ROW_POLICIES}.")
        if not self.output_dir:
            raise ValueError("output_dir is required.")
        for name in ("embedding_dim", "min_count", "num_folds",
                     "dev_speakers"):
            value = getattr(self, name)
            if value is not None and not value >= 1:
                raise ValueError(f"{name}={value}: expected an integer >= "
                                 "1.")
        if self.transcripts not in TRANSCRIPT_SOURCES:
            raise ValueError(f"transcripts={self.transcripts!r}: expected "
                             f"one of {TRANSCRIPT_SOURCES}.")
        if self.waveform_max_seconds is not None:
            if not self.store_waveforms:
                raise ValueError("waveform_max_seconds needs "
                                 "store_waveforms.")
            if self.waveform_max_seconds <= 0:
                raise ValueError("waveform_max_seconds must be > 0; found "
                                 f"{self.waveform_max_seconds}.")

    def hashed_parameters(self):
        """The settings that change the output (not workers/progress/force)."""
        skip = {"output_dir", "num_workers", "force", "progress",
                "asr_cache_dir"}
        if self.transcripts == "gold":
            skip.add("asr")  # Unused.
        return {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in dataclasses.asdict(self).items()
                if k not in skip and not (
                    k in _LATER_OPTION_DEFAULTS
                    and v == _LATER_OPTION_DEFAULTS[k])}


def read_waveforms(examples, max_seconds=None, log=None):
    """Reads each example's audio as 16 kHz int16 PCM.

    Args:
        examples: sequence of corpus examples (with `wav_path`).
        max_seconds: float or None. Keep at most this many seconds (the
            start of the utterance).
        log: callable(str) or None.

    Returns:
        list of int16 arrays [samples], one per example (about 2 bytes per
        sample: ~0.8 GB for IEMOCAP's 5,531 utterances).
    """
    max_samples = (None if max_seconds is None else
                   max(1, int(round(max_seconds
                                    * constants.SAMPLE_RATE))))
    if log:
        log(f"[build_arrays] reading {len(examples)} waveforms (16 kHz "
            "int16" + (f", cropped to {max_seconds} s" if max_samples else "")
            + ")")
    waveforms = []
    for example in examples:
        waveform = audio_io.load_wav(example.wav_path)[:max_samples]
        waveforms.append(np.clip(np.round(waveform * PCM16_SCALE),
                                 -PCM16_SCALE, PCM16_SCALE - 1).astype(
                                     np.int16))
    return waveforms


def waveform_matrix(waveforms, rows):
    """Zero-pads the chosen waveforms into one array, as the demo corpus.

    Args:
        waveforms: list of int16 arrays [samples].
        rows: sequence of int. Which ones, in order.

    Returns:
        (int16 [len(rows), longest], int32 [len(rows)] lengths).
    """
    lengths = np.array([len(waveforms[i]) for i in rows], dtype=np.int32)
    matrix = np.zeros((len(rows), int(lengths.max(initial=1))), np.int16)
    for row, index in enumerate(rows):
        matrix[row, :lengths[row]] = waveforms[index]
    return matrix, lengths


def read_corpus(config):
    """Reads the configured corpus into a `manifest_corpus.Corpus`."""
    if config.corpus == "iemocap":
        label_map = config.label_map
        if label_map is not None:
            label_map = {k.lower(): v for k, v in label_map.items()}
        return iemocap.read_iemocap(
            config.corpus_dir, label_map=label_map,
            label_names=config.label_names,
            colon_truncation=config.colon_truncation,
            sessions=config.sessions, on_bad_row=config.on_bad_row)
    return manifest_corpus.read_manifest(
        config.manifest, label_map=config.label_map,
        label_names=config.label_names, on_bad_row=config.on_bad_row)


def _file_stamp(path):
    stat = os.stat(path)
    return [os.path.abspath(path), stat.st_size, stat.st_mtime_ns]


def build_hash(config, corpus, recognizer=None):
    """sha256 of the parameters, code version and every input file's stamp
    (and the recogniser's parameters, for ASR transcripts)."""
    digest = hashlib.sha256()
    header = {"version": BUILD_VERSION,
              "features": _feature_info(config),
              "parameters": config.hashed_parameters(),
              "problems": corpus.problems}
    if recognizer is not None:
        header["asr"] = recognizer.describe()
    for path in (config.glove, config.vocabulary_file):
        if path:
            header[path] = _file_stamp(path) if os.path.exists(path) else None
    digest.update(json.dumps(header, sort_keys=True, default=str).encode())
    for e in corpus.examples:
        row = [e.id, e.transcript, e.label, e.raw_label, e.speaker,
               e.session] + _file_stamp(e.wav_path)
        digest.update(json.dumps(row, default=str).encode())
    return digest.hexdigest()


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return None


def is_up_to_date(output_dir, digest):
    """True if `output_dir` holds a complete build with this hash."""
    summary = _read_json(os.path.join(output_dir,
                                      reference_arrays.MANIFEST_NAME))
    if not summary or summary.get("build_hash") != digest:
        return False
    for name in summary.get("folds", {}):
        fold_dir = os.path.join(output_dir, name)
        fold = _read_json(os.path.join(fold_dir,
                                       reference_arrays.MANIFEST_NAME))
        if not fold or fold.get("build_hash") != digest:
            return False
        if not os.path.isfile(os.path.join(fold_dir, name + ".txt")):
            return False
    return bool(summary.get("folds"))


def _class_counts(labels, label_names):
    counts = np.bincount(labels, minlength=len(label_names))
    return {name: int(counts[i]) for i, name in enumerate(label_names)}


def _vocabulary_for(config, tokens, train_rows, fixed_vocabulary):
    if fixed_vocabulary is not None:
        return fixed_vocabulary
    rows = train_rows if config.vocabulary == "train" else range(len(tokens))
    return text_features.build_vocabulary([tokens[i] for i in rows],
                                          min_count=config.min_count)


def build(config, log=None):
    """Runs the whole build (or nothing if it is up to date).

    Args:
        config: `BuildConfig`.
        log: callable(str) or None (stderr).

    Returns:
        dict, the contents of `<output_dir>/manifest.json` plus
        `"skipped": bool`.

    Raises:
        DataError: corpus problems (see the readers), empty splits.
        ValueError: bad settings.
    """
    log = log or (lambda message: print(message, file=sys.stderr))
    config.validate()
    # Inputs that can be refused are read before the corpus and its audio.
    fixed_vocabulary = None
    if config.vocabulary_file:
        fixed_vocabulary = reference_arrays.load_vocabulary(
            config.vocabulary_file)
    corpus = read_corpus(config)
    for problem in corpus.problems[:20]:
        log(f"[build_arrays] skipped: {problem}")
    if len(corpus.problems) > 20:
        log(f"[build_arrays] ... {len(corpus.problems) - 20} more skipped "
            "rows (listed in manifest.json)")
    if not corpus.examples:
        raise reference_arrays.DataError(
            f"{corpus.source}: no usable examples ({len(corpus.problems)} "
            f"bad rows, dropped labels {corpus.dropped}).")
    # The split parameters are checked on the corpus as read, before the
    # (long) feature extraction; they are checked again on the examples
    # whose audio turns out readable.
    _make_folds(config, corpus.examples, corpus.source,
                np.array([e.label for e in corpus.examples], np.int32))
    # Before any work: a recogniser that is not installed or cannot be
    # found fails here (AsrError, one line).
    recognizer = (asr.make_recognizer(config.asr)
                  if config.transcripts != "gold" else None)
    digest = build_hash(config, corpus, recognizer)
    summary_path = os.path.join(config.output_dir,
                                reference_arrays.MANIFEST_NAME)
    if not config.force and is_up_to_date(config.output_dir, digest):
        log(f"[build_arrays] {config.output_dir}: up to date (hash "
            f"{digest[:12]}), nothing to do; --force rebuilds.")
        summary = _read_json(summary_path)
        summary["skipped"] = True
        return summary

    log(f"[build_arrays] {len(corpus.examples)} examples from "
        f"{corpus.source}; extracting features with {config.num_workers} "
        "workers")
    features = extraction.extract_many(
        [e.wav_path for e in corpus.examples], num_workers=config.num_workers,
        progress=config.progress, on_error="return",
        backend=config.features)
    examples, kept_features, problems = [], [], list(corpus.problems)
    for example, result in zip(corpus.examples, features):
        if isinstance(result, Exception):
            message = f"{example.source}: {result}"
            if config.on_bad_row == "raise":
                raise reference_arrays.DataError(message)
            log(f"[build_arrays] skipped: {message}")
            problems.append(message)
            continue
        examples.append(example)
        kept_features.append(result)
    if not examples:
        raise reference_arrays.DataError(
            f"{corpus.source}: no example has readable audio.")
    mfcc, seq_len = extraction.pad_frames(
        [f[0] for f in kept_features], constants.MFCC_FRAMES)
    prosody = np.stack([f[1] for f in kept_features]).astype(np.float32)
    del kept_features, features
    labels = np.array([e.label for e in examples], dtype=np.int32)
    gold_tokens = [text_features.tokenize(e.transcript) for e in examples]
    waveforms = (read_waveforms(examples, config.waveform_max_seconds, log)
                 if config.store_waveforms else None)

    if (config.corpus == "iemocap" and config.split == "random5"
            and len(examples) != ORIGINAL_IEMOCAP_SIZE):
        log(f"[build_arrays] note: the original's random folds were drawn "
            f"over {ORIGINAL_IEMOCAP_SIZE} utterances; with "
            f"{len(examples)} the same algorithm gives different folds.")
    folds, policy = _make_folds(config, examples, corpus.source, labels)
    recognized = (_recognize(config, recognizer, examples, log)
                  if recognizer is not None else None)
    # The tokens the fold's text ids and vocabulary come from.
    tokens = gold_tokens
    if config.transcripts == "asr":
        tokens = [text_features.tokenize(t) for t in recognized["texts"]]

    vectors, glove_dim, glove_lines = {}, config.embedding_dim, None
    if config.glove:
        words = {t for ts in tokens for t in ts}
        if fixed_vocabulary is not None:
            words |= set(fixed_vocabulary)
        log(f"[build_arrays] reading GloVe vectors from {config.glove}")
        vectors, glove_dim, glove_lines = glove.read_vectors(
            config.glove, words, config.embedding_dim)
    embedding_dim = glove_dim or glove.DEFAULT_DIM

    corpus_info = {
        "type": config.corpus, "source": os.path.abspath(corpus.source),
        "num_examples": len(examples),
        "raw_label_counts": corpus.raw_label_counts,
        "dropped_labels": corpus.dropped,
        "num_skipped_rows": len(problems),
        "class_counts": _class_counts(labels, config.label_names),
        "colon_truncation": config.colon_truncation,
    }
    text_info = {
        "tokenizer": "nltk NLTKWordTokenizer (no punkt data), lowercased",
        "text_length": constants.TEXT_LENGTH,
        "vocabulary": ("file " + os.path.abspath(config.vocabulary_file)
                       if fixed_vocabulary is not None else
                       config.vocabulary + " (sorted)"),
        "min_count": config.min_count,
        "num_truncated": int(sum(len(t) > constants.TEXT_LENGTH
                                 for t in tokens)),
        "transcripts": config.transcripts,
    }
    summary = {
        "created_by": "preprocessing.build_arrays",
        "build_version": BUILD_VERSION,
        "build_hash": digest,
        "parameters": config.hashed_parameters(),
        "label_names": list(config.label_names),
        "features": _feature_info(config),
        "corpus": corpus_info,
        "text": text_info,
        "split": policy,
        "glove": {"source": config.glove, "lines_read": glove_lines,
                  "dim": embedding_dim},
        "skipped_rows": problems[:MAX_LISTED_PROBLEMS],
        "folds": {},
    }
    if recognized is not None:
        summary["asr"] = {**recognized["info"], "report": asr.error_report(
            [e.transcript for e in examples], recognized["texts"],
            [e.id for e in examples])}
        log(f"[build_arrays] ASR ({config.asr}) on all {len(examples)} "
            f"utterances: {asr.format_report(summary['asr']['report'])}")
    os.makedirs(config.output_dir, exist_ok=True)
    for name, rows in folds:
        vocabulary = _vocabulary_for(config, tokens, rows["train"],
                                     fixed_vocabulary)
        text_ids = text_features.encode(tokens, vocabulary,
                                        constants.TEXT_LENGTH)
        embedding, report = glove.build_embedding(
            vocabulary, vectors, embedding_dim, seed=config.embedding_seed,
            source=config.glove)
        fold_splits = {
            split_name: reference_arrays.Split(
                mfcc=mfcc[index], seq_len=seq_len[index],
                prosody=prosody[index], text_ids=text_ids[index],
                label=labels[index])
            for split_name, index in rows.items()}
        if waveforms is not None:
            for split_name, index in rows.items():
                matrix, lengths = waveform_matrix(waveforms, index)
                fold_splits[split_name].extras.update(
                    waveform=matrix, waveform_length=lengths)
        asr_info = None
        if recognized is not None:
            asr_info = _fold_asr_info(config, recognized, examples, rows,
                                      vocabulary)
            if config.transcripts == "both":
                asr_ids = text_features.encode(
                    [text_features.tokenize(t) for t in recognized["texts"]],
                    vocabulary, constants.TEXT_LENGTH)
                for split_name, index in rows.items():
                    fold_splits[split_name].extras[ASR_EXTRA] = asr_ids[index]
        counts = {split_name: _class_counts(labels[index],
                                            config.label_names)
                  for split_name, index in rows.items()}
        unknown = {split_name: int(np.sum(
            text_ids[index] == text_features.UNK_ID))
            for split_name, index in rows.items()}
        fold_manifest = {
            **{k: summary[k] for k in ("created_by", "build_version",
                                       "build_hash", "label_names",
                                       "features", "corpus", "split")},
            "fold": name,
            "text": {**text_info, "vocabulary_size": len(vocabulary),
                     "unknown_tokens": unknown},
            "embedding": report,
            **({"waveforms": _waveform_info(config)}
               if waveforms is not None else {}),
            **({"asr": asr_info} if asr_info is not None else {}),
            "counts": counts,
            "sizes": {k: int(len(v)) for k, v in rows.items()},
            "split_ids": {k: [examples[i].id for i in v]
                          for k, v in rows.items()},
            # Row-aligned speakers, for per-speaker feature normalisation.
            "split_speakers": {k: [None if examples[i].speaker is None
                                   else str(examples[i].speaker) for i in v]
                               for k, v in rows.items()},
        }
        fold_dir = os.path.join(config.output_dir, name)
        reference_arrays.write_fold(fold_dir, fold_splits, vocabulary,
                                    embedding, fold_manifest, overwrite=True,
                                    vocabulary_json=config.vocabulary_json)
        fold_rows = "".join(" ".join(str(i) for i in rows[s]) + "\n"
                            for s in reference_arrays.SPLITS)
        atomic_files.atomic_write(os.path.join(fold_dir, name + ".txt"),
                                  lambda f, text=fold_rows: f.write(text))
        summary["folds"][name] = {
            "sizes": fold_manifest["sizes"], "counts": counts,
            "vocabulary_size": len(vocabulary),
            "embedding_coverage": report["coverage"],
            "embedding": report["message"]}
        if asr_info is not None:
            summary["folds"][name]["asr_wer"] = {
                k: v["wer"] for k, v in asr_info["report"].items()}
        log(f"[build_arrays] wrote {fold_dir}: " + ", ".join(
            f"{k} {len(v)}" for k, v in rows.items())
            + f"; vocabulary {len(vocabulary)}; {report['message']}"
            + ("" if asr_info is None else "; ASR WER " + ", ".join(
                f"{k} {_rate(v['wer'])}"
                for k, v in asr_info["report"].items())))
    _remove_stale_folds(config.output_dir, summary["folds"], log)
    summary_text = json.dumps(summary, indent=2, sort_keys=True)
    atomic_files.atomic_write(summary_path, lambda f: f.write(summary_text))
    summary["skipped"] = False
    return summary


def _make_folds(config, examples, source, labels):
    """`splits.make_splits` for the configured policy; (folds, policy).

    `labels` (int32 [n]) let the dev-speaker draw prefer speakers who have
    every class.

    Raises:
        DataError: split parameters the corpus (`source`) cannot meet (e.g.
            fewer speakers than --num_folds), or a fold with an empty split.
    """
    try:
        folds, policy = splits_lib.make_splits(
            config.split, len(examples),
            speakers=[e.speaker for e in examples],
            sessions=[e.session for e in examples], seed=config.split_seed,
            labels=labels, **_split_options(config))
    except ValueError as error:
        raise reference_arrays.DataError(
            f"{source}: --split={config.split}: {error}") from None
    for name, rows in folds:
        for split_name in reference_arrays.SPLITS:
            if len(rows[split_name]) == 0:
                raise reference_arrays.DataError(
                    f"{config.output_dir}/{name}: the {split_name} split is "
                    f"empty ({len(examples)} examples, split "
                    f"{config.split}); use a larger corpus or another "
                    "--split.")
    return folds, policy


def _recognize(config, recognizer, examples, log):
    """Recognised text of every example (cached), and what made it."""
    cache_dir = config.asr_cache_dir or os.path.join(config.output_dir,
                                                     "asr_cache")
    log(f"[build_arrays] recognising {len(examples)} utterances with "
        f"{config.asr} ({config.num_workers} workers; cache {cache_dir})")
    results = asr.transcribe_many(
        recognizer, [e.wav_path for e in examples],
        num_workers=config.num_workers, progress=config.progress,
        cache_dir=cache_dir)
    speed = asr.speed(results)
    log(f"[build_arrays] ASR: {speed['decoded']} decoded, "
        f"{speed['cache_hits']} from the cache"
        + (f", {speed['seconds_per_clip']} s per clip (real-time factor "
           f"{speed['real_time_factor']})" if speed["decoded"] else ""))
    return {"texts": [r.text for r in results],
            "info": {**recognizer.describe(), "speed": speed}}


def _fold_asr_info(config, recognized, examples, rows, vocabulary):
    """The fold manifest's `asr` entry (see the module docstring)."""
    texts = recognized["texts"]
    info = {**recognized["info"],
            "used_as": ("text_ids (in place of the gold transcripts)"
                        if config.transcripts == "asr" else
                        f"extra {ASR_EXTRA} (gold vocabulary); text_ids "
                        "are the gold transcripts"),
            "report": {}, "transcripts": {}}
    for split_name, index in rows.items():
        info["report"][split_name] = asr.error_report(
            [examples[i].transcript for i in index],
            [texts[i] for i in index], [examples[i].id for i in index])
        info["transcripts"][split_name] = [texts[i] for i in index]
    if config.transcripts == "both":
        info["unknown_tokens"] = {
            split_name: int(sum(t not in vocabulary for i in index
                                for t in text_features.tokenize(texts[i])))
            for split_name, index in rows.items()}
    return info


def _rate(value):
    return "n/a" if value is None else f"{value:.3f}"


def _feature_info(config):
    if config.features == "opensmile":
        return {"backend": "opensmile",
                "mfcc": "original modified_MFCC12_E_D_A.conf",
                "prosody": "original modified_prosodyShsViterbiLoudness.conf",
                "sample_rate": constants.SAMPLE_RATE,
                "max_frames": constants.MFCC_FRAMES,
                "prosody_names": list(prosody_lib.PROSODY_NAMES)}
    return {**extraction.feature_parameters(), "backend": "numpy",
            "prosody_names": list(prosody_lib.PROSODY_NAMES)}


def _waveform_info(config):
    return {"sample_rate": constants.SAMPLE_RATE,
            "encoding": "int16 PCM (float = value / 32768), zero-padded",
            "max_seconds": config.waveform_max_seconds}


def _split_options(config):
    if config.split == "loso":
        return {"dev": config.loso_dev, "dev_fraction": config.dev_fraction,
                "dev_speakers": config.dev_speakers}
    if config.split == "speaker":
        return {"num_folds": config.num_folds,
                "dev_speakers": config.dev_speakers}
    return {}


def _remove_stale_folds(output_dir, folds, log):
    """Deletes fold folders that an earlier build here wrote, if not current.

    Only folders listed in the previous `manifest.json` are touched.
    """
    previous = _read_json(os.path.join(output_dir,
                                       reference_arrays.MANIFEST_NAME))
    for name in (previous or {}).get("folds", {}):
        # A plain folder name only: never follow a path out of output_dir.
        if name in folds or name in ("", ".", "..") or os.sep in name or (
                os.altsep and os.altsep in name):
            continue
        path = os.path.join(output_dir, name)
        if os.path.isdir(path):
            log(f"[build_arrays] removing stale fold {path}")
            shutil.rmtree(path)


if __name__ == "__main__":
    # The binary is apps/build_arrays.py (`mse-build-arrays`); this keeps
    # `python -m preprocessing.build_arrays` working. Never reached on
    # import, so the library does not depend on apps/.
    from apps import build_arrays as build_arrays_app

    build_arrays_app.run()
