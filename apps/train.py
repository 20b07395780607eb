"""train.py: trains one model on a fold folder (`mse-train`).

    python train.py --model=MDREA --data_dir=demo_data/demo_set01

The flags are the settings every model shares (`--help`). A model's own
options (its constructor arguments: `--model=X --model_help` lists them)
come from `--model_config=FILE` (JSON) and
`--model_override=key=value,...`; the Yoon et al. flag names
(`--hidden_dim_audio`, `--dr_audio`, …) set the same options, so the
original's commands run unchanged. An option the model does not take is an
error. `--ensemble_members` combines trained runs instead
(ensemble_runs.py).

Writes `<output_dir>/<run name>/` (config.json, checkpoints, TensorBoard
events, metrics.json, weights, saved_model/) and appends the result line
to `--result_file`.
"""

import inspect
import sys

from absl import app
from absl import flags
from absl import logging

from preprocessing import cli
from models import registry
from models import run_files
from tasks import model_options
from tasks import train_run

FLAGS = flags.FLAGS


def define_flags() -> None:
    """This binary's flags (common settings + the Yoon option names)."""
    d = flags
    d.DEFINE_enum("model", "MDREA", list(registry.model_names()),
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
    d.DEFINE_string("data_dir", None, "Fold folder (reference format).")
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
    # The Yoon et al. names of model options (tasks/model_options.py).
    d.DEFINE_integer("num_layer_audio", None, "Option audio_layers (1).")
    d.DEFINE_integer("hidden_dim_audio", None, "Option audio_units (200).")
    d.DEFINE_float("dr_audio", None, "Option audio_keep_prob (0.7).")
    d.DEFINE_integer("num_layer_text", None, "Option text_layers (1).")
    d.DEFINE_integer("hidden_dim_text", None, "Option text_units (200).")
    d.DEFINE_float("dr_text", None, "Option text_keep_prob (0.3).")
    d.DEFINE_boolean("embedding_trainable", None,
                     "Option embedding_trainable (true).")
    d.DEFINE_boolean("mask_attention", None, "Option mask_attention.")
    d.DEFINE_enum("gru_impl", None, ["tf1", "cudnn"], "Option gru_impl: "
                  "tf1 = the original's cell; cudnn = reset_after (+3H "
                  "parameters per layer), NOT the original's.")
    d.DEFINE_string("hub_handle", None, "Option hub_handle: wav2vec2 "
                    "TF-Hub URL or SavedModel directory.")
    d.DEFINE_string("text_encoder_handle", None, "Option "
                    "text_encoder_handle (TRANSFORMER_FUSION: BERT-style).")


def _apply_config_file(path: str) -> dict:
    """Sets the flags the file names (unless given); returns its other
    entries, the model options."""
    import recipes

    every_option = {name for model in registry.model_names()
                    for name in model_options.options_of(model)}
    values = recipes.read_config_file(path, set(FLAGS) | every_option)
    options = {}
    for name, value in values.items():
        if name in FLAGS:
            if not FLAGS[name].present:
                FLAGS[name].value = value
        else:
            options[name] = value
    return model_options.check(FLAGS.model, options, path)


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


def main(argv) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if FLAGS.model_help:
        print(model_options.describe(FLAGS.model))
        return
    file_options = _apply_config_file(FLAGS.config) if FLAGS.config else {}
    logging.set_verbosity(logging.WARNING)
    log = lambda line: print(line, flush=True)  # noqa: E731
    if FLAGS.ensemble_members:
        import ensemble_runs
        import recipes

        kwargs = {name: FLAGS[name].value for name in inspect.signature(
            ensemble_runs.train_ensemble).parameters if name != "log"}
        # The recipe's values for the schedule flags left unset.
        defaults = recipes.resolve(FLAGS.recipe)
        kwargs.update({name: defaults[name] for name in kwargs
                       if kwargs[name] is None and name in defaults})
        ensemble_runs.train_ensemble(**kwargs, log=log)
        return
    if FLAGS.data_dir is None:
        raise app.UsageError(
            "--data_dir is required (a fold folder; make the demo one with "
            "`python -m preprocessing.demo_corpus --output_dir=...`).")
    values = run_values()
    settings, aliases, _ = train_run.split_values(values)
    options = dict(file_options)
    options.update(model_options.resolve(
        FLAGS.model, FLAGS.model_config, aliases, FLAGS.model_override))
    train_run.train(train_run.TrainSettings(**settings), options, log)


def run() -> None:
    """The console-script entry (`mse-train`)."""
    define_flags()
    cli.run(main, "train.py", (run_files.RunError,
                               model_options.OptionError))


if __name__ == "__main__":
    sys.exit(run())
