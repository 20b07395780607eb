"""CNN_SPEC over log-mel spectrograms: parameters, padding, config, export,
the fold/normalisation glue, and a short train.py → evaluate.py →
predict.py run on the demo corpus."""

import csv
import os

import numpy as np
import pytest
import soundfile
import tensorflow as tf

from apps import predict as predict_app
from models import export
from models import registry
from preprocessing import input_pipeline
from preprocessing import reference_arrays
from preprocessing import spectrogram
from tasks import datasets
from tasks import evaluation
from tasks import folds
from tasks import loading
from tasks import model_setup
from tasks import prediction
from tasks import serving
from tests import helpers

LABELS = ("angry", "happy", "sad", "neutral")
TINY = dict(cnn_filters=(2, 3), cnn_kernel_size=3, hidden_units=5,
            audio_keep_prob=1.0, audio_input="logmel", n_mels=10, seed=3)
# Σ (k²·C_{i−1} + 1)·C_i + (F'·C_n + 1)·D + (D+1)·C, F' = 10 → 5 → 3.
_TINY_COUNT = (9 * 1 + 1) * 2 + (9 * 2 + 1) * 3 + (3 * 3 + 1) * 5 + 6 * 4


def _count(model):
    return helpers.count_trainable(model)


def _build(**overrides):
    return registry.build_model("CNN_SPEC", **dict(TINY, **overrides))


def _normalization(n_mels=10):
    return {"logmel_mean": [-3.0] * n_mels, "logmel_std": [2.0] * n_mels,
            "mfcc_mean": [0.0] * 39, "mfcc_std": [1.0] * 39,
            "prosody_mean": [1.0] * 35, "prosody_std": [3.0] * 35}


@pytest.mark.parametrize("overrides,expected", [
    ({}, _TINY_COUNT),
    ({"use_prosody": True}, _TINY_COUNT + 35 * 5),
    # The docstring's example: the defaults in logmel mode.
    ({"cnn_filters": (32, 64), "hidden_units": 64, "n_mels": 64},
     320 + 18496 + (16 * 64 + 1) * 64 + 65 * 4),
])
def test_parameter_count_and_inputs(overrides, expected):
    model = _build(**overrides)
    assert _count(model) == expected
    names = sorted(t.name for t in model.inputs)
    assert names == sorted(["audio_logmel", "audio_logmel_length"]
                           + (["audio_prosody"] if overrides.get(
                               "use_prosody") else []))
    # MFCC mode is unchanged (tests/models/test_seed_models.py counts it).
    assert _count(registry.build_model("CNN_SPEC")) == 60100


def test_pipeline_batch_equals_each_utterance_alone(demo_fold):
    """A padded pipeline batch gives each utterance the output of its own
    unpadded waveform's spectrogram, alone."""
    split = demo_fold.splits["dev"]
    model = _build(use_prosody=True,
                   audio_normalization=_normalization())
    features, _ = next(iter(input_pipeline.make_dataset(
        split, 6, log_mel=True, n_mels=10, audio_max_frames=150)))
    names = [t.name for t in model.inputs]
    together = model({n: features[n] for n in names}).numpy()
    pcm, lengths = (split.extras["waveform"],
                    split.extras["waveform_length"])
    for row in range(6):
        length = min(int(lengths[row]), spectrogram.samples_for_frames(150))
        log_mel, frames = spectrogram.log_mel_spectrogram(
            pcm[row:row + 1, :length] / 32768.0, [length], 10)
        alone = model({"audio_logmel": log_mel.numpy(),
                       "audio_logmel_length": frames.numpy(),
                       "audio_prosody": split.prosody[row:row + 1]}).numpy()
        np.testing.assert_allclose(alone[0], together[row], atol=1e-5)


def test_config_round_trip_and_errors():
    model = _build(use_prosody=True, audio_normalization=_normalization())
    config = helpers.assert_config_round_trip(model)
    assert config["audio_input"] == "logmel" and config["n_mels"] == 10
    with pytest.raises(ValueError, match="audio_input must be one of"):
        _build(audio_input="spectrogram")
    with pytest.raises(ValueError, match="lacks .*logmel_mean"):
        _build(audio_normalization={"mfcc_mean": [0.0] * 39,
                                    "mfcc_std": [1.0] * 39})
    with pytest.raises(ValueError, match="12 bands; the input has 10"):
        _build(audio_normalization=_normalization(12))


def test_export_round_trip(tmp_path):
    model = _build(audio_normalization=_normalization())
    export_dir = export.export_saved_model(model, str(tmp_path / "sm"),
                                           LABELS)
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    rng = np.random.default_rng(0)
    for lengths in ([9, 4, 1], [4, 2, 0]):
        batch = {"audio_logmel": rng.standard_normal(
                     (3, max(lengths) + 2, 10)).astype(np.float32),
                 "audio_logmel_length": np.array(lengths, np.int32)}
        served = serve(**{k: tf.constant(v) for k, v in batch.items()})
        np.testing.assert_allclose(served["logits"].numpy(),
                                   model(batch).numpy(), atol=1e-5)


def test_fold_glue_reads_waveforms_by_model_arguments(demo_fold, tmp_path):
    logmel = {"audio_input": "logmel"}
    assert folds.needs_waveforms("CNN_SPEC", logmel)
    assert not folds.needs_waveforms("CNN_SPEC", {})
    # Other models ignore CNN_SPEC's argument (one set of flags for all).
    assert not folds.needs_waveforms("MMMF", logmel)
    assert folds.log_mel_bands("CNN_SPEC", dict(logmel, n_mels=8)) == 8
    fold = folds.load_fold(demo_fold.path, "CNN_SPEC", logmel)
    assert sorted(fold.splits["train"].extras) == ["waveform",
                                                   "waveform_length"]
    assert not folds.load_fold(demo_fold.path, "CNN_SPEC").splits[
        "train"].extras
    plain = helpers.write_random_fold(tmp_path / "set07")
    with pytest.raises(reference_arrays.DataError,
                       match=r"set07: no raw waveforms.*--cnn_input=mfcc.*"
                             r"--store_waveforms"):
        folds.load_fold(plain, "CNN_SPEC", logmel)
    from tasks import train_run
    with pytest.raises(reference_arrays.DataError, match="set07"):
        train_run.run("CNN_SPEC", plain, run_dir=str(tmp_path / "run"),
                    audio_input="logmel", log=lambda _: None)


def test_log_mel_statistics_cover_the_real_frames(demo_fold):
    split = demo_fold.splits["dev"]
    stats = model_setup.log_mel_statistics(split, 12, audio_max_frames=80,
                                           batch_size=7)
    frames = []
    for row in range(len(split)):
        length = min(int(split.extras["waveform_length"][row]),
                     spectrogram.samples_for_frames(80))
        log_mel, _ = spectrogram.log_mel_spectrogram(
            split.extras["waveform"][row:row + 1, :length] / 32768.0,
            [length], 12)
        frames.append(log_mel.numpy()[0])
    frames = np.concatenate(frames).astype(np.float64)
    np.testing.assert_allclose(stats["logmel_mean"], frames.mean(axis=0),
                               atol=1e-4)
    np.testing.assert_allclose(stats["logmel_std"], frames.std(axis=0),
                               atol=1e-4)


# ------------------------------- train.py → evaluate.py → predict.py ---


@pytest.fixture(scope="module")
def logmel_run(demo_fold, tmp_path_factory):
    """A short logmel CNN_SPEC run of train.py on the demo fold (exported)."""
    from tasks import train_run

    root = tmp_path_factory.mktemp("logmel_run")
    run_dir, result, _ = train_run.run(
        "CNN_SPEC", demo_fold.path, run_dir=str(root / "run"),
        result_file=str(root / "results.txt"), batch_size=32, lr=0.01,
        num_train_steps=60, encoder_size_audio=100, audio_input="logmel",
        n_mels=32, cnn_filters=(8, 16), hidden_units=16, use_prosody=True,
        normalize_audio=True, log=lambda _: None)
    return run_dir, result


# Slow: a 60-step log-mel training run; the pipeline and model are pinned by the fast tests above and the contract test.
@pytest.mark.slow
def test_train_evaluate_beats_chance(logmel_run):

    run_dir, result = logmel_run
    kwargs = loading.load_trained_model(run_dir)[1]["model"]["kwargs"]
    assert kwargs["audio_input"] == "logmel" and kwargs["n_mels"] == 32
    assert len(kwargs["audio_normalization"]["logmel_mean"]) == 32
    # Chance is 0.25 on the 4 balanced demo classes. (Prosody helps: 60
    # steps of log-mel alone are too few to learn much.)
    assert result.final_test["wa"] > 0.35
    metrics = evaluation.evaluate(run_dir, "test")
    assert metrics["wa"] == pytest.approx(result.final_test["wa"])


# Slow: shares the trained log-mel run; serving skew is also pinned by tests/tasks/test_raw_serving.py.
@pytest.mark.slow
def test_predict_from_wav_uses_the_training_features(logmel_run, demo_fold,
                                                     tmp_path):

    run_dir, _ = logmel_run
    export_dir = os.path.join(run_dir, "saved_model")
    metadata = export.read_metadata(export_dir)
    assert metadata["log_mel"]["parameters"] == spectrogram.parameters(32)
    assert metadata["log_mel"]["encoder_size_audio"] == 100
    assert "mfcc_dim" not in metadata["audio"]  # prosody only
    predictor = prediction.Predictor.load(export_dir)
    # A test-split utterance: its wav file in the demo corpus folder.
    split = demo_fold.splits["test"]
    corpus = os.path.dirname(demo_fold.path)
    with open(os.path.join(corpus, "metadata.tsv")) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    pcm = split.extras["waveform"][0, :split.extras["waveform_length"][0]]
    wav = next(os.path.join(corpus, row["wav_path"]) for row in rows
               if np.array_equal(soundfile.read(os.path.join(
                   corpus, row["wav_path"]), dtype="int16")[0], pcm))
    features, info = predictor.assets.example(wav)
    assert info["frames_used"] == min(100, spectrogram.num_frames(len(pcm)))
    batch, _ = next(iter(datasets.eval_dataset(
        split, 4, 100, log_mel=True, n_mels=32)))
    used = int(batch["audio_logmel_length"][0])
    assert int(features["audio_logmel_length"][0]) == used
    np.testing.assert_allclose(features["audio_logmel"][0, :used],
                               batch["audio_logmel"][0, :used], atol=1e-5)
    # The pipeline's log-mel of that row (cropped to its length) with the
    # wav's prosody (the fold's prosody came from the float audio before
    # its 16-bit wav was written).
    served = predictor.predict_features({
        "audio_logmel": batch["audio_logmel"].numpy()[:1, :used],
        "audio_logmel_length": batch["audio_logmel_length"].numpy()[:1],
        "audio_prosody": features["audio_prosody"]})
    result = predictor.predict_file(wav)
    np.testing.assert_allclose(
        [result["logits"][name] for name in predictor.label_names],
        served["logits"][0], atol=1e-4)
    lines = []
    assert predict_app.predict_and_report(export_dir, [wav], output_json=str(
        tmp_path / "p.json"), log=lines.append) == 0
    assert "1 of 1 file(s) predicted" in lines[-1]
    # Other spectrogram parameters than this code's are refused.
    metadata["log_mel"]["parameters"]["n_fft"] = 1024
    with pytest.raises(serving.InferenceError, match="n_fft"):
        serving.ServingAssets(metadata)
