"""The pipeline's feature names and dtypes are what the models take."""

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
