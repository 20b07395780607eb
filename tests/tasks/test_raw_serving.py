"""Exports that every loader serves, the serve_raw / serve_wav signatures,
and export targets that are never deleted.

The TF1 session loader (`tf.compat.v1.saved_model.loader.load` + Session)
is what `saved_model_cli run` and TensorFlow Serving use; it is run
in-process here, and the real `saved_model_cli` once.
"""

import io
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import tensorflow as tf

from models import export as export_lib
from preprocessing import audio_features
from preprocessing import demo_corpus
from tasks import ensemble_run
from tasks import loading
from tasks import prediction
from tasks import raw_serving
from tasks import serving
from tests import helpers

NUM_UTTERANCES = 48
# serve_raw vs predict.py (features in Python): the in-graph MFCCs are
# within graph_features.MFCC_ATOL (1e-3) of the numpy ones, the prosody and
# token ids equal; measured logit gaps are below 3e-5.
LOGIT_ATOL = 1e-3
LOGIT_RTOL = 1e-4


def tf1_run(export_dir, calls):
    """Runs signatures under the TF1 session loader (as saved_model_cli run
    and TF Serving do), in one session.

    Args:
        calls: list of (signature name, feed dict name → array).

    Returns:
        list of output dicts, one per call.
    """
    graph = tf.Graph()
    with tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(
            session, ["serve"], export_dir)
        results = []
        for signature, feeds in calls:
            definition = meta_graph.signature_def[signature]
            fetches = {key: info.name
                       for key, info in definition.outputs.items()}
            results.append(session.run(
                fetches, {definition.inputs[key].name: value
                          for key, value in feeds.items()}))
        return results


def padded_waveforms(paths):
    """float32 [B, S] (zeros past each length) and int32 [B] of wav files,
    read as predict.py reads them."""
    waves = [audio_features.load_wav(path) for path in paths]
    batch = np.zeros((len(waves), max(len(w) for w in waves)), np.float32)
    for row, wave in enumerate(waves):
        batch[row, :len(wave)] = wave
    return batch, np.array([len(w) for w in waves], np.int32)


def _logits(results, label_names):
    return np.array([[r["logits"][n] for n in label_names] for r in results])


@pytest.fixture(scope="module")
def demo(tmp_path_factory, tiny_demo_source):
    """A demo corpus, a tiny MDREA run, its export at <run>/saved_model
    (where train.py writes it), and what predict.py (features in Python)
    says about the test split."""
    root = tmp_path_factory.mktemp("raw_serving")
    # This module's copy of the shared run; its export (the same
    # `export_run`, made once) placed where train.py writes it.
    demo = helpers.copy_demo_run(tiny_demo_source, root)
    assert len(demo["rows"]) == NUM_UTTERANCES
    export_dir = os.path.join(demo["run_dir"], "saved_model")
    shutil.copytree(demo["export_dir"], export_dir)
    test_rows = [demo["rows"][i] for i in demo_corpus.split_indices(
        NUM_UTTERANCES, 0)["test"]]
    items = [(row["wav_path"], row["transcript"]) for row in test_rows]
    results, label_names = prediction.predict(export_dir, items)
    return dict(demo, export_dir=export_dir, items=items, results=results,
                label_names=label_names,
                expected=_logits(results, label_names),
                loaded=tf.saved_model.load(export_dir))


def test_metadata_and_signatures(demo):
    metadata = export_lib.read_metadata(demo["export_dir"])
    assert metadata["raw_signatures"] == ["serve_raw", "serve_wav"]
    loaded = demo["loaded"]
    assert sorted(loaded.signatures) == ["metadata", "serve_raw",
                                         "serve_wav", "serving_default"]
    raw = loaded.signatures["serve_raw"]
    assert {name: (spec.dtype, spec.shape.as_list()) for name, spec in
            raw.structured_input_signature[1].items()} == {
        "waveform": (tf.float32, [None, None]),
        "waveform_length": (tf.int32, [None]),
        "transcript": (tf.string, [None])}
    assert sorted(raw.structured_outputs) == [
        "logits", "predicted_label", "predicted_name", "probabilities"]
    assert sorted(loaded.signatures["serve_wav"]
                  .structured_input_signature[1]) == ["transcript", "wav"]


def test_every_signature_under_tf1_loader(demo):
    """No skew end to end: the demo test split through serve_raw (one
    padded batch) and serve_wav (the wav bytes) under the TF1 loader gives
    predict.py's labels and logits; serving_default there equals the Keras
    model."""

    paths = [path for path, _ in demo["items"]]
    assert len(paths) >= 6
    waveform, length = padded_waveforms(paths)
    transcript = np.array([t.encode() for _, t in demo["items"]], object)
    wavs = []
    for path in paths:
        with open(path, "rb") as f:
            wavs.append(f.read())
    assets = serving.ServingAssets.from_export(demo["export_dir"])
    features = [assets.example(*item)[0] for item in demo["items"][:2]]
    raw, wav, *default = tf1_run(demo["export_dir"], [
        ("serve_raw", {"waveform": waveform, "waveform_length": length,
                       "transcript": transcript}),
        ("serve_wav", {"wav": np.array(wavs, object),
                       "transcript": transcript}),
    ] + [("serving_default", feeds) for feeds in features])
    expected = demo["expected"]
    for served in (raw, wav):
        agree = np.mean(served["predicted_label"] == expected.argmax(1))
        assert agree >= 0.99
        np.testing.assert_allclose(served["logits"], expected,
                                   atol=LOGIT_ATOL, rtol=LOGIT_RTOL)
        assert [n.decode() for n in served["predicted_name"]] == [
            r["predicted"] for r in demo["results"]]
    model, _ = loading.load_trained_model(demo["run_dir"])
    for feeds, served in zip(features, default):
        np.testing.assert_allclose(served["logits"],
                                   model(feeds, training=False).numpy(),
                                   atol=1e-5)


def test_predict_graph_engine_uses_serve_raw(demo):
    predictor = prediction.Predictor.load(demo["export_dir"], "graph")
    assert predictor.engine == "graph"
    results = predictor.predict_files(demo["items"][:3])
    np.testing.assert_allclose(_logits(results, demo["label_names"]),
                               demo["expected"][:3], atol=LOGIT_ATOL,
                               rtol=LOGIT_RTOL)


def test_saved_model_cli_runs_serve_raw(demo, tmp_path):
    """The real `saved_model_cli run`, as the README shows it."""
    path, text = demo["items"][0]
    waveform, length = padded_waveforms([path])
    np.save(tmp_path / "waveform.npy", waveform)
    np.save(tmp_path / "length.npy", length)
    np.save(tmp_path / "transcript.npy", np.array([text.encode()], "S"))
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    inputs = (f"waveform={tmp_path}/waveform.npy;"
              f"waveform_length={tmp_path}/length.npy;"
              f"transcript={tmp_path}/transcript.npy")
    done = subprocess.run(
        [cli, "run", "--dir", demo["export_dir"], "--tag_set", "serve",
         "--signature_def", "serve_raw", "--inputs", inputs,
         "--outdir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "out" / "logits.npy"),
                               demo["expected"][:1], atol=LOGIT_ATOL,
                               rtol=LOGIT_RTOL)


def _wav_bytes(rate, seconds=0.5):
    buffer = io.BytesIO()
    samples = (np.sin(np.arange(int(rate * seconds)) * 0.05) * 0.3)
    soundfile.write(buffer, samples, rate, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def test_serve_wav_names_a_wrong_sample_rate(demo):
    serve_wav = demo["loaded"].signatures["serve_wav"]
    good = serve_wav(wav=tf.constant([_wav_bytes(16000)]),
                     transcript=tf.constant(["okay then"]))
    assert good["logits"].shape == (1, 4)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"16000 Hz[\s\S]*22050"):
        serve_wav(wav=tf.constant([_wav_bytes(22050)]),
                  transcript=tf.constant(["okay then"]))


def test_overwrite_replaces_only_an_export(tmp_path):
    from models import registry

    model = registry.build_model(
        "ARE", **helpers.tiny_model_kwargs(model="ARE"))
    labels = helpers.LABEL_NAMES
    target = str(tmp_path / "1")
    export_lib.export_saved_model(model, target, labels)
    with pytest.raises(export_lib.ExportError, match="--overwrite"):
        export_lib.export_saved_model(model, target, labels)
    export_lib.export_saved_model(model, target, labels,
                                  metadata={"again": True}, overwrite=True)
    assert export_lib.read_metadata(target)["again"] is True
    other = tmp_path / "2"
    other.mkdir()
    (other / "data.bin").write_bytes(b"x")
    with pytest.raises(export_lib.ExportError, match="not an export"):
        export_lib.export_saved_model(model, str(other), labels,
                                      overwrite=True)
    assert os.listdir(other) == ["data.bin"]
    empty = tmp_path / "3"
    empty.mkdir()
    export_lib.export_saved_model(model, str(empty), labels)
    assert sorted(os.listdir(tmp_path)) == ["1", "2", "3"]


# ---- every registered model ----------------------------------------------

def _train_every_model(root, fold_dir):
    """(name, run_dir) of every registered model, each trained 2 steps on
    the demo fold with train.py's export, and two ensembles of them."""
    from tasks import train_run
    from models import registry
    from tools import make_bert_standin
    from tools import make_wav2vec2_standin

    wav2vec2 = make_wav2vec2_standin.build_standin(
        os.path.join(root, "w2v2"), hidden=16, conv_channels=8)
    bert = make_bert_standin.build_standin(os.path.join(root, "bert"),
                                           hidden=16, layers=1, heads=2)
    variants = [(name, name, {}) for name in registry.model_names()]
    variants += [("CNN_SPEC_logmel", "CNN_SPEC", {"audio_input": "logmel"}),
                 ("TRANSFORMER_FUSION_bert", "TRANSFORMER_FUSION",
                  {"text_encoder_handle": bert})]
    runs = []
    for label, name, extra in variants:
        kwargs = dict(num_train_steps=2, batch_size=8, hidden_dim_audio=4,
                      hidden_dim_text=4, encoder_size_audio=100,
                      log=lambda _: None,
                      result_file=os.path.join(root, "results.txt"),
                      run_dir=os.path.join(root, label), **extra)
        if name.startswith("W2V2"):
            kwargs["hub_handle"] = wav2vec2
        train_run.run(name, fold_dir, **helpers.for_model(name, **kwargs))
        runs.append((label, kwargs["run_dir"]))
    members = [dict(runs)["ARE"], dict(runs)["TRE"]]
    for method in ("average", "feature"):
        run_dir = os.path.join(root, f"ENSEMBLE_{method}")
        ensemble_run.train_ensemble(
            members, method, run_dir=run_dir, num_train_steps=2,
            batch_size=8, result_file=os.path.join(root, "results.txt"),
            log=lambda _: None)
        runs.append((f"ENSEMBLE_{method}", run_dir))
    return runs


@pytest.mark.slow
def test_every_model_serves_under_every_loader(tmp_path):
    """Every registered model (wav2vec2 and BERT stand-ins, both CNN_SPEC
    inputs, ensembles): train.py's saved_model/ runs serving_default under
    the TF1 loader and tf.saved_model.load like the Keras model, and
    serve_raw like predict.py."""

    root = str(tmp_path)
    fold_dir = demo_corpus.generate(os.path.join(root, "demo"),
                                    num_utterances=40, num_workers=1,
                                    log=lambda _: None)
    with open(os.path.join(root, "demo", "metadata.tsv")) as f:
        lines = f.read().splitlines()[1:4]
    items = [(os.path.join(root, "demo", line.split("\t")[0]),
              line.split("\t")[1]) for line in lines]
    for label, run_dir in _train_every_model(root, fold_dir):
        export_dir = os.path.join(run_dir, "saved_model")
        model, _ = loading.load_trained_model(run_dir)
        assets = serving.ServingAssets.from_export(export_dir)
        loaded = tf.saved_model.load(export_dir)
        # The Python features of a file hold every input the assets can
        # compute (e.g. prosody for a CNN_SPEC that reads none); the
        # signature takes only the model's own.
        wanted = loaded.signatures[
            "serving_default"].structured_input_signature[1]
        feeds = [{name: value
                  for name, value in assets.example(*item)[0].items()
                  if name in wanted} for item in items]
        expected = _logits(prediction.predict(export_dir, items)[0],
                           assets.label_names)
        waveform, length = padded_waveforms([p for p, _ in items])
        raw, *default = tf1_run(export_dir, [("serve_raw", {
            "waveform": waveform, "waveform_length": length,
            "transcript": np.array([t.encode() for _, t in items],
                                   object)})] + [
            ("serving_default", features) for features in feeds])
        for features, served in zip(feeds, default):
            keras_logits = model(features, training=False).numpy()
            np.testing.assert_allclose(served["logits"], keras_logits,
                                       atol=1e-5, err_msg=label)
            np.testing.assert_allclose(
                loaded.signatures["serving_default"](**{
                    k: tf.constant(v) for k, v in features.items()})[
                        "logits"].numpy(), keras_logits, atol=1e-5,
                err_msg=label)
        assert "serve_raw" in loaded.signatures, label
        np.testing.assert_allclose(raw["logits"], expected,
                                   atol=LOGIT_ATOL, rtol=LOGIT_RTOL,
                                   err_msg=label)


def test_raw_signatures_are_skipped_when_not_computable():
    assets = serving.ServingAssets.__new__(serving.ServingAssets)
    assets.metadata = {"inputs": {"mocap": {}, "text_ids": {}},
                       "model": {"name": "TRANSFORMER_FUSION"}}
    assert "mocap" in raw_serving.unsupported_reason(assets)
    assert raw_serving.raw_input_signatures(assets) == ({}, [])
