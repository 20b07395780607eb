"""Wav2Vec2Encoder: a TF-Hub/SavedModel wav2vec2 as a fine-tunable Keras layer.

Why not `hub.KerasLayer`: it is a tf_keras layer and does not work inside
Keras 3 models (it cannot take KerasTensors, and wrapped in a Keras 3 layer its
variables are invisible, so the encoder silently stays frozen). This layer
loads the SavedModel with `tf.saved_model.load` and registers each of its
`tf.Variable`s as a `keras.Variable` that wraps (not copies) it, so Keras
optimizers update exactly the variables the SavedModel's functions read, and
`model.export()` / `tf.saved_model.save` write them out again. That generic
part (handle resolution, loading, endpoint lookup, variable tracking) lives in
`models/saved_model_loader.py`, shared with the BERT text encoder
(`models/bert_text_encoder.py`); `tensorflow_hub` is imported only there.
"""

import re

import keras
import tensorflow as tf

from models import saved_model_loader

# wav2vec2 (base and large) feature-extractor convolutions.
DEFAULT_CONV_KERNEL_SIZES = (10, 3, 3, 3, 3, 2, 2)
DEFAULT_CONV_STRIDES = (5, 2, 2, 2, 2, 2, 2)
# Matches the convolutional feature extractor's variables and nothing else in
# the public TF-Hub model (`wav2vec2/feature_extractor/conv_layers/0/conv/
# kernel:0`), in Hugging Face TF checkpoints (`.../feature_extractor/
# conv_layers.0/conv/kernel:0`) and in tools/make_wav2vec2_standin.py. It does
# not match `feature_projection` (trained in wav2vec2 fine-tuning recipes) or
# the positional convolution `encoder/pos_conv_embed/conv`.
DEFAULT_FEATURE_EXTRACTOR_PATTERN = r"(^|/)feature_extractor/"
# The public TF-Hub model and its fixed input length (about 15.4 s at 16 kHz).
PUBLIC_HUB_HANDLE = "https://tfhub.dev/vasudevgupta7/wav2vec2/1"
PUBLIC_HUB_INPUT_LENGTH = 246000
# Name of the optional mask argument / signature input (1 = real sample).
ATTENTION_MASK_NAME = "attention_mask"


def conv_output_length(length, kernel_sizes=DEFAULT_CONV_KERNEL_SIZES,
                       strides=DEFAULT_CONV_STRIDES):
    """Frames the conv stack makes from `length` samples (a Python int).

    Each layer maps L → floor((L - kernel) / stride) + 1 ("valid" padding);
    a length shorter than a layer's kernel gives 0 frames.

    Args:
        length: int. Number of samples.
        kernel_sizes: sequence of int. Kernel of each conv layer.
        strides: sequence of int. Stride of each conv layer.

    Returns:
        int >= 0.
    """
    length = int(length)
    for kernel, stride in zip(kernel_sizes, strides):
        length = max((length - kernel) // stride + 1, 0)
    return length


def min_input_length(kernel_sizes=DEFAULT_CONV_KERNEL_SIZES,
                     strides=DEFAULT_CONV_STRIDES):
    """Fewest samples that give one frame (400 = 25 ms for wav2vec2)."""
    length = 1
    for kernel, stride in zip(reversed(kernel_sizes), reversed(strides)):
        length = (length - 1) * stride + kernel
    return length


def frame_lengths(sample_lengths, kernel_sizes=DEFAULT_CONV_KERNEL_SIZES,
                  strides=DEFAULT_CONV_STRIDES):
    """The conv arithmetic of `conv_output_length` on a tensor of lengths.

    Args:
        sample_lengths: int tensor of any shape, e.g. [batch]. True numbers of
            samples.
        kernel_sizes: sequence of int.
        strides: sequence of int.

    Returns:
        int32 tensor of the same shape: frames that see only real samples.
    """
    lengths = tf.cast(sample_lengths, tf.int32)
    for kernel, stride in zip(kernel_sizes, strides):
        lengths = tf.maximum(
                tf.math.floordiv(lengths - kernel, stride) + 1, 0)
    return lengths


def resolve_handle(handle):
    """Turns a TF-Hub handle into a local SavedModel directory.

    URL handles (https://tfhub.dev/..., gs://...) go through
    `tensorflow_hub.resolve`, which downloads once into the TF-Hub cache
    (`$TFHUB_CACHE_DIR`, by default `<tmp>/tfhub_modules`) and afterwards
    answers from the cache without the network. Anything else is a path.
    (`saved_model_loader.resolve_handle`, with errors naming this layer.)

    Args:
        handle: str. URL or SavedModel directory.

    Returns:
        str, a directory holding `saved_model.pb`.

    Raises:
        ValueError: the handle cannot be reached, or is not a TF2 SavedModel.
    """
    return saved_model_loader.resolve_handle(handle, "Wav2Vec2Encoder")


_is_spec = saved_model_loader.is_spec
_describe = saved_model_loader.describe


class _Endpoint:
    """What the layer needs to know about the SavedModel function it calls.

    Attributes:
        function: the callable (a restored tf.function or a signature).
        is_signature: bool. Signatures take keyword tensors only, return a
            dict and take no `training` argument.
        waveform_spec: tf.TensorSpec of the [B, S] waveform input.
        waveform_key: str. Keyword of the waveform (signatures only).
        mask_spec: tf.TensorSpec or None. The [B, S] attention-mask input.
        training_values: set of bool. `training` values the function was
            traced for (empty: it takes no `training`).
        output_spec: tf.TensorSpec of the [B, F, D] output.
        output_key: str or None. Key of the features in a dict output.
    """

    def __init__(self, function, is_signature):
        self.function = function
        self.is_signature = is_signature
        self.waveform_spec = None
        self.waveform_key = None
        self.mask_spec = None
        self.training_values = set()
        self.output_spec = None
        self.output_key = None


def _select_output(outputs, output_key, where):
    if _is_spec(outputs):
        if output_key is not None:
            raise ValueError(f"{where} returns a single tensor, but "
                             f"output_key={output_key!r} was given.")
        return outputs, None
    if isinstance(outputs, dict):
        if output_key is None:
            if len(outputs) != 1:
                raise ValueError(f"{where} returns several outputs "
                                 f"{sorted(outputs)}; pass output_key= to "
                                 "pick the frame features.")
            output_key = next(iter(outputs))
        if output_key not in outputs:
            raise ValueError(f"{where} has no output {output_key!r}; found "
                             f"{sorted(outputs)}.")
        return outputs[output_key], output_key
    raise ValueError(f"{where} returns {outputs!r}; expected a [batch, "
                     "frames, features] tensor or a dict holding one.")


def _inspect_function(function, output_key, where):
    """Reads the restored tf.function's traced argument and output specs."""
    endpoint = _Endpoint(function, is_signature=False)
    first = saved_model_loader.first_parameter(function)
    for bound, outputs in saved_model_loader.traced_calls(
            function, where, "a [batch, samples] float32 waveform"):
        waveform = bound.get(first) if first else None
        if not _is_spec(waveform):
            raise ValueError(f"{where} takes {_describe(waveform)} as its "
                             "first input; expected a [batch, samples] "
                             "float32 tensor.")
        if endpoint.waveform_spec is None or (
                endpoint.waveform_spec.shape.rank != 2):
            endpoint.waveform_spec = waveform
        mask = bound.get(ATTENTION_MASK_NAME)
        if _is_spec(mask):
            endpoint.mask_spec = mask
        if isinstance(bound.get("training"), bool):
            endpoint.training_values.add(bound["training"])
        output, endpoint.output_key = _select_output(
                outputs, output_key, where)
        if endpoint.output_spec is None or output.shape.rank != 3:
            endpoint.output_spec = output
    return endpoint


def _inspect_signature(function, output_key, where):
    """Reads a signature's keyword inputs and dict outputs."""
    endpoint = _Endpoint(function, is_signature=True)
    _, inputs = function.structured_input_signature
    inputs = dict(inputs)
    mask = inputs.pop(ATTENTION_MASK_NAME, None)
    if len(inputs) != 1:
        raise ValueError(f"{where} takes inputs {sorted(inputs)}; expected "
                         "one [batch, samples] float32 waveform (plus an "
                         f"optional {ATTENTION_MASK_NAME!r}).")
    endpoint.waveform_key, endpoint.waveform_spec = next(iter(inputs.items()))
    endpoint.mask_spec = mask
    endpoint.output_spec, endpoint.output_key = _select_output(
            function.structured_outputs, output_key, where)
    return endpoint


@keras.saving.register_keras_serializable(package="mse")
class Wav2Vec2Encoder(keras.layers.Layer):
    """A wav2vec2 SavedModel (TF-Hub handle or directory) as a Keras 3 layer.

    Maps zero-padded 16 kHz waveforms and their true lengths to frame features
    (one frame per 20 ms with the standard convolutions) and frame lengths.

    Inputs:
        waveform: float32 [batch, samples]. Samples at and beyond each
            example's length are treated as padding (forced to exactly 0).
        waveform_length: int [batch]. True number of samples per example.

    Outputs (a tuple):
        features: float32 [batch, frames, D]. Frames at and beyond each
            example's frame length are exactly 0.0, so they carry nothing
            downstream even into layers that ignore lengths.
        frame_lengths: int32 [batch]. Frames that see only real samples:
            the conv arithmetic L → floor((L - kernel) / stride) + 1 per
            layer, applied to min(length, input length); 0 for clips shorter
            than the receptive field (400 samples). Pool with
            `models.pooling.MaskedMeanPooling` / `AttentionPooling`.

    Fixed-length models (the public TF-Hub wav2vec2 takes exactly 246,000
    samples and returns [batch, 768, 768]): waveforms are cropped or
    zero-padded to the input length; lengths beyond it are clipped.
    Variable-length models: waveforms shorter than the receptive field are
    padded up to it so that every call yields at least one frame.

    How padding leaks, and when a padded batch equals each example alone:
        The convolutions never mix padding into frames counted in
        `frame_lengths`, but two later parts of wav2vec2 see every frame:
        the group norm after the first convolution (statistics over time)
        and the transformer's self-attention (plus its positional
        convolution). So a real frame's features depend on padding unless
        the SavedModel takes an attention mask, or every example is padded
        to the same length anyway. Concretely, the features of the real
        frames (and so the pooled vector) of an example are the same in any
        padded batch as alone (a) when the SavedModel accepts
        `attention_mask` and it is used (`use_attention_mask=None` uses it
        whenever the SavedModel accepts one), or (b) when the model has a
        fixed input length or `fixed_input_length` is set, because then every
        example is padded to that length whether batched or alone. Otherwise
        (variable-length, no mask, e.g. `use_attention_mask=False`) they
        differ with the amount of padding, as in the original wav2vec2-base
        recipe, which feeds zero-padded audio without a mask. Note that (b)
        is consistency, not absence of padding effects: a 2 s clip in the
        public model's 246,000-sample window is 87% zeros, which still enter
        the group-norm statistics and the attention of its real frames; the
        masked pooling only keeps padded frames out of the pooled vector.

    Variables: each SavedModel variable is tracked as a `keras.Variable`
    wrapping the same `tf.Variable`. With `trainable=False` none of them
    trains; with `trainable=True` all variables the SavedModel marks
    trainable train, except, with `freeze_feature_extractor=True`, those whose
    name matches `feature_extractor_pattern` (tracked as non-trainable, so
    they stay frozen even if `layer.trainable` is switched on later).
    `regularization_losses` of the SavedModel are not added. The SavedModel
    runs in training mode (e.g. dropout) only when the layer is trainable and
    called with `training=True`, as with `hub.KerasLayer`.

    Args:
        handle: str. A TF-Hub URL (resolved via `tensorflow_hub.resolve` and
            cached under `$TFHUB_CACHE_DIR`), e.g.
            "https://tfhub.dev/vasudevgupta7/wav2vec2/1", or a local TF2
            SavedModel directory (tools/make_wav2vec2_standin.py writes one).
        trainable: bool. Whether the encoder is fine-tuned.
        freeze_feature_extractor: bool. Keep the convolutional feature
            extractor frozen while the rest trains (the usual wav2vec2
            fine-tuning recipe).
        fixed_input_length: int or None. Samples fed to the SavedModel per
            example. None: the SavedModel's own fixed length if its input
            signature has one (246000 for the public model), else variable.
            An int also works for variable-length models (every example is
            then padded/cropped to it).
        signature: str or None. What to call: None uses the SavedModel's
            `__call__` (TF-Hub reusable form), or else its `serving_default`
            signature; a name picks that signature (or tf.function
            attribute).
        output_key: str or None. Key of the frame features if the called
            function returns a dict with several entries.
        use_attention_mask: bool or None. Pass a [batch, samples]
            `attention_mask` (1 = real sample). None: whenever the SavedModel
            accepts one. True: required (error if not accepted). False: never.
        feature_extractor_pattern: str. Regular expression (re.search) over
            SavedModel variable names that marks the conv feature extractor.
        conv_kernel_sizes: sequence of int. Kernels of the feature-extractor
            convolutions (for frame lengths).
        conv_strides: sequence of int. Their strides.
        **kwargs: base layer arguments (`name`, `dtype`).

    Attributes:
        input_length: int or None. Samples per example fed to the SavedModel
            (None: variable). An input pipeline may pad/crop to it up front.
        output_dim: int. Feature size D.
        uses_attention_mask: bool. Whether calls pass an attention mask.
        frozen_variable_names: list of str. SavedModel variables frozen as
            the feature extractor.

    Example:

        waveform = keras.Input((None,), name="waveform")
        waveform_length = keras.Input((), dtype="int32",
                                      name="waveform_length")
        encoder = Wav2Vec2Encoder(handle, trainable=True, name="wav2vec2")
        features, lengths = encoder(waveform, waveform_length)
        pooled = models.pooling.MaskedMeanPooling()(features, lengths)
    """

    def __init__(self, handle, trainable=True, freeze_feature_extractor=True,
                 fixed_input_length=None, signature=None, output_key=None,
                 use_attention_mask=None,
                 feature_extractor_pattern=DEFAULT_FEATURE_EXTRACTOR_PATTERN,
                 conv_kernel_sizes=DEFAULT_CONV_KERNEL_SIZES,
                 conv_strides=DEFAULT_CONV_STRIDES, **kwargs):
        # Mixed-precision policies must not cast the waveform: the SavedModel
        # takes float32.
        super().__init__(trainable=trainable, autocast=False, **kwargs)
        if len(conv_kernel_sizes) != len(conv_strides):
            raise ValueError(
                    f"conv_kernel_sizes {list(conv_kernel_sizes)} and "
                    f"conv_strides {list(conv_strides)} must have the same "
                    "length.")
        if fixed_input_length is not None and conv_output_length(
                fixed_input_length, conv_kernel_sizes, conv_strides) < 1:
            raise ValueError(
                    f"fixed_input_length={fixed_input_length} is shorter than "
                    "the receptive field of the convolutions "
                    f"({min_input_length(conv_kernel_sizes, conv_strides)} "
                    "samples).")
        self.handle = handle
        self.freeze_feature_extractor = bool(freeze_feature_extractor)
        self.fixed_input_length = fixed_input_length
        self.signature = signature
        self.output_key = output_key
        self.use_attention_mask = use_attention_mask
        self.feature_extractor_pattern = feature_extractor_pattern
        self.conv_kernel_sizes = tuple(int(k) for k in conv_kernel_sizes)
        self.conv_strides = tuple(int(s) for s in conv_strides)

        _, self._saved_model = saved_model_loader.load_saved_model(
                handle, "Wav2Vec2Encoder")
        self._endpoint = self._find_endpoint()
        self._check_endpoint()
        self._track_saved_model_variables()
        self.built = True

    # === Loading ===

    def _find_endpoint(self):
        function, is_signature, where = saved_model_loader.find_endpoint(
                self._saved_model, self.signature,
                f"SavedModel {self.handle!r}")
        if is_signature:
            return _inspect_signature(function, self.output_key, where)
        return _inspect_function(function, self.output_key, where)

    def _check_endpoint(self):
        endpoint = self._endpoint
        where = f"SavedModel {self.handle!r}"
        waveform = endpoint.waveform_spec
        if waveform.shape.rank != 2 or waveform.dtype != tf.float32:
            raise ValueError(f"{where} takes a {_describe(waveform)}; expected "
                             "a float32 waveform of shape [batch, samples].")
        output = endpoint.output_spec
        if output.shape.rank != 3 or not output.dtype.is_floating:
            raise ValueError(f"{where} returns a {_describe(output)}; expected "
                             "float frame features of shape [batch, frames, "
                             "features].")
        if output.shape[2] is None:
            raise ValueError(f"{where} returns features of unknown size "
                             f"({_describe(output)}); expected a static last "
                             "dimension.")
        if endpoint.mask_spec is not None and (
                endpoint.mask_spec.shape.rank != 2):
            raise ValueError(f"{where} takes an {ATTENTION_MASK_NAME} "
                             f"{_describe(endpoint.mask_spec)}; expected "
                             "[batch, samples].")
        if self.use_attention_mask and endpoint.mask_spec is None:
            raise ValueError(f"{where} takes no {ATTENTION_MASK_NAME!r}, but "
                             "use_attention_mask=True was given; pass None or "
                             "False.")
        model_length = waveform.shape[1]
        if (self.fixed_input_length is not None and model_length is not None
                and model_length != self.fixed_input_length):
            raise ValueError(f"{where} takes exactly {model_length} samples, "
                             f"but fixed_input_length={self.fixed_input_length}"
                             ". Pass None or the model's length.")
        self.input_length = (self.fixed_input_length
                             if self.fixed_input_length is not None
                             else model_length)
        if self.input_length is not None:
            expected = conv_output_length(self.input_length,
                                          self.conv_kernel_sizes,
                                          self.conv_strides)
            if output.shape[1] is not None and output.shape[1] != expected:
                raise ValueError(
                        f"{where} returns {output.shape[1]} frames for "
                        f"{self.input_length} samples, but conv_kernel_sizes="
                        f"{list(self.conv_kernel_sizes)} and conv_strides="
                        f"{list(self.conv_strides)} give {expected}; pass the "
                        "model's convolution configuration.")
        self.output_dim = int(output.shape[2])

    def _track_saved_model_variables(self):
        pattern = re.compile(self.feature_extractor_pattern)
        names, frozen_names = saved_model_loader.track_saved_model_variables(
                self, self._saved_model, self._endpoint.function,
                is_frozen=lambda name: (self.freeze_feature_extractor
                                        and bool(pattern.search(name))))
        if (self.freeze_feature_extractor and self.trainable
                and not frozen_names):
            raise ValueError(
                    f"SavedModel {self.handle!r}: freeze_feature_extractor="
                    "True, but no variable name matches feature_extractor_"
                    f"pattern={self.feature_extractor_pattern!r} (first "
                    f"names: {names[:8]}). Pass a pattern that matches the "
                    "convolutional feature extractor.")
        self._frozen_variable_names = frozen_names

    @property
    def frozen_variable_names(self):
        """Names of the SavedModel variables frozen as the feature extractor."""
        return list(self._frozen_variable_names)

    @property
    def uses_attention_mask(self):
        """Whether calls pass an attention mask to the SavedModel."""
        return (self._endpoint.mask_spec is not None
                and self.use_attention_mask is not False)

    # === Computation ===

    def compute_frame_lengths(self, waveform_length):
        """Frame lengths for sample lengths, as `call` returns them.

        Args:
            waveform_length: int tensor [batch]. True sample counts.

        Returns:
            int32 tensor [batch].
        """
        lengths = tf.maximum(tf.cast(waveform_length, tf.int32), 0)
        if self.input_length is not None:
            lengths = tf.minimum(lengths, self.input_length)
        return frame_lengths(lengths, self.conv_kernel_sizes,
                             self.conv_strides)

    def call(self, waveform, waveform_length, training=None):
        waveform = tf.cast(waveform, tf.float32)
        lengths = tf.maximum(tf.cast(waveform_length, tf.int32), 0)
        samples = tf.shape(waveform)[1]
        if self.input_length is not None:
            target = self.input_length
            waveform = waveform[:, :target]
        else:
            target = tf.maximum(samples, min_input_length(
                    self.conv_kernel_sizes, self.conv_strides))
        waveform = tf.pad(waveform, [[0, 0], [0, target - tf.shape(
                waveform)[1]]])
        if self.input_length is not None:
            waveform = tf.ensure_shape(waveform, [None, self.input_length])
        lengths = tf.minimum(lengths, tf.shape(waveform)[1])
        sample_mask = tf.sequence_mask(lengths, tf.shape(waveform)[1])
        # Whatever the caller left in the padding, the model sees zeros.
        waveform = tf.where(sample_mask, waveform, 0.0)

        endpoint = self._endpoint
        mask = None
        if self.uses_attention_mask:
            mask = tf.cast(sample_mask, endpoint.mask_spec.dtype)
        if endpoint.is_signature:
            inputs = {endpoint.waveform_key: waveform}
            if mask is not None:
                inputs[ATTENTION_MASK_NAME] = mask
            features = endpoint.function(**inputs)
        else:
            call_kwargs = saved_model_loader.training_argument(
                endpoint.training_values, training, self.trainable)
            if mask is not None:
                call_kwargs[ATTENTION_MASK_NAME] = mask
            features = endpoint.function(waveform, **call_kwargs)
        if endpoint.output_key is not None:
            features = features[endpoint.output_key]
        features = tf.cast(features, tf.float32)

        frames = self.compute_frame_lengths(lengths)
        # Guards against a model whose convolutions differ from the
        # configured ones: never report more frames than exist.
        frames = tf.minimum(frames, tf.shape(features)[1])
        frame_mask = tf.sequence_mask(frames, tf.shape(features)[1])
        features = tf.where(frame_mask[:, :, None], features, 0.0)
        return features, frames

    def compute_output_spec(self, waveform, waveform_length, training=None):
        frames = None
        if self.input_length is not None:
            frames = conv_output_length(self.input_length,
                                        self.conv_kernel_sizes,
                                        self.conv_strides)
        batch = waveform.shape[0]
        return (keras.KerasTensor((batch, frames, self.output_dim),
                                  dtype="float32"),
                keras.KerasTensor((batch,), dtype="int32"))

    def get_config(self):
        config = super().get_config()
        config.update({
                "handle": self.handle,
                "freeze_feature_extractor": self.freeze_feature_extractor,
                "fixed_input_length": self.fixed_input_length,
                "signature": self.signature,
                "output_key": self.output_key,
                "use_attention_mask": self.use_attention_mask,
                "feature_extractor_pattern": self.feature_extractor_pattern,
                "conv_kernel_sizes": list(self.conv_kernel_sizes),
                "conv_strides": list(self.conv_strides),
        })
        return config

