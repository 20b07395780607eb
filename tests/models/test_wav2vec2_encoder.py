"""Tests for models/wav2vec2_encoder.py on the tiny wav2vec2 stand-in."""

import hashlib
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from models import pooling
from models import wav2vec2_encoder as w2v
from tools import make_wav2vec2_standin

HIDDEN = 32
PUBLIC_LENGTH = w2v.PUBLIC_HUB_INPUT_LENGTH


@pytest.fixture(scope="module")
def standin_dir(tmp_path_factory):
    """Variable-length stand-in that also accepts an attention mask."""
    path = tmp_path_factory.mktemp("w2v2") / "standin"
    return make_wav2vec2_standin.build_standin(str(path), hidden=HIDDEN)


@pytest.fixture(scope="module")
def fixed_standin_dir(tmp_path_factory):
    """Stand-in shaped like the public model: exactly 246,000 samples in, no
    attention mask."""
    path = tmp_path_factory.mktemp("w2v2") / "standin_fixed"
    return make_wav2vec2_standin.build_standin(
            str(path), hidden=HIDDEN, fixed_input_length=PUBLIC_LENGTH,
            with_attention_mask=False)


def _batch(lengths, seed=0, pad_value=0.0):
    """Zero-padded [batch, max(lengths)] noise waveforms and their lengths."""
    rng = np.random.default_rng(seed)
    waveforms = np.full((len(lengths), max(lengths)), pad_value, np.float32)
    for row, length in enumerate(lengths):
        waveforms[row, :length] = rng.uniform(-0.5, 0.5, length)
    return waveforms, np.asarray(lengths, np.int32)


def _classifier(encoder, pool_layer):
    waveform = keras.Input((None,), name="waveform")
    waveform_length = keras.Input((), dtype="int32", name="waveform_length")
    features, frames = encoder(waveform, waveform_length)
    pooled = pool_layer(features, frames)
    logits = keras.layers.Dense(4, name="logits")(pooled)
    model = keras.Model({"waveform": waveform,
                         "waveform_length": waveform_length}, logits)
    # One eager step costs less than tracing a train function (the SavedModel
    # functions run as graphs either way).
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                          from_logits=True), run_eagerly=True)
    return model


def _train_one_step(encoder):
    """Values of every SavedModel variable before/after one Adam step."""
    model = _classifier(encoder, pooling.AttentionPooling(name="pool"))
    waveforms, lengths = _batch([3000, 2200, 1500, 900])
    variables = list(encoder._saved_model.variables)
    before = [v.numpy().copy() for v in variables]
    head_before = model.get_layer("logits").kernel.numpy().copy()
    model.train_on_batch({"waveform": waveforms, "waveform_length": lengths},
                         np.array([0, 1, 2, 3]))
    assert not np.array_equal(head_before,
                              model.get_layer("logits").kernel.numpy())
    return {v.name: not np.array_equal(b, v.numpy())
            for v, b in zip(variables, before)}


def test_conv_arithmetic():
    def by_hand(length):
        for kernel, stride in zip((10, 3, 3, 3, 3, 2, 2),
                                  (5, 2, 2, 2, 2, 2, 2)):
            length = max((length - kernel) // stride + 1, 0)
        return length

    lengths = [0, 1, 399, 400, 401, 719, 720, 1000, 16000, 16001, 54321,
               PUBLIC_LENGTH]
    expected = [by_hand(length) for length in lengths]
    assert [w2v.conv_output_length(n) for n in lengths] == expected
    assert w2v.frame_lengths(tf.constant(lengths)).numpy().tolist() == expected
    assert expected[:5] == [0, 0, 0, 1, 1]
    assert w2v.conv_output_length(16000) == 49  # 20 ms frames
    assert w2v.conv_output_length(PUBLIC_LENGTH) == 768
    assert w2v.min_input_length() == 400
    assert w2v.conv_output_length(90, (3, 3), (2, 1)) == 42


def test_frame_lengths_match_model_output(standin_dir):
    encoder = w2v.Wav2Vec2Encoder(standin_dir, name="wav2vec2")
    for length in (400, 401, 1001, 3333, 16000):
        waveform, lengths = _batch([length])
        features, frames = encoder(waveform, lengths)
        assert features.shape[1] == w2v.conv_output_length(length)
        assert frames.numpy().tolist() == [w2v.conv_output_length(length)]
    lengths = [16000, 3333, 401, 100]
    features, frames = encoder(*_batch(lengths))
    expected = [w2v.conv_output_length(n) for n in lengths]
    assert features.shape == (4, expected[0], HIDDEN)
    assert frames.dtype == tf.int32
    assert frames.numpy().tolist() == expected == [49, 10, 1, 0]
    # Frames beyond each length are exactly zero, frames within are not.
    for row, count in enumerate(expected):
        assert np.all(features[row, count:].numpy() == 0.0)
        assert np.all(np.abs(features[row, :count].numpy()).sum(-1) > 0)


def test_shorter_than_receptive_field(standin_dir):
    encoder = w2v.Wav2Vec2Encoder(standin_dir, name="wav2vec2")
    features, frames = encoder(*_batch([120, 50]))
    assert features.shape == (2, 1, HIDDEN)  # padded up to 400 samples
    assert frames.numpy().tolist() == [0, 0]
    assert np.all(features.numpy() == 0.0)
    pooled = pooling.AttentionPooling(name="pool")(features, frames)
    assert np.all(pooled.numpy() == 0.0)


def test_fixed_length_model(fixed_standin_dir):
    encoder = w2v.Wav2Vec2Encoder(fixed_standin_dir, name="wav2vec2")
    assert encoder.input_length == PUBLIC_LENGTH  # read from the signature
    assert not encoder.uses_attention_mask
    # Shorter input is zero-padded, longer input cropped.
    features, frames = encoder(*_batch([20000, 16000]))
    assert features.shape == (2, 768, HIDDEN)
    assert frames.numpy().tolist() == [w2v.conv_output_length(20000),
                                       w2v.conv_output_length(16000)]
    features, frames = encoder(np.zeros((1, PUBLIC_LENGTH + 5000),
                                        np.float32),
                               np.array([PUBLIC_LENGTH + 5000], np.int32))
    assert features.shape == (1, 768, HIDDEN)
    assert frames.numpy().tolist() == [768]
    with pytest.raises(ValueError, match="takes exactly 246000 samples"):
        w2v.Wav2Vec2Encoder(fixed_standin_dir, fixed_input_length=16000)


def test_symbolic_shapes(standin_dir, fixed_standin_dir):
    waveform = keras.Input((None,), name="waveform")
    waveform_length = keras.Input((), dtype="int32", name="waveform_length")
    features, frames = w2v.Wav2Vec2Encoder(standin_dir)(waveform,
                                                        waveform_length)
    assert features.shape == (None, None, HIDDEN)
    assert frames.shape == (None,) and frames.dtype == "int32"
    features, _ = w2v.Wav2Vec2Encoder(fixed_standin_dir)(waveform,
                                                         waveform_length)
    assert features.shape == (None, 768, HIDDEN)


@pytest.mark.parametrize("trainable,freeze", [(True, False), (True, True),
                                              (False, False)])
def test_which_variables_train(standin_dir, trainable, freeze):
    encoder = w2v.Wav2Vec2Encoder(standin_dir, trainable=trainable,
                                  freeze_feature_extractor=freeze,
                                  name="wav2vec2")
    changed = _train_one_step(encoder)
    conv = {name for name in changed if "/feature_extractor/" in name}
    assert len(conv) == 9 and len(changed) == 47  # 7 convs + group norm x2
    if not trainable:
        assert not encoder.trainable_weights
        assert not any(changed.values())
    elif freeze:
        assert set(encoder.frozen_variable_names) == conv
        assert len(encoder.trainable_weights) == len(changed) - len(conv)
        assert not any(changed[name] for name in conv)
        assert all(changed[name] for name in changed if name not in conv)
    else:
        assert all(changed.values())


@pytest.mark.parametrize("fixed", [False, True])
def test_padded_batch_equals_each_example_alone(standin_dir,
                                                fixed_standin_dir, fixed):
    # Variable-length model: holds because the encoder passes the attention
    # mask. Fixed-length model without a mask: holds because every example
    # is padded to 246,000 samples, batched or alone.
    encoder = w2v.Wav2Vec2Encoder(
            fixed_standin_dir if fixed else standin_dir, name="wav2vec2")
    assert encoder.uses_attention_mask is not fixed
    # Non-zero padding must not matter either: the encoder zeroes it.
    waveforms, lengths = _batch([6000, 2500, 800], pad_value=0.3)
    batched = encoder(waveforms, lengths)
    alone = [encoder(waveforms[row:row + 1, :length], lengths[row:row + 1])
             for row, length in enumerate(lengths)]
    for pool in (pooling.MaskedMeanPooling(name="mean"),
                 pooling.AttentionPooling(name="attention")):
        pooled = pool(*batched).numpy()
        for row, single in enumerate(alone):
            np.testing.assert_allclose(pooled[row], pool(*single).numpy()[0],
                                       atol=1e-5)


def test_padding_leaks_without_attention_mask(standin_dir):
    # Documented limitation: a variable-length model fed without a mask sees
    # the padding (group norm statistics and self-attention), as wav2vec2-base
    # does.
    encoder = w2v.Wav2Vec2Encoder(standin_dir, use_attention_mask=False)
    pool = pooling.MaskedMeanPooling()
    waveforms, lengths = _batch([6000, 2500])
    batched = pool(*encoder(waveforms, lengths)).numpy()
    alone = pool(*encoder(waveforms[1:, :2500], lengths[1:])).numpy()
    assert np.abs(batched[1] - alone[0]).max() > 1e-3
    # Padding everything to one fixed length restores the equality.
    fixed = w2v.Wav2Vec2Encoder(standin_dir, use_attention_mask=False,
                                fixed_input_length=6000)
    np.testing.assert_allclose(
            pool(*fixed(waveforms, lengths)).numpy()[1],
            pool(*fixed(waveforms[1:, :2500], lengths[1:])).numpy()[0],
            atol=1e-5)


def test_signature_endpoints_match_call(standin_dir):
    waveforms, lengths = _batch([3000, 1700])
    by_call = w2v.Wav2Vec2Encoder(standin_dir)
    assert by_call.uses_attention_mask
    with_mask = w2v.Wav2Vec2Encoder(standin_dir,
                                    signature="serving_with_mask")
    assert with_mask.uses_attention_mask
    np.testing.assert_allclose(with_mask(waveforms, lengths)[0],
                               by_call(waveforms, lengths)[0], atol=1e-6)
    no_mask = w2v.Wav2Vec2Encoder(standin_dir, signature="serving_default")
    assert not no_mask.uses_attention_mask
    by_call.use_attention_mask = False  # the same weights, called unmasked
    np.testing.assert_allclose(no_mask(waveforms, lengths)[0],
                               by_call(waveforms, lengths)[0], atol=1e-6)


def test_export_round_trip_serves_raw_audio(standin_dir, tmp_path):
    encoder = w2v.Wav2Vec2Encoder(standin_dir, trainable=True,
                                  name="wav2vec2")
    model = _classifier(encoder, pooling.MaskedMeanPooling(name="pool"))
    waveforms, lengths = _batch([2600, 1900, 700], seed=1)
    inputs = {"waveform": waveforms, "waveform_length": lengths}
    # Export after a training step, so the served weights must be the
    # fine-tuned ones.
    model.train_on_batch(inputs, np.array([0, 1, 2]))
    expected = model(inputs).numpy()
    export_dir = str(tmp_path / "export")
    model.export(export_dir, format="tf_saved_model", verbose=False)
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    served = serve(waveform=tf.constant(waveforms),
                   waveform_length=tf.constant(lengths))
    np.testing.assert_allclose(served["output_0"].numpy(), expected,
                               atol=1e-5)


def test_config_round_trip(standin_dir):
    encoder = w2v.Wav2Vec2Encoder(standin_dir, trainable=False,
                                  freeze_feature_extractor=False,
                                  use_attention_mask=True, name="wav2vec2")
    config = encoder.get_config()
    assert config["handle"] == standin_dir
    rebuilt = w2v.Wav2Vec2Encoder.from_config(config)
    assert rebuilt.get_config() == config
    assert not rebuilt.trainable and not rebuilt.trainable_weights
    assert keras.saving.get_registered_object(
            "mse>Wav2Vec2Encoder") is w2v.Wav2Vec2Encoder
    waveforms, lengths = _batch([1200, 900])
    np.testing.assert_allclose(rebuilt(waveforms, lengths)[0],
                               encoder(waveforms, lengths)[0], atol=1e-6)


def test_bad_local_handles(tmp_path):
    missing = str(tmp_path / "no_such_model")
    with pytest.raises(ValueError, match="no_such_model.*does not exist"):
        w2v.Wav2Vec2Encoder(missing)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="expected saved_model.pb"):
        w2v.Wav2Vec2Encoder(str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="non-empty string"):
        w2v.Wav2Vec2Encoder("")


def test_unreachable_url_fails_fast(tmp_path, monkeypatch):
    # Offline this fails at name resolution in milliseconds; online the
    # handle does not exist (HTTP 404). Either way: a ValueError naming it.
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "cache"))
    handle = "https://tfhub.dev/mse-tests/no-such-model/1"
    with pytest.raises(ValueError, match="mse-tests/no-such-model"):
        w2v.Wav2Vec2Encoder(handle)


@pytest.mark.slow
def test_public_tfhub_model():
    # Downloads about 360 MB once into the TF-Hub cache; needs tfhub.dev.
    encoder = w2v.Wav2Vec2Encoder(w2v.PUBLIC_HUB_HANDLE, trainable=True,
                                  name="wav2vec2")
    assert encoder.input_length == PUBLIC_LENGTH
    assert encoder.output_dim == 768
    # The default pattern finds the conv feature extractor and only it.
    assert encoder.frozen_variable_names
    assert all("conv_layers" in name
               for name in encoder.frozen_variable_names)
    features, frames = encoder(*_batch([32000]))
    assert features.shape == (1, 768, 768)
    assert frames.numpy().tolist() == [w2v.conv_output_length(32000)]


def test_url_handle_resolves_from_tfhub_cache(standin_dir, tmp_path,
                                              monkeypatch):
    # tensorflow_hub caches a URL's download under sha1(url); a filled cache
    # entry is used without touching the network.
    handle = "https://tfhub.dev/mse-tests/wav2vec2-standin/1"
    cache = tmp_path / "cache"
    shutil.copytree(standin_dir,
                    cache / hashlib.sha1(handle.encode("utf8")).hexdigest())
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(cache))
    encoder = w2v.Wav2Vec2Encoder(handle)
    features, _ = encoder(*_batch([800]))
    assert features.shape == (1, w2v.conv_output_length(800), HIDDEN)


class _WrongRankInput(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, None, 1],
                                                tf.float32)])
    def __call__(self, waveform):
        return waveform


class _IntInput(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
    def __call__(self, waveform):
        return tf.cast(waveform, tf.float32)[:, :, None]


class _PooledOutput(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)])
    def __call__(self, waveform):
        return tf.reduce_mean(waveform, axis=1, keepdims=True)


@pytest.mark.parametrize("module,message", [
        (_WrongRankInput, r"float32 tensor of shape \(None, None, 1\); "
                          r"expected a float32 waveform of shape \[batch, "
                          r"samples\]"),
        (_IntInput, r"int32 tensor.*expected a float32 waveform"),
        (_PooledOutput, r"returns a float32 tensor of shape \(None, 1\); "
                        r"expected float frame features"),
])
def test_wrong_signature(tmp_path, module, message):
    path = str(tmp_path / module.__name__)
    tf.saved_model.save(module(), path)
    with pytest.raises(ValueError, match=message):
        w2v.Wav2Vec2Encoder(path, trainable=False)


def test_option_mismatches(standin_dir, fixed_standin_dir):
    with pytest.raises(ValueError, match="takes no 'attention_mask'"):
        w2v.Wav2Vec2Encoder(fixed_standin_dir, use_attention_mask=True)
    with pytest.raises(ValueError, match="no variable name matches"):
        w2v.Wav2Vec2Encoder(standin_dir, feature_extractor_pattern="^cnn/")
    with pytest.raises(ValueError, match="no signature or function 'nope'"):
        w2v.Wav2Vec2Encoder(standin_dir, signature="nope")
    with pytest.raises(ValueError, match="returns 768 frames.*give 1536"):
        w2v.Wav2Vec2Encoder(fixed_standin_dir,
                            conv_strides=(5, 2, 2, 2, 2, 2, 1))
