"""The original training schedule as a resumable `tf.distribute` custom loop.

Semantics of the original trainers (yoon_spec.md §4), kept exactly:

* Adam (β1 0.9, β2 0.999, ε 1e-8), gradients clipped element-wise to ±10.
* Loss: sigmoid cross-entropy between the logits and the one-hot label,
  averaged over batch × classes; evaluation reports its SUM.
* Every step draws a batch (the input function decides how; the reference
  sampler draws uniformly with replacement).
* Validation every `int(n_train · 0.3 / batch) + 1` steps. A lower summed dev
  loss is an improvement: record the dev accuracy, reset patience to 7.
  Otherwise stop if patience is 0, else decrement it: the run stops at the
  8th validation in a row without improvement.
* One change: the original evaluated TEST at every improvement; here test
  is never scored during training. It is scored once, at the end, on the
  restored best weights, and that is the "test accuracy at best dev" of
  TEST_run_result.txt (the same number: the weights are the same).

Added, as a modern user expects: the best weights are kept and restored at
the end and both splits re-evaluated (WA, UA, confusion matrix); a checkpoint
of model, optimizer, step, dropout RNG state and early-stopping state is
written at every validation so a killed run resumes where it stopped (the
sampler is keyed on the step, so it resumes the same batch stream);
TensorBoard scalars (train loss, dev loss/WA/UA, learning rate, steps/s);
a progress bar with steps/s and ETA; one validation line naming its fields
(step, epoch, train loss, dev loss, dev WA/UA, best so far, patience).
A run that ends before its first validation selects its last weights.

Distribution (any `tf.distribute` strategy; see `make_strategy`):

* `TrainConfig.batch_size` is the GLOBAL batch: per-replica batch × replicas
  (it must divide evenly). The loss is averaged over the global batch and
  the per-replica gradients are summed, so one step under R replicas is the
  same update as one step on one device with the same global batch: keep
  the learning rate (no linear scaling) when the global batch is unchanged.
* Gradients are summed across replicas BEFORE the element-wise clip, as on
  one device (Keras 3 alone would clip each replica's share, then sum).
* Each input pipeline (one per worker) draws its share of every global
  step from a stream keyed on (seed, pipeline id, step) and the Trainer
  splits it over that pipeline's replicas: mirrored over k devices of one
  machine sees exactly the single-device batches, workers draw independent
  streams, and a resumed run continues every stream exactly.
* Evaluation shards the eval batches by data (each example is counted once
  on exactly one replica, a short last batch included) and sums loss and
  confusion matrix over all replicas and workers.
* Multi-worker: every worker restores from the chief's checkpoint folder
  (so `run_dir` must be on storage all workers share) and the workers
  check that they resumed at the same step. Only the chief writes into
  `run_dir`; the others write into `run_dir/.scratch/worker_<i>`.

A custom loop rather than `fit`: Keras 3 `fit` fails under
MultiWorkerMirroredStrategy (env_notes.md §9) and the schedule is in steps,
not epochs.
"""

import contextlib
import dataclasses
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from models import metrics
from models import optimizers
from common import errors

CHECKPOINT_DIR = "checkpoints"
BEST_DIR = "best"
TENSORBOARD_DIR = "tensorboard"
SCRATCH_DIR = ".scratch"
STRATEGIES = ("auto", "mirrored", "multi_worker", "one_device")


@dataclasses.dataclass
class TrainConfig:
    """Optimisation and schedule settings (defaults = the reference runs).

    Attributes:
        batch_size: int. Global batch (per-replica batch × replicas).
        learning_rate: float. Not scaled with the number of replicas: the
            loss is averaged over the global batch.
        num_train_steps: int. Maximum steps.
        validation_ratio: float. Validate every int(n_train·ratio/batch)+1
            steps (the original's EPOCH_PER_VALID_FREQ).
        patience: int. Non-improving validations tolerated after the last
            improvement before stopping at the next one.
        adam_epsilon: float. TF1's default 1e-8.
        clip_value: float. Element-wise clip of the (replica-summed)
            gradient.
        jit_compile: bool. XLA-compile the forward and backward pass of the
            train step. On CPU it measured slower than graph mode (and
            every row then steps to the batch's longest length;
            bench/README.md).
        mixed_precision: bool. Compute in float16 with float32 weights and
            dynamic loss scaling (`mixed_float16`), on GPU only; ignored (with
            a log line) when no GPU is visible.

    Recipe settings (`models/recipes.py`; their defaults leave the
    reference schedule exactly as it is):

        validation_every: int. Steps between validations; 0 = the
            original's formula (`validation_ratio`).
        min_steps: int. Never stop early before this step.
        warmup_steps, lr_decay: linear warm-up over that many steps, then
            "none" | "cosine" | "linear" decay to 0 at `num_train_steps`
            (`optimizers.WarmupDecay`).
        weight_decay: float. > 0: AdamW (decoupled, biases excluded).
        class_weights: tuple of float or None. Per-class weights of the
            training loss (dev/test losses stay unweighted).
        selection: "loss" (the original: lowest summed dev loss) or "ua"
            (highest dev UA, ties broken by the lower loss).
    """

    batch_size: int = 128
    learning_rate: float = 0.001
    num_train_steps: int = 10000
    validation_ratio: float = 0.3
    patience: int = 7
    adam_epsilon: float = 1e-8
    clip_value: float = 10.0
    jit_compile: bool = False
    mixed_precision: bool = False
    validation_every: int = 0
    min_steps: int = 0
    warmup_steps: int = 0
    lr_decay: str = "none"
    weight_decay: float = 0.0
    class_weights: tuple = None
    selection: str = "loss"


@dataclasses.dataclass
class TrainResult:
    """What a run reports; `*_at_best` are measured at the best validation."""

    steps: int
    best_step: int
    best_dev_loss: float
    best_dev_accuracy: float
    test_accuracy_at_best: float
    stopped_early: bool
    validation_frequency: int
    final_dev: dict
    final_test: dict
    train_seconds: float


def check_batch_size(batch_size, strategy):
    """Raises RunError unless the global batch splits evenly over the
    strategy's replicas."""
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise errors.RunError(
            f"--batch_size={batch_size} (the global batch) must be a "
            f"multiple of the {replicas} replicas in sync.")


def validation_frequency(num_train, batch_size, ratio=0.3):
    """Steps between validations, as the original computed it."""
    return int(num_train * ratio / batch_size) + 1


def sigmoid_cross_entropy(logits, labels, num_classes):
    """Per-example sigmoid CE summed over classes: [B]."""
    one_hot = tf.one_hot(labels, num_classes, dtype=logits.dtype)
    return tf.reduce_sum(
        tf.nn.sigmoid_cross_entropy_with_logits(labels=one_hot,
                                                logits=logits), axis=-1)


def make_optimizer(config):
    """Adam as the original (AdamW and a rate schedule if the config asks)."""
    return optimizers.adam(config.learning_rate, config)


def distribute_eval_dataset(strategy, dataset):
    """Distributes eval batches so that each example is seen exactly once.

    The global batches are split over the replicas and sharded by DATA over
    the workers (never by file: with one source every worker would otherwise
    see all of it, or none). A short last batch leaves some replicas an
    empty batch, which the evaluator skips.

    Args:
        strategy: tf.distribute.Strategy.
        dataset: tf.data.Dataset of global `(features, label)` batches.

    Returns:
        A distributed dataset for `Evaluator`.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    return strategy.experimental_distribute_dataset(
        dataset.with_options(options))


def _input_names(model):
    return [tensor.name for tensor in model.inputs]


def _select(features, names):
    return {name: features[name] for name in names}


def _logits(model, features, names, training):
    # Under mixed precision the model computes in float16; the loss and the
    # metrics are always float32.
    return tf.cast(model(_select(features, names), training=training),
                   tf.float32)


class Evaluator:
    """Sums the loss and the confusion matrix over a distributed dataset."""

    def __init__(self, model, strategy, num_classes):
        self.model = model
        self.strategy = strategy
        self.num_classes = num_classes
        self.names = _input_names(model)
        # One call per batch, not one graph loop over the dataset: inside a
        # dataset loop the model's ops lose the executor's inter-op
        # parallelism (TF1GRU's streams), 1.8× slower on 2 cores. Batches
        # of new lengths reuse the relaxed trace (reduce_retracing).
        self._run_step = tf.function(self._distributed_step,
                                     reduce_retracing=True)

    def _step(self, features, labels):
        num_classes = self.num_classes

        def compute():
            logits = _logits(self.model, features, self.names, False)
            loss = tf.reduce_sum(
                sigmoid_cross_entropy(logits, labels, num_classes))
            predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)
            confusion = tf.math.confusion_matrix(
                labels, predictions, num_classes, dtype=tf.int64)
            return tf.cast(loss, tf.float64), confusion

        def empty():
            return (tf.constant(0.0, tf.float64),
                    tf.zeros([num_classes] * 2, tf.int64))

        # A replica left without examples by a short last batch gets an
        # empty batch whose unknown dimensions (the frames) are 0; the model
        # need not handle that.
        return tf.cond(tf.size(labels) > 0, compute, empty)

    def _distributed_step(self, features, labels):
        strategy = self.strategy
        step_loss, step_confusion = strategy.run(self._step,
                                                 args=(features, labels))
        return (strategy.reduce("SUM", step_loss, axis=None),
                strategy.reduce("SUM", step_confusion, axis=None))

    def _evaluate(self, dataset):
        loss = 0.0
        confusion = np.zeros([self.num_classes] * 2, np.int64)
        for features, labels in dataset:
            step_loss, step_confusion = self._run_step(features, labels)
            loss += float(step_loss)
            confusion += step_confusion.numpy()
        return loss, confusion

    def __call__(self, dataset, label_names=None):
        """Returns metrics.summarize(...) plus `loss_sum` and `loss_mean`.

        Args:
            dataset: a dataset from `distribute_eval_dataset`, or a plain
                tf.data.Dataset of global batches (distributed here).
            label_names: sequence of str or None.
        """
        if isinstance(dataset, tf.data.Dataset):
            dataset = distribute_eval_dataset(self.strategy, dataset)
        loss, confusion = self._evaluate(dataset)
        result = metrics.summarize(confusion, label_names)
        result["loss_sum"] = float(loss)
        count = max(result["num_examples"], 1)
        result["loss_mean"] = float(loss) / (count * self.num_classes)
        return result


class Trainer:
    """Trains one model with the original schedule; resumable.

    Args:
        build_model: callable () → keras.Model. Called inside the strategy
            scope (it may also load pretrained embeddings).
        strategy: tf.distribute.Strategy.
        run_dir: str. Checkpoints and TensorBoard events go here.
        config: TrainConfig.
        num_classes: int.
        label_names: sequence of str.
        log: callable(str). Progress lines.
        optimizer_fn: callable (config, model) → optimizer with `build` and
            `apply_gradients` (default: `make_optimizer(config)`, one Adam);
            called inside the strategy scope, e.g. for separate learning
            rates of a pretrained encoder and the head. It should sum
            gradients over replicas and clip them with `config.clip_value`
            as Keras optimizers made like `make_optimizer` do: under several
            replicas the Trainer sums and clips first (see
            `_summed_and_clipped`). Not with mixed precision.
        progress: bool. Progress on stderr (steps, steps/s, ETA to the
            step limit), chief only: a live tqdm bar on a terminal, a plain
            line every 30 s otherwise.

    Raises:
        ValueError: the global batch does not split evenly over the
            replicas, or mixed precision with a custom `optimizer_fn`.
    """

    def __init__(self, build_model, strategy, run_dir, config, num_classes,
                 label_names=None, log=print, optimizer_fn=None,
                 progress=True):
        self.strategy = strategy
        self.progress = progress
        self.run_dir = run_dir
        self.config = config
        self.num_classes = num_classes
        self.label_names = label_names
        self.log = log
        self.is_chief = _is_chief(strategy)
        self.num_replicas = strategy.num_replicas_in_sync
        check_batch_size(config.batch_size, strategy)
        self.mixed_precision = config.mixed_precision and bool(
            tf.config.list_logical_devices("GPU"))
        if self.mixed_precision and optimizer_fn is not None:
            raise ValueError(
                "mixed_precision needs the default optimizer (it is wrapped "
                "in a keras LossScaleOptimizer); a custom optimizer_fn was "
                "given.")
        if config.mixed_precision and not self.mixed_precision:
            log("[Info] mixed_precision ignored: no GPU is visible (float16 "
                "is not faster on CPU); training in float32.")
        if config.jit_compile and not tf.config.list_logical_devices("GPU"):
            # Measured (bench/README.md): slower on CPU, and XLA's static
            # shapes cannot skip the rows past their length.
            log("[Info] jit_compile on CPU: correct but slower than graph "
                "mode for these GRUs; see bench/README.md.")
        with strategy.scope():
            with _dtype_policy("mixed_float16" if self.mixed_precision
                               else None):
                self.model = build_model()
            self.optimizer = (optimizer_fn(config, self.model)
                              if optimizer_fn else make_optimizer(config))
            if self.mixed_precision:
                self.optimizer = keras.optimizers.LossScaleOptimizer(
                    self.optimizer)
            self.optimizer.build(self.model.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, name="step",
                                    trainable=False)
            self.best_dev_loss = tf.Variable(1e6, dtype=tf.float64,
                                             trainable=False)
            self.best_dev_accuracy = tf.Variable(0.0, dtype=tf.float64,
                                                 trainable=False)
            self.test_at_best = tf.Variable(0.0, dtype=tf.float64,
                                            trainable=False)
            self.best_step = tf.Variable(0, dtype=tf.int64, trainable=False)
            self.patience = tf.Variable(config.patience, dtype=tf.int64,
                                        trainable=False)
            self.stopped = tf.Variable(False, trainable=False)
            # Only for UA selection, so reference checkpoints keep their
            # structure (and old runs still resume).
            self.best_dev_ua = (tf.Variable(-1.0, dtype=tf.float64,
                                            trainable=False)
                                if config.selection == "ua" else None)
        self.input_names = _input_names(self.model)
        self.evaluator = Evaluator(self.model, strategy, num_classes)
        checkpoint = tf.train.Checkpoint(
            model=self.model, optimizer=self.optimizer, step=self.step,
            rng_state=_rng_state(self.model),
            best_dev_loss=self.best_dev_loss,
            best_dev_accuracy=self.best_dev_accuracy,
            test_at_best=self.test_at_best, best_step=self.best_step,
            patience=self.patience, stopped=self.stopped,
            **({"best_dev_ua": self.best_dev_ua}
               if self.best_dev_ua is not None else {}))
        # An unreadable checkpoint state is refused before the managers
        # (which would take it for "no checkpoints") exist.
        for name in (CHECKPOINT_DIR, BEST_DIR):
            checkpoint_candidates(os.path.join(run_dir, name))
        self.manager = tf.train.CheckpointManager(
            checkpoint, self._writable(CHECKPOINT_DIR), max_to_keep=2)
        self.best_manager = tf.train.CheckpointManager(
            tf.train.Checkpoint(model=self.model), self._writable(BEST_DIR),
            max_to_keep=1)

    def _writable(self, name):
        # Only the chief writes the real files; other workers must still
        # write (collective ops) but into a private scratch folder.
        if self.is_chief:
            return os.path.join(self.run_dir, name)
        task_id = self.strategy.cluster_resolver.task_id
        return os.path.join(self.run_dir, SCRATCH_DIR, f"worker_{task_id}",
                            name)

    def _latest_checkpoint(self):
        # Every worker resumes from the chief's checkpoint, so that all
        # start from the same state; a non-chief that cannot see it (no
        # shared storage) falls back to its own, and the step check below
        # catches any disagreement.
        chief_dir = os.path.join(self.run_dir, CHECKPOINT_DIR)
        candidates = checkpoint_candidates(chief_dir)
        if not candidates and not self.is_chief:
            candidates = checkpoint_candidates(self.manager.directory)
        # The newest checkpoint that reads back whole; a damaged one (a
        # crash or a full disk while it was written) is skipped, loudly.
        for prefix in candidates:
            damage = checkpoint_damage(prefix)
            if damage is None:
                return prefix
            self.log(f"[Warning] {damage[0]}: damaged checkpoint "
                     f"({damage[1]}); trying the previous one.")
        if candidates:
            raise errors.RunError(
                f"{chief_dir}: every checkpoint is damaged "
                f"({', '.join(os.path.basename(c) for c in candidates)}); "
                "refusing to start the run over on top of them (nothing "
                "was changed). Train again with a new --run_dir.")
        return None

    def restore(self):
        """Restores the newest intact checkpoint if any; returns the step
        reached.

        Raises:
            errors.RunError: a checkpoint state file that cannot be read,
                checkpoints without one, or only damaged checkpoints
                (nothing is changed then: the run is not started over).
            ValueError: workers of a multi-worker run resumed at different
                steps.
        """
        latest = self._latest_checkpoint()
        best = checkpoint_candidates(self.best_manager.directory)
        if best and checkpoint_damage(best[0]) is not None:
            path, reason = checkpoint_damage(best[0])
            raise errors.RunError(
                f"{path}: the best weights' checkpoint is damaged "
                f"({reason}); the run cannot restore its best weights "
                "(nothing was changed). Train again with a new --run_dir.")
        if latest:
            self.manager.checkpoint.restore(latest).assert_consumed()
            self.log(f"[Info] Resumed from {latest} at step "
                     f"{int(self.step.numpy())}.")
        step = int(self.step.numpy())
        if _num_workers(self.strategy) > 1:
            self._check_workers_agree(step)
        return step

    def _check_workers_agree(self, step):
        # All workers get the same (Σ step, Σ step²); they are all equal iff
        # n·Σ step² == (Σ step)², so every worker takes the same decision
        # and none is left waiting in a collective. (ReduceOp has no MIN or
        # MAX.)
        strategy = self.strategy

        @tf.function
        def totals(value):
            per_replica = strategy.run(lambda: (value, value * value))
            return [strategy.reduce("SUM", part, axis=None)
                    for part in per_replica]

        total, squares = (float(part) for part in totals(
            tf.constant(float(step), tf.float64)))
        if self.num_replicas * squares != total * total:
            raise ValueError(
                f"Workers resumed at different steps (this one at {step}, "
                f"mean {total / self.num_replicas:g}): every worker must "
                f"see the chief's checkpoints in "
                f"{os.path.join(self.run_dir, CHECKPOINT_DIR)} (put run_dir "
                "on storage all workers share).")

    def _train_function(self):
        model, optimizer, strategy = self.model, self.optimizer, self.strategy
        names, num_classes = self.input_names, self.num_classes
        global_batch = self.config.batch_size
        variables = model.trainable_variables
        class_weights = (None if self.config.class_weights is None else
                         tf.constant(self.config.class_weights, tf.float32))

        def gradients_fn(features, labels):
            with tf.GradientTape() as tape:
                logits = _logits(model, features, names, True)
                per_example = sigmoid_cross_entropy(
                    logits, labels, num_classes) / num_classes
                if class_weights is not None:
                    per_example *= tf.gather(class_weights, labels)
                loss = tf.nn.compute_average_loss(
                    per_example, global_batch_size=global_batch)
                # Identity unless loss scaling (mixed precision) is on.
                scaled = optimizer.scale_loss(loss)
            return loss, tape.gradient(scaled, variables)

        if self.config.jit_compile:
            # XLA compiles the forward and backward pass of one replica; the
            # cross-replica sums and the optimizer update stay outside.
            gradients_fn = tf.function(gradients_fn, jit_compile=True)

        def step_fn(features, labels):
            loss, gradients = gradients_fn(features, labels)
            if self.num_replicas > 1:
                gradients = self._summed_and_clipped(gradients)
            optimizer.apply_gradients(zip(gradients, variables))
            return loss

        @tf.function
        def train_step(iterator):
            per_replica = strategy.run(step_fn, args=next(iterator))
            return strategy.reduce("SUM", per_replica, axis=None)

        return train_step

    def _summed_and_clipped(self, gradients):
        """Replica-context gradients arranged so that Keras applies clip(Σ g).

        Keras' `apply_gradients` clips each replica's gradient and then sums
        them; the original (one device) clipped the sum. So sum first, clip,
        and let replica 0 carry the whole clipped sum while the others
        contribute `g · 0`: Keras' own sum then reproduces it exactly (its
        clip is a no-op), and a non-finite gradient stays non-finite on
        every replica, so a loss-scale optimizer skips the step everywhere.
        """
        context = tf.distribute.get_replica_context()
        gradients = context.all_reduce("SUM", gradients)
        clip = self.config.clip_value
        scale = (self.optimizer.dynamic_scale if self.mixed_precision
                 else None)
        is_first = tf.equal(context.replica_id_in_sync_group, 0)

        def transform(values):
            if scale is None:
                clipped = tf.clip_by_value(values, -clip, clip)
            else:
                # Clip the unscaled gradient (the scale is a power of two,
                # so this is exact) and keep inf/NaN for the overflow check.
                bound = clip * tf.cast(scale, values.dtype)
                clipped = tf.where(tf.math.is_finite(values),
                                   tf.clip_by_value(values, -bound, bound),
                                   values)
            return clipped * tf.cast(is_first, values.dtype)

        return [_map_values(transform, gradient) for gradient in gradients]

    def _train_dataset(self, make_train_dataset, start_step):
        """Distributed training batches: each pipeline's share of every step.

        The input function sees an `InputContext` whose per-replica batch is
        the per-PIPELINE batch, so its stream is one element per step; it is
        then split into the pipeline's replicas' batches here.
        """
        per_replica = self.config.batch_size // self.num_replicas

        def dataset_fn(context):
            pipelines = context.num_input_pipelines
            pipeline_context = tf.distribute.InputContext(
                num_input_pipelines=pipelines,
                input_pipeline_id=context.input_pipeline_id,
                num_replicas_in_sync=pipelines)
            dataset = make_train_dataset(pipeline_context, start_step)
            if context.num_replicas_in_sync > pipelines:
                # Splitting a batch keeps its (cropped) frame count, so the
                # pieces of one step always fit together.
                dataset = dataset.rebatch(per_replica, drop_remainder=True)
            return dataset

        return self.strategy.distribute_datasets_from_function(dataset_fn)

    def evaluate(self, dataset):
        """Metrics of the current weights on an eval dataset.

        Args:
            dataset: from `distribute_eval_dataset`, or a plain
                tf.data.Dataset of global batches.
        """
        return self.evaluator(dataset, self.label_names)

    def fit(self, make_train_dataset, dev_dataset, test_dataset, num_train):
        """Runs (or resumes) training; returns a `TrainResult`.

        Args:
            make_train_dataset: callable (input_context, start_step) →
                tf.data.Dataset, infinite, whose element k is this input
                pipeline's share of step start_step + k: a batch of
                `input_context.get_per_replica_batch_size(global batch)`
                examples (= global batch / pipelines), drawn independently
                per `input_context.input_pipeline_id`.
            dev_dataset, test_dataset: tf.data.Dataset of global eval
                batches (each example once).
            num_train: int. Training examples (sets validation frequency).
        """
        config, strategy = self.config, self.strategy
        start_step = self.restore()
        frequency = config.validation_every or validation_frequency(
            num_train, config.batch_size, config.validation_ratio)
        self.log(f"[Info] Valid Freq = {frequency}")
        if self.num_replicas > 1:
            self.log(f"[Info] {self.num_replicas} replicas: per-replica "
                     f"batch {config.batch_size // self.num_replicas}, "
                     f"global batch {config.batch_size}.")
        train_data = self._train_dataset(make_train_dataset, start_step)
        dev = distribute_eval_dataset(strategy, dev_dataset)
        iterator = iter(train_data)
        train_step = self._last_train_step = self._train_function()
        writer = tf.summary.create_file_writer(
            self._writable(TENSORBOARD_DIR))
        started = time.time()
        step = start_step
        progress = Progress(start_step, config.num_train_steps,
                            self.is_chief and self.progress)
        # Training losses since the last validation (averaged for its line).
        interval = _Interval(step)
        while (step < config.num_train_steps
               and not bool(self.stopped.numpy())):
            loss = train_step(iterator)
            step += 1
            self.step.assign(step)
            interval.add(loss)
            progress.update(step)
            with writer.as_default(step=step):
                tf.summary.scalar("mean_loss", loss)
            if step % frequency == 0:
                with progress.paused():
                    self._validate(step, dev, writer, num_train,
                                   interval.close(step))
                self.manager.save(checkpoint_number=step)
        progress.close()
        writer.flush()
        train_seconds = time.time() - started
        self.log(f"Total steps : {step}")
        # Save the current state first: a later resume must continue from
        # these weights, not from the best ones restored below.
        self.manager.save(checkpoint_number=step)
        validated = bool(self.best_manager.latest_checkpoint)
        if validated:
            tf.train.Checkpoint(model=self.model).restore(
                self.best_manager.latest_checkpoint).expect_partial()
        final_dev = self.evaluate(dev)
        # The test split is scored once, here, on the selected weights: the
        # original's "test accuracy at the best dev" is this number.
        final_test = self.evaluate(distribute_eval_dataset(strategy,
                                                           test_dataset))
        self.test_at_best.assign(final_test["wa"])
        if not validated:
            # A run shorter than one validation interval: its last weights
            # are the selected ones (never a placeholder 0.000).
            self.best_step.assign(step)
            self.best_dev_loss.assign(final_dev["loss_sum"])
            self.best_dev_accuracy.assign(final_dev["wa"])
        return TrainResult(
            steps=step, best_step=int(self.best_step.numpy()),
            best_dev_loss=float(self.best_dev_loss.numpy()),
            best_dev_accuracy=float(self.best_dev_accuracy.numpy()),
            test_accuracy_at_best=float(self.test_at_best.numpy()),
            stopped_early=bool(self.stopped.numpy()),
            validation_frequency=frequency, final_dev=final_dev,
            final_test=final_test, train_seconds=train_seconds)

    def _improved(self, dev_metrics):
        """Whether a validation beats the best so far (`config.selection`)."""
        loss = dev_metrics["loss_sum"]
        lower = loss < float(self.best_dev_loss.numpy())
        if self.best_dev_ua is None:
            return lower
        best_ua = float(self.best_dev_ua.numpy())
        return dev_metrics["ua"] > best_ua or (
            dev_metrics["ua"] == best_ua and lower)

    def _validate(self, step, dev, writer, num_train, interval):
        """Scores DEV only (never test), updates the best weights and the
        patience, and logs one line naming its fields.

        Args:
            interval: dict with `train_loss` (mean over the steps since the
                last validation) and `steps_per_second`.
        """
        dev_metrics = self.evaluate(dev)
        dev_loss = dev_metrics["loss_sum"]
        improved = self._improved(dev_metrics)
        stop = False
        if improved:
            if self.best_dev_ua is not None:
                self.best_dev_ua.assign(dev_metrics["ua"])
            self.best_dev_loss.assign(dev_loss)
            self.best_dev_accuracy.assign(dev_metrics["wa"])
            self.best_step.assign(step)
            self.patience.assign(self.config.patience)
            self.best_manager.save(checkpoint_number=step)
        elif int(self.patience.numpy()) == 0:
            if step >= self.config.min_steps:
                self.stopped.assign(True)
                stop = True
        else:
            self.patience.assign_sub(1)
        with writer.as_default(step=step):
            tf.summary.scalar("valid_loss", dev_loss)
            tf.summary.scalar("valid_accuracy", dev_metrics["wa"])
            tf.summary.scalar("valid_ua", dev_metrics["ua"])
            tf.summary.scalar("steps_per_second",
                              interval["steps_per_second"])
            rate = _current_learning_rate(self.optimizer)
            if rate is not None:
                tf.summary.scalar("learning_rate", rate)
        epoch = step * self.config.batch_size / max(num_train, 1)
        best = (f"best step {int(self.best_step.numpy())} (dev loss "
                f"{float(self.best_dev_loss.numpy()):.2f}, WA "
                f"{float(self.best_dev_accuracy.numpy()):.3f})")
        self.log(f"[valid] step {step} | epoch {epoch:.2f} | train loss "
                 f"{interval['train_loss']:.4f} | dev loss {dev_loss:.2f} "
                 f"| dev WA {dev_metrics['wa']:.3f} UA "
                 f"{dev_metrics['ua']:.3f} | "
                 + ("new best" if improved else best)
                 + f" | patience {int(self.patience.numpy())} | "
                 f"{interval['steps_per_second']:.2f} steps/s")
        if stop:
            self.log("early stopped")


class _Interval:
    """Mean training loss and speed over the steps between validations."""

    def __init__(self, step):
        self._start(step)

    def _start(self, step):
        self.first_step, self.started, self.losses = step, time.time(), []

    def add(self, loss):
        # Kept as tensors: reading one would block on every step.
        self.losses.append(loss)

    def close(self, step):
        """Returns the interval's figures and starts the next one."""
        seconds = max(time.time() - self.started, 1e-9)
        losses = [float(loss) for loss in self.losses]
        figures = {"train_loss": sum(losses) / max(len(losses), 1),
                   "steps_per_second": (step - self.first_step) / seconds}
        self._start(step)
        return figures


class Progress:
    """Training progress on stderr: a live tqdm bar on a terminal; in a log
    file (no terminal) a plain line every 30 s instead of bar redraws."""

    LOG_INTERVAL = 30.0

    def __init__(self, start_step, total, enabled):
        self.bar = None
        self.enabled = enabled
        self.total = total
        self.file = sys.stderr
        self.start_step, self.step = start_step, start_step
        self.started = self.last_line = time.time()
        if enabled and self.file.isatty():
            # Imported here: tqdm is optional (only for a terminal).
            import tqdm

            self.bar = tqdm.tqdm(total=total, initial=start_step,
                                 unit="step", desc="train (step limit)",
                                 dynamic_ncols=True, mininterval=0.5,
                                 file=self.file)

    def update(self, step):
        self.step = step
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
        elif self.enabled and time.time() - self.last_line >= (
                self.LOG_INTERVAL):
            self.last_line = time.time()
            self.file.write(self.line() + "\n")
            self.file.flush()

    def line(self):
        """`[train] step s/limit | x steps/s | ETA to the step limit`."""
        seconds = max(time.time() - self.started, 1e-9)
        rate = (self.step - self.start_step) / seconds
        left = (self.total - self.step) / rate if rate > 0 else float("inf")
        if left == float("inf"):
            eta = "?"
        else:
            minutes, seconds = divmod(int(left), 60)
            eta = f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"
        return (f"[train] step {self.step}/{self.total} | {rate:.2f} steps/s"
                f" | ETA to the step limit {eta}")

    @contextlib.contextmanager
    def paused(self):
        """Clears a live bar while other lines are printed."""
        if self.bar is not None:
            self.bar.clear()
        try:
            yield
        finally:
            if self.bar is not None:
                self.bar.refresh()

    def close(self):
        if self.bar is not None:
            self.bar.close()
        elif self.enabled:
            self.file.write(self.line() + "\n")
            self.file.flush()


def _current_learning_rate(optimizer):
    """The learning rate the optimizer applies now (None if it has none,
    e.g. a custom two-rate optimizer)."""
    try:
        rate = optimizer.learning_rate
    except (AttributeError, NotImplementedError):
        return None
    if callable(rate):
        rate = rate(optimizer.iterations)
    try:
        return float(rate)
    except (TypeError, ValueError):
        return None


# Errors a damaged checkpoint gives when it is read.
_CHECKPOINT_READ_ERRORS = (tf.errors.OpError, IndexError, ValueError, OSError)


def checkpoint_candidates(directory):
    """The checkpoints of `directory` newest first, from its state file.

    Returns:
        list of checkpoint prefixes ([] for a folder without checkpoints).

    Raises:
        errors.RunError: the state file (`checkpoint`) cannot be read, or
            is missing while checkpoint files are there: the run's state is
            unknown, and starting over would overwrite it.
    """
    state_path = os.path.join(directory, "checkpoint")
    if not tf.io.gfile.exists(state_path):
        if tf.io.gfile.glob(os.path.join(directory, "*.index")):
            raise errors.RunError(
                f"{state_path}: missing, but {directory} holds checkpoints; "
                "refusing to start the run over on top of them (nothing was "
                "changed). Restore the file, or train again with a new "
                "--run_dir.")
        return []
    logger = tf.get_logger()
    level = logger.level
    # TF logs a parse error as a warning and returns None; it is an error
    # here (below), so its warning would only repeat it.
    logger.setLevel("ERROR")
    try:
        state = tf.train.get_checkpoint_state(directory)
    except ValueError as error:
        state, reason = None, str(error)
    else:
        reason = "not a checkpoint state text proto"
    finally:
        logger.setLevel(level)
    if state is None:
        raise errors.RunError(
            f"{state_path}: the checkpoint state cannot be read ({reason}); "
            "refusing to start the run over (nothing was changed). Restore "
            "the file, or train again with a new --run_dir.")
    paths = list(state.all_model_checkpoint_paths)
    latest = state.model_checkpoint_path
    return [latest] + [p for p in reversed(paths) if p != latest]


def checkpoint_damage(prefix):
    """None if every tensor of a checkpoint reads back (checksums
    included); else (the damaged file, why)."""
    try:
        reader = tf.train.load_checkpoint(prefix)
    except _CHECKPOINT_READ_ERRORS as error:
        return prefix + ".index", _first_line(error)
    try:
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except _CHECKPOINT_READ_ERRORS as error:
        data = sorted(tf.io.gfile.glob(prefix + ".data-*"))
        return (data[0] if len(data) == 1 else prefix + ".data-*",
                _first_line(error))
    return None


def _first_line(error):
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


def _rng_state(model):
    """The model's variables that are not weights: dropout seed states.

    Keras 3 keeps each Dropout's seed-generator state outside `weights`
    (and outside a `tf.train.Checkpoint` of the model); checkpointing it
    lets a resumed run draw the same dropout masks as an uninterrupted one.
    """
    weights = {id(weight) for weight in model.weights}
    return [variable for variable in model.variables
            if id(variable) not in weights]


def _map_values(fn, gradient):
    """Applies `fn` to a dense gradient or to an IndexedSlices' values."""
    if isinstance(gradient, tf.IndexedSlices):
        return tf.IndexedSlices(fn(gradient.values), gradient.indices,
                                gradient.dense_shape)
    return fn(gradient)


@contextlib.contextmanager
def _dtype_policy(name):
    """Sets the Keras dtype policy while the model is built (None: keep)."""
    if name is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _cluster(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return None, {}
    return resolver, resolver.cluster_spec().as_dict()


def _num_workers(strategy):
    _, cluster = _cluster(strategy)
    return sum(len(cluster.get(job, ())) for job in ("chief", "worker"))


def _is_chief(strategy):
    resolver, cluster = _cluster(strategy)
    if not cluster:
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in cluster


def make_strategy(name="auto"):
    """Builds a tf.distribute strategy by name.

    Args:
        name: "auto" (mirrored over visible GPUs, else the default
            one-device strategy), "mirrored" (over all visible GPUs, else
            over all logical CPU devices: one unless configured with
            `tf.config.set_logical_device_configuration`), "multi_worker"
            (MultiWorkerMirroredStrategy: reads `TF_CONFIG`, mirrors over
            each worker's GPUs; must be built before other TF ops run),
            "one_device" (first GPU, else CPU).

    Raises:
        ValueError: unknown name.
    """
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}; valid: "
                         f"{', '.join(STRATEGIES)}.")
    if name == "multi_worker":
        # Before anything else touches devices: it configures collectives.
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        if gpus:
            return tf.distribute.MirroredStrategy()
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if gpus:
            return tf.distribute.MirroredStrategy()
        cpus = [device.name for device in tf.config.list_logical_devices(
            "CPU")]
        return tf.distribute.MirroredStrategy(cpus)
    return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
