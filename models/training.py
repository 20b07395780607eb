"""The original training schedule as a resumable `tf.distribute` custom loop.

Semantics of the original trainers (yoon_spec.md §4), kept exactly:

* Adam (β1 0.9, β2 0.999, ε 1e-8), gradients clipped element-wise to ±10.
* Loss: sigmoid cross-entropy between the logits and the one-hot label,
  averaged over batch × classes; evaluation reports its SUM.
* Every step draws a batch (the input function decides how; the reference
  sampler draws uniformly with replacement).
* Validation every `int(n_train · 0.3 / batch) + 1` steps. A lower summed dev
  loss is an improvement: record the dev accuracy, evaluate test right
  away, reset patience to 7. Otherwise stop if patience is 0, else decrement
  it: the run stops at the 8th validation in a row without improvement.

Added, as a modern user expects: the best weights are kept and restored at
the end and both splits re-evaluated (WA, UA, confusion matrix); a checkpoint
of model, optimizer, step and early-stopping state is written at every
validation so a killed run resumes where it stopped (the sampler is keyed on
the step, so it resumes the same batch stream); TensorBoard scalars.

A custom loop rather than `fit`: Keras 3 `fit` fails under
MultiWorkerMirroredStrategy (env_notes.md §9) and the schedule is in steps,
not epochs.
"""

import dataclasses
import os
import time

import keras
import tensorflow as tf

from models import metrics

CHECKPOINT_DIR = "checkpoints"
BEST_DIR = "best"
TENSORBOARD_DIR = "tensorboard"


@dataclasses.dataclass
class TrainConfig:
    """Optimisation and schedule settings (defaults = the reference runs).

    Attributes:
        batch_size: int. Global batch (split over replicas).
        learning_rate: float.
        num_train_steps: int. Maximum steps.
        validation_ratio: float. Validate every int(n_train·ratio/batch)+1
            steps (the original's EPOCH_PER_VALID_FREQ).
        patience: int. Non-improving validations tolerated after the last
            improvement before stopping at the next one.
        adam_epsilon: float. TF1's default 1e-8.
        clip_value: float. Element-wise gradient clip.
        jit_compile: bool. XLA-compile the train step.
    """

    batch_size: int = 128
    learning_rate: float = 0.001
    num_train_steps: int = 10000
    validation_ratio: float = 0.3
    patience: int = 7
    adam_epsilon: float = 1e-8
    clip_value: float = 10.0
    jit_compile: bool = False


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
    return keras.optimizers.Adam(
        learning_rate=config.learning_rate, beta_1=0.9, beta_2=0.999,
        epsilon=config.adam_epsilon, clipvalue=config.clip_value)


def _input_names(model):
    return [tensor.name for tensor in model.inputs]


def _select(features, names):
    return {name: features[name] for name in names}


class Evaluator:
    """Sums the loss and the confusion matrix over a distributed dataset."""

    def __init__(self, model, strategy, num_classes):
        self.model = model
        self.strategy = strategy
        self.num_classes = num_classes
        self.names = _input_names(model)
        self._run = tf.function(self._evaluate)

    def _step(self, features, labels):
        logits = self.model(_select(features, self.names), training=False)
        loss = tf.reduce_sum(
            sigmoid_cross_entropy(logits, labels, self.num_classes))
        predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)
        confusion = tf.math.confusion_matrix(
            labels, predictions, self.num_classes, dtype=tf.int64)
        return tf.cast(loss, tf.float64), confusion

    def _evaluate(self, dataset):
        strategy = self.strategy
        loss = tf.constant(0.0, tf.float64)
        confusion = tf.zeros([self.num_classes] * 2, tf.int64)
        for features, labels in dataset:
            step_loss, step_confusion = strategy.run(
                self._step, args=(features, labels))
            loss += strategy.reduce("SUM", step_loss, axis=None)
            confusion += strategy.reduce("SUM", step_confusion, axis=None)
        return loss, confusion

    def __call__(self, dataset, label_names=None):
        """Returns metrics.summarize(...) plus `loss_sum` and `loss_mean`."""
        loss, confusion = self._run(dataset)
        result = metrics.summarize(confusion.numpy(), label_names)
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
            rates of a pretrained encoder and the head.
    """

    def __init__(self, build_model, strategy, run_dir, config, num_classes,
                 label_names=None, log=print, optimizer_fn=None):
        self.strategy = strategy
        self.run_dir = run_dir
        self.config = config
        self.num_classes = num_classes
        self.label_names = label_names
        self.log = log
        self.is_chief = _is_chief(strategy)
        with strategy.scope():
            self.model = build_model()
            self.optimizer = (optimizer_fn(config, self.model)
                              if optimizer_fn else make_optimizer(config))
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
        self.input_names = _input_names(self.model)
        self.evaluator = Evaluator(self.model, strategy, num_classes)
        checkpoint = tf.train.Checkpoint(
            model=self.model, optimizer=self.optimizer, step=self.step,
            best_dev_loss=self.best_dev_loss,
            best_dev_accuracy=self.best_dev_accuracy,
            test_at_best=self.test_at_best, best_step=self.best_step,
            patience=self.patience, stopped=self.stopped)
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
        return os.path.join(self.run_dir, ".scratch", f"worker_{task_id}",
                            name)

    def restore(self):
        """Restores the latest checkpoint if any; returns the step reached."""
        latest = self.manager.latest_checkpoint
        if latest:
            self.manager.checkpoint.restore(latest).assert_consumed()
            self.log(f"[Info] Resumed from {latest} at step "
                     f"{int(self.step.numpy())}.")
        return int(self.step.numpy())

    def _train_function(self):
        model, optimizer, strategy = self.model, self.optimizer, self.strategy
        names, num_classes = self.input_names, self.num_classes
        global_batch = self.config.batch_size

        def step_fn(features, labels):
            with tf.GradientTape() as tape:
                logits = model(_select(features, names), training=True)
                per_example = sigmoid_cross_entropy(
                    logits, labels, num_classes) / num_classes
                loss = tf.nn.compute_average_loss(
                    per_example, global_batch_size=global_batch)
            variables = model.trainable_variables
            gradients = tape.gradient(loss, variables)
            optimizer.apply_gradients(zip(gradients, variables))
            return loss

        if self.config.jit_compile:
            # XLA compiles the per-replica computation; the outer function
            # (iterator, cross-replica reduce) stays uncompiled.
            step_fn = tf.function(step_fn, jit_compile=True)

        @tf.function
        def train_step(iterator):
            per_replica = strategy.run(step_fn, args=next(iterator))
            return strategy.reduce("SUM", per_replica, axis=None)

        return train_step

    def evaluate(self, dataset):
        """Metrics of the current weights on a distributed eval dataset."""
        return self.evaluator(dataset, self.label_names)

    def fit(self, make_train_dataset, dev_dataset, test_dataset, num_train):
        """Runs (or resumes) training; returns a `TrainResult`.

        Args:
            make_train_dataset: callable (input_context, start_step) →
                tf.data.Dataset of per-replica batches (infinite).
            dev_dataset, test_dataset: tf.data.Dataset of global eval
                batches (each example once).
            num_train: int. Training examples (sets validation frequency).
        """
        config, strategy = self.config, self.strategy
        start_step = self.restore()
        frequency = validation_frequency(num_train, config.batch_size,
                                         config.validation_ratio)
        self.log(f"[Info] Valid Freq = {frequency}")
        train_data = strategy.distribute_datasets_from_function(
            lambda context: make_train_dataset(context, start_step))
        dev = strategy.experimental_distribute_dataset(dev_dataset)
        test = strategy.experimental_distribute_dataset(test_dataset)
        iterator = iter(train_data)
        train_step = self._last_train_step = self._train_function()
        writer = tf.summary.create_file_writer(
            self._writable(TENSORBOARD_DIR))
        started = time.time()
        step = start_step
        while step < config.num_train_steps and not bool(self.stopped):
            loss = train_step(iterator)
            step += 1
            self.step.assign(step)
            with writer.as_default(step=step):
                tf.summary.scalar("mean_loss", loss)
            if step % frequency == 0:
                self._validate(step, dev, test, writer, started,
                               num_train)
                self.manager.save(checkpoint_number=step)
        writer.flush()
        train_seconds = time.time() - started
        self.log(f"Total steps : {step}")
        # Save the current state first: a later resume must continue from
        # these weights, not from the best ones restored below.
        self.manager.save(checkpoint_number=step)
        if self.best_manager.latest_checkpoint:
            tf.train.Checkpoint(model=self.model).restore(
                self.best_manager.latest_checkpoint).expect_partial()
        final_dev = self.evaluate(dev)
        final_test = self.evaluate(test)
        return TrainResult(
            steps=step, best_step=int(self.best_step.numpy()),
            best_dev_loss=float(self.best_dev_loss.numpy()),
            best_dev_accuracy=float(self.best_dev_accuracy.numpy()),
            test_accuracy_at_best=float(self.test_at_best.numpy()),
            stopped_early=bool(self.stopped.numpy()),
            validation_frequency=frequency, final_dev=final_dev,
            final_test=final_test, train_seconds=train_seconds)

    def _validate(self, step, dev, test, writer, started, num_train):
        dev_metrics = self.evaluate(dev)
        dev_loss = dev_metrics["loss_sum"]
        test_accuracy = 0.0
        if dev_loss < float(self.best_dev_loss.numpy()):
            test_metrics = self.evaluate(test)
            test_accuracy = test_metrics["wa"]
            self.best_dev_loss.assign(dev_loss)
            self.best_dev_accuracy.assign(dev_metrics["wa"])
            self.test_at_best.assign(test_accuracy)
            self.best_step.assign(step)
            self.patience.assign(self.config.patience)
            self.best_manager.save(checkpoint_number=step)
            with writer.as_default(step=step):
                tf.summary.scalar("test_accuracy", test_accuracy)
                tf.summary.scalar("test_ua", test_metrics["ua"])
        elif int(self.patience.numpy()) == 0:
            self.stopped.assign(True)
            self.log("early stopped")
            return
        else:
            self.patience.assign_sub(1)
        with writer.as_default(step=step):
            tf.summary.scalar("valid_loss", dev_loss)
            tf.summary.scalar("valid_accuracy", dev_metrics["wa"])
            tf.summary.scalar("valid_ua", dev_metrics["ua"])
        minutes = int((time.time() - started) / 60)
        seen = step * self.config.batch_size
        self.log(f"{minutes} step/seen/itr: {step}/{seen}/"
                 f"{seen / num_train:.2f}\tdev: {dev_metrics['wa']:.3f}  "
                 f"test: {test_accuracy:.3f}  loss: {dev_loss:.2f}")


def _is_chief(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def make_strategy(name="auto"):
    """Builds a tf.distribute strategy by name.

    Args:
        name: "auto" (mirrored over visible GPUs, else the default CPU
            strategy), "mirrored", "multi_worker" (reads TF_CONFIG),
            "one_device" (first GPU, else CPU).
    """
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        if gpus:
            return tf.distribute.MirroredStrategy()
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(
            "/gpu:0" if gpus else "/cpu:0")
    raise ValueError(f"Unknown strategy {name!r}; valid: auto, mirrored, "
                     "multi_worker, one_device.")
