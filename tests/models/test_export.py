"""SavedModel export: named serving signature, reload equals in-memory."""

import os

import numpy as np
import pytest
import tensorflow as tf

from models import export
from models import registry
from tests import helpers

LABELS = ("angry", "happy", "sad", "neutral")


@pytest.mark.parametrize("name", ["ARE", "MDREA"])
def test_round_trip_with_different_lengths(name, tmp_path):
    model = registry.build_model(
        name, **helpers.tiny_model_kwargs(model=name))
    export_dir = export.export_saved_model(model, str(tmp_path / "sm"),
                                           LABELS)
    assert os.path.exists(os.path.join(export_dir, "saved_model.pb"))
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp")]
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    names = [t.name for t in model.inputs]
    assert sorted(serve.structured_input_signature[1]) == sorted(names)
    for audio_lengths in ([9, 4, 1], [4, 2, 3]):  # time is not fixed
        batch = helpers.padded_batch(audio_lengths, [5, 128, 1],
                                     names=names, seed=5)
        served = serve(**{k: tf.constant(v) for k, v in batch.items()})
        expected = model(batch, training=False).numpy()
        np.testing.assert_allclose(served["logits"].numpy(), expected,
                                   atol=1e-5)
        np.testing.assert_allclose(served["probabilities"].numpy().sum(1),
                                   1.0, atol=1e-5)
        label = expected.argmax(1)
        np.testing.assert_array_equal(served["predicted_label"].numpy(),
                                      label)
        assert [s.decode() for s in served["predicted_name"].numpy()] == [
            LABELS[i] for i in label]


def test_label_names_must_match_outputs(tmp_path):
    model = registry.build_model(
        "ARE", **helpers.tiny_model_kwargs(model="ARE"))
    with pytest.raises(ValueError, match="4 outputs but 3 label names"):
        export.export_saved_model(model, str(tmp_path / "sm"), LABELS[:3])
    assert not os.path.exists(tmp_path / "sm")
