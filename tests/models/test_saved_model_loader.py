"""models/saved_model_loader.py: handles, endpoints, variable tracking."""

import keras
import pytest
import tensorflow as tf

from models import saved_model_loader


class _Scale(tf.Module):
    def __init__(self):
        super().__init__()
        self.scale = tf.Variable(2.0, name="scale")
        self.step = tf.Variable(0, name="step")

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
    def __call__(self, x):
        return {"y": x * self.scale + tf.cast(self.step, tf.float32)}


@pytest.fixture(scope="module")
def saved_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("loader") / "scale")
    module = _Scale()
    tf.saved_model.save(module, path,
                        signatures={"serving_default": module.__call__})
    return path


def test_is_url():
    assert saved_model_loader.is_url("https://tfhub.dev/x/1")
    assert saved_model_loader.is_url("gs://bucket/model")
    assert not saved_model_loader.is_url("file:///tmp/model")
    assert not saved_model_loader.is_url("/tmp/model")


def test_resolve_handle_errors_name_the_handle(tmp_path):
    with pytest.raises(ValueError, match="non-empty string"):
        saved_model_loader.resolve_handle("", owner="Encoder")
    with pytest.raises(ValueError, match="Encoder handle .*does not exist"):
        saved_model_loader.resolve_handle(str(tmp_path / "none"), "Encoder")
    (tmp_path / "tfhub_module.pb").write_bytes(b"")
    with pytest.raises(ValueError, match="TF1 Hub module"):
        saved_model_loader.resolve_handle(str(tmp_path))


def test_load_find_trace_and_track(saved_dir):
    path, loaded = saved_model_loader.load_saved_model("file://" + saved_dir)
    assert path == saved_dir
    function, is_signature, where = saved_model_loader.find_endpoint(
        loaded, None, "scale")
    assert not is_signature and where == "scale __call__"
    _, is_signature, _ = saved_model_loader.find_endpoint(
        loaded, "serving_default", "scale")
    assert is_signature
    with pytest.raises(ValueError, match="no signature or function 'nope'"):
        saved_model_loader.find_endpoint(loaded, "nope", "scale")
    (bound, outputs), = saved_model_loader.traced_calls(
        function, "scale", "x")
    assert saved_model_loader.describe(bound["x"]) == (
        "float32 tensor of shape (None, 3)")
    assert set(outputs) == {"y"}
    # A plain SavedModel (no `variables` attribute): the variables its
    # function captures.
    layer = keras.layers.Layer()
    names, frozen = saved_model_loader.track_saved_model_variables(
        layer, loaded, function, is_frozen=lambda name: False)
    assert sorted(names) == ["scale:0", "step:0"] and frozen == []
    # Only the float variable can train.
    assert [v.name for v in layer.trainable_weights] == ["scale_0"]


def test_training_argument_follows_hub_keras_layer():
    assert saved_model_loader.training_argument(set(), True, True) == {}
    assert saved_model_loader.training_argument({True, False}, True,
                                                False) == {"training": False}
    assert saved_model_loader.training_argument({True, False}, True,
                                                True) == {"training": True}
    assert saved_model_loader.training_argument({False}, True, True) == {
        "training": False}
