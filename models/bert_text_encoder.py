"""A BERT-style TF-Hub / SavedModel text encoder as fine-tunable Keras layers.

Our folds store text as word ids into the fold's own vocabulary (dic.pkl):
`text_ids` int32 [B, 128], right-padded with 0, and `text_length` [B]. A BERT
handle wants WordPiece ids into ITS vocabulary. Two layers bridge that, so
that a model (and its exported SavedModel) still takes our `text_ids`:

* `WordPieceBridge`: our word ids → `[CLS] pieces… [SEP]` WordPiece ids plus
  `input_mask` / `input_type_ids`, through a constant table "our word id →
  list of WordPiece ids" (a ragged gather; no Python per example). The table
  is computed once per fold from `fold.vocabulary` and the handle's
  vocab.txt by `preprocessing.text_features.wordpiece_table` (joined in
  `experiment.py`: `models/` and `preprocessing/` never import each other)
  and stored in the model config.
* `BertTextEncoder`: runs the SavedModel and returns one vector per text,
  its `pooled_output` ("pooled", the default: tanh(dense([CLS])), what
  BERT's classification fine-tuning reads) or the mean of `sequence_output`
  over the real positions, [CLS] and [SEP] included ("mean").

Loading goes through `models/saved_model_loader.py` (shared with
`Wav2Vec2Encoder`): `tf.saved_model.load`, and every SavedModel variable
registered as a `keras.Variable` wrapping the same `tf.Variable`, so Keras
optimizers fine-tune it and exports write it out.

The handle's interface (TF-Hub's TF2 BERT encoders, e.g.
bert_en_uncased_L-2_H-128_A-2, and `tools/make_bert_standin.py`): calling the
loaded object with a dict `{input_word_ids, input_mask, input_type_ids}` of
int32 [B, L] (and `training=`) returns a dict holding `sequence_output`
[B, L, H] and `pooled_output` [B, H]; the object has `vocab_file` (an Asset)
and `do_lower_case` (a bool tf.Variable). Signatures with those keyword
inputs (e.g. `serving_default`) work too, via `signature=`.
"""

import numpy as np
import keras
import tensorflow as tf

from models import saved_model_loader

# The encoder layer's name in TRANSFORMER_FUSION; `models/optimizers.py`
# gives it its own learning rate (--encoder_lr).
TEXT_ENCODER_LAYER_NAME = "text_encoder"
INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")
POOLINGS = ("pooled", "mean")
_OWNER = "BertTextEncoder"
_EXPECTED_INPUTS = ("a dict of int32 [batch, length] tensors "
                    "{input_word_ids, input_mask, input_type_ids} (a "
                    "BERT-style TF-Hub text encoder)")


def handle_vocabulary(handle):
    """The WordPiece vocabulary file and casing of a BERT-style handle.

    Loads the SavedModel once (for BERT-base a few seconds) to read its
    `vocab_file` asset and `do_lower_case` variable.

    Args:
        handle: str. TF-Hub URL or SavedModel directory.

    Returns:
        dict: "vocab_file" (str, a local path) and "do_lower_case" (bool).

    Raises:
        ValueError: the handle does not load, or lacks `vocab_file` (naming
            the path and what was found).
    """
    path, loaded = saved_model_loader.load_saved_model(handle, _OWNER)
    vocab_file = getattr(loaded, "vocab_file", None)
    if vocab_file is None or not hasattr(vocab_file, "asset_path"):
        found = sorted(name for name in dir(loaded)
                       if not name.startswith("_"))[:12]
        raise ValueError(
            f"{_OWNER} handle {handle!r}: expected a BERT-style SavedModel "
            f"in {path!r} with a `vocab_file` asset (WordPiece vocab.txt) "
            f"and a `do_lower_case` variable; found attributes {found}.")
    vocab_path = vocab_file.asset_path
    if hasattr(vocab_path, "numpy"):
        vocab_path = vocab_path.numpy()
    if isinstance(vocab_path, bytes):
        vocab_path = vocab_path.decode("utf-8")
    do_lower_case = getattr(loaded, "do_lower_case", None)
    if do_lower_case is None:
        # Cased and uncased BERTs both exist: guessing would silently split
        # words into the wrong pieces.
        raise ValueError(
            f"{_OWNER} handle {handle!r}: the SavedModel in {path!r} has a "
            "vocab_file but no `do_lower_case` variable; expected both (a "
            "TF2 BERT encoder from TF-Hub).")
    return {"vocab_file": str(vocab_path),
            "do_lower_case": bool(np.asarray(do_lower_case.numpy()))}


def _check_pieces(pieces, where):
    required = ("pieces", "cls_id", "sep_id", "unk_id")
    if not isinstance(pieces, dict) or any(k not in pieces
                                           for k in required):
        found = sorted(pieces) if isinstance(pieces, dict) else pieces
        raise ValueError(f"{where}: expected a dict with {list(required)} "
                         "(preprocessing.text_features.wordpiece_table); "
                         f"found {found!r}.")
    if not pieces["pieces"]:
        raise ValueError(f"{where}: the piece table is empty.")


@keras.saving.register_keras_serializable(package="mse")
class WordPieceBridge(keras.layers.Layer):
    """Our word ids → BERT inputs, through a word id → WordPiece ids table.

    Each example's words 0..length−1 are replaced by their pieces
    (concatenated), truncated to `max_length − 2` pieces and wrapped as
    `[CLS] pieces… [SEP]`; then right-padded with 0 ([PAD]).

    Inputs:
        text_ids: int [B, T]. Our word ids; ids at and beyond each length
            are ignored whatever they hold. An id outside the table (not
            from this fold's vocabulary) maps to [UNK].
        text_length: int [B]. Words per example (clipped to [0, T]).

    Outputs (a tuple of int32 [B, L]):
        input_word_ids: WordPiece ids, 0 past each example's pieces.
        input_mask: 1 on [CLS], the pieces and [SEP], 0 on padding.
        input_type_ids: all 0 (one segment).
        L = `max_length` when `fixed_length`, else the batch's longest
        sequence (at most `max_length`): a batch pads only as far as it
        needs, and an example gets the same real positions alone or in any
        batch.

    Args:
        pieces: dict with "pieces" (list of V lists of int: row i = the
            WordPiece ids of our word id i), "cls_id", "sep_id", "unk_id".
        max_length: int >= 2. Longest sequence fed to the encoder.
        fixed_length: bool. Always pad to `max_length`.
    """

    def __init__(self, pieces, max_length=128, fixed_length=False,
                 **kwargs):
        super().__init__(**kwargs)
        _check_pieces(pieces, self.name)
        if max_length < 2:
            raise ValueError(f"{self.name}: max_length must be >= 2 (room "
                             f"for [CLS] and [SEP]); found {max_length}.")
        self.pieces = {key: pieces[key] for key in
                       ("pieces", "cls_id", "sep_id", "unk_id")}
        self.max_length = int(max_length)
        self.fixed_length = bool(fixed_length)
        # Flat values + row lengths of the ragged table; one extra last row
        # ([UNK]) receives out-of-range ids.
        rows = [list(row) for row in pieces["pieces"]] + [
            [int(pieces["unk_id"])]]
        self.vocab_size = len(rows) - 1
        self._values = np.asarray([p for row in rows for p in row],
                                  np.int32)
        self._row_lengths = np.asarray([len(row) for row in rows], np.int64)

    @property
    def max_piece_id(self):
        return int(max(self._values.max(initial=0), self.pieces["cls_id"],
                       self.pieces["sep_id"]))

    def call(self, text_ids, text_length):
        ids = tf.cast(text_ids, tf.int32)
        steps = tf.shape(ids)[1]
        lengths = tf.clip_by_value(tf.cast(text_length, tf.int32), 0, steps)
        ids = tf.where((ids >= 0) & (ids < self.vocab_size), ids,
                       self.vocab_size)
        words = tf.RaggedTensor.from_tensor(ids, lengths=lengths)
        table = tf.RaggedTensor.from_row_lengths(
            tf.constant(self._values), tf.constant(self._row_lengths))
        # [B, (words), (pieces)] → [B, (pieces)], then room for [CLS]/[SEP].
        pieces = tf.gather(table, words).merge_dims(1, 2)
        pieces = pieces[:, :self.max_length - 2]
        batch = tf.shape(ids)[0]
        cls = tf.RaggedTensor.from_tensor(
            tf.fill([batch, 1], np.int32(self.pieces["cls_id"])))
        sep = tf.RaggedTensor.from_tensor(
            tf.fill([batch, 1], np.int32(self.pieces["sep_id"])))
        sequence = tf.concat([cls, pieces, sep], axis=1)
        if self.fixed_length:
            word_ids = sequence.to_tensor(0, shape=[None, self.max_length])
        else:
            word_ids = sequence.to_tensor(0)
        mask = tf.sequence_mask(sequence.row_lengths(),
                                tf.shape(word_ids)[1], dtype=tf.int32)
        return word_ids, mask, tf.zeros_like(word_ids)

    def compute_output_spec(self, text_ids, text_length):
        length = self.max_length if self.fixed_length else None
        # Three distinct tensors: the functional graph tells outputs apart
        # by identity (one object three times would wire all three inputs
        # of the encoder to the last output).
        return tuple(keras.KerasTensor((text_ids.shape[0], length),
                                       dtype="int32") for _ in range(3))

    def get_config(self):
        return {**super().get_config(), "pieces": self.pieces,
                "max_length": self.max_length,
                "fixed_length": self.fixed_length}


class _Endpoint:
    """The called function and what it was traced for.

    Attributes:
        function, is_signature: as `saved_model_loader.find_endpoint`.
        input_specs: dict name → tf.TensorSpec of the three inputs.
        training_values: set of bool `training` values traced for (empty:
            the function takes no `training`).
        hidden: int. H.
        input_length: int or None. A fixed L, if the specs have one.
    """

    def __init__(self, function, is_signature):
        self.function = function
        self.is_signature = is_signature
        self.input_specs = None
        self.training_values = set()
        self.hidden = None
        self.input_length = None


def _check_inputs(inputs, where):
    if not isinstance(inputs, dict) or any(
            not saved_model_loader.is_spec(inputs.get(name))
            for name in INPUT_NAMES):
        found = ({k: saved_model_loader.describe(v)
                  for k, v in inputs.items()} if isinstance(inputs, dict)
                 else saved_model_loader.describe(inputs))
        raise ValueError(f"{where} takes {found}; expected "
                         f"{_EXPECTED_INPUTS}.")
    for name in INPUT_NAMES:
        spec = inputs[name]
        if spec.shape.rank != 2 or not spec.dtype.is_integer:
            raise ValueError(f"{where} takes {name} as a "
                             f"{saved_model_loader.describe(spec)}; expected "
                             f"{_EXPECTED_INPUTS}.")
    return {name: inputs[name] for name in INPUT_NAMES}


def _check_outputs(outputs, where):
    if not isinstance(outputs, dict) or not {
            "pooled_output", "sequence_output"} <= set(outputs):
        found = sorted(outputs) if isinstance(outputs, dict) else (
            saved_model_loader.describe(outputs))
        raise ValueError(f"{where} returns {found}; expected a dict with "
                         "'pooled_output' [batch, hidden] and "
                         "'sequence_output' [batch, length, hidden] (a "
                         "BERT-style TF-Hub text encoder).")
    pooled, sequence = outputs["pooled_output"], outputs["sequence_output"]
    if (pooled.shape.rank != 2 or sequence.shape.rank != 3
            or pooled.shape[-1] is None):
        raise ValueError(f"{where} returns pooled_output "
                         f"{saved_model_loader.describe(pooled)} and "
                         "sequence_output "
                         f"{saved_model_loader.describe(sequence)}; expected "
                         "[batch, hidden] and [batch, length, hidden] with a "
                         "known hidden size.")
    return int(pooled.shape[-1])


def _inspect(function, is_signature, where):
    endpoint = _Endpoint(function, is_signature)
    if is_signature:
        calls = [(dict(function.structured_input_signature[1]),
                  function.structured_outputs)]
        first = None
    else:
        calls = saved_model_loader.traced_calls(function, where,
                                                _EXPECTED_INPUTS)
        first = saved_model_loader.first_parameter(function)
    for bound, outputs in calls:
        inputs = bound if is_signature else bound.get(first)
        specs = _check_inputs(inputs, where)
        endpoint.input_specs = endpoint.input_specs or specs
        if not is_signature and isinstance(bound.get("training"), bool):
            endpoint.training_values.add(bound["training"])
        endpoint.hidden = _check_outputs(outputs, where)
    lengths = {spec.shape[1] for spec in endpoint.input_specs.values()}
    if len(lengths) == 1 and None not in lengths:
        endpoint.input_length = int(lengths.pop())
    return endpoint


@keras.saving.register_keras_serializable(package="mse")
class BertTextEncoder(keras.layers.Layer):
    """A BERT-style SavedModel (TF-Hub handle or directory) → text vectors.

    Inputs (as `WordPieceBridge` returns them), int [B, L] each:
        input_word_ids, input_mask (1 = real position), input_type_ids.

    Output: float32 [B, H]. "pooled": the handle's `pooled_output`; "mean":
    `sequence_output` averaged over the positions with input_mask 1 ([CLS]
    and [SEP] included; padded positions get weight 0). The SavedModel
    masks padded keys in its attention, so either vector of an example is
    the same alone or in a padded batch.

    Variables: each SavedModel variable is tracked as a `keras.Variable`
    wrapping the same `tf.Variable`; with `trainable=True` all those the
    SavedModel marks trainable are fine-tuned, with `trainable=False` none.
    `regularization_losses` of the SavedModel are not added. The SavedModel
    runs in training mode (dropout) only when the layer is trainable and
    called with `training=True`, as with `hub.KerasLayer`.

    Args:
        handle: str. A TF-Hub URL (cached under $TFHUB_CACHE_DIR) or a local
            TF2 SavedModel directory (tools/make_bert_standin.py writes a
            random stand-in).
        trainable: bool. Fine-tune the encoder.
        pooling: "pooled" or "mean".
        signature: str or None. None calls `__call__` (TF-Hub's reusable
            form) or else the `serving_default` signature; a name picks that
            signature or tf.function.
        **kwargs: base layer arguments (`name`).

    Attributes:
        input_length: int or None. A fixed L the SavedModel requires.
        output_dim: int. H.
        vocab_size: int or None. Lines of the handle's vocab.txt, if it
            has one (piece ids must be below it).
    """

    def __init__(self, handle, trainable=True, pooling="pooled",
                 signature=None, **kwargs):
        # The SavedModel takes integer ids and runs in its own dtype.
        super().__init__(trainable=trainable, autocast=False, **kwargs)
        if pooling not in POOLINGS:
            raise ValueError(f"{_OWNER}: pooling must be one of {POOLINGS}; "
                             f"found {pooling!r}.")
        self.handle = handle
        self.pooling = pooling
        self.signature = signature
        self._path, self._saved_model = saved_model_loader.load_saved_model(
            handle, _OWNER)
        function, is_signature, where = saved_model_loader.find_endpoint(
            self._saved_model, signature,
            f"{_OWNER}: SavedModel {handle!r} ({self._path})")
        self._endpoint = _inspect(function, is_signature, where)
        self.input_length = self._endpoint.input_length
        self.output_dim = self._endpoint.hidden
        self.vocab_size = self._read_vocab_size()
        saved_model_loader.track_saved_model_variables(
            self, self._saved_model, function)
        self.built = True

    def _read_vocab_size(self):
        vocab_file = getattr(self._saved_model, "vocab_file", None)
        if vocab_file is None or not hasattr(vocab_file, "asset_path"):
            return None
        path = vocab_file.asset_path.numpy().decode("utf-8")
        with tf.io.gfile.GFile(path) as f:
            return sum(1 for _ in f)

    def call(self, input_word_ids, input_mask, input_type_ids,
             training=None):
        endpoint = self._endpoint
        given = {"input_word_ids": input_word_ids, "input_mask": input_mask,
                 "input_type_ids": input_type_ids}
        inputs = {}
        for name, spec in endpoint.input_specs.items():
            value = tf.cast(given[name], spec.dtype)
            if endpoint.input_length is not None:
                value = tf.ensure_shape(value, [None, endpoint.input_length])
            inputs[name] = value
        if endpoint.is_signature:
            outputs = endpoint.function(**inputs)
        else:
            outputs = endpoint.function(
                inputs, **saved_model_loader.training_argument(
                    endpoint.training_values, training, self.trainable))
        if self.pooling == "pooled":
            return tf.cast(outputs["pooled_output"], tf.float32)
        sequence = tf.cast(outputs["sequence_output"], tf.float32)
        weights = tf.cast(input_mask, tf.float32)[:, :, None]
        total = tf.reduce_sum(sequence * weights, axis=1)
        return total / tf.maximum(tf.reduce_sum(weights, axis=1), 1.0)

    def compute_output_spec(self, input_word_ids, input_mask,
                            input_type_ids, training=None):
        return keras.KerasTensor((input_word_ids.shape[0], self.output_dim),
                                 dtype="float32")

    def get_config(self):
        return {**super().get_config(), "handle": self.handle,
                "pooling": self.pooling, "signature": self.signature}


def text_vector(text_ids, text_length, handle, pieces, trainable=True,
                pooling="pooled", max_length=128):
    """Bridge + encoder on a model's text inputs: t [B, H].

    Args:
        text_ids, text_length: the model's KerasTensors.
        handle, trainable, pooling: as `BertTextEncoder`.
        pieces: as `WordPieceBridge` (from `text_features.wordpiece_table`).
        max_length: int. Longest WordPiece sequence ([CLS] and [SEP]
            included); a handle with a fixed input length uses that instead.

    Raises:
        ValueError: `pieces` holds ids beyond the handle's vocabulary (the
            table was built for another handle).
    """
    encoder = BertTextEncoder(handle, trainable=trainable, pooling=pooling,
                              name=TEXT_ENCODER_LAYER_NAME)
    fixed = encoder.input_length is not None
    bridge = WordPieceBridge(
        pieces, max_length=encoder.input_length if fixed else max_length,
        fixed_length=fixed, name="wordpiece_bridge")
    if encoder.vocab_size is not None and (
            bridge.max_piece_id >= encoder.vocab_size):
        raise ValueError(
            f"{_OWNER} handle {handle!r}: the WordPiece table holds id "
            f"{bridge.max_piece_id}, but the handle's vocab.txt has "
            f"{encoder.vocab_size} entries; rebuild the table from this "
            "handle's vocabulary (experiment.model_kwargs does).")
    word_ids, mask, type_ids = bridge(text_ids, text_length)
    return encoder(word_ids, mask, type_ids)
