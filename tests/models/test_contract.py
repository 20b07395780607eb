"""The pipeline's feature names and dtypes are what the models take: every
registered model, built with its default inputs, reads only features the
input pipeline delivers (same name, dtype and rank), and its spec names
exactly those inputs."""

import numpy as np
import pytest

from models import registry
from preprocessing import input_pipeline
from tests import helpers
from tools import make_wav2vec2_standin

# One small setting per option name; each model takes the ones it has
# (`registry.model_arguments`). None of them changes a model's inputs.
TINY = dict(vocab_size=30, embedding_dim=8, audio_units=6, text_units=5,
            audio_keep_prob=1.0, text_keep_prob=1.0, hidden_units=4,
            attention_units=4, fusion_units=4, cnn_filters=(2, 3),
            transformer_units=8, transformer_heads=2, transformer_layers=1,
            transformer_ff_units=8, side_units=4, seed=3)


@pytest.fixture(scope="module")
def standin_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("contract") / "w2v2"
    return make_wav2vec2_standin.build_standin(
        str(path), hidden=8, layers=1, heads=2, conv_channels=8, ffn_dim=16)


@pytest.fixture(scope="module")
def split():
    split = helpers.random_split(5)
    split.extras.update(
        waveform=np.random.default_rng(0).integers(
            -3000, 3000, (5, 4000)).astype(np.int16),
        waveform_length=np.array([4000, 3000, 900, 500, 0], np.int32))
    return split


def _check_feeds(model, dataset):
    spec = dataset.element_spec[0]
    for tensor in model.inputs:
        assert tensor.name in spec, tensor.name
        assert spec[tensor.name].dtype.name == tensor.dtype, tensor.name
        assert spec[tensor.name].shape.rank == len(tensor.shape), tensor.name
        for fed, taken in zip(spec[tensor.name].shape.as_list()[1:],
                              tensor.shape[1:]):
            assert None in (fed, taken) or fed == taken, tensor.name
    features, _ = next(iter(dataset))
    logits = model({t.name: features[t.name] for t in model.inputs},
                   training=False)
    assert logits.shape == (4, 4)


@pytest.mark.parametrize("name", registry.names())
def test_pipeline_features_feed_every_registered_model(name, split,
                                                       standin_dir):
    spec = registry.spec(name)
    options = registry.model_arguments(name, **TINY)
    if "hub_handle" in registry.model_options(name):
        options["hub_handle"] = standin_dir
    model = registry.build_model(name, **options)
    assert sorted(t.name for t in model.inputs) == sorted(spec.inputs)
    assert spec.reads_text == ("text_ids" in spec.inputs)
    waveforms = spec.reads_waveforms(options)
    assert waveforms == ("waveform" in spec.inputs)
    dataset = input_pipeline.make_dataset(split, 4, waveforms=waveforms)
    _check_feeds(model, dataset)


def test_log_mel_features_feed_the_log_mel_cnn(split):
    options = dict(audio_input="logmel", n_mels=12, cnn_filters=(2, 3),
                   hidden_units=4, use_prosody=True)
    assert registry.spec("CNN_SPEC").reads_waveforms(options)
    dataset = input_pipeline.make_dataset(split, 4, log_mel=True, n_mels=12)
    model = registry.build_model("CNN_SPEC", **options)
    assert sorted(t.name for t in model.inputs) == [
        "audio_logmel", "audio_logmel_length", "audio_prosody"]
    _check_feeds(model, dataset)
    spec = dataset.element_spec[0]
    assert spec["audio_logmel"].shape.as_list()[1:] == [None, 12]
