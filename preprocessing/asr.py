"""Speech recognition: transcripts for ASR folds and for prediction.

Yoon et al. report every text model twice, on gold transcripts and on what an
ASR system heard. This module is the ASR half: recognisers behind one
interface (`Recognizer.transcribe(waveform) -> str`), parallel cached
decoding of many clips (`transcribe_many`), and the WER/CER error report
(`error_report`, computed with `jiwer`).

A recogniser is named by a spec string (`--asr=...`):

* `pocketsphinx` (default), optionally `pocketsphinx:key=value,...` with
  pocketsphinx decoder parameters (e.g. `lw=7.5`, or `hmm`, `lm`, `dict`
  paths for another language's model). The PyPI package ships an English
  (en-us) acoustic model, language model and dictionary and decodes offline.
  The decoder's feature state is reset before every clip, so a clip's text
  does not depend on which clips were decoded before it (pocketsphinx
  otherwise carries its cepstral-mean estimate from clip to clip).
* `ctc:HANDLE[,key=value,...]`: a CTC acoustic model as a TF2 SavedModel
  (local directory, or a TF-Hub URL where it can be downloaded), wav2vec2-CTC
  style: float32 waveform [B, S] at 16 kHz → logits [B, F, V] over a
  character vocabulary. Decoding is greedy (per-frame argmax, repeats
  collapsed, blanks removed, the word delimiter becomes a space). Options:
  `vocabulary=PATH` (a vocab.json {token: id} or a vocab.txt, one token per
  line; default: the SavedModel's `assets/vocab.json` or `assets/vocab.txt`,
  else the 32-token wav2vec2-base-960h vocabulary), `blank` (id, default 0 =
  `<pad>`), `delimiter` (default `|`), `normalize` (zero-mean unit-variance
  input, as wav2vec2's feature extractor; default 1), `signature` (default
  `serving_default`). A model with a fixed input length S (the public TF-Hub
  wav2vec2 takes 246,000 samples) decodes longer clips in consecutive
  S-sample windows. `tools/make_wav2vec2_standin.py --ctc` writes a
  random-weight stand-in with this interface.

Caching: `transcribe_many(..., cache_dir=DIR)` stores one JSON file per
utterance under `DIR/<backend>/`, keyed by the sha256 of the 16 kHz float32
waveform, the backend and every parameter that changes the text (package
version, model files' digests, options); writes are atomic. A clip the
recogniser returns nothing for gets the empty transcript "" (cached and
counted by `error_report`), never an error.
"""

import collections
import dataclasses
import hashlib
from importlib import metadata
import json
import os
import re
import time

import joblib
import numpy as np

from common import atomic_files
from common.constants import SAMPLE_RATE
from preprocessing import audio_io
from preprocessing import progress as progress_lib
from preprocessing.reference_arrays import DataError

BACKENDS = ("pocketsphinx", "ctc")
DEFAULT_SPEC = "pocketsphinx"
CACHE_VERSION = 1
# facebook/wav2vec2-base-960h's character vocabulary (its vocab.json): the
# default when a CTC SavedModel carries none.
WAV2VEC2_960H_VOCABULARY = (
    "<pad>", "<s>", "</s>", "<unk>", "|", "E", "T", "A", "O", "N", "I", "H",
    "S", "R", "D", "L", "U", "M", "W", "C", "F", "G", "Y", "P", "B", "V", "K",
    "'", "X", "J", "Q", "Z")
INSTALL_HINT = {
    "pocketsphinx": "pip install pocketsphinx (it ships an English model; "
                    "the toolkit's setup.py installs it)",
    "ctc": "pip install tensorflow (and tensorflow-hub for URL handles; "
           "both are toolkit requirements)",
}
# What the error report compares: lowercase words of letters, digits and
# inner apostrophes (punctuation and case are not recognition errors).
NORMALIZATION = ("lowercased; punctuation removed (apostrophes inside words "
                 "kept); whitespace collapsed")
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


class AsrError(ValueError):
    """A recogniser that cannot be used (not installed, bad handle/spec)."""


def parse_spec(spec):
    """Splits a spec string into (backend, options).

    Args:
        spec: str, e.g. "pocketsphinx", "pocketsphinx:lw=7.5",
            "ctc:/models/w2v2_ctc,vocabulary=/models/vocab.json".

    Returns:
        (backend str, dict option → str). A CTC handle is the option
        "handle".

    Raises:
        AsrError: unknown backend or malformed options.
    """
    spec = (spec or "").strip()
    backend, _, rest = spec.partition(":")
    backend = backend.strip().lower()
    if backend not in BACKENDS:
        raise AsrError(f"--asr={spec!r}: unknown recogniser {backend!r}; "
                       f"expected one of {', '.join(BACKENDS)} (e.g. "
                       "--asr=pocketsphinx or --asr=ctc:SAVED_MODEL_DIR).")
    options = {}
    items = [item for item in rest.split(",") if item.strip()] if rest else []
    if backend == "ctc":
        if not items or "=" in items[0].split("/")[0]:
            raise AsrError(f"--asr={spec!r}: the ctc recogniser needs a "
                           "handle: --asr=ctc:SAVED_MODEL_DIR_OR_URL.")
        options["handle"] = items.pop(0).strip()
    for item in items:
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise AsrError(f"--asr={spec!r}: expected key=value options "
                           f"after the backend, found {item!r}.")
        options[key.strip()] = value.strip()
    return backend, options


def _file_digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _strip_markup(words):
    # Fillers (<sil>, [NOISE]) and alternate-pronunciation suffixes (word(2)).
    return [re.sub(r"\(\d+\)$", "", w) for w in words
            if w and not re.fullmatch(r"[<\[].*[>\]]", w)]


class Recognizer:
    """Base of the recognisers: spec, parameters, `transcribe`.

    Attributes:
        backend: str, one of `BACKENDS`.
        spec: str, the spec it was made from.
        parameters: dict, JSON-able; everything that changes the text (it
            keys the cache and is recorded in fold manifests and exports).
    """

    backend = None
    # Whether `transcribe_many` may spread clips over worker processes (a
    # TensorFlow model parallelises inside one process instead).
    parallel_in_processes = False

    def __init__(self, spec, options):
        self.spec = spec
        self.options = dict(options)

    @property
    def parameters(self):
        raise NotImplementedError

    def transcribe(self, waveform):
        """Text of one utterance.

        Args:
            waveform: float array [samples], 16 kHz mono in [-1, 1].

        Returns:
            str, lowercase words separated by single spaces; "" when the
            recogniser hears nothing.
        """
        raise NotImplementedError

    def describe(self):
        return {"backend": self.backend, "spec": self.spec,
                "parameters": self.parameters}


class PocketSphinxRecognizer(Recognizer):
    """CMU PocketSphinx 5 with its bundled en-us model (or given paths)."""

    backend = "pocketsphinx"
    parallel_in_processes = True
    _PATH_OPTIONS = ("hmm", "lm", "dict")

    def __init__(self, spec, options):
        super().__init__(spec, options)
        try:
            # Loaded only by this recogniser (its ~38 MB model with it).
            import pocketsphinx
        except ImportError as error:
            raise AsrError(
                "ASR backend 'pocketsphinx' is not installed "
                f"({error}); install it with: {INSTALL_HINT['pocketsphinx']}."
            ) from error
        self._version = getattr(pocketsphinx, "__version__", None) or (
            _package_version("pocketsphinx"))
        self._decoder = None
        self._config = {}
        for key, value in self.options.items():
            if key in self._PATH_OPTIONS:
                if not os.path.exists(value):
                    raise AsrError(f"--asr={spec!r}: {key}={value!r} does "
                                   "not exist.")
                self._config[key] = os.path.abspath(value)
            else:
                self._config[key] = _number_or_text(value)
        self._parameters = None

    @property
    def parameters(self):
        if self._parameters is None:
            model = {}
            for key in self._PATH_OPTIONS:
                path = self._config.get(key)
                if path is None:
                    model[key] = "bundled en-us"
                elif os.path.isfile(path):
                    model[key] = {"path": path, "sha256": _file_digest(path)}
                else:  # An acoustic model folder: digest its files.
                    model[key] = {"path": path, "sha256": _tree_digest(path)}
            self._parameters = {
                "package": f"pocketsphinx {self._version}",
                "model": model,
                "options": {k: v for k, v in sorted(self._config.items())
                            if k not in self._PATH_OPTIONS},
                "sample_rate": SAMPLE_RATE,
                "feature_state": "reset per clip",
            }
        return self._parameters

    def _get_decoder(self):
        if self._decoder is None:
            from pocketsphinx import Decoder  # As in __init__.
            try:
                self._decoder = Decoder(samprate=SAMPLE_RATE,
                                        loglevel="FATAL", **self._config)
            except (RuntimeError, ValueError, KeyError) as error:
                raise AsrError(f"--asr={self.spec!r}: pocketsphinx could not "
                               f"start ({error}).") from error
        return self._decoder

    def transcribe(self, waveform):
        decoder = self._get_decoder()
        if len(waveform) == 0:
            return ""  # pocketsphinx fails on an empty buffer.
        pcm = np.clip(np.round(np.asarray(waveform, np.float64) * 32768.0),
                      -32768, 32767).astype("<i2")
        # Without this the cepstral-mean estimate of the previous clip is
        # the next one's start, and a text would depend on the file order.
        decoder.reinit_feat()
        decoder.start_utt()
        decoder.process_raw(pcm.tobytes(), full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        words = hypothesis.hypstr.split() if hypothesis is not None else []
        return " ".join(_strip_markup(words)).lower()

    def __getstate__(self):
        # The native decoder does not pickle; workers make their own.
        state = dict(self.__dict__)
        state["_decoder"] = None
        return state


class CtcRecognizer(Recognizer):
    """Greedy CTC decoding of a wav2vec2-CTC style SavedModel."""

    backend = "ctc"
    _KNOWN_OPTIONS = ("handle", "vocabulary", "blank", "delimiter",
                      "normalize", "signature")

    def __init__(self, spec, options):
        super().__init__(spec, options)
        unknown = sorted(set(self.options) - set(self._KNOWN_OPTIONS))
        if unknown:
            raise AsrError(f"--asr={spec!r}: unknown ctc option(s) {unknown};"
                           f" expected {list(self._KNOWN_OPTIONS[1:])}.")
        self.handle = self.options["handle"]
        # A missing handle is reported before TensorFlow is imported.
        self.path = _resolve_handle(self.handle)
        try:
            # TensorFlow is heavy (~5 s): imported only by the ctc
            # recogniser, so the others (and build_arrays) never load it.
            import tensorflow as tf  # noqa: F401
        except ImportError as error:
            raise AsrError("ASR backend 'ctc' needs TensorFlow "
                           f"({error}); install it with: "
                           f"{INSTALL_HINT['ctc']}.") from error
        self.blank = int(self.options.get("blank", 0))
        self.delimiter = self.options.get("delimiter", "|")
        self.normalize = self.options.get("normalize", "1") not in (
            "0", "false", "False", "no")
        self.signature_name = self.options.get("signature",
                                               "serving_default")
        self.vocabulary, self._vocabulary_source = self._read_vocabulary()
        # Absolute paths in the spec: it is recorded in fold manifests and
        # exports, and read back from other working directories.
        if not _is_url(self.handle):
            self.handle = self.path
        if "vocabulary" in self.options:
            self.options["vocabulary"] = self._vocabulary_source
        self.spec = "ctc:" + ",".join(
            [self.handle] + [f"{key}={value}" for key, value in
                             self.options.items() if key != "handle"])
        self._model = None
        self._parameters = None

    def _read_vocabulary(self):
        path = self.options.get("vocabulary")
        if path is None:
            for name in ("vocab.json", "vocab.txt"):
                candidate = os.path.join(self.path, "assets", name)
                if os.path.isfile(candidate):
                    path = candidate
                    break
        if path is None:
            return list(WAV2VEC2_960H_VOCABULARY), "wav2vec2-base-960h"
        if not os.path.isfile(path):
            raise AsrError(f"--asr={self.spec!r}: vocabulary file {path!r} "
                           "does not exist.")
        path = os.path.abspath(path)
        try:
            if path.endswith(".json"):
                with open(path, encoding="utf-8") as f:
                    mapping = json.load(f)
                tokens = [None] * len(mapping)
                for token, index in mapping.items():
                    tokens[int(index)] = token
                if None in tokens:
                    raise ValueError("ids are not 0..V-1")
            else:
                with open(path, encoding="utf-8") as f:
                    tokens = [line.rstrip("\r\n") for line in f]
        except (ValueError, TypeError, IndexError, AttributeError) as error:
            raise AsrError(f"{path}: expected a vocab.json {{token: id}} "
                           "with ids 0..V-1 or a vocab.txt (one token per "
                           f"line); {error}.") from error
        return tokens, path

    def _load(self):
        if self._model is None:
            import tensorflow as tf  # Heavy: ctc only (see __init__).
            try:
                loaded = tf.saved_model.load(self.path)
            except Exception as error:  # Any loader failure: name the path.
                raise AsrError(
                    f"--asr={self.spec!r}: could not load the SavedModel in "
                    f"{self.path!r} ({type(error).__name__}: {error})."
                ) from error
            if self.signature_name not in loaded.signatures:
                raise AsrError(
                    f"--asr={self.spec!r}: the SavedModel has no signature "
                    f"{self.signature_name!r} (found "
                    f"{sorted(loaded.signatures)}); pass signature=NAME.")
            function = loaded.signatures[self.signature_name]
            _, inputs = function.structured_input_signature
            if len(inputs) != 1:
                raise AsrError(
                    f"--asr={self.spec!r}: expected a signature with one "
                    f"waveform input [B, S], found inputs {sorted(inputs)}.")
            (input_name, spec), = inputs.items()
            if spec.shape.rank != 2:
                raise AsrError(
                    f"--asr={self.spec!r}: expected a waveform input [B, S], "
                    f"found {input_name} of shape {spec.shape}.")
            self._model = (loaded, function, input_name, spec.shape[1])
        return self._model

    @property
    def parameters(self):
        if self._parameters is None:
            digest = hashlib.sha256()
            for name in ("saved_model.pb", os.path.join("variables",
                                                        "variables.index")):
                path = os.path.join(self.path, name)
                if os.path.isfile(path):
                    # The variables index holds a checksum of every tensor.
                    digest.update(_file_digest(path).encode())
            self._parameters = {
                "handle": self.handle,
                "model_sha256": digest.hexdigest(),
                "vocabulary": self._vocabulary_source,
                "vocabulary_sha256": hashlib.sha256(json.dumps(
                    self.vocabulary).encode()).hexdigest(),
                "blank": self.blank, "delimiter": self.delimiter,
                "normalize": self.normalize,
                "signature": self.signature_name,
                "decoding": "greedy CTC",
                "sample_rate": SAMPLE_RATE,
            }
        return self._parameters

    def logits(self, waveform):
        """Per-frame logits of one utterance: float32 [frames, V]."""
        import tensorflow as tf  # Heavy: ctc only (see __init__).

        _, function, input_name, fixed = self._load()
        x = np.asarray(waveform, np.float32)
        if self.normalize and len(x):
            x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
        window = fixed or max(len(x), 1)
        pieces = []
        for start in range(0, max(len(x), 1), window):
            chunk = x[start:start + window]
            real = len(chunk)
            chunk = np.pad(chunk, (0, window - real))
            outputs = function(**{input_name: tf.constant(chunk[None])})
            out = outputs["logits"] if "logits" in outputs else (
                next(iter(outputs.values())))
            out = np.asarray(out)[0]
            if out.ndim != 2 or out.shape[-1] != len(self.vocabulary):
                raise AsrError(
                    f"--asr={self.spec!r}: the model returns logits of shape "
                    f"{list(out.shape)} per clip; expected [frames, "
                    f"{len(self.vocabulary)}] (the vocabulary's size, from "
                    f"{self._vocabulary_source}).")
            # A padded window: keep the frames of its real samples only.
            keep = out.shape[0] if real == window else int(
                np.ceil(out.shape[0] * real / window))
            pieces.append(out[:keep])
        return np.concatenate(pieces, axis=0)

    def transcribe(self, waveform):
        return ctc_greedy_decode(np.argmax(self.logits(waveform), axis=-1),
                                 self.vocabulary, self.blank, self.delimiter)


def ctc_greedy_decode(frame_ids, vocabulary, blank=0, delimiter="|"):
    """Best-path CTC decoding of per-frame token ids.

    Args:
        frame_ids: int sequence [frames], the argmax token of each frame.
        vocabulary: sequence of str, token by id.
        blank: int. The CTC blank id (wav2vec2: `<pad>` = 0).
        delimiter: str. The word-boundary token.

    Returns:
        str: repeats collapsed, blanks and special tokens (`<...>`) removed,
        delimiters as single spaces, lowercased.
    """
    characters, previous = [], None
    for token_id in np.asarray(frame_ids).reshape(-1).tolist():
        if token_id != previous and token_id != blank:
            token = vocabulary[token_id]
            if token == delimiter:
                characters.append(" ")
            elif not (token.startswith("<") and token.endswith(">")):
                characters.append(token)
        previous = token_id
    return " ".join("".join(characters).split()).lower()


def _number_or_text(value):
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            continue
    return value


def _package_version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def _tree_digest(folder):
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            digest.update(os.path.relpath(path, folder).encode())
            digest.update(_file_digest(path).encode())
    return digest.hexdigest()


def _is_url(handle):
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", handle)) and not (
        handle.startswith("file://"))


def _resolve_handle(handle):
    """A CTC handle (directory or TF-Hub URL) → a SavedModel directory."""
    if _is_url(handle):
        try:
            import tensorflow_hub as hub  # Optional: URL handles only.
        except ImportError as error:
            raise AsrError(f"--asr=ctc:{handle}: URL handles need "
                           "tensorflow-hub (pip install tensorflow-hub).") \
                from error
        try:
            path = hub.resolve(handle)
        except Exception as error:  # urllib, HTTP, tarfile, gfile errors.
            raise AsrError(
                f"--asr=ctc:{handle}: could not fetch the TF-Hub handle "
                f"({type(error).__name__}: {error}); without network access "
                "download the model elsewhere and pass its SavedModel "
                "directory.") from error
    else:
        path = handle[len("file://"):] if handle.startswith("file://") else (
            handle)
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise AsrError(
            f"--asr=ctc:{handle}: expected a SavedModel directory holding "
            f"saved_model.pb at {path!r}, found "
            f"{'nothing' if not os.path.exists(path) else 'no saved_model.pb'}"
            "; build a stand-in with `python tools/make_wav2vec2_standin.py "
            "--ctc --output_dir=DIR` or pass a wav2vec2-CTC SavedModel.")
    return os.path.abspath(path)


def make_recognizer(spec=DEFAULT_SPEC):
    """The recogniser a spec string names (see the module docstring).

    Raises:
        AsrError: unknown backend, backend not installed, handle that
            cannot be found, bad options.
    """
    backend, options = parse_spec(spec)
    cls = PocketSphinxRecognizer if backend == "pocketsphinx" else (
        CtcRecognizer)
    return cls(spec, options)


# ---- many clips: parallel, cached ---------------------------------------

@dataclasses.dataclass
class Transcription:
    """One clip's recognised text.

    Attributes:
        text: str ("" when the recogniser returned nothing).
        cached: bool. Read from the cache (not decoded now).
        seconds: float. Decoding time (0 for a cache hit).
        audio_seconds: float. Length of the clip.
    """

    text: str
    cached: bool
    seconds: float
    audio_seconds: float


def audio_digest(waveform):
    """sha256 of a 16 kHz waveform as little-endian float32."""
    return hashlib.sha256(np.ascontiguousarray(
        waveform, dtype="<f4").tobytes()).hexdigest()


def cache_key(digest, recognizer):
    """The cache key of a clip (its audio digest) under a recogniser."""
    return hashlib.sha256(json.dumps(
        {"version": CACHE_VERSION, "audio": digest,
         "backend": recognizer.backend,
         "parameters": recognizer.parameters},
        sort_keys=True).encode()).hexdigest()


def _cache_path(cache_dir, backend, key):
    return os.path.join(cache_dir, backend, key[:2], key + ".json")


def _read_cache(path):
    try:
        with open(path, encoding="utf-8") as f:
            entry = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None  # A damaged entry is decoded again and rewritten.
    text = entry.get("text") if isinstance(entry, dict) else None
    return text if isinstance(text, str) else None


def _write_cache(path, text, digest, recognizer):
    entry = {"text": text, "audio_sha256": digest, **recognizer.describe()}
    atomic_files.atomic_write(path, lambda f: json.dump(
        entry, f, ensure_ascii=False, sort_keys=True))


# One recogniser per worker process and spec (a pocketsphinx decoder takes
# ~0.4 s to start; a worker decodes many clips).
_WORKER_RECOGNIZERS = {}


def _decode_in_worker(recognizer, waveform):
    key = json.dumps(recognizer.describe(), sort_keys=True)
    if key not in _WORKER_RECOGNIZERS:
        _WORKER_RECOGNIZERS[key] = recognizer
    return _timed(_WORKER_RECOGNIZERS[key], waveform)


def _timed(recognizer, waveform):
    start = time.perf_counter()
    text = recognizer.transcribe(waveform)
    return text, time.perf_counter() - start


def transcribe_many(recognizer, items, num_workers=2, progress=True,
                    cache_dir=None, on_error="raise"):
    """Transcribes many clips, in input order, in parallel, with a cache.

    Args:
        recognizer: `Recognizer`.
        items: sequence of audio file paths (any rate; resampled to 16 kHz)
            or of 16 kHz float waveforms.
        num_workers: int. Worker processes for recognisers that decode in
            processes (pocketsphinx); <= 1 decodes here.
        progress: bool. A progress line on stderr.
        cache_dir: str or None. Per-utterance cache folder (None: none).
        on_error: "raise", or "return": the slot of an unreadable file holds
            its `DataError`.

    Returns:
        list of `Transcription` (or `DataError` with on_error="return").
        The texts do not depend on `num_workers` or the cache.

    Raises:
        DataError: an unreadable file, with on_error="raise".
        AsrError: the recogniser cannot run.
    """
    if on_error not in ("raise", "return"):
        raise ValueError(f"on_error={on_error!r}: expected 'raise' or "
                         "'return'.")
    items = list(items)
    results = [None] * len(items)
    pending = []  # (index, waveform, digest, cache path)
    for index, item in enumerate(items):
        try:
            waveform = (audio_io.load_wav(item)
                        if isinstance(item, (str, bytes, os.PathLike))
                        else np.asarray(item, np.float32))
        except DataError as error:
            if on_error == "raise":
                raise
            results[index] = error
            continue
        digest = audio_digest(waveform)
        path = None
        if cache_dir:
            path = _cache_path(cache_dir, recognizer.backend,
                               cache_key(digest, recognizer))
            text = _read_cache(path)
            if text is not None:
                results[index] = Transcription(
                    text, True, 0.0, len(waveform) / SAMPLE_RATE)
                continue
        pending.append((index, waveform, digest, path))

    recognizer.parameters  # Computed once here, not in every worker.
    meter = progress_lib.Progress(len(pending), progress and bool(pending),
                                  label="asr")
    if (recognizer.parallel_in_processes and num_workers > 1
            and len(pending) > 1):
        # Fresh loky processes, as extraction.extract_many (safe next
        # to TensorFlow; reused between calls); results in input order.
        outputs = joblib.Parallel(
            n_jobs=min(num_workers, len(pending)), backend="loky",
            return_as="generator", batch_size=1)(
                joblib.delayed(_decode_in_worker)(recognizer, waveform)
                for _, waveform, _, _ in pending)
    else:
        outputs = (_timed(recognizer, waveform)
                   for _, waveform, _, _ in pending)
    for done, ((index, waveform, digest, path), (text, seconds)) in (
            enumerate(zip(pending, outputs), start=1)):
        if path:
            _write_cache(path, text, digest, recognizer)
        results[index] = Transcription(text, False, seconds,
                                       len(waveform) / SAMPLE_RATE)
        meter.update(done)
    return results


def speed(transcriptions):
    """Decoding speed of the clips decoded now (cache hits excluded).

    Returns:
        dict: clips decoded, cache hits, decode seconds (summed over
        workers), audio seconds, seconds per clip, real-time factor
        (decode / audio time).
    """
    decoded = [t for t in transcriptions
               if isinstance(t, Transcription) and not t.cached]
    seconds = sum(t.seconds for t in decoded)
    audio = sum(t.audio_seconds for t in decoded)
    return {"decoded": len(decoded),
            "cache_hits": sum(isinstance(t, Transcription) and t.cached
                              for t in transcriptions),
            "decode_seconds": round(seconds, 3),
            "audio_seconds": round(audio, 3),
            "seconds_per_clip": (round(seconds / len(decoded), 3)
                                 if decoded else None),
            "real_time_factor": round(seconds / audio, 3) if audio else None}


# ---- error report ---------------------------------------------------------

def normalize_text(text):
    """The words the error report compares (see `NORMALIZATION`)."""
    return " ".join(_WORD.findall((text or "").lower()))


def error_report(references, hypotheses, ids=None, top=20):
    """WER, CER and the most frequent errors of ASR against gold text.

    Computed with `jiwer` on normalised text (`normalize_text`). Clips whose
    gold text normalises to nothing are left out of WER/CER (counted).

    Args:
        references: sequence of str, gold transcripts.
        hypotheses: sequence of str, recognised transcripts ("" allowed).
        ids: sequence of str or None. Utterance ids, to list the empty ones.
        top: int. How many of the most frequent errors to list.

    Returns:
        JSON-able dict: num_utterances, num_empty (recognised nothing),
        empty_ids (first 50), num_scored, wer, cer, hits, substitutions,
        deletions, insertions (counts), reference_words,
        top_substitutions [{reference, hypothesis, count}], top_deletions /
        top_insertions [{word, count}], normalization.
    """
    import jiwer  # Only where WER is reported (build_arrays --asr, bench).

    references, hypotheses = list(references), list(hypotheses)
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but "
                         f"{len(hypotheses)} hypotheses.")
    ids = list(ids) if ids is not None else [str(i) for i in
                                             range(len(references))]
    empty = [ids[i] for i, h in enumerate(hypotheses)
             if not normalize_text(h)]
    pairs = [(normalize_text(r), normalize_text(h))
             for r, h in zip(references, hypotheses) if normalize_text(r)]
    report = {"num_utterances": len(references), "num_empty": len(empty),
              "empty_ids": empty[:50], "num_scored": len(pairs),
              "normalization": NORMALIZATION}
    if not pairs:
        report.update(wer=None, cer=None)
        return report
    refs, hyps = zip(*pairs)
    words = jiwer.process_words(list(refs), list(hyps))
    characters = jiwer.process_characters(list(refs), list(hyps))
    substitutions = collections.Counter()
    deletions, insertions = collections.Counter(), collections.Counter()
    for ref_words, hyp_words, chunks in zip(words.references,
                                            words.hypotheses,
                                            words.alignments):
        for chunk in chunks:
            ref = ref_words[chunk.ref_start_idx:chunk.ref_end_idx]
            hyp = hyp_words[chunk.hyp_start_idx:chunk.hyp_end_idx]
            if chunk.type == "substitute":
                substitutions.update(zip(ref, hyp))
            elif chunk.type == "delete":
                deletions.update(ref)
            elif chunk.type == "insert":
                insertions.update(hyp)
    report.update(
        wer=round(float(words.wer), 4), cer=round(float(characters.cer), 4),
        hits=int(words.hits), substitutions=int(words.substitutions),
        deletions=int(words.deletions), insertions=int(words.insertions),
        reference_words=int(words.hits + words.substitutions
                            + words.deletions),
        top_substitutions=[{"reference": r, "hypothesis": h, "count": c}
                           for (r, h), c in _most_common(substitutions, top)],
        top_deletions=[{"word": w, "count": c}
                       for w, c in _most_common(deletions, top)],
        top_insertions=[{"word": w, "count": c}
                        for w, c in _most_common(insertions, top)])
    return report


def _most_common(counter, top):
    # Ties in a fixed order, so a report is the same run to run.
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:top]


def format_report(report):
    """One line: WER, CER, error counts, empty transcripts."""
    if report.get("wer") is None:
        return (f"{report['num_utterances']} utterances, no gold text to "
                f"score; {report['num_empty']} empty transcript(s)")
    subs = ", ".join(f"{s['reference']}→{s['hypothesis']} ×{s['count']}"
                     for s in report["top_substitutions"][:3])
    return (f"WER {report['wer']:.3f}, CER {report['cer']:.3f} over "
            f"{report['num_scored']} utterances ({report['substitutions']} "
            f"substitutions, {report['deletions']} deletions, "
            f"{report['insertions']} insertions); {report['num_empty']} "
            "empty transcript(s)" + (f"; most frequent: {subs}" if subs
                                      else ""))
