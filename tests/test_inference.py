"""inference.py: self-contained exports, prediction from wav + transcript."""

import json
import os
import shutil

import numpy as np
import pytest
import soundfile
import tensorflow as tf

import experiment
import inference
from models import registry
from models import run_files
from tests import corpus_fixtures
from tests import helpers
from preprocessing import manifest_corpus
from preprocessing import reference_arrays
from preprocessing import text_features


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A small demo corpus (wav files + fold folder) and a tiny MDREA run."""
    root = tmp_path_factory.mktemp("inference")
    demo = helpers.tiny_demo_run(root)
    export_dir = inference.export_run(demo["run_dir"], str(root / "export"))
    return dict(demo, export_dir=export_dir,
                predictor=inference.Predictor.load(export_dir))


def _probabilities(result, label_names):
    return np.array([result["probabilities"][name] for name in label_names])


def test_export_carries_what_serving_needs(demo):
    assets_dir = os.path.join(demo["export_dir"], "assets")
    assert sorted(os.listdir(assets_dir)) == ["metadata.json",
                                              "vocabulary.json"]
    metadata = inference.export_lib.read_metadata(demo["export_dir"])
    assert metadata["format"] == inference.FORMAT
    assert metadata["label_names"] == list(reference_arrays.LABEL_NAMES)
    assert metadata["audio"]["encoder_size_audio"] == 100
    assert metadata["audio"]["backend"] == "numpy"
    assert metadata["text"]["length"] == 128
    assert sorted(metadata["inputs"]) == sorted(
        ["audio_mfcc", "audio_length", "audio_prosody", "text_ids",
         "text_length"])
    with open(os.path.join(assets_dir, "vocabulary.json")) as f:
        tokens = json.load(f)
    vocabulary = reference_arrays.load_vocabulary(
        os.path.join(demo["fold_dir"], "dic.pkl"))
    assert tokens == sorted(vocabulary, key=vocabulary.get)
    # The same metadata through the `metadata` signature.
    loaded = tf.saved_model.load(demo["export_dir"])
    served = json.loads(loaded.signatures["metadata"]()["metadata_json"]
                        .numpy().decode())
    assert served == metadata


def test_prediction_from_wav_matches_the_pipeline_features(demo):
    """predict(wav, transcript) = the served model on the fold's arrays of
    that utterance (computed from the same audio by the same code; the wav
    file is 16-bit, hence the tolerance)."""
    predictor = demo["predictor"]
    fold = reference_arrays.load_fold(demo["fold_dir"], splits=("test",),
                                      load_embedding=False)
    split = fold.splits["test"]
    features, _ = next(iter(experiment.eval_dataset(split, 64, 100)))
    served = predictor.predict_features(
        {name: value.numpy() for name, value in features.items()})
    # The fold stores each utterance's 16-bit PCM: find its wav file.
    by_pcm = {}
    for row in demo["rows"]:
        pcm, _ = soundfile.read(row["wav_path"], dtype="int16")
        by_pcm[pcm.tobytes()] = row
    for index in range(len(split)):
        length = split.extras["waveform_length"][index]
        row = by_pcm[split.extras["waveform"][index, :length].tobytes()]
        result = predictor.predict_file(row["wav_path"], row["transcript"])
        assert "error" not in result, result
        np.testing.assert_allclose(
            _probabilities(result, predictor.label_names),
            served["probabilities"][index], atol=1e-3)
        logits = np.array([result["logits"][n]
                           for n in predictor.label_names])
        np.testing.assert_allclose(logits, served["logits"][index],
                                   rtol=1e-3, atol=1e-2)
        assert result["predicted_label"] == served["predicted_label"][index]
        # Same token ids as the fold.
        ids = text_features.encode([result["tokens"]],
                                   predictor.assets.vocabulary)
        np.testing.assert_array_equal(ids[0], split.text_ids[index])
        assert result["frames_used"] == min(split.seq_len[index], 100)


def test_export_predicts_without_run_or_fold(demo, tmp_path):
    row = demo["rows"][0]
    before = demo["predictor"].predict_file(row["wav_path"],
                                            row["transcript"])
    elsewhere = str(tmp_path / "copied_model")
    shutil.copytree(demo["export_dir"], elsewhere)
    hidden = {path: path + ".hidden" for path in (demo["fold_dir"],
                                                  demo["run_dir"],
                                                  demo["export_dir"])}
    for path, moved in hidden.items():
        os.rename(path, moved)
    try:
        predictor = inference.Predictor.load(elsewhere)
        after = predictor.predict_file(row["wav_path"], row["transcript"])
    finally:
        for path, moved in hidden.items():
            os.rename(moved, path)
    assert predictor.source == os.path.abspath(elsewhere)
    np.testing.assert_allclose(
        _probabilities(after, predictor.label_names),
        _probabilities(before, predictor.label_names), atol=1e-6)


def test_run_folder_without_export_is_rebuilt(demo):
    predictor = inference.Predictor.load(demo["run_dir"])
    assert predictor.source.endswith("(rebuilt run)")
    row = demo["rows"][3]
    rebuilt = predictor.predict_file(row["wav_path"], row["transcript"])
    exported = demo["predictor"].predict_file(row["wav_path"],
                                              row["transcript"])
    np.testing.assert_allclose(
        _probabilities(rebuilt, predictor.label_names),
        _probabilities(exported, predictor.label_names), atol=1e-6)


def test_bad_files_are_reported_per_file(demo, tmp_path):
    good = demo["rows"][1]
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    noise = tmp_path / "not_audio.wav"
    noise.write_bytes(b"this is not a RIFF file" * 40)
    silent = tmp_path / "zero_samples.wav"
    soundfile.write(str(silent), np.zeros(0, np.float32), 16000)
    items = [(str(empty), "hello"), (str(noise), "hello"),
             (str(silent), "hello"), (str(tmp_path / "missing.wav"), "hi"),
             (good["wav_path"], None), (good["wav_path"], "   "),
             (good["wav_path"], good["transcript"])]
    results = demo["predictor"].predict_files(items)
    assert [("error" in r) for r in results] == [True] * 6 + [False]
    for (path, _), result in zip(items[:4], results[:4]):
        assert path in result["error"]
    assert "empty file (0 bytes)" in results[0]["error"]
    assert "unreadable audio" in results[1]["error"]
    assert "empty audio" in results[2]["error"]
    assert "missing audio file" in results[3]["error"]
    assert "no transcript" in results[4]["error"]
    assert "MDREA reads text" in results[4]["error"]
    assert "no transcript" in results[5]["error"]
    assert results[6]["predicted"] in reference_arrays.LABEL_NAMES
    table = inference.format_table(results, demo["predictor"].label_names)
    assert table.count("ERROR") == 6
    assert "empty.wav" in table and "neutral" in table


def test_other_sample_rates_and_unknown_words(demo, tmp_path):
    import librosa

    row = demo["rows"][2]
    waveform, rate = soundfile.read(row["wav_path"], dtype="float32")
    resampled = librosa.resample(waveform, orig_sr=rate, target_sr=22050)
    path = str(tmp_path / "at_22k.wav")
    soundfile.write(path, resampled, 22050)
    predictor = demo["predictor"]
    native = predictor.predict_file(row["wav_path"], row["transcript"])
    other = predictor.predict_file(path, row["transcript"])
    assert other["sample_rate"] == 22050 and other["resampled_to"] == 16000
    assert "resampled_to" not in native
    # Resampled twice, so close but not equal to the native file.
    np.testing.assert_allclose(_probabilities(other, predictor.label_names),
                               _probabilities(native,
                                              predictor.label_names),
                               atol=0.1)
    unknown = predictor.predict_file(row["wav_path"],
                                     "Zyxwvut GREAT qqqq!")
    assert unknown["tokens"] == ["zyxwvut", "great", "qqqq", "!"]
    assert unknown["unknown_words"] == ["qqqq", "zyxwvut"]
    features, _ = predictor.assets.text_inputs("Zyxwvut GREAT qqqq!")
    assert features["text_ids"][0, 0] == text_features.UNK_ID
    assert features["text_length"][0] == 4


def test_feature_parameter_skew_is_refused(demo, tmp_path):
    tampered = str(tmp_path / "tampered")
    shutil.copytree(demo["export_dir"], tampered)
    path = os.path.join(tampered, "assets", "metadata.json")
    with open(path) as f:
        metadata = json.load(f)
    metadata["audio"]["parameters"]["mfcc"]["n_mels"] = 40
    with open(path, "w") as f:
        json.dump(metadata, f)
    with pytest.raises(inference.InferenceError, match="other parameters"):
        inference.Predictor.load(tampered)


def test_plain_savedmodel_and_unknown_folder_are_refused(demo, tmp_path):
    from models import export as export_lib

    model = registry.build_model("ARE", audio_units=3, seed=1)
    plain = export_lib.export_saved_model(model, str(tmp_path / "plain"),
                                          reference_arrays.LABEL_NAMES)
    with pytest.raises(inference.InferenceError, match="re-export"):
        inference.Predictor.load(plain)
    with pytest.raises(FileNotFoundError, match="neither a SavedModel"):
        inference.Predictor.load(str(tmp_path))


def test_audio_only_export_from_a_given_model_ignores_text(demo, tmp_path):
    """`export_run(run_dir, model=...)`, as train.py calls it; an ARE
    export reads no vocabulary and ignores transcripts."""
    run_dir = str(tmp_path / "are_run")
    config = run_files.read_json(os.path.join(demo["run_dir"],
                                              "config.json"))
    kwargs = {"audio_units": 3, "seed": 1, "num_classes": 4}
    config["model"] = {"name": "ARE", "kwargs": kwargs}
    run_files.write_json(os.path.join(run_dir, "config.json"), config)
    model = registry.build_model("ARE", **kwargs)
    export_dir = inference.export_run(run_dir, model=model)
    assert export_dir == os.path.join(run_dir, "saved_model")
    assert os.listdir(os.path.join(export_dir, "assets")) == [
        "metadata.json"]
    predictor = inference.Predictor.load(run_dir)  # finds saved_model/
    assert not predictor.source.endswith("(rebuilt run)")
    row = demo["rows"][0]
    result = predictor.predict_file(row["wav_path"], row["transcript"])
    assert "transcript ignored" in result["notes"][0]
    assert "tokens" not in result
    features, _ = predictor.assets.example(row["wav_path"])
    expected = model(features, training=False).numpy()[0]
    np.testing.assert_allclose([result["logits"][n] for n in
                                predictor.label_names], expected, atol=1e-5)


def test_read_manifest_and_text_file(tmp_path):
    (tmp_path / "audio").mkdir()
    manifest = tmp_path / "list.tsv"
    manifest.write_text("Wav_Path\tTranscript\tlabel\n"
                        "audio/a.wav\tHello there\tang\n"
                        "\n"
                        "/abs/b.wav\t\tsad\n")
    assert inference.read_manifest(str(manifest)) == [
        (str(tmp_path / "audio" / "a.wav"), "Hello there"),
        ("/abs/b.wav", None)]
    csv_manifest = tmp_path / "list.csv"
    csv_manifest.write_text("file\nx.wav\n")
    assert inference.read_manifest(str(csv_manifest)) == [
        (str(tmp_path / "x.wav"), None)]
    bad = tmp_path / "bad.csv"
    bad.write_text("name,text\nx.wav,hi\n")
    with pytest.raises(reference_arrays.DataError, match="no wav column"):
        inference.read_manifest(str(bad))
    lines = tmp_path / "texts.txt"
    lines.write_text("first one\n\nthird\n")
    assert inference.read_text_file(str(lines)) == ["first one", None,
                                                    "third"]


def test_read_manifest_reads_as_training_does(tmp_path):
    path, expected = corpus_fixtures.write_tricky_manifest(str(tmp_path))
    corpus = manifest_corpus.read_manifest(path, on_bad_row="raise")
    assert inference.read_manifest(path) == expected == [
        (e.wav_path, e.transcript) for e in corpus.examples]


def test_wav2vec2_text_model_predicts_from_the_waveform(demo, tmp_path):
    """Raw-waveform models get the 16 kHz waveform (as the pipeline's
    PCM / 32768) and its length; explanations refuse them clearly."""
    from tools import make_wav2vec2_standin

    standin = make_wav2vec2_standin.build_standin(
        str(tmp_path / "standin"), hidden=16, conv_channels=8)
    run_dir = str(tmp_path / "w2v2_run")
    config = run_files.read_json(os.path.join(demo["run_dir"],
                                              "config.json"))
    kwargs = {"hub_handle": standin, "embedding_dim": 8, "text_units": 4,
              "seed": 1, "num_classes": 4,
              "vocab_size": config["model"]["kwargs"]["vocab_size"]}
    config["model"] = {"name": "W2V2_TREA", "kwargs": kwargs}
    run_files.write_json(os.path.join(run_dir, "config.json"), config)
    model = registry.build_model("W2V2_TREA", **kwargs)
    predictor = inference.Predictor.load(
        inference.export_run(run_dir, model=model))
    row = demo["rows"][4]
    result = predictor.predict_file(row["wav_path"], row["transcript"])
    pcm, _ = soundfile.read(row["wav_path"], dtype="int16")
    assert result["samples_used"] == len(pcm)
    features, _ = predictor.assets.example(row["wav_path"],
                                           row["transcript"])
    np.testing.assert_array_equal(features["waveform"][0], pcm / 32768.0)
    np.testing.assert_allclose(
        [result["logits"][n] for n in predictor.label_names],
        model(features, training=False).numpy()[0], atol=1e-5)
    with pytest.raises(inference.InferenceError, match="Yoon models"):
        inference.explain_example(model, features, predictor.label_names)
