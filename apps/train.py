"""train.py: trains one model on a fold folder (`mse-train`).

    python train.py --model=MDREA --data_dir=demo_data/demo_set01

Flags are the settings every model shares; a model's own options (its
constructor arguments, `--model=X --model_help`) come from --model_config,
the Yoon flag names and --model_override (tasks/model_options.py). Writes
`<output_dir>/<run name>/` and appends the result line to --result_file.
"""

import inspect
from typing import Optional, Sequence

from absl import app
from absl import flags
from absl import logging

from apps import cli
from apps import common_flags
from models import registry
from tasks import ensemble_run
from tasks import model_options
from tasks import recipes
from tasks import train_run

FLAGS = flags.FLAGS


def define_flags() -> None:
    """This binary's flags (common settings + the Yoon option names)."""
    d = flags
    d.DEFINE_enum("model", "MDREA", list(registry.names()),
                  "Which model to train (--model_help: its options).")
    d.DEFINE_boolean("model_help", False,
                     "Print the options of --model and exit.")
    d.DEFINE_string("model_config", None,
                    "JSON file {option: value} of the model's options (or a "
                    "run's config.json: its model).")
    d.DEFINE_multi_string(
        "model_override", [],
        "Model options key=value,... (JSON values: 8, 0.5, true, [32,64]);"
        " wins over --model_config and the Yoon flags.")
    common_flags.define_data_dir("Fold folder (reference format).")
    d.DEFINE_string("output_dir", "runs", "Runs are written below this.")
    d.DEFINE_string("run_dir", None, "Exact run folder; an existing one is "
                    "resumed from its last checkpoint.")
    d.DEFINE_string("result_file", "TEST_run_result.txt",
                    "File the run's result line is appended to.")
    d.DEFINE_string("graph_prefix", None, "Run-name prefix (default: the "
                    "original's per model, e.g. SE_multi_attn_prosody).")
    d.DEFINE_enum("recipe", "reference", ["reference", "real"],
                  "reference = the original schedule exactly; real = for "
                  "small real corpora (recipes.py). Unset schedule flags "
                  "below take the recipe's value.")
    d.DEFINE_string("config", None, "JSON file of flag values and model "
                    "options (e.g. from search.py); the command line wins.")
    d.DEFINE_integer("batch_size", None, "Global batch (reference 128).")
    d.DEFINE_float("lr", None, "Learning rate (0.001).")
    d.DEFINE_integer("num_train_steps", None, "Maximum steps (10000).")
    d.DEFINE_integer("patience", None, "Validations (epochs with "
                     "--max_epochs) without a better dev score before "
                     "stopping (reference 7).")
    d.DEFINE_integer("max_epochs", None, "Epoch schedule: validate once "
                     "per epoch (real 30).")
    d.DEFINE_integer("min_epochs", None, "Never stop before (real 10).")
    d.DEFINE_integer("warmup_epochs", None, "Linear warm-up (real 2).")
    d.DEFINE_enum("lr_decay", None, ["none", "cosine", "linear"],
                  "Decay to 0 at the last step (real cosine).")
    d.DEFINE_float("weight_decay", None, "AdamW decay (0 = Adam; real "
                   "1e-3).")
    d.DEFINE_boolean("class_balance", None, "Loss weights n/(K·n_class).")
    d.DEFINE_boolean("speaker_norm", None, "Per-speaker standardisation.")
    d.DEFINE_boolean("spec_augment", None, "SpecAugment masks (training).")
    d.DEFINE_boolean("wave_augment", None, "Waveform gain/noise/speed.")
    d.DEFINE_enum("selection", None, ["loss", "ua"],
                  "Keep the lowest dev loss or the highest dev UA.")
    d.DEFINE_boolean("normalize_audio", None, "Standardise audio with "
                     "train-split statistics, kept in the model.")
    d.DEFINE_enum("sampling", None, ["sample", "epochs"], "Batches drawn "
                  "with replacement (original) or shuffled epochs.")
    d.DEFINE_integer("encoder_size_audio", 750, "MFCC frames read.")
    d.DEFINE_boolean("use_glove", True, "Embedding from W_embedding.npy.")
    d.DEFINE_integer("embedding_dim", 100, "Embedding width without GloVe.")
    d.DEFINE_integer("seed", 0, "Seed of initialisers, dropout, sampler.")
    d.DEFINE_enum("strategy", "auto", ["auto", "mirrored", "multi_worker",
                                       "one_device"], "tf.distribute.")
    d.DEFINE_boolean("jit_compile", False, "XLA-compile the train step.")
    common_flags.define_cpu_threads()
    d.DEFINE_boolean("mixed_precision", False, "mixed_float16 (GPU).")
    d.DEFINE_boolean("export", True, "Export a SavedModel at the end.")
    d.DEFINE_float("encoder_lr", 1e-5, "Learning rate of a pretrained "
                   "encoder (wav2vec2, BERT); the rest uses --lr.")
    d.DEFINE_boolean("baseline_select", True, "BASELINE_*: pick C (and "
                     "gamma) on dev UA; off: C=1, gamma=1/D.")
    d.DEFINE_list("ensemble_members", None, "Run folders to combine into an "
                  "ensemble run instead of training --model.")
    d.DEFINE_enum("ensemble_method", "weighted", ["max_confidence",
                  "average", "weighted", "feature"], "Ensemble combination.")
    d.DEFINE_integer("grid_steps", 10, "Weighted ensembles: weight grid.")
    # The Yoon et al. names of model options (tasks/model_options.py),
    # typed like the option; unset (None) = the model's own default.
    define = {int: d.DEFINE_integer, float: d.DEFINE_float,
              bool: d.DEFINE_boolean}
    for flag, option in model_options.FLAG_ALIASES.items():
        default = model_options.alias_example(flag).default
        define.get(type(default), d.DEFINE_string)(
            flag, None, f"Model option {option}" + (
                f" (e.g. {default!r})." if default is not None else "."))


def apply_config_file(path: str) -> dict:
    """Sets the flags a `--config` file names (unless given on the command
    line); returns its model options (checked later, per model)."""
    every_option = {name for model in registry.names()
                    for name in model_options.options_of(model)}
    return common_flags.apply_config_file(FLAGS, path, every_option)[1]


def run_values(exclude=()) -> dict:
    """The parsed flags as `train_run.run` keyword arguments (settings,
    the Yoon flags given, --model_config, --model_override), for binaries
    that train several runs (protocol.py)."""
    values = {name: FLAGS[name].value for name in train_run.SETTING_NAMES}
    # The alias flags default to None: set = given (or from --config).
    values.update({flag: FLAGS[flag].value
                   for flag in model_options.FLAG_ALIASES
                   if FLAGS[flag].value is not None})
    values.update(model_config=FLAGS.model_config,
                  model_override=list(FLAGS.model_override))
    return {name: value for name, value in values.items()
            if name not in exclude}


def main(argv: Sequence[str]) -> None:
    common_flags.no_arguments(argv)
    if FLAGS.model_help:
        print(model_options.describe(FLAGS.model))
        return
    file_options = model_options.check(
        FLAGS.model, apply_config_file(FLAGS.config), FLAGS.config) if (
            FLAGS.config) else {}
    logging.set_verbosity(logging.WARNING)
    log = lambda line: print(line, flush=True)  # noqa: E731
    if FLAGS.ensemble_members:
        kwargs = {name: FLAGS[name].value for name in inspect.signature(
            ensemble_run.train_ensemble).parameters if name != "log"}
        # The recipe's values for the schedule flags left unset.
        defaults = recipes.resolve(FLAGS.recipe)
        kwargs.update({name: defaults[name] for name in kwargs
                       if kwargs[name] is None and name in defaults})
        ensemble_run.train_ensemble(**kwargs, log=log)
        return
    if FLAGS.data_dir is None:
        raise app.UsageError(
            "--data_dir is required (a fold folder; make the demo one with "
            "`python -m preprocessing.demo_corpus --output_dir=...`).")
    settings, aliases, _ = train_run.split_values(run_values())
    options = dict(file_options)
    options.update(model_options.resolve(
        FLAGS.model, FLAGS.model_config, aliases, FLAGS.model_override))
    train_run.train(train_run.TrainSettings(**settings), options, log)


def run(argv: Optional[Sequence[str]] = None) -> None:
    """The `mse-train` console script (and `python train.py`)."""
    define_flags()
    cli.run(main, "train.py", (model_options.OptionError,), argv=argv)
