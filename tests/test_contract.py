"""The pipeline's feature names and dtypes are what the models take."""

import numpy as np
import pytest

from models import registry
from preprocessing import input_pipeline
from tests import helpers


@pytest.mark.parametrize("name", ["ARE", "TRE", "MDRE", "MDREA"])
def test_pipeline_features_feed_model_inputs(name):
    dataset = input_pipeline.make_dataset(helpers.random_split(5), 4)
    spec = dataset.element_spec[0]
    model = registry.build_model(name, **helpers.tiny_model_kwargs())
    for tensor in model.inputs:
        assert tensor.name in spec, tensor.name
        assert spec[tensor.name].dtype.name == tensor.dtype
        assert spec[tensor.name].shape.rank == len(tensor.shape)
    features, _ = next(iter(dataset))
    model({t.name: features[t.name] for t in model.inputs})


def test_log_mel_features_feed_the_log_mel_cnn():
    split = helpers.random_split(5)
    split.extras.update(
        waveform=np.random.default_rng(0).integers(
            -3000, 3000, (5, 4000)).astype(np.int16),
        waveform_length=np.array([4000, 3000, 400, 100, 0], np.int32))
    dataset = input_pipeline.make_dataset(split, 4, log_mel=True, n_mels=12)
    spec = dataset.element_spec[0]
    model = registry.build_model("CNN_SPEC", audio_input="logmel", n_mels=12,
                                 cnn_filters=(2, 3), hidden_units=4,
                                 use_prosody=True)
    for tensor in model.inputs:
        assert tensor.name in spec, tensor.name
        assert spec[tensor.name].dtype.name == tensor.dtype
        assert spec[tensor.name].shape.as_list()[1:] == list(
            tensor.shape[1:])
    features, _ = next(iter(dataset))
    model({t.name: features[t.name] for t in model.inputs})
