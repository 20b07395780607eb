"""Serving assets and self-contained exports: what turns a recording and a
transcript into a trained model's inputs, stored inside its SavedModel.

Train/serve skew is ruled out by construction: `export_run` stores inside the
SavedModel (`assets/metadata.json`, `assets/vocabulary.json`; see
`models/export.py`) everything that turns a recording and a transcript into
the model's inputs — label names, the audio feature parameters and backend,
the encoder size (MFCC frames fed), the text width, the tokenizer and the
vocabulary — and `ServingAssets` computes the features from exactly that,
with the same functions the fold folders were built with:

* audio: `audio_features.load_wav` (mono, resampled to 16 kHz as in
  preprocessing) → `audio_features.extract_features` → the first
  `encoder_size_audio` MFCC frames, `audio_length` = min(frames, encoder
  size) as the training pipeline clips it, and the 35 prosody functionals.
  At load, the stored feature parameters must equal what this code computes
  (`audio_features.feature_parameters()`), otherwise loading fails.
* text: `text_features.tokenize` (lowercased Treebank tokens) → ids with the
  stored vocabulary, unknown words → `_UNK_`, right-padded to the width,
  `text_length` = index of the first PAD (`input_pipeline.text_lengths`).
* wav2vec2 models: the 16 kHz waveform in [-1, 1), clipped to the encoder's
  input length (stored) with its length.
* log-mel models (`CNN_SPEC --cnn_input=logmel`): the 16 kHz waveform in
  [-1, 1) → `spectrogram.log_mel_spectrogram`, the function the training
  pipeline runs, → the first `encoder_size_audio` frames and their count.
  The spectrogram parameters are stored (`log_mel` in the metadata) and
  must equal what this code computes (`spectrogram.parameters()`).

Any other input (a `TRANSFORMER_FUSION` side input read from a fold extra,
e.g. motion-capture features `mocap`) cannot be computed from a wav: such a
model exports and serves through its SavedModel's `serving_default` (which
takes that input), but `Predictor` refuses it (`unservable_inputs`).

A text model can also predict from a wav alone, through the speech
recogniser recorded in the metadata (`text.asr`; see `tasks.prediction`).

The `serve_raw` / `serve_wav` signatures that compute the same features in
the graph are built by `tasks.raw_serving`; `tasks.prediction` serves an
export, `tasks.explanation` explains a model on the same features.
"""

import json
import os
from typing import Any, Dict, List, Optional

import keras
import numpy as np
import soundfile
from absl import logging

from models import export as export_lib
from preprocessing import audio_features
from preprocessing import input_pipeline
from preprocessing import reference_arrays
from preprocessing import spectrogram
from preprocessing import text_features
from tasks import datasets
from tasks import folds
from tasks import loading
from tasks import raw_serving
from tasks import run_dir as run_files

FORMAT = "multimodal-speech-emotion/inference"


FORMAT_VERSION = 1


VOCABULARY_ASSET = "vocabulary.json"


FRAME_SECONDS = audio_features.FRAME_STEP / audio_features.SAMPLE_RATE


TOKENIZER = "nltk NLTKWordTokenizer (Treebank, no punkt), lowercased"


AUDIO_FEATURE_INPUTS = ("audio_mfcc", "audio_length", "audio_prosody")


WAVEFORM_INPUTS = input_pipeline.WAVEFORM_FEATURES


LOG_MEL_INPUTS = input_pipeline.LOG_MEL_FEATURES


TEXT_INPUTS = ("text_ids", "text_length")


# Everything ServingAssets computes from a wav file and a transcript.
SERVABLE_INPUTS = (AUDIO_FEATURE_INPUTS + WAVEFORM_INPUTS + LOG_MEL_INPUTS
                   + TEXT_INPUTS)


class InferenceError(ValueError):
    """A model, export or input that prediction cannot use."""


def _json_roundtrip(value):
    return json.loads(json.dumps(value))


def _current_feature_parameters():
    return _json_roundtrip(audio_features.feature_parameters())


def _recorded_features(fold_manifest):
    """(backend, parameters, source) of the features a fold was built with.

    `source` starts with "assumed" when the fold has no manifest.json at all
    (the released openSMILE arrays, or a hand-made fold): this toolkit's
    numpy features then only approximate what the model was trained on.
    """
    recorded = fold_manifest.get("features")
    if isinstance(recorded, dict):
        backend = recorded.get("backend", "numpy")
        parameters = {k: v for k, v in recorded.items()
                      if k not in ("backend", "prosody_names")}
        return backend, _json_roundtrip(parameters), "fold manifest.json"
    if fold_manifest:
        # E.g. the demo corpus, whose features are this code's numpy ones.
        return ("numpy", _current_feature_parameters(),
                "this toolkit (the fold's manifest.json records no feature "
                "parameters)")
    source = ("assumed: the fold has no manifest.json (e.g. the released "
              "openSMILE arrays); this toolkit's numpy features only "
              "approximate openSMILE's")
    return "numpy", _current_feature_parameters(), source


def vocabulary_list(vocabulary: Dict[str, int]) -> List[str]:
    """dict token → id (ids 0..V-1) → list of tokens by id."""
    tokens = [None] * len(vocabulary)
    for token, index in vocabulary.items():
        tokens[index] = token
    return tokens


def serving_metadata(config: Dict[str, Any], model: keras.Model,
                     fold_manifest: Dict[str, Any],
                     vocabulary_size: Optional[int]) -> Dict[str, Any]:
    """The inference metadata of a run (stored in its export).

    Args:
        config: dict. The run's config.json.
        model: keras.Model. The run's model (input shapes, encoder length).
        fold_manifest: dict. The fold's manifest.json ({} if none).
        vocabulary_size: int or None (models without text).

    Returns:
        JSON-able dict (see the README, "Prediction and explanations").
    """
    input_names = [tensor.name for tensor in model.inputs]
    shapes = {tensor.name: tensor.shape for tensor in model.inputs}
    backend, parameters, source = _recorded_features(fold_manifest)
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": config["model"],
        "run_name": config.get("run_name"),
        "dataset": config["data"].get("dataset"),
        "data_digest": config["data"].get("digest"),
        "label_names": list(config["data"]["label_names"]),
    }
    if any(name in input_names for name in AUDIO_FEATURE_INPUTS):
        metadata["audio"] = {
            "sample_rate": audio_features.SAMPLE_RATE,
            "backend": backend,
            "parameters": parameters,
            "parameters_source": source,
            "encoder_size_audio": int(config["data"]["encoder_size_audio"]),
            "prosody_names": list(audio_features.PROSODY_NAMES),
            "frame_seconds": FRAME_SECONDS,
        }
        if "audio_mfcc" in shapes:
            # (A log-mel model with prosody has an "audio" section for the
            # prosody but no MFCC input.)
            metadata["audio"]["mfcc_dim"] = int(shapes["audio_mfcc"][-1])
    if "audio_logmel" in input_names:
        metadata["log_mel"] = {
            "sample_rate": spectrogram.SAMPLE_RATE,
            "parameters": _json_roundtrip(spectrogram.parameters(
                int(shapes["audio_logmel"][-1]))),
            "encoder_size_audio": int(config["data"]["encoder_size_audio"]),
            "frame_seconds": spectrogram.FRAME_STEP / spectrogram.SAMPLE_RATE,
        }
    if any(name in input_names for name in WAVEFORM_INPUTS):
        metadata["waveform"] = {
            "sample_rate": audio_features.SAMPLE_RATE,
            "scale": "PCM16 / 32768, in [-1, 1)",
            "max_samples": datasets.waveform_max_samples(model),
        }
    if "text_ids" in input_names:
        metadata["text"] = {
            "tokenizer": TOKENIZER,
            "length": int(shapes["text_ids"][-1]),
            "pad_token": text_features.PAD_TOKEN,
            "unk_token": text_features.UNK_TOKEN,
            "vocabulary_asset": VOCABULARY_ASSET,
            "vocabulary_size": vocabulary_size,
        }
        recognizer = fold_manifest.get("asr")
        if isinstance(recognizer, dict) and recognizer.get("spec"):
            # The recogniser that made the fold's ASR text: predict.py uses
            # it for files without a transcript.
            metadata["text"]["asr"] = {
                "backend": recognizer.get("backend"),
                "spec": recognizer["spec"],
                "parameters": recognizer.get("parameters"),
                "trained_on": fold_manifest.get("text", {}).get(
                    "transcripts", "gold"),
            }
    return metadata


def _check_parameters(what, recorded, current):
    """Raises InferenceError when a model was trained on features computed
    with other parameters than this code computes (train/serve skew)."""
    if recorded != current:
        differing = sorted(key for key in set(current) | set(recorded)
                           if current.get(key) != recorded.get(key))
        raise InferenceError(
            f"The model was trained on {what} with other parameters than "
            f"this code computes (differing: {differing}); predicting would "
            "feed it different features. Use the toolkit version it was "
            "trained with.")


class ServingAssets:
    """Turns a wav file and a transcript into a model's inputs.

    Args:
        metadata: dict, as `serving_metadata` returns it.
        vocabulary: dict token → id, or None for models without text.

    Raises:
        InferenceError: metadata of another format, or audio feature
            parameters this code does not compute (train/serve skew).
    """

    def __init__(self, metadata, vocabulary=None):
        if metadata.get("format") != FORMAT:
            raise InferenceError(
                f"Not inference metadata (format {metadata.get('format')!r},"
                f" expected {FORMAT!r}); export the run with "
                "`python export.py --run_dir=...`.")
        if metadata.get("format_version", 0) > FORMAT_VERSION:
            raise InferenceError(
                f"Inference metadata version {metadata['format_version']} is "
                f"newer than this code's {FORMAT_VERSION}.")
        self.metadata = metadata
        self.vocabulary = vocabulary
        audio = metadata.get("audio")
        if audio:
            if audio["backend"] == "numpy":
                _check_parameters("audio features", audio["parameters"],
                                  _current_feature_parameters())
            elif audio["backend"] not in audio_features.BACKENDS:
                raise InferenceError(
                    f"Unknown audio feature backend {audio['backend']!r}.")
            else:
                try:
                    import opensmile  # noqa: F401
                except ImportError as error:
                    raise InferenceError(
                        "The model was trained on openSMILE features; "
                        "install the optional backend (pip install -e "
                        "\".[opensmile]\") to compute them.") from error
        log_mel = metadata.get("log_mel")
        if log_mel:
            _check_parameters("log-mel spectrograms", log_mel["parameters"],
                              _json_roundtrip(spectrogram.parameters(
                                  log_mel["parameters"].get(
                                      "n_mels", spectrogram.N_MELS))))
        if "text" in metadata:
            if vocabulary is None:
                raise InferenceError("A text model needs its vocabulary.")
            if len(vocabulary) != metadata["text"]["vocabulary_size"]:
                raise InferenceError(
                    f"Vocabulary of {len(vocabulary)} entries, the model "
                    f"expects {metadata['text']['vocabulary_size']}.")
            self._unk_id = vocabulary.get(text_features.UNK_TOKEN,
                                          text_features.UNK_ID)

    @property
    def label_names(self):
        return tuple(self.metadata["label_names"])

    @property
    def model_name(self):
        return self.metadata["model"]["name"]

    @property
    def input_names(self):
        return tuple(self.metadata["inputs"])

    @property
    def uses_text(self):
        return "text" in self.metadata

    @property
    def unservable_inputs(self):
        """The model's inputs that cannot be computed from a wav and a
        transcript (e.g. a side input from a fold extra)."""
        return tuple(name for name in self.input_names
                     if name not in SERVABLE_INPUTS)

    def check_servable(self, where):
        """Raises InferenceError when the model needs an input that this
        code cannot compute from a wav and a transcript."""
        missing = self.unservable_inputs
        if missing:
            raise InferenceError(
                f"{where}: {self.model_name} needs the side input"
                f"{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)}, which predict.py cannot compute from "
                "a wav; call the SavedModel's serving_default with "
                f"{'them' if len(missing) > 1 else 'it'} (inputs: "
                f"{', '.join(self.input_names)}).")

    @property
    def uses_audio(self):
        return any(key in self.metadata
                   for key in ("audio", "waveform", "log_mel"))

    @classmethod
    def from_export(cls, export_dir):
        """Reads the assets of a SavedModel written by `export_run`."""
        metadata = export_lib.read_metadata(export_dir)
        vocabulary = None
        if "text" in metadata:
            path = os.path.join(export_dir, "assets",
                                metadata["text"]["vocabulary_asset"])
            if not os.path.isfile(path):
                raise InferenceError(f"{path}: missing vocabulary asset.")
            with open(path) as f:
                tokens = json.load(f)
            vocabulary = {token: index for index, token in enumerate(tokens)}
        return cls(metadata, vocabulary)

    @classmethod
    def from_run(cls, run_dir, model, config=None):
        """Derives the assets from a run's config.json and fold folder.

        Raises:
            reference_arrays.DataError: the run's fold folder is missing or
                bad (naming it).
            InferenceError: the fold folder changed since training (its
                vocabulary might not be the model's).
        """
        config = config or run_files.read_json(
            os.path.join(run_dir, "config.json"))
        data_dir = config["data"]["data_dir"]
        if not os.path.isdir(data_dir):
            raise reference_arrays.DataError(
                f"{data_dir}: the run's fold folder is missing; its "
                "dic.pkl and manifest.json give the vocabulary and feature "
                "parameters (an export made by `python export.py "
                f"--run_dir={run_dir}` carries them instead).")
        digest = config["data"].get("digest")
        if digest and folds.manifest_digest(data_dir) != digest:
            raise InferenceError(
                f"{data_dir}: its manifest.json/dic.pkl changed since the run "
                f"{run_dir} trained on it, so its vocabulary may not be the "
                "model's.")
        manifest = reference_arrays.load_manifest(data_dir)
        vocabulary = None
        if "text_ids" in [tensor.name for tensor in model.inputs]:
            vocabulary = reference_arrays.load_vocabulary(
                os.path.join(data_dir, reference_arrays.VOCAB_NAME))
        metadata = serving_metadata(
            config, model, manifest,
            None if vocabulary is None else len(vocabulary))
        metadata["inputs"] = export_lib.input_description(model)
        return cls(metadata, vocabulary)

    # ---- features -------------------------------------------------------

    def load_audio(self, wav_path):
        """Reads a file as mono float32 at 16 kHz, as preprocessing does.

        Returns:
            (float32 [samples], info dict: file sample_rate, seconds).

        Raises:
            reference_arrays.DataError: missing, unreadable or empty file.
        """
        if os.path.isfile(wav_path) and os.path.getsize(wav_path) == 0:
            raise reference_arrays.DataError(f"{wav_path}: empty file (0 "
                                             "bytes).")
        waveform = audio_features.load_wav(wav_path,
                                           audio_features.SAMPLE_RATE)
        rate = soundfile.info(wav_path).samplerate
        info = {"sample_rate": int(rate),
                "seconds": round(len(waveform) / audio_features.SAMPLE_RATE,
                                 3)}
        if rate != audio_features.SAMPLE_RATE:
            info["resampled_to"] = audio_features.SAMPLE_RATE
        return waveform, info

    def audio_inputs(self, waveform):
        """Model audio inputs (batch of 1) of a 16 kHz waveform.

        Returns:
            (dict name → array [1, ...], info dict).
        """
        features, info = {}, {}
        audio = self.metadata.get("audio")
        if audio:
            mfcc, prosody = audio_features.extract_features(
                waveform, audio_features.SAMPLE_RATE, audio["backend"])
            size = audio["encoder_size_audio"]
            used = min(len(mfcc), size)
            # As the training pipeline: at least one (zero) frame is fed
            # and the length says how many are real.
            frames = np.zeros((1, max(used, 1), mfcc.shape[1]), np.float32)
            frames[0, :used] = mfcc[:used]
            features.update(
                audio_mfcc=frames,
                audio_length=np.array([used], np.int32),
                audio_prosody=np.asarray(prosody, np.float32)[None])
            info.update(frames=int(len(mfcc)), frames_used=int(used))
        log_mel = self.metadata.get("log_mel")
        if log_mel:
            size = log_mel["encoder_size_audio"]
            # Only the samples the first `size` frames read, as the
            # training pipeline gathers them.
            kept = np.asarray(
                waveform[:spectrogram.samples_for_frames(max(size, 1))],
                np.float32)
            frames, lengths = spectrogram.log_mel_spectrogram(
                kept[None], [len(kept)],
                log_mel["parameters"]["n_mels"])
            used = int(lengths[0])
            # At least one (zero) frame is fed; the length says how many
            # are real.
            values = np.zeros((1, max(used, 1), frames.shape[-1]),
                              np.float32)
            values[0, :used] = frames.numpy()[0, :used]
            features.update(audio_logmel=values,
                            audio_logmel_length=np.array([used], np.int32))
            info.update(frames=int(spectrogram.num_frames(len(waveform))),
                        frames_used=used)
        wave = self.metadata.get("waveform")
        if wave:
            limit = wave.get("max_samples") or len(waveform)
            kept = np.asarray(waveform[:limit], np.float32)
            features.update(
                waveform=(kept if len(kept)
                          else np.zeros(1, np.float32))[None],
                waveform_length=np.array([len(kept)], np.int32))
            info.update(samples_used=int(len(kept)))
        return features, info

    def tokens_to_inputs(self, tokens):
        """Model text inputs (batch of 1) of a token list."""
        length = self.metadata["text"]["length"]
        ids = text_features.encode([tokens], self.vocabulary, length)
        return {"text_ids": ids,
                "text_length": input_pipeline.text_lengths(ids)}

    def text_inputs(self, transcript):
        """Model text inputs (batch of 1) of a transcript.

        Returns:
            (dict name → array [1, ...], info dict: tokens, unknown_words,
            truncated).

        Raises:
            InferenceError: an empty transcript (no tokens).
        """
        tokens = text_features.tokenize(transcript)
        if not tokens:
            raise InferenceError(f"empty transcript {transcript!r} (no "
                                 "tokens).")
        length = self.metadata["text"]["length"]
        info = {"tokens": tokens[:length],
                "unknown_words": sorted({t for t in tokens[:length]
                                         if t not in self.vocabulary})}
        if len(tokens) > length:
            info["truncated_tokens"] = len(tokens) - length
        return self.tokens_to_inputs(tokens), info

    def example(self, wav_path, transcript=None, recognized=False):
        """Model inputs of one utterance, and what was done to get them.

        Text-less models ignore the transcript (noted in the info); models
        without audio do not read the file. A `recognized` (ASR) transcript
        may be empty: it is fed as no words, as the ASR folds store it.

        Returns:
            (dict name → array [1, ...], info dict).

        Raises:
            reference_arrays.DataError: unreadable/empty audio file.
            InferenceError: a text model without a transcript, or an empty
                one; a model with inputs not computable from a wav
                (`unservable_inputs`).
        """
        self.check_servable(wav_path)
        features, info = {}, {"notes": []}
        if self.uses_audio:
            waveform, audio_info = self.load_audio(wav_path)
            features_audio, more = self.audio_inputs(waveform)
            features.update(features_audio)
            info.update(audio_info, **more)
            if info.get("frames") == 0:
                info["notes"].append("shorter than one 25 ms frame")
        else:
            info["notes"].append(f"{self.model_name} reads no audio; file "
                                 "not read")
        if self.uses_text:
            if self._check_transcript(wav_path, transcript, recognized):
                features.update(self.tokens_to_inputs([]))
                info.update(tokens=[], unknown_words=[])
                info["notes"].append("the recogniser heard no words")
                return features, info
            text, text_info = self.text_inputs(transcript)
            features.update(text)
            info.update(text_info)
        elif transcript:
            info["notes"].append(f"{self.model_name} reads no text; "
                                 "transcript ignored")
        return features, info

    def _check_transcript(self, wav_path, transcript, recognized=False):
        """Refuses a missing transcript; True for an ASR one with no words.

        A recogniser that heard nothing gives an empty transcript, which is
        fed as no words; a missing gold transcript is an error.
        """
        if recognized and not text_features.tokenize(transcript or ""):
            return True
        if transcript is None or not str(transcript).strip():
            raise InferenceError(
                f"{wav_path}: no transcript; {self.model_name} reads "
                "text (give one with --text, --text_file or a "
                "--manifest transcript column, or recognise it with "
                "--asr=pocketsphinx).")
        return False

    def raw_example(self, wav_path, transcript=None, recognized=False):
        """The `serve_raw` inputs (batch of 1) of one utterance.

        The file is read as for `example` (mono, resampled to 16 kHz); the
        features are left to the graph.

        Returns:
            (dict waveform float32 [1, S], waveform_length int32 [1],
            transcript object [1] of bytes; info dict).

        Raises:
            As `example`.
        """
        self.check_servable(wav_path)
        info = {"notes": []}
        waveform = np.zeros(0, np.float32)
        if self.uses_audio:
            waveform, audio_info = self.load_audio(wav_path)
            info.update(audio_info)
        else:
            info["notes"].append(f"{self.model_name} reads no audio; file "
                                 "not read")
        if self.uses_text:
            if self._check_transcript(wav_path, transcript, recognized):
                info["notes"].append("the recogniser heard no words")
        elif transcript:
            info["notes"].append(f"{self.model_name} reads no text; "
                                 "transcript ignored")
        text = str(transcript or "") if self.uses_text else ""
        features = {
            "waveform": (waveform if len(waveform)
                         else np.zeros(1, np.float32))[None],
            "waveform_length": np.array([len(waveform)], np.int32),
            "transcript": np.array([text.encode("utf-8")], object),
        }
        return features, info


def export_run(run_dir: str, export_dir: Optional[str] = None,
               model: Optional[keras.Model] = None,
               overwrite: Optional[bool] = None) -> str:
    """Exports a run as a SavedModel that predicts from wav + text alone.

    Label names, feature parameters, encoder size, text width and the
    vocabulary (from the run's fold folder `dic.pkl`) are stored as assets
    (see `ServingAssets`), and, when the model's inputs can be computed from
    a recording and a transcript, the `serve_raw` and `serve_wav`
    signatures compute them in the graph (`tasks.raw_serving`).

    Args:
        run_dir: str. Run folder written by train.py (config.json; and
            model.weights.h5 unless `model` is given).
        export_dir: str or None. Default `<run_dir>/saved_model`.
        model: keras.Model or None. The trained model (e.g. the trainer's
            at the end of training); None rebuilds it from the run.
        overwrite: bool or None. Whether an earlier export at `export_dir`
            may be replaced; None: only the run's own `saved_model/`.

    Returns:
        str. The export folder.

    Raises:
        reference_arrays.DataError: the run's fold folder is missing or bad.
        InferenceError: the fold folder changed since training.
        export_lib.ExportError: `export_dir` holds something else than an
            earlier export (left untouched), or one and not `overwrite`.
    """
    default_dir = os.path.join(run_dir, "saved_model")
    export_dir = export_dir or default_dir
    if overwrite is None:
        overwrite = os.path.abspath(export_dir) == os.path.abspath(
            default_dir)
    # Before anything is built: a folder that may not be written fails
    # fast, and is never touched.
    export_lib.check_target(export_dir, overwrite)
    config = run_files.read_json(os.path.join(run_dir, "config.json"))
    if model is None:
        model, config = loading.load_trained_model(run_dir)
    assets = ServingAssets.from_run(run_dir, model, config)
    source = assets.metadata.get("audio", {}).get("parameters_source", "")
    if source.startswith("assumed"):
        logging.warning("%s: %s.", config["data"]["data_dir"], source)
    files = {}
    if assets.vocabulary is not None:
        files[VOCABULARY_ASSET] = json.dumps(
            vocabulary_list(assets.vocabulary), ensure_ascii=False)
    metadata = dict(assets.metadata)
    metadata.pop("inputs")  # export_saved_model writes the model's own.
    signatures, resources = raw_serving.raw_input_signatures(assets)
    metadata["raw_signatures"] = sorted(signatures)
    if not signatures:
        metadata["raw_signatures_missing"] = raw_serving.unsupported_reason(
            assets)
    return export_lib.export_saved_model(
        model, export_dir, assets.label_names, metadata=metadata,
        assets=files, input_signatures=signatures, resources=resources,
        overwrite=overwrite)


def is_inference_export(directory: str) -> bool:
    """Whether `directory` is a SavedModel written by `export_run`."""
    try:
        return export_lib.read_metadata(directory).get("format") == FORMAT
    except (FileNotFoundError, ValueError):
        return False
