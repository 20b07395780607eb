"""Model options: --model_config, the Yoon flag names and --model_override,
validated against the chosen model (tasks/model_options.py)."""

import json

import pytest

from models import registry
from tasks import model_options
from tasks.model_options import OptionError


def test_every_model_has_options_and_a_description():
    for model in registry.model_names():
        options = model_options.options_of(model)
        assert not set(options) & set(model_options.FROM_FOLD), model
        text = model_options.describe(model)
        assert all(f"  {name} = " in text for name in options), model


def test_options_are_the_constructor_arguments_with_their_defaults():
    options = model_options.options_of("ARE")
    assert list(options) == ["audio_units", "audio_layers", "audio_keep_prob",
                             "mfcc_dim", "prosody_dim", "gru_impl"]
    assert options["audio_units"].default == 200
    assert model_options.options_of("W2V2")["hub_handle"].required


def test_overrides_parse_json_values_and_lists():
    assert model_options.parse_overrides(
        ["cnn_filters=[4,8],hidden_units=8", "audio_input=logmel",
         "use_prosody=true,seedless=None"]) == {
            "cnn_filters": [4, 8], "hidden_units": 8, "audio_input": "logmel",
            "use_prosody": True, "seedless": None}
    with pytest.raises(OptionError, match="expected key=value"):
        model_options.parse_overrides(["hidden_units"])


@pytest.mark.parametrize("model,values,message", [
    ("ARE", {"transformer_layers": 8},
     r"ARE takes no option 'transformer_layers' \(an option of "
     r"TRANSFORMER_FUSION\); its options are: audio_units, .*--model_help"),
    ("ARE", {"num_classes": 3}, "set by the toolkit from the fold"),
    ("ARE", {"audio_units": 2.5}, "audio_units expects an integer"),
    ("ARE", {"audio_units": 0}, r"expects an integer >= 1"),
    ("ARE", {"audio_keep_prob": 1.5}, r"keep probability in \(0, 1\]"),
    ("TRANSFORMER_FUSION", {"transformer_dropout": 1.0}, "dropout rate"),
    ("MDREA", {"mask_attention": "yes"}, "expects true or false"),
    ("CNN_SPEC", {"cnn_filters": [4, 0]}, "list of integers >= 1"),
])
def test_foreign_unknown_and_badly_typed_options_are_errors(model, values,
                                                            message):
    with pytest.raises(OptionError, match=message):
        model_options.check(model, values)


def test_values_are_typed_like_the_defaults():
    assert model_options.check("ARE", {"audio_keep_prob": 1}) == {
        "audio_keep_prob": 1.0}
    assert model_options.check("CNN_SPEC", {"cnn_filters": "4-8"}) == {
        "cnn_filters": [4, 8]}
    # ARE_POOL without a GRU and without a hidden layer is valid.
    assert model_options.check("ARE_POOL", {"audio_layers": 0,
                                            "hidden_units": 0})


def test_sources_apply_in_order_file_then_flags_then_overrides(tmp_path):
    config = tmp_path / "model.json"
    config.write_text(json.dumps({"audio_units": 32, "audio_keep_prob": 0.5,
                                  "pooling": "mean"}))
    options = model_options.resolve(
        "ARE_POOL", str(config), {"hidden_dim_audio": 16, "dr_audio": 0.9},
        ["audio_keep_prob=0.6"])
    assert options == {"audio_units": 16, "audio_keep_prob": 0.6,
                       "pooling": "mean"}
    # A foreign key in the file names the file.
    config.write_text(json.dumps({"text_units": 8}))
    with pytest.raises(OptionError, match=rf"{config}: ARE_POOL takes no "
                       "option 'text_units'"):
        model_options.resolve("ARE_POOL", str(config))
    # A Yoon flag the model does not take names the flag.
    with pytest.raises(OptionError, match="--hidden_dim_text: ARE takes no "
                       "option 'text_units'"):
        model_options.resolve("ARE", None, {"hidden_dim_text": 8})


def test_a_runs_config_json_is_a_model_config(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model": {"name": "ARE", "kwargs": {
        "audio_units": 12, "gru_impl": "tf1"}}}))
    assert model_options.read_config_file(str(path)) == {
        "audio_units": 12, "gru_impl": "tf1"}
    for text, message in (("[1, 2]", "found list"),
                          ("{", "found invalid JSON")):
        path.write_text(text)
        with pytest.raises(OptionError, match=message):
            model_options.read_config_file(str(path))
    with pytest.raises(OptionError, match="cannot read"):
        model_options.read_config_file(str(tmp_path / "missing.json"))
