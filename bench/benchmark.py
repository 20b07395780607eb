"""Speed of ARE/TRE/MDRE/MDREA at reference shapes, against plain Keras and PyTorch.

Not a test. For each model it prints train and eval examples/s (median and
best of the timed steps / passes), the input pipeline alone, SavedModel
serving latency (p50/p99 at batch 1 for one 400-frame (4 s) utterance, and
at batch 64) and peak RSS, for these variants:

* "ours": `models.training.Trainer` + `preprocessing.input_pipeline` with
  the models as they are (TF1GRU's fast recurrence in one stream per core;
  length-grouped evaluation; serving of only the real frames), under
  train.py's `--cpu_threads=auto` threading (one thread per op, one
  inter-op thread per core).
* "ours_jit": the same with `TrainConfig(jit_compile=True)`.
* "ours_keras_gru": "ours" with TF1GRU computed the former way
  (`layers.reference_tf1_gru`, Keras' masked GRU), evaluation in split
  order and TF's default runtime: roughly the state before issue 17
  (the evaluation loop is today's).
* "plain": the same architecture written the plain Keras way
  (`keras.layers.GRU` defaults, `Dense`, `model.fit` on
  `tf.data.Dataset.from_tensor_slices(...).batch(...)`, every utterance fed
  at 750 frames), with TF's default runtime.
* "plain_tuned": "plain" under ours' threading (one thread per op): how
  much of ours' lead is the threading, not the code.
* "torch": the same architecture in PyTorch (`nn.GRU`, `nn.Linear`, Adam,
  padded batches at 750 frames, eager). Only when `torch` is importable (it
  is not a dependency of the toolkit).

Every ratio of a variant to "plain" (and to "torch", when measured) is
printed under it. Reference shapes: batch 128, MFCC [750, 39] (frames
150–1000 drawn uniformly, clipped to 750), prosody [35], text [128] (3–40
tokens), V = 3747, E = 300, 200 GRU units, keep probabilities 0.7 / 0.3.

Each (model, variant) runs in a fresh child process so that peak RSS is
its own. The default run (ARE and MDREA; ours, plain and torch; 20 timed
train steps) takes a few minutes on a quiet 2-core machine:

    python bench/benchmark.py

    python bench/benchmark.py --models=ARE,TRE,MDRE,MDREA \\
        --variants=ours,ours_keras_gru,ours_jit,plain,plain_tuned,torch

`--profile` instead times MDREA's parts (audio GRU, text GRU, attention and
head, optimizer update, input pipeline) at the same shapes.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tasks import datasets  # noqa: E402 (after the path)

MODELS = ("ARE", "TRE", "MDRE", "MDREA")
VARIANTS = ("ours", "ours_jit", "ours_keras_gru", "plain", "plain_tuned",
            "torch")
SERVE_FRAMES = 400
BATCH = 128
FRAMES = 750
VOCAB = 3747
EMBEDDING = 300
UNITS = 200
LABELS = ("angry", "happy", "sad", "neutral")


def _parse(argv):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--models", default="ARE,MDREA",
                        help=f"Comma list of {MODELS}.")
    parser.add_argument("--variants", default="ours,plain,torch",
                        help=f"Comma list of {VARIANTS} (torch is skipped "
                        "when it is not installed).")
    parser.add_argument("--train_steps", type=int, default=20,
                        help="Timed train steps (after warm-up).")
    parser.add_argument("--eval_repeats", type=int, default=3,
                        help="Timed passes over the eval set (after one "
                        "warm-up pass).")
    parser.add_argument("--warmup_steps", type=int, default=2)
    parser.add_argument("--num_examples", type=int, default=512,
                        help="Synthetic examples (train = eval set).")
    parser.add_argument("--serve_calls_1", type=int, default=30,
                        help="Timed serving calls at batch 1.")
    parser.add_argument("--serve_calls_64", type=int, default=10,
                        help="Timed serving calls at batch 64.")
    parser.add_argument("--pipeline_batches", type=int, default=20)
    parser.add_argument("--profile", action="store_true",
                        help="Time MDREA's parts instead.")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json_out", default=None,
                        help="Also write the rows as JSON here.")
    return parser.parse_args(argv)


# --- Data ----------------------------------------------------------------

def _split(num_examples, seed=0):
    """A synthetic split at reference shapes (realistic lengths)."""
    import numpy as np

    from preprocessing import reference_arrays

    rng = np.random.default_rng(seed)
    seq_len = rng.integers(150, 1001, num_examples).astype(np.int32)
    mfcc = np.zeros((num_examples, FRAMES, 39), np.float32)
    for row, length in enumerate(np.minimum(seq_len, FRAMES)):
        mfcc[row, :length] = rng.standard_normal((length, 39))
    text_ids = np.zeros((num_examples, 128), np.int32)
    for row, length in enumerate(rng.integers(3, 41, num_examples)):
        text_ids[row, :length] = rng.integers(2, VOCAB, length)
    return reference_arrays.Split(
        mfcc=mfcc, seq_len=seq_len,
        prosody=rng.standard_normal((num_examples, 35)).astype(np.float32),
        text_ids=text_ids,
        label=rng.integers(0, 4, num_examples).astype(np.int32))


def _serving_inputs(split, names, batch, frames=FRAMES):
    """Model inputs of the first `batch` utterances, `frames` wide.

    Batch 1 is one utterance of SERVE_FRAMES real frames; a client of
    "ours" sends just those (frames=SERVE_FRAMES), the fixed-width plain
    model gets them zero-padded to 750.
    """
    import numpy as np

    from preprocessing import input_pipeline

    lengths = np.minimum(split.seq_len[:batch], FRAMES)
    mfcc = split.mfcc[:batch, :frames].copy()
    if batch == 1:
        # Utterance 0 with exactly SERVE_FRAMES real frames.
        row = int(np.argmax(split.seq_len >= SERVE_FRAMES))
        lengths = np.array([SERVE_FRAMES], np.int32)
        mfcc = np.zeros((1, frames, 39), np.float32)
        mfcc[0, :SERVE_FRAMES] = split.mfcc[row, :SERVE_FRAMES]
    all_inputs = {
        "audio_mfcc": mfcc,
        "audio_length": lengths.astype(np.int32),
        "audio_prosody": split.prosody[:batch],
        "text_ids": split.text_ids[:batch],
        "text_length": input_pipeline.text_lengths(split.text_ids[:batch]),
    }
    return {name: all_inputs[name] for name in names}


# --- Measurements shared by both variants ----------------------------------

def _rate(seconds, steps, batch=BATCH):
    return steps * batch / seconds


def _rates(seconds, batch=BATCH):
    """Median and best examples/s of per-step (or per-pass) times."""
    import numpy as np

    return batch / float(np.median(seconds)), batch / float(np.min(seconds))


def _latency(function, inputs, calls):
    """p50 and p99 (ms) of `calls` timed calls after 3 warm-up calls."""
    import numpy as np

    for _ in range(3):
        function(inputs)
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        function(inputs)
        times.append((time.perf_counter() - started) * 1000)
    return (float(np.percentile(times, 50)), float(np.percentile(times, 99)))


def _serving(export, names, split, args, batch1_frames=FRAMES):
    """Exports with `export(dir)`, reloads, times serving_default."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "saved_model")
        export(path)
        serve = tf.saved_model.load(path).signatures["serving_default"]

        def call(inputs):
            outputs = serve(**{k: tf.constant(v) for k, v in inputs.items()})
            for value in outputs.values():
                value.numpy()

        return _serve_latencies(call, names, split, args, batch1_frames)


def _serve_latencies(call, names, split, args, batch1_frames):
    result = {}
    for batch, calls, frames in ((1, args.serve_calls_1, batch1_frames),
                                 (64, args.serve_calls_64, FRAMES)):
        p50, p99 = _latency(call, _serving_inputs(split, names, batch,
                                                  frames), calls)
        result[f"serve{batch}_p50_ms"] = p50
        result[f"serve{batch}_p99_ms"] = p99
    return result


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- Ours ----------------------------------------------------------------

def _ours(model_name, args, jit_compile, former_gru=False):
    import keras
    import tensorflow as tf

    from models import export as export_lib
    from models import gru_recurrence
    from models import layers
    from models import registry
    from models import training

    if former_gru:
        def former_call(self, inputs, training=None):
            return layers.reference_tf1_gru(self, *inputs, training=training)

        layers.TF1GRU.call = former_call
    else:
        # As train.py's default --cpu_threads=auto does, before any TF op.
        print(f"[bench] {gru_recurrence.configure_cpu_threads()}",
              file=sys.stderr)
    split = _split(args.num_examples)
    kwargs = registry.model_arguments(
        model_name, vocab_size=VOCAB, embedding_dim=EMBEDDING,
        audio_units=UNITS, text_units=UNITS, audio_keep_prob=0.7,
        text_keep_prob=0.3, seed=0)
    config = training.TrainConfig(batch_size=BATCH, jit_compile=jit_compile)
    keras.utils.set_random_seed(0)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = training.Trainer(
            lambda: registry.build_model(model_name, **kwargs),
            tf.distribute.get_strategy(), run_dir, config, 4, LABELS,
            log=lambda _: None)
    make_train = datasets.train_dataset_fn(split, BATCH, "sample", 0,
                                           FRAMES)
    result = {}

    # Input pipeline alone: the sampler, gather and crop, no model.
    dataset = make_train(tf.distribute.InputContext(), 0)
    iterator = iter(dataset)
    next(iterator)
    started = time.perf_counter()
    for _ in range(args.pipeline_batches):
        next(iterator)
    result["pipeline_ex_s"] = _rate(time.perf_counter() - started,
                                    args.pipeline_batches)

    # Train steps on the real pipeline (the Trainer's own step function).
    train_data = trainer._train_dataset(make_train, 0)
    train_step = trainer._train_function()
    iterator = iter(train_data)
    started = time.perf_counter()
    for _ in range(args.warmup_steps):
        float(train_step(iterator))
    result["warmup_s"] = time.perf_counter() - started
    times = []
    for _ in range(args.train_steps):
        started = time.perf_counter()
        float(train_step(iterator))
        times.append(time.perf_counter() - started)
    result["train_ex_s"], result["train_best_ex_s"] = _rates(times)

    # Evaluation over the whole split, as the Trainer evaluates dev/test
    # (the first pass traces).
    eval_data = training.distribute_eval_dataset(
        trainer.strategy, datasets.eval_dataset(
            split, BATCH, FRAMES, by_length=not former_gru))
    trainer.evaluate(eval_data)
    times = []
    for _ in range(args.eval_repeats):
        started = time.perf_counter()
        trainer.evaluate(eval_data)
        times.append(time.perf_counter() - started)
    result["eval_ex_s"], result["eval_best_ex_s"] = _rates(times, len(split))

    result.update(_serving(
        lambda path: export_lib.export_saved_model(trainer.model, path,
                                                   LABELS),
        [tensor.name for tensor in trainer.model.inputs], split, args,
        batch1_frames=SERVE_FRAMES))
    return result


# --- Plain Keras -----------------------------------------------------------

def _plain_model(model_name):
    """The same architecture with Keras defaults (no masks, reset_after)."""
    import keras

    audio = {"audio_mfcc": keras.Input((FRAMES, 39), name="audio_mfcc"),
             "audio_prosody": keras.Input((35,), name="audio_prosody")}
    text = {"text_ids": keras.Input((128,), dtype="int32", name="text_ids")}
    inputs, parts = {}, {}
    if model_name != "TRE":
        inputs.update(audio)
        state = keras.layers.GRU(UNITS, dropout=0.3)(audio["audio_mfcc"])
        parts["audio"] = keras.layers.Concatenate()(
            [state, audio["audio_prosody"]])
    if model_name != "ARE":
        inputs.update(text)
        embedded = keras.layers.Embedding(VOCAB, EMBEDDING)(text["text_ids"])
        sequence, state = keras.layers.GRU(
            UNITS, dropout=0.7, return_sequences=True,
            return_state=True)(embedded)
        parts["text"], parts["text_sequence"] = state, sequence
    if model_name == "ARE":
        head = parts["audio"]
    elif model_name == "TRE":
        head = parts["text"]
    elif model_name == "MDRE":
        head = keras.layers.Concatenate()([
            keras.layers.Dense((UNITS + 35) // 2)(parts["audio"]),
            keras.layers.Dense(UNITS // 2)(parts["text"])])
    else:
        query = keras.layers.Dense(UNITS)(parts["audio"])
        context = keras.layers.Attention()(
            [keras.layers.Reshape((1, UNITS))(query),
             parts["text_sequence"]])
        head = keras.layers.Concatenate()(
            [keras.layers.Flatten()(context), query])
    logits = keras.layers.Dense(4)(head)
    return keras.Model(inputs, logits)


def _step_timer():
    """A Keras callback recording the wall time of every train batch."""
    import keras

    class StepTimer(keras.callbacks.Callback):

        def __init__(self):
            super().__init__()
            self.times = []

        def on_train_batch_begin(self, batch, logs=None):
            self.started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter() - self.started)

    return StepTimer()


def _plain(model_name, args):
    import keras
    import numpy as np
    import tensorflow as tf

    split = _split(args.num_examples)
    keras.utils.set_random_seed(0)
    model = _plain_model(model_name)
    model.compile(optimizer=keras.optimizers.Adam(clipvalue=10.0),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True))
    arrays = {"audio_mfcc": split.mfcc, "audio_prosody": split.prosody,
              "text_ids": split.text_ids}
    features = {tensor.name: arrays[tensor.name] for tensor in model.inputs}
    one_hot = np.eye(4, dtype=np.float32)[split.label]
    dataset = tf.data.Dataset.from_tensor_slices(
        (features, one_hot)).batch(BATCH)
    result = {}

    started, seen = time.perf_counter(), 0
    for batch_features, _ in dataset.repeat().take(args.pipeline_batches):
        seen += int(tf.shape(batch_features[model.inputs[0].name])[0])
    result["pipeline_ex_s"] = seen / (time.perf_counter() - started)

    steps = args.warmup_steps + args.train_steps
    timer = _step_timer()
    model.fit(dataset.repeat(), steps_per_epoch=steps, epochs=1, verbose=0,
              callbacks=[timer])
    result["warmup_s"] = sum(timer.times[:args.warmup_steps])
    result["train_ex_s"], result["train_best_ex_s"] = _rates(
        timer.times[args.warmup_steps:])

    model.evaluate(dataset, verbose=0)
    times = []
    for _ in range(args.eval_repeats):
        started = time.perf_counter()
        model.evaluate(dataset, verbose=0)
        times.append(time.perf_counter() - started)
    result["eval_ex_s"], result["eval_best_ex_s"] = _rates(times, len(split))

    def export(path):
        model.export(path, format="tf_saved_model", verbose=False)

    result.update(_serving(export, [tensor.name for tensor in model.inputs],
                           split, args))
    return result


# --- PyTorch ---------------------------------------------------------------

def _torch_model(model_name):
    """The same architecture in PyTorch (nn.GRU, no packing: padded)."""
    import torch
    from torch import nn

    class Net(nn.Module):

        def __init__(self):
            super().__init__()
            if model_name != "TRE":
                self.audio_dropout = nn.Dropout(0.3)
                self.audio_gru = nn.GRU(39, UNITS, batch_first=True)
            if model_name != "ARE":
                self.embedding = nn.Embedding(VOCAB, EMBEDDING)
                self.text_dropout = nn.Dropout(0.7)
                self.text_gru = nn.GRU(EMBEDDING, UNITS, batch_first=True)
            if model_name == "MDRE":
                self.audio_projection = nn.Linear(UNITS + 35,
                                                  (UNITS + 35) // 2)
                self.text_projection = nn.Linear(UNITS, UNITS // 2)
            if model_name == "MDREA":
                self.query = nn.Linear(UNITS + 35, UNITS)
            widths = {"ARE": UNITS + 35, "TRE": UNITS,
                      "MDRE": (UNITS + 35) // 2 + UNITS // 2,
                      "MDREA": 2 * UNITS}
            self.logits = nn.Linear(widths[model_name], 4)

        def forward(self, mfcc, prosody, text_ids):
            if model_name != "TRE":
                _, state = self.audio_gru(self.audio_dropout(mfcc))
                audio = torch.cat([state[-1], prosody], dim=-1)
            if model_name != "ARE":
                sequence, state = self.text_gru(
                    self.text_dropout(self.embedding(text_ids)))
                text = state[-1]
            if model_name == "ARE":
                head = audio
            elif model_name == "TRE":
                head = text
            elif model_name == "MDRE":
                head = torch.cat([self.audio_projection(audio),
                                  self.text_projection(text)], dim=-1)
            else:
                query = self.query(audio)
                weights = torch.softmax(
                    torch.einsum("bth,bh->bt", sequence, query), dim=-1)
                context = torch.einsum("bt,bth->bh", weights, sequence)
                head = torch.cat([context, query], dim=-1)
            return self.logits(head)

    return Net()


def _torch(model_name, args):
    import numpy as np
    import torch

    split = _split(args.num_examples)
    torch.manual_seed(0)
    model = _torch_model(model_name)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    mfcc = torch.from_numpy(split.mfcc)
    prosody = torch.from_numpy(split.prosody)
    text_ids = torch.from_numpy(split.text_ids.astype(np.int64))
    one_hot = torch.from_numpy(np.eye(4, dtype=np.float32)[split.label])
    starts = list(range(0, len(split), BATCH))

    def batch(start, size=BATCH):
        return (mfcc[start:start + size], prosody[start:start + size],
                text_ids[start:start + size])

    result = {"pipeline_ex_s": float("nan")}
    model.train()
    times = []
    for step in range(args.warmup_steps + args.train_steps):
        start = starts[step % len(starts)]
        started = time.perf_counter()
        optimizer.zero_grad()
        loss = loss_fn(model(*batch(start)), one_hot[start:start + BATCH])
        loss.backward()
        torch.nn.utils.clip_grad_value_(model.parameters(), 10.0)
        optimizer.step()
        times.append(time.perf_counter() - started)
    result["warmup_s"] = sum(times[:args.warmup_steps])
    result["train_ex_s"], result["train_best_ex_s"] = _rates(
        times[args.warmup_steps:])

    model.eval()
    times = []
    with torch.no_grad():
        for _ in range(args.eval_repeats + 1):
            started = time.perf_counter()
            for start in starts:
                model(*batch(start)).numpy()
            times.append(time.perf_counter() - started)
    result["eval_ex_s"], result["eval_best_ex_s"] = _rates(times[1:],
                                                           len(split))

    def call(inputs):
        with torch.no_grad():
            model(*(torch.from_numpy(np.asarray(inputs[name]))
                    for name in ("audio_mfcc", "audio_prosody",
                                 "text_ids"))).numpy()

    names = ("audio_mfcc", "audio_length", "audio_prosody", "text_ids",
             "text_length")
    result.update(_serve_latencies(call, names, split, args, SERVE_FRAMES))
    return result


# --- Profile ---------------------------------------------------------------

def _profile(args):
    """Times forward + backward of MDREA's parts at reference shapes."""
    import keras
    import numpy as np
    import tensorflow as tf

    from models import layers
    from models import registry

    split = _split(BATCH)
    features, _ = next(iter(datasets.eval_dataset(split, BATCH, FRAMES)))
    keras.utils.set_random_seed(0)
    audio_gru = layers.TF1GRU(UNITS, 0.7, 0.7, seed=0)
    text_gru = layers.TF1GRU(UNITS, 0.3, 0.3, seed=1)
    embedding = keras.layers.Embedding(VOCAB, EMBEDDING)
    attention = layers.LuongDotAttention()
    query_layer = layers.ScalarBiasDense(UNITS)
    logits_layer = layers.ScalarBiasDense(4)

    def audio_part():
        _, state = audio_gru([features["audio_mfcc"],
                              features["audio_length"]], training=True)
        return state

    def text_part():
        outputs, _ = text_gru([embedding(features["text_ids"]),
                               features["text_length"]], training=True)
        return outputs

    text_outputs = text_part()
    audio_state = tf.concat([audio_part(), features["audio_prosody"]], -1)

    def head_part():
        query = query_layer(audio_state)
        context, _ = attention([text_outputs, query,
                                features["text_length"]])
        return logits_layer(tf.concat([context, query], -1))

    def timed(fn, variables_of):
        @tf.function
        def step():
            with tf.GradientTape() as tape:
                value = tf.reduce_sum(fn())
            variables = variables_of()
            return tape.gradient(value, variables)

        step()
        times = []
        for _ in range(max(args.train_steps, 3)):
            started = time.perf_counter()
            for gradient in step():
                np.asarray(gradient)
            times.append(time.perf_counter() - started)
        return float(np.median(times))

    plain_gru = keras.layers.GRU(UNITS)

    def plain_audio_part():
        return plain_gru(features["audio_mfcc"])

    rows = {
        "audio GRU fwd+bwd [128,750,39]→200": timed(
            audio_part, lambda: audio_gru.trainable_variables),
        "(for comparison) keras GRU defaults, no mask, same input": timed(
            plain_audio_part, lambda: plain_gru.trainable_variables),
        "text emb+GRU fwd+bwd [128,128]→200": timed(
            text_part, lambda: (embedding.trainable_variables
                                + text_gru.trainable_variables)),
        "attention+head fwd+bwd": timed(
            head_part, lambda: (query_layer.trainable_variables
                                + logits_layer.trainable_variables)),
    }

    model = registry.build_model(
        "MDREA", vocab_size=VOCAB, embedding_dim=EMBEDDING,
        audio_units=UNITS, text_units=UNITS, seed=0)
    optimizer = keras.optimizers.Adam(clipvalue=10.0)
    optimizer.build(model.trainable_variables)
    gradients = [tf.zeros_like(v) for v in model.trainable_variables]
    apply = tf.function(lambda: optimizer.apply_gradients(
        zip(gradients, model.trainable_variables)))
    apply()
    started = time.perf_counter()
    for _ in range(5):
        apply()
    rows["Adam update (all MDREA variables)"] = (
        time.perf_counter() - started) / 5

    iterator = iter(datasets.train_dataset_fn(split, BATCH, "sample", 0,
                                              FRAMES)(
        tf.distribute.InputContext(), 0))
    next(iterator)
    started = time.perf_counter()
    for _ in range(10):
        next(iterator)
    rows["input pipeline, one batch"] = (time.perf_counter() - started) / 10
    return rows


# --- Driver ----------------------------------------------------------------

def _child(args):
    model_name, variant = args.child.split(":")
    if variant in ("plain", "plain_tuned"):
        if variant == "plain_tuned":
            from models import gru_recurrence

            print(f"[bench] {gru_recurrence.configure_cpu_threads()}",
                  file=sys.stderr)
        result = _plain(model_name, args)
    elif variant == "torch":
        result = _torch(model_name, args)
    else:
        result = _ours(model_name, args, jit_compile=variant == "ours_jit",
                       former_gru=variant == "ours_keras_gru")
    result["peak_rss_mb"] = _peak_rss_mb()
    print("RESULT " + json.dumps(result), flush=True)


COLUMNS = (("train_ex_s", "train ex/s (median)", "{:.0f}"),
           ("train_best_ex_s", "train ex/s (best)", "{:.0f}"),
           ("eval_ex_s", "eval ex/s (median)", "{:.0f}"),
           ("eval_best_ex_s", "eval ex/s (best)", "{:.0f}"),
           ("pipeline_ex_s", "pipeline ex/s", "{:.0f}"),
           ("serve1_p50_ms", "serve b1 p50 ms", "{:.1f}"),
           ("serve1_p99_ms", "serve b1 p99 ms", "{:.1f}"),
           ("serve64_p50_ms", "serve b64 p50 ms", "{:.0f}"),
           ("serve64_p99_ms", "serve b64 p99 ms", "{:.0f}"),
           ("peak_rss_mb", "peak RSS MB", "{:.0f}"),
           ("warmup_s", "warm-up s", "{:.1f}"))


def _cell(value, fmt):
    if value is None or value != value:  # missing or NaN
        return "–"
    return fmt.format(value)


def _table(rows):
    """Markdown table: each row, then its ratio to every peer measured.

    Peers are "plain" and "torch"; rates are ratios of examples/s (above
    1× = faster), latencies and memory ratios of ms / MB (above 1× =
    slower / more).
    """
    header = ["model", "variant"] + [title for _, title, _ in COLUMNS]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]
    for (model_name, variant), result in rows.items():
        cells = [model_name, variant]
        cells += [_cell(result.get(key), fmt) for key, _, fmt in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
        for peer_name in ("plain", "torch"):
            peer = rows.get((model_name, peer_name))
            if variant == peer_name or not peer:
                continue
            ratio = [model_name, f"{variant}/{peer_name}"]
            for key, _, _ in COLUMNS:
                ours, theirs = result.get(key), peer.get(key)
                ratio.append(f"{ours / theirs:.2f}×" if (
                    ours == ours and theirs and theirs == theirs) else "–")
            lines.append("| " + " | ".join(ratio) + " |")
    return "\n".join(lines)


def _torch_available():
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def main(argv):
    args = _parse(argv)
    if args.child:
        _child(args)
        return
    if args.profile:
        started = time.perf_counter()
        rows = _profile(args)
        print("| MDREA part (batch 128, reference shapes) | seconds |")
        print("|---|---|")
        for name, seconds in rows.items():
            print(f"| {name} | {seconds:.3f} |")
        print(f"(profile took {time.perf_counter() - started:.0f} s)")
        return
    models = [name for name in args.models.split(",") if name]
    variants = [name for name in args.variants.split(",") if name]
    for name in models:
        if name not in MODELS:
            raise ValueError(f"Unknown model {name!r}; valid: {MODELS}.")
    for name in variants:
        if name not in VARIANTS:
            raise ValueError(f"Unknown variant {name!r}; valid: "
                             f"{VARIANTS}.")
    if "torch" in variants and not _torch_available():
        print("[bench] torch is not installed: no PyTorch rows.", flush=True)
        variants.remove("torch")
    passthrough = [arg for arg in argv if not arg.startswith(
        ("--models", "--variants", "--json_out"))]
    rows = {}
    started = time.perf_counter()
    for model_name in models:
        for variant in variants:
            command = [sys.executable, os.path.abspath(__file__),
                       f"--child={model_name}:{variant}"] + passthrough
            output = subprocess.run(command, capture_output=True, text=True,
                                    cwd=REPO_ROOT, check=False)
            result_lines = [line for line in output.stdout.splitlines()
                            if line.startswith("RESULT ")]
            if output.returncode or not result_lines:
                raise RuntimeError(f"{model_name}:{variant} failed:\n"
                                   f"{output.stderr[-3000:]}")
            rows[(model_name, variant)] = json.loads(
                result_lines[-1][len("RESULT "):])
            print(f"[bench] {model_name}:{variant} done "
                  f"({time.perf_counter() - started:.0f} s): "
                  f"{result_lines[-1][len('RESULT '):]}", flush=True)
    print(_table(rows))
    print(f"(took {time.perf_counter() - started:.0f} s; load average "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())})")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({f"{m}:{v}": r for (m, v), r in rows.items()}, f,
                      indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
