"""models/registry.py: specs, options, option checking, validated builds."""

import inspect

import keras
import pytest

import models
from models import registry
from tests import helpers

# The per-model facts as the glue held them before the specs (name sets of
# experiment.py, train.py and baseline_runs.py): the specs must agree.
TEXT_MODELS = {"TRE", "MDRE", "MDREA", "W2V2_TRE", "W2V2_TREA",
               "BLSTM_SA_TEXT", "MMMF", "TRANSFORMER_FUSION"}
NORMALIZED_AUDIO_MODELS = {"ARE", "MDRE", "MDREA", "CNN_SPEC", "MMMF",
                           "TRANSFORMER_FUSION", "ARE_POOL"}
RUN_PREFIXES = {
    "ARE": "SE_prosody", "TRE": "SE_nlp", "MDRE": "SE_multi",
    "MDREA": "SE_multi_attn_prosody", "W2V2": "SE_w2v2",
    "W2V2_TRE": "SE_w2v2_nlp", "W2V2_TREA": "SE_w2v2_nlp_attn",
    "BLSTM_SA_TEXT": "SE_blstm_sa", "CNN_SPEC": "SE_cnn_spec",
    "MMMF": "SE_mmmf", "TRANSFORMER_FUSION": "SE_transformer_fusion",
    "ARE_POOL": "SE_prosody_pool", "BASELINE_SVM": "SE_baseline_svm",
    "BASELINE_LOGREG": "SE_baseline_logreg"}
FAMILIES = {"yoon": {"ARE", "TRE", "MDRE", "MDREA"},
            "wav2vec2": {"W2V2", "W2V2_TRE", "W2V2_TREA"},
            "seed": {"BLSTM_SA_TEXT", "CNN_SPEC", "MMMF",
                     "TRANSFORMER_FUSION"},
            "small_corpus": {"ARE_POOL"},
            "baseline": {"BASELINE_SVM", "BASELINE_LOGREG"}}


def test_every_model_has_a_spec_agreeing_with_the_old_name_sets():
    assert set(registry.names()) == set(RUN_PREFIXES)
    assert registry.model_names() == registry.names()
    for name in registry.names():
        spec = registry.spec(name)
        assert spec.name == name
        assert registry.MODELS[name] is spec.model_class
        assert spec.run_prefix == RUN_PREFIXES[name]
        assert spec.reads_text == (name in TEXT_MODELS)
        assert spec.normalizes_audio == (name in NORMALIZED_AUDIO_MODELS)
        assert name in FAMILIES[spec.family]
        assert spec.exportable
        assert spec.description and "\n" not in spec.description


def test_unknown_model_names_the_valid_ones():
    with pytest.raises(ValueError, match="Unknown model 'LSTM'.*ARE, TRE"):
        registry.spec("LSTM")
    with pytest.raises(ValueError, match="Unknown model 'LSTM'"):
        registry.model_options("LSTM")


@pytest.mark.parametrize("name, options, expected", [
    ("ARE", {}, False),
    ("W2V2", {}, True),
    ("CNN_SPEC", {}, False),
    ("CNN_SPEC", {"audio_input": "logmel"}, True),
    ("TRANSFORMER_FUSION", {}, False),
    ("TRANSFORMER_FUSION", {"audio_encoder": "wav2vec2"}, True),
    # Another model's option does not count.
    ("MMMF", {"audio_input": "logmel", "audio_encoder": "wav2vec2"}, False),
])
def test_reads_waveforms_depends_on_the_options(name, options, expected):
    assert registry.spec(name).reads_waveforms(options) is expected


@pytest.mark.parametrize("name", registry.names())
def test_model_options_are_the_constructor_arguments_each_documented(name):
    options = registry.model_options(name)
    parameters = inspect.signature(registry.spec(name).model_class).parameters
    assert list(options) == [key for key in parameters
                             if key not in ("name", "kwargs")]
    for key, option in options.items():
        default = parameters[key].default
        assert option.required == (default is inspect.Parameter.empty)
        assert option.default == (None if option.required else default)
        assert option.doc and "\n" not in option.doc, (name, key)
        assert len(option.doc) <= 100, (name, key)


def test_model_options_give_defaults_and_docs():
    options = registry.model_options("TRE")
    assert options["vocab_size"].required
    assert options["text_units"].default == 200
    assert options["text_units"].doc == "int. GRU hidden size (reference 200)."
    # MDRE says "the union of ARE's and TRE's": the docs come from those.
    mdre = registry.model_options("MDRE")
    assert mdre["audio_units"].doc == registry.model_options(
        "ARE")["audio_units"].doc
    assert registry.model_options("TRANSFORMER_FUSION")[
        "transformer_layers"].doc == "int. N, transformer blocks."


def test_check_options_accepts_the_model_own_options():
    registry.check_options("ARE", {"audio_units": 8, "seed": 1})
    registry.check_options("TRE", {})


def test_a_foreign_option_is_an_error_naming_model_key_owner_and_valid_keys():
    with pytest.raises(ValueError) as error:
        registry.check_options("ARE", {"audio_units": 8,
                                       "transformer_layers": 8})
    message = str(error.value)
    assert "Model ARE has no option 'transformer_layers'" in message
    assert "an option of TRANSFORMER_FUSION" in message
    assert "valid options of ARE: audio_units, audio_layers" in message
    assert "'audio_units' (" not in message


def test_an_option_no_model_takes_is_an_error():
    with pytest.raises(ValueError, match=r"'hiden_units' \(no model takes"):
        registry.check_options("MDRE", {"hiden_units": 3})
    with pytest.raises(ValueError, match="no option 'name'"):
        registry.check_options("ARE", {"name": "x"})


def test_build_model_is_validated_and_exported_by_the_package():
    assert models.build_model is registry.build_model
    model = models.build_model("ARE", audio_units=3, seed=1)
    assert isinstance(model, keras.Model)
    assert sorted(t.name for t in model.inputs) == sorted(
        registry.spec("ARE").inputs)
    # TF1GRU: 3H(39 + H) kernel + 3H bias; logits: (H + 35)·4 + 1 scalar
    # bias (144,941 for H = 200, yoon_spec.md §6).
    h = 3
    assert helpers.count_trainable(model) == (
        3 * h * (39 + h) + 3 * h + (h + 35) * 4 + 1)
    with pytest.raises(ValueError, match="ARE has no option 'text_units'"):
        models.build_model("ARE", audio_units=3, text_units=5)


def test_model_arguments_keeps_the_model_own_arguments_of_a_union():
    union = helpers.tiny_model_kwargs()
    assert registry.model_arguments("ARE", **union) == {
        "audio_units": 6, "audio_keep_prob": 1.0, "seed": 3}
    with pytest.raises(ValueError, match="Unknown model arguments"):
        registry.model_arguments("ARE", hiden_units=3)
