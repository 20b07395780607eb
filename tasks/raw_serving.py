"""The `serve_raw` and `serve_wav` signatures: a recording and a transcript
in, the emotion out, with every feature computed inside the SavedModel.

`serve_raw` takes

* `waveform` float32 [B, S]: 16 kHz mono samples in [-1, 1) (PCM16 / 32768),
  right-padded (anything past a row's length is ignored);
* `waveform_length` int32 [B]: real samples per row (clipped to [0, S]);
* `transcript` string [B]: what was said (UTF-8; ignored, and may be empty,
  for models without text);

and `serve_wav` takes `wav` string [B] (the bytes of 16-bit PCM wav files at
16 kHz; several channels are averaged, as preprocessing reads them; another
sample rate fails naming it) and `transcript` string [B]. Both return what
`serving_default` returns (`logits`, `probabilities`, `predicted_label`,
`predicted_name`).

The model inputs are computed in the graph with the TensorFlow ops of
`preprocessing/graph_features.py` (MFCC-E-D-A, prosody functionals,
tokenisation and vocabulary lookup), `preprocessing/spectrogram.py` (log-mel)
or taken as they are (wav2vec2 models), and cut exactly as
`tasks.serving.ServingAssets` cuts them for `predict.py`: the first
`encoder_size_audio` frames, at least one (zero) frame, the waveform clipped
to the encoder's `max_samples`, ids right-padded to the text width. So a
TF Serving, TFLite or C++ client needs no librosa, nltk or Python, and the
features cannot drift from training (`tests/tasks/test_raw_serving.py`).

`raw_input_signatures` returns nothing for a model whose inputs cannot all
be computed from a recording and a transcript (a side input from a fold
extra) or whose features the graph does not compute (openSMILE features):
such an export has `serving_default` only.
"""

import tensorflow as tf

from preprocessing import audio_features
from preprocessing import graph_features
from preprocessing import spectrogram

RAW_SIGNATURE = "serve_raw"
WAV_SIGNATURE = "serve_wav"
SAMPLE_RATE = audio_features.SAMPLE_RATE
RAW_SPECS = {
    "waveform": tf.TensorSpec([None, None], tf.float32, name="waveform"),
    "waveform_length": tf.TensorSpec([None], tf.int32,
                                     name="waveform_length"),
    "transcript": tf.TensorSpec([None], tf.string, name="transcript"),
}
WAV_SPECS = {
    "wav": tf.TensorSpec([None], tf.string, name="wav"),
    "transcript": tf.TensorSpec([None], tf.string, name="transcript"),
}


def unsupported_reason(assets):
    """Why `assets`' model gets no raw signatures (None: it gets them)."""
    if assets.unservable_inputs:
        return (f"the input(s) {', '.join(assets.unservable_inputs)} cannot "
                "be computed from a recording and a transcript")
    audio = assets.metadata.get("audio")
    if audio and audio["backend"] != "numpy":
        return (f"its {audio['backend']} audio features are not computed "
                "in TensorFlow")
    return None


def _at_least_one_frame(values, lengths, size):
    """The first `size` frames [B, T', D] (T' >= 1, zeros past each row's
    length), lengths clipped to `size`: what the training pipeline feeds."""
    values = values[:, :size]
    values = tf.pad(values, [[0, 0],
                             [0, tf.maximum(1 - tf.shape(values)[1], 0)],
                             [0, 0]])
    return values, tf.minimum(lengths, size)


def _features_function(assets):
    """(to_inputs, resources): to_inputs maps the `serve_raw` inputs to the
    model's inputs (a dict of tensors); resources are its lookup tables."""
    metadata = assets.metadata
    names = set(assets.input_names)
    vectorizer = None
    if "text" in metadata:
        vectorizer = graph_features.TextVectorizer(
            assets.vocabulary, max_length=metadata["text"]["length"])

    def to_inputs(raw):
        waveform = raw["waveform"]
        length = tf.clip_by_value(raw["waveform_length"], 0,
                                  tf.shape(waveform)[1])
        inputs = {}
        audio = metadata.get("audio")
        if "audio_mfcc" in names:
            size = int(audio["encoder_size_audio"])
            mfcc, frames = graph_features.mfcc_e_d_a(waveform, length,
                                                     max_frames=size)
            inputs["audio_mfcc"], inputs["audio_length"] = (
                _at_least_one_frame(mfcc, frames, size))
        if "audio_prosody" in names:
            inputs["audio_prosody"] = graph_features.prosody_functionals(
                waveform, length)
        if "audio_logmel" in names:
            log_mel = metadata["log_mel"]
            size = int(log_mel["encoder_size_audio"])
            # Only the samples the first `size` frames read, as
            # ServingAssets and the training pipeline crop them.
            kept = spectrogram.samples_for_frames(max(size, 1))
            values, frames = spectrogram.log_mel_spectrogram(
                waveform[:, :kept], tf.minimum(length, kept),
                log_mel["parameters"]["n_mels"])
            inputs["audio_logmel"], inputs["audio_logmel_length"] = (
                _at_least_one_frame(values, frames, size))
        if "waveform" in names:
            limit = metadata["waveform"].get("max_samples")
            values = waveform if not limit else waveform[:, :limit]
            kept = length if not limit else tf.minimum(length, limit)
            # Zeros past each length (the model masks them, but the
            # Python path feeds exactly the row) and at least one sample.
            values = values * tf.sequence_mask(kept, tf.shape(values)[1],
                                               values.dtype)
            values = tf.pad(values, [[0, 0],
                                     [0, tf.maximum(1 - tf.shape(values)[1],
                                                    0)]])
            inputs["waveform"], inputs["waveform_length"] = values, kept
        if vectorizer is not None:
            inputs["text_ids"], inputs["text_length"] = vectorizer(
                raw["transcript"])
        return {name: inputs[name] for name in assets.input_names}

    return to_inputs, ([vectorizer] if vectorizer is not None else [])


def decode_wavs(wav):
    """Decodes a batch of 16-bit PCM wav files (string [B]).

    Returns:
        (waveform float32 [B, S] in [-1, 1), right-padded with zeros;
        waveform_length int32 [B]).

    Raises:
        tf.errors.InvalidArgumentError (at run time): a file that is not a
            PCM16 wav, or one at another rate than 16 kHz (naming it).
    """
    def decode(contents):
        audio, rate = tf.audio.decode_wav(contents)
        check = tf.debugging.Assert(
            tf.equal(rate, SAMPLE_RATE),
            [f"{WAV_SIGNATURE} takes {SAMPLE_RATE} Hz audio; this wav is at "
             "(Hz):", rate, "- resample it to 16 kHz first"])
        with tf.control_dependencies([check]):
            # Mono as audio_features.load_wav reads a file: channel mean.
            return tf.reduce_mean(audio, axis=1)

    samples = tf.map_fn(
        decode, wav,
        fn_output_signature=tf.RaggedTensorSpec([None], tf.float32))
    return samples.to_tensor(), tf.cast(samples.row_lengths(), tf.int32)


def raw_input_signatures(assets):
    """The `serve_raw` and `serve_wav` signatures of an export.

    Args:
        assets: `tasks.serving.ServingAssets` of the model.

    Returns:
        (input_signatures, resources) for `models.export.export_saved_model`
        (({}, []) when `unsupported_reason` gives a reason).
    """
    if unsupported_reason(assets) is not None:
        return {}, []
    to_inputs, resources = _features_function(assets)
    # One tf.function for both signatures: the feature graph (the pitch
    # tracker above all) is traced and stored once, not once per signature.
    to_inputs = tf.function(to_inputs, input_signature=[RAW_SPECS])

    def from_wav(inputs):
        waveform, length = decode_wavs(inputs["wav"])
        return to_inputs({"waveform": waveform, "waveform_length": length,
                          "transcript": inputs["transcript"]})

    return ({RAW_SIGNATURE: (to_inputs, RAW_SPECS),
             WAV_SIGNATURE: (from_wav, WAV_SPECS)}, resources)
