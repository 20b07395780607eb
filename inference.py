"""Glue for using a trained model: self-contained exports, prediction from
wav files and transcripts, and explanations.

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

A text model can also predict from a wav alone: a speech recogniser
(`preprocessing/asr.py`) transcribes each file that has no transcript. It is
the one given (`--asr`), else the one recorded in the metadata (`text.asr`:
backend, spec, parameters, and whether the fold's text ids were ASR or gold
text) when the run's fold was built with `build_arrays --transcripts=asr` or
`both`. An empty recognised text is fed as no words (text_length 0), as the
ASR folds store it.

`Predictor` serves a SavedModel written by `export_run` (nothing else
needed), or a run folder (its `saved_model/` if that is such an export,
otherwise the model is rebuilt from the run with the run's fold folder).
`explain_example` / `summarize_words` compute integrated gradients,
modality ablations and attention weights (`models/attribution.py`) for a
Keras model on the same features.
"""

import collections
import io
import json
import os

import numpy as np

from models import attribution
from models import export as export_lib
from preprocessing import asr
from preprocessing import audio_features
from preprocessing import input_pipeline
from preprocessing import manifest
from preprocessing import reference_arrays
from preprocessing import spectrogram
from preprocessing import text_features

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


def _vocabulary_list(vocabulary):
    """dict token → id (ids 0..V-1) → list of tokens by id."""
    tokens = [None] * len(vocabulary)
    for token, index in vocabulary.items():
        tokens[index] = token
    return tokens


def serving_metadata(config, model, fold_manifest, vocabulary_size):
    """The inference metadata of a run (stored in its export).

    Args:
        config: dict. The run's config.json.
        model: keras.Model. The run's model (input shapes, encoder length).
        fold_manifest: dict. The fold's manifest.json ({} if none).
        vocabulary_size: int or None (models without text).

    Returns:
        JSON-able dict (see the README, "Prediction and explanations").
    """
    import experiment

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
            "max_samples": experiment.waveform_max_samples(model),
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
        import experiment
        from models import run_files

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
        if digest and experiment.manifest_digest(data_dir) != digest:
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
        import soundfile

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


def export_run(run_dir, export_dir=None, model=None, overwrite=None):
    """Exports a run as a SavedModel that predicts from wav + text alone.

    Label names, feature parameters, encoder size, text width and the
    vocabulary (from the run's fold folder `dic.pkl`) are stored as assets
    (see `ServingAssets`), and, when the model's inputs can be computed from
    a recording and a transcript, the `serve_raw` and `serve_wav`
    signatures compute them in the graph (`raw_serving.py`).

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
    import experiment
    import raw_serving
    from models import run_files

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
        model, config = experiment.load_trained_model(run_dir)
    assets = ServingAssets.from_run(run_dir, model, config)
    source = assets.metadata.get("audio", {}).get("parameters_source", "")
    if source.startswith("assumed"):
        from absl import logging
        logging.warning("%s: %s.", config["data"]["data_dir"], source)
    files = {}
    if assets.vocabulary is not None:
        files[VOCABULARY_ASSET] = json.dumps(
            _vocabulary_list(assets.vocabulary), ensure_ascii=False)
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


def is_inference_export(directory):
    """Whether `directory` is a SavedModel written by `export_run`."""
    try:
        return export_lib.read_metadata(directory).get("format") == FORMAT
    except (FileNotFoundError, ValueError):
        return False


ENGINES = ("python", "graph")


class Predictor:
    """Emotion probabilities from wav files and transcripts.

    Build it with `Predictor.load(model_dir, engine)`. Engines:

    * "python": the features are computed here (`ServingAssets.example`)
      and fed to `serving_default`;
    * "graph": the waveform and transcript are fed to `serve_raw`, which
      computes the features in the graph (`raw_serving.py`), as a TF
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
        import tensorflow as tf

        import raw_serving

        if engine not in ENGINES:
            raise InferenceError(f"engine {engine!r}: expected one of "
                                 f"{ENGINES}.")
        signature = ("serving_default" if engine == "python"
                     else raw_serving.RAW_SIGNATURE)
        if os.path.isfile(os.path.join(model_dir, "saved_model.pb")):
            if not is_inference_export(model_dir):
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
            if is_inference_export(exported):
                return cls.load(exported, engine)
            import experiment

            model, config = experiment.load_trained_model(model_dir)
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


def recognizer_for(assets, spec=None):
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


# ---- command-line inputs and outputs ------------------------------------

def read_text_file(path):
    """One transcript per line (empty line: none), in file order."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: missing transcript file.")
    # Not UTF-8: a DataError naming the file and line.
    text = io.StringIO(manifest.read_utf8(path), newline=None)
    return [line.rstrip("\r\n").strip() or None for line in text]


def read_manifest(path):
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


def format_table(results, label_names):
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


# ---- explanations -------------------------------------------------------

def fold_example(split, index, encoder_size_audio, names):
    """Model inputs (batch of 1) of row `index` of a fold split, exactly as
    the evaluation pipeline feeds it (lengths clipped to the encoder size,
    frames cropped to the clipped length)."""
    if not 0 <= index < len(split):
        raise IndexError(f"index {index} outside 0..{len(split) - 1}.")
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
        raise InferenceError(f"Cannot build inputs {missing} from a fold "
                             "row (explanations support the Yoon models).")
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


def explain_example(model, features, label_names, tokens=None,
                    vocabulary=None, prosody_names=None, steps=64,
                    target=None, baseline="auto", explainer=None):
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
           for name in WAVEFORM_INPUTS + LOG_MEL_INPUTS):
        raise InferenceError("Explanations support the Yoon models (MFCC, "
                             "prosody, words); wav2vec2 and log-mel models "
                             "can only be used for prediction.")
    label_names = list(label_names)
    if isinstance(target, str):
        if target not in label_names:
            raise InferenceError(f"target {target!r}: not one of "
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
        section["frame_seconds"] = FRAME_SECONDS
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
    vocabulary_tokens = (_vocabulary_list(vocabulary) if vocabulary
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


def summarize_words(model, split, encoder_size_audio, vocabulary,
                    label_names, steps=32, max_examples=None, top_k=10,
                    min_count=2, baseline="auto", log=None):
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
        raise InferenceError(f"{model.name} reads no words; a word summary "
                             "needs a text model (TRE, MDRE, MDREA).")
    tokens = _vocabulary_list(vocabulary)
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
