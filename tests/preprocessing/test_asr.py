"""Speech recognition (preprocessing/asr.py): backends, cache, error report,
and ASR transcripts through build_arrays, train.py and predict.py."""

import glob
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from apps import predict as predict_app
from common import constants
from preprocessing import asr
from preprocessing import audio_io
from preprocessing import build_arrays
from preprocessing import reference_arrays
from preprocessing import text_features
from tasks import prediction
from tasks import serving


def _quiet(message):
    del message


class CountingRecognizer(asr.Recognizer):
    """Deterministic fake: the text says how long the clip is."""

    backend = "counting"

    def __init__(self, version=1):
        super().__init__("counting", {})
        self.version = version
        self.calls = 0

    @property
    def parameters(self):
        return {"version": self.version}

    def transcribe(self, waveform):
        self.calls += 1
        return "" if not np.any(waveform) else f"clip of {len(waveform)}"


@pytest.fixture(scope="module")
def ctc_standin(tmp_path_factory):
    from tools import make_wav2vec2_standin

    return make_wav2vec2_standin.build_ctc_standin(
        str(tmp_path_factory.mktemp("ctc") / "standin"))


# ---- specs, decoding, errors --------------------------------------------

def test_parse_spec():
    assert asr.parse_spec("pocketsphinx") == ("pocketsphinx", {})
    assert asr.parse_spec("pocketsphinx:lw=7.5,beam=1e-60") == (
        "pocketsphinx", {"lw": "7.5", "beam": "1e-60"})
    assert asr.parse_spec("ctc:/m/w2v2,vocabulary=/m/v.json") == (
        "ctc", {"handle": "/m/w2v2", "vocabulary": "/m/v.json"})
    assert asr.parse_spec("ctc:https://tfhub.dev/x/wav2vec2/1")[1] == {
        "handle": "https://tfhub.dev/x/wav2vec2/1"}
    with pytest.raises(asr.AsrError, match="unknown recogniser 'whisper'"):
        asr.parse_spec("whisper")
    with pytest.raises(asr.AsrError, match="needs a handle"):
        asr.parse_spec("ctc:")
    with pytest.raises(asr.AsrError, match="key=value"):
        asr.parse_spec("pocketsphinx:lw")


def test_ctc_greedy_decode():
    vocabulary = asr.WAV2VEC2_960H_VOCABULARY
    ids = {token: i for i, token in enumerate(vocabulary)}
    # "HELLO WORLD": repeats collapse, a blank separates the double L,
    # specials and extra delimiters vanish.
    frames = ["<pad>", "H", "H", "E", "L", "L", "<pad>", "L", "O", "|", "|",
              "<unk>", "W", "O", "<pad>", "R", "L", "D", "|", "</s>"]
    assert asr.ctc_greedy_decode([ids[t] for t in frames], vocabulary) == (
        "hello world")
    assert asr.ctc_greedy_decode([0, 0, 0], vocabulary) == ""


def test_missing_backend_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pocketsphinx", None)
    with pytest.raises(asr.AsrError) as error:
        asr.make_recognizer("pocketsphinx")
    message = str(error.value)
    assert "'pocketsphinx' is not installed" in message
    assert "pip install pocketsphinx" in message and "\n" not in message
    missing = tmp_path / "nowhere"
    with pytest.raises(asr.AsrError, match=r"saved_model\.pb.*nowhere.*"
                       r"make_wav2vec2_standin\.py --ctc"):
        asr.make_recognizer(f"ctc:{missing}")


# ---- cache and report -----------------------------------------------------

def test_cache_second_run_decodes_nothing(tmp_path):
    rng = np.random.default_rng(0)
    clips = [rng.uniform(-0.5, 0.5, n).astype(np.float32)
             for n in (1600, 3200, 4800)] + [np.zeros(800, np.float32)]
    cache = str(tmp_path / "cache")
    recognizer = CountingRecognizer()
    first = asr.transcribe_many(recognizer, clips, progress=False,
                                cache_dir=cache)
    assert recognizer.calls == 4
    assert [t.text for t in first] == ["clip of 1600", "clip of 3200",
                                       "clip of 4800", ""]
    assert not any(t.cached for t in first)
    files = glob.glob(os.path.join(cache, "counting", "*", "*.json"))
    assert len(files) == 4
    assert not glob.glob(os.path.join(cache, "**", ".tmp-*"),
                         recursive=True)

    again = CountingRecognizer()
    second = asr.transcribe_many(again, clips, progress=False,
                                 cache_dir=cache)
    assert again.calls == 0
    assert [t.text for t in second] == [t.text for t in first]
    assert all(t.cached for t in second)
    assert asr.speed(second)["cache_hits"] == 4

    # A damaged entry is decoded again; other parameters are other keys.
    with open(files[0], "w") as f:
        f.write("{not json")
    asr.transcribe_many(again, clips, progress=False, cache_dir=cache)
    assert again.calls == 1
    other = CountingRecognizer(version=2)
    asr.transcribe_many(other, clips, progress=False, cache_dir=cache)
    assert other.calls == 4


class ProcessCountingRecognizer(CountingRecognizer):
    """The same texts, decoded in worker processes."""

    parallel_in_processes = True


def test_parallel_decoding_keeps_input_order(tmp_path):
    rng = np.random.default_rng(2)
    clips = [rng.uniform(-0.5, 0.5, n).astype(np.float32)
             for n in (4000, 800, 2400, 1600, 3200)]
    serial = asr.transcribe_many(CountingRecognizer(), clips,
                                 progress=False)
    parallel_recognizer = ProcessCountingRecognizer()
    parallel = asr.transcribe_many(parallel_recognizer, clips,
                                   num_workers=2, progress=False)
    assert [t.text for t in parallel] == [t.text for t in serial]
    assert parallel_recognizer.calls == 0  # The workers decoded them.


def test_error_report_counts_errors_and_empty_transcripts():
    references = ["Hello, world!", "the cat sat", "It's fine.", "okay"]
    hypotheses = ["hello word", "the cat sat down", "", "OKAY"]
    report = asr.error_report(references, hypotheses,
                              ids=["a", "b", "c", "d"])
    # 8 reference words: 1 substitution (world→word), 1 insertion (down),
    # 2 deletions (it's, fine).
    assert report["reference_words"] == 8
    assert (report["substitutions"], report["insertions"],
            report["deletions"]) == (1, 1, 2)
    assert report["wer"] == pytest.approx(4 / 8)
    assert report["top_substitutions"] == [
        {"reference": "world", "hypothesis": "word", "count": 1}]
    assert report["top_insertions"] == [{"word": "down", "count": 1}]
    assert report["num_empty"] == 1 and report["empty_ids"] == ["c"]
    # CER: "hello world"→"hello word" 1, "the cat sat"→+" down" 5,
    # "it's fine" 9 deleted, over 11 + 11 + 9 + 4 characters.
    assert report["cer"] == pytest.approx(round(15 / 35, 4))
    assert "WER 0.500" in asr.format_report(report)
    assert "1 empty transcript" in asr.format_report(report)


# ---- the CTC backend --------------------------------------------------------

def test_ctc_standin_is_deterministic_and_chunks_fixed_inputs(ctc_standin):
    recognizer = asr.make_recognizer(f"ctc:{ctc_standin}")
    assert recognizer.vocabulary == list(asr.WAV2VEC2_960H_VOCABULARY)
    # Recorded specs name absolute paths (exports are used elsewhere).
    relative = asr.make_recognizer("ctc:" + os.path.relpath(ctc_standin))
    assert relative.spec == recognizer.spec == f"ctc:{ctc_standin}"
    rng = np.random.default_rng(1)
    clip = rng.uniform(-0.3, 0.3, 20000).astype(np.float32)
    text = recognizer.transcribe(clip)
    assert text and text == recognizer.transcribe(clip)
    assert set(text) <= set("abcdefghijklmnopqrstuvwxyz' ")
    # Shorter than the convolutions' receptive field: no frames, no text.
    assert recognizer.transcribe(clip[:200]) == ""
    # A fixed-length model decodes 8,000-sample windows, the last one
    # padded and cut to its real samples' frames.
    loaded, function, name, _ = recognizer._load()
    normalized = (clip - clip.mean()) / np.sqrt(clip.var() + 1e-7)
    recognizer._model = (loaded, function, name, 8000)
    windows = []
    for start in (0, 8000, 16000):
        piece = np.pad(normalized[start:start + 8000],
                       (0, max(0, start + 8000 - len(clip))))
        out = np.asarray(function(**{name: piece[None]})["logits"])[0]
        windows.append(out if start < 16000 else out[:int(np.ceil(
            len(out) * 4000 / 8000))])
    np.testing.assert_allclose(recognizer.logits(clip),
                               np.concatenate(windows), atol=1e-5)


# ---- pocketsphinx on real (synthesised) speech ---------------------------

def _espeak(path, text):
    subprocess.run(["espeak-ng", "-s", "130", "-w", str(path), text],
                   check=True, capture_output=True, timeout=60)
    return str(path)


def test_pocketsphinx_on_spoken_words_is_order_independent(tmp_path):
    pytest.importorskip("pocketsphinx")
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    spoken = _espeak(tmp_path / "yes_no.wav", "yes no yes no")
    before = _espeak(tmp_path / "door.wav", "open the door please")
    silence = str(tmp_path / "silence.wav")
    import soundfile
    soundfile.write(silence, np.zeros(1600), 16000, subtype="PCM_16")
    recognizer = asr.make_recognizer("pocketsphinx")
    # The decoder must not carry its state from one clip into the next
    # (pocketsphinx does unless reset), so a clip reads the same after
    # others as alone.
    after_others = asr.transcribe_many(recognizer, [before, silence, spoken],
                                       num_workers=1, progress=False)
    alone = recognizer.transcribe(audio_io.load_wav(spoken))
    assert after_others[2].text == alone
    assert after_others[1].text == ""  # Heard nothing: empty, not a crash.
    report = asr.error_report(["Open the door, please.", "",
                               "Yes, no, yes, no."],
                              [t.text for t in after_others])
    assert report["num_empty"] == 1 and report["num_scored"] == 2
    # espeak's voice through the en-us model: real recognition, with
    # errors (pocketsphinx 5.1.1 hears "yeah no yeah no").
    assert "no" in alone.split()
    assert report["wer"] <= 0.75


# ---- build_arrays → train.py → predict.py ----------------------------

@pytest.fixture(scope="module")
def asr_build(tmp_path_factory, ctc_standin):
    """The demo corpus's wavs built with --transcripts=asr (CTC stand-in)."""
    from preprocessing import demo_corpus

    root = tmp_path_factory.mktemp("asr_build")
    demo_corpus.generate(str(root / "demo"), num_utterances=24,
                         num_workers=1, log=_quiet)
    spec = f"ctc:{ctc_standin}"
    config = build_arrays.BuildConfig(
        corpus="manifest", manifest=str(root / "demo" / "metadata.tsv"),
        output_dir=str(root / "asr"), split="speaker", num_folds=3,
        embedding_dim=8, num_workers=1, progress=False, transcripts="asr",
        asr=spec)
    summary = build_arrays.build(config, log=_quiet)
    return {"root": root, "config": config, "summary": summary, "spec": spec}


def test_build_arrays_asr_replaces_gold_text(asr_build):
    config, summary = asr_build["config"], asr_build["summary"]
    fold_dir = os.path.join(config.output_dir, "speaker_fold01")
    fold = reference_arrays.load_fold(fold_dir)
    info = fold.manifest["asr"]
    assert info["backend"] == "ctc" and info["spec"] == asr_build["spec"]
    assert info["parameters"]["decoding"] == "greedy CTC"
    assert fold.manifest["text"]["transcripts"] == "asr"
    for split_name in reference_arrays.SPLITS:
        texts = info["transcripts"][split_name]
        tokens = [text_features.tokenize(t) for t in texts]
        np.testing.assert_array_equal(
            fold.splits[split_name].text_ids,
            text_features.encode(tokens, fold.vocabulary,
                                 constants.TEXT_LENGTH))
        report = info["report"][split_name]
        assert report["num_utterances"] == len(texts)
        # Random letters against English gold text: every word wrong.
        assert report["wer"] >= 0.9
        assert 0 < report["cer"]
    # The vocabulary is the recognised train text's (same policy as gold).
    train_tokens = {t for text in info["transcripts"]["train"]
                    for t in text_features.tokenize(text)}
    assert set(fold.vocabulary) - {"_PAD_", "_UNK_"} == train_tokens
    assert summary["folds"]["speaker_fold01"]["asr_wer"]["test"] == (
        info["report"]["test"]["wer"])
    assert summary["asr"]["report"]["num_utterances"] == 24


def test_build_arrays_rebuild_decodes_nothing_and_both_keeps_gold(
        asr_build, monkeypatch):
    calls = []
    original = asr.CtcRecognizer.transcribe
    monkeypatch.setattr(asr.CtcRecognizer, "transcribe",
                        lambda self, w: calls.append(1) or original(self, w))
    root, config = asr_build["root"], asr_build["config"]
    both = build_arrays.BuildConfig(
        **{**config.__dict__, "output_dir": str(root / "both"),
           "transcripts": "both",
           "asr_cache_dir": os.path.join(config.output_dir, "asr_cache")})
    build_arrays.build(both, log=_quiet)
    assert calls == []  # Every utterance came from the asr build's cache.
    gold = build_arrays.BuildConfig(
        **{**config.__dict__, "output_dir": str(root / "gold"),
           "transcripts": "gold"})
    build_arrays.build(gold, log=_quiet)
    both_fold = reference_arrays.load_fold(str(root / "both" /
                                               "speaker_fold01"))
    gold_fold = reference_arrays.load_fold(str(root / "gold" /
                                               "speaker_fold01"))
    assert "asr" not in gold_fold.manifest
    assert both_fold.manifest["extras"][build_arrays.ASR_EXTRA] == {
        "shape": [constants.TEXT_LENGTH], "dtype": "int32"}
    for split_name in reference_arrays.SPLITS:
        np.testing.assert_array_equal(both_fold.splits[split_name].text_ids,
                                      gold_fold.splits[split_name].text_ids)
        texts = both_fold.manifest["asr"]["transcripts"][split_name]
        np.testing.assert_array_equal(
            both_fold.splits[split_name].extras[build_arrays.ASR_EXTRA],
            text_features.encode([text_features.tokenize(t) for t in texts],
                                 both_fold.vocabulary,
                                 constants.TEXT_LENGTH))
    assert both_fold.vocabulary == gold_fold.vocabulary


@pytest.fixture(scope="module")
def asr_run(asr_build):
    """MDREA trained (a few steps) on the ASR fold, exported."""
    from tasks import train_run

    root = asr_build["root"]
    fold_dir = os.path.join(asr_build["config"].output_dir, "speaker_fold01")
    run_dir = str(root / "run")
    train_run.run(model="MDREA", data_dir=fold_dir, run_dir=run_dir,
                num_train_steps=4, batch_size=8, hidden_dim_audio=4,
                hidden_dim_text=4, encoder_size_audio=100, export=False,
                log=_quiet, result_file=str(root / "results.txt"))
    export_dir = serving.export_run(run_dir, str(root / "model"))
    return {**asr_build, "run_dir": run_dir, "export_dir": export_dir}


def test_train_py_trains_on_the_asr_fold(asr_run):
    with open(os.path.join(asr_run["run_dir"], "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["steps"] == 4
    assert np.isfinite(metrics["test"]["wa"])


def test_predict_without_text_uses_the_recorded_recogniser(asr_run,
                                                           tmp_path):
    from models import export as export_lib

    metadata = export_lib.read_metadata(asr_run["export_dir"])
    assert metadata["text"]["asr"]["spec"] == asr_run["spec"]
    assert metadata["text"]["asr"]["trained_on"] == "asr"
    wav = sorted(glob.glob(str(asr_run["root"] / "demo" / "wav" /
                               "*.wav")))[0]
    expected = asr.make_recognizer(asr_run["spec"]).transcribe(
        audio_io.load_wav(wav))
    printed = []
    output = str(tmp_path / "predictions.json")
    assert predict_app.predict_and_report(asr_run["export_dir"], [wav], output_json=output,
                                          log=printed.append) == 0
    with open(output) as f:
        result = json.load(f)["results"][0]
    assert result["transcript"] == expected
    assert result["transcript_source"] == f"asr {asr_run['spec']}"
    assert "heard: " in printed[0]
    assert expected[:20] in printed[0]
    # --text wins over the recogniser.
    assert predict_app.predict_and_report(asr_run["export_dir"], [wav], texts=["i am so angry"],
                       output_json=output, log=printed.append) == 0
    with open(output) as f:
        result = json.load(f)["results"][0]
    assert result["transcript"] == "i am so angry"
    assert "transcript_source" not in result
    # The same prediction as the library given the recognised text.
    predictor = prediction.Predictor.load(asr_run["export_dir"])
    direct = predictor.predict_file(wav, expected)
    recognized = predictor.predict_files(
        [(wav, None)], asr.make_recognizer(asr_run["spec"]))[0]
    assert recognized["probabilities"] == pytest.approx(
        direct["probabilities"], abs=1e-6)
    # An empty recognised text is fed as no words, not an error.
    silent = str(tmp_path / "silent.wav")
    import soundfile
    soundfile.write(silent, np.zeros(1600), 16000, subtype="PCM_16")
    empty = predictor.predict_files([(silent, None)], CountingRecognizer())[0]
    assert "error" not in empty, empty
    assert empty["transcript"] == "" and empty["tokens"] == []
    assert "the recogniser heard no words" in empty["notes"]


def test_models_without_text_never_run_asr(asr_run):

    assets = prediction.Predictor.load(asr_run["export_dir"]).assets
    audio_only = serving.ServingAssets(
        {k: v for k, v in assets.metadata.items() if k != "text"})
    # Not even constructed: a missing handle is no error for such a model.
    assert prediction.recognizer_for(audio_only, "ctc:/no/such/model") is None
    with pytest.raises(asr.AsrError):
        prediction.recognizer_for(assets, "ctc:/no/such/model")


def test_gold_vs_asr_table(tmp_path, capsys):
    from tools import results_table

    for source, wa in (("gold", 0.625), ("asr", 0.5)):
        os.makedirs(tmp_path / source / "TRE")
        with open(tmp_path / source / "TRE" / "metrics.json", "w") as f:
            json.dump({"test": {"wa": wa, "ua": wa - 0.125}}, f)
    fold = tmp_path / "fold"
    os.makedirs(fold)
    report = {"wer": 0.4321, "cer": 0.2, "num_empty": 2}
    with open(fold / "manifest.json", "w") as f:
        json.dump({"asr": {"spec": "pocketsphinx", "backend": "pocketsphinx",
                           "report": {"test": report}}}, f)
    results_table.asr_table(str(tmp_path), str(fold), ["TRE", "MDRE"])
    out = capsys.readouterr().out
    assert "Recogniser: pocketsphinx" in out and "test 0.432 / 0.200" in out
    assert "| TRE | 0.625 | 0.500 | 0.500 | 0.375 | -0.125 |" in out
    assert "| MDRE | (failed) |" in out
