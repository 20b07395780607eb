"""Trains ARE, TRE, MDRE or MDREA on a fold folder, as the original trainers.

Example (the reference MDREA run; defaults are the reference settings):

    python train.py --model=MDREA --data_dir=demo_data/demo_set01

Writes `<output_dir>/<run name>/` with `config.json`, checkpoints (resume a
killed run with `--run_dir=<that folder>`), TensorBoard events,
`metrics.json`, `model.weights.h5` and `saved_model/`, and appends one line
to `TEST_run_result.txt`.
"""

import inspect
import os

from absl import app
from absl import flags
from absl import logging


def define_flags():
    """Defines this binary's flags (only when it runs as a program, so that
    the binaries stay importable together, e.g. by the tests)."""
    flags.DEFINE_enum(
        "model",
        "MDREA",
        ["ARE", "TRE", "MDRE", "MDREA"],
        "Which model to train.",
    )
    flags.DEFINE_string(
        "data_dir",
        None,
        "Fold folder in the reference format (e.g. "
        "demo_data/demo_set01 or .../audio_woZ_set01).",
    )
    flags.DEFINE_string(
        "output_dir", "runs", "Runs are written below this folder."
    )
    flags.DEFINE_string(
        "run_dir",
        None,
        "Exact run folder; an existing one is resumed from its "
        "last checkpoint. Default: <output_dir>/<run name>.",
    )
    flags.DEFINE_string(
        "result_file",
        "TEST_run_result.txt",
        "File the run's result line is appended to.",
    )
    flags.DEFINE_string(
        "graph_prefix",
        None,
        "Run-name prefix (default: the original's per "
        "model: SE_prosody, SE_nlp, SE_multi, SE_multi_attn_prosody).",
    )
    flags.DEFINE_integer("batch_size", 128, "Global batch size.")
    flags.DEFINE_float("lr", 0.001, "Adam learning rate.")
    flags.DEFINE_integer("num_train_steps", 10000, "Maximum training steps.")
    flags.DEFINE_integer(
        "patience",
        7,
        "Early stopping: stop at the (patience+1)-th validation "
        "in a row without a lower dev loss.",
    )
    flags.DEFINE_integer(
        "encoder_size_audio", 750, "MFCC frames fed to the audio GRU."
    )
    flags.DEFINE_integer("num_layer_audio", 1, "Audio GRU layers.")
    flags.DEFINE_integer("hidden_dim_audio", 200, "Audio GRU units.")
    flags.DEFINE_float("dr_audio", 0.7, "Audio dropout KEEP probability.")
    flags.DEFINE_integer("num_layer_text", 1, "Text GRU layers.")
    flags.DEFINE_integer("hidden_dim_text", 200, "Text GRU units.")
    flags.DEFINE_float("dr_text", 0.3, "Text dropout KEEP probability.")
    flags.DEFINE_boolean(
        "use_glove", True, "Initialise the embedding from W_embedding.npy."
    )
    flags.DEFINE_integer(
        "embedding_dim", 100, "Embedding width when --nouse_glove."
    )
    flags.DEFINE_boolean(
        "embedding_trainable", True, "Fine-tune the word embedding."
    )
    flags.DEFINE_boolean(
        "mask_attention",
        True,
        "MDREA: mask padded words (False = the paper-era unmasked attention).",
    )
    flags.DEFINE_boolean(
        "normalize_audio",
        False,
        "Standardise MFCC and prosody with train-split "
        "statistics (kept in the model). Off = raw features, as the original.",
    )
    flags.DEFINE_enum(
        "sampling",
        "sample",
        ["sample", "epochs"],
        "sample: each batch drawn "
        "uniformly with replacement (original); epochs: shuffled epochs.",
    )
    flags.DEFINE_integer(
        "seed", 0, "Seed of initialisers, dropout and the sampler."
    )
    flags.DEFINE_enum(
        "strategy",
        "auto",
        ["auto", "mirrored", "multi_worker", "one_device"],
        "tf.distribute strategy (auto: mirrored over visible GPUs, else CPU).",
    )
    flags.DEFINE_boolean("jit_compile", False, "XLA-compile the train step.")
    flags.DEFINE_boolean("export", True, "Export a SavedModel at the end.")


DEFAULT_PREFIXES = {
    "ARE": "SE_prosody",
    "TRE": "SE_nlp",
    "MDRE": "SE_multi",
    "MDREA": "SE_multi_attn_prosody",
}


def run_name_parts(model, hparams, use_glove, embedding_trainable):
    """The original's run-name fields for `model` (see yoon_spec.md §4)."""
    audio = [
        ("es", hparams["encoder_size_audio"]),
        ("L", hparams["audio_layers"]),
        ("H", hparams["audio_units"]),
    ]
    text = [
        ("es", 128),
        ("L", hparams["text_layers"]),
        ("H", hparams["text_units"]),
        ("G", f"{int(use_glove)}{'' if embedding_trainable else 'F'}"),
    ]
    if model == "ARE":
        return audio + [("dr", hparams["audio_keep_prob"])]
    if model == "TRE":
        return text + [("dr", hparams["text_keep_prob"])]
    return (
        [(tag + "A", value) for tag, value in audio]
        + [("drA", hparams["audio_keep_prob"])]
        + [(tag + "T", value) for tag, value in text[:3]]
        + [text[3], ("drT", hparams["text_keep_prob"])]
    )


def train(
    model,
    data_dir,
    output_dir="runs",
    run_dir=None,
    result_file="TEST_run_result.txt",
    graph_prefix=None,
    batch_size=128,
    lr=0.001,
    num_train_steps=10000,
    patience=7,
    encoder_size_audio=750,
    num_layer_audio=1,
    hidden_dim_audio=200,
    dr_audio=0.7,
    num_layer_text=1,
    hidden_dim_text=200,
    dr_text=0.3,
    use_glove=True,
    embedding_dim=100,
    embedding_trainable=True,
    mask_attention=True,
    normalize_audio=False,
    sampling="sample",
    seed=0,
    strategy="auto",
    jit_compile=False,
    export=True,
    log=print,
):
    """Trains one model; returns (run_dir, TrainResult, result line).

    Arguments mirror the flags of this binary (see `--help`).
    """
    import keras

    import experiment
    from models import export as export_lib
    from models import run_files
    from models import training

    fold = experiment.load_fold(data_dir, model)
    hparams = dict(
        audio_units=hidden_dim_audio,
        audio_layers=num_layer_audio,
        audio_keep_prob=dr_audio,
        text_units=hidden_dim_text,
        text_layers=num_layer_text,
        text_keep_prob=dr_text,
        embedding_trainable=embedding_trainable,
        mask_attention=mask_attention,
        seed=seed,
    )
    kwargs = experiment.model_kwargs(
        model, fold, use_glove, embedding_dim, normalize_audio, **hparams
    )
    name = run_files.run_name(
        graph_prefix or DEFAULT_PREFIXES[model],
        fold.name,
        batch_size,
        run_name_parts(
            model,
            dict(hparams, encoder_size_audio=encoder_size_audio),
            use_glove,
            embedding_trainable,
        ),
    )
    resuming = run_dir is not None and os.path.exists(
        os.path.join(run_dir, "config.json")
    )
    run_dir = run_dir or os.path.join(output_dir, name)
    train_config = training.TrainConfig(
        batch_size=batch_size,
        learning_rate=lr,
        num_train_steps=num_train_steps,
        patience=patience,
        jit_compile=jit_compile,
    )
    config = {
        "run_name": name,
        "model": {"name": model, "kwargs": kwargs},
        "data": {
            "data_dir": os.path.abspath(data_dir),
            "dataset": fold.name,
            "digest": experiment.manifest_digest(data_dir),
            "label_names": list(fold.label_names),
            "encoder_size_audio": encoder_size_audio,
        },
        "train": dict(
            vars(train_config),
            sampling=sampling,
            seed=seed,
            use_glove=use_glove,
            strategy=strategy,
        ),
    }
    config_path = os.path.join(run_dir, "config.json")
    if resuming:
        previous = run_files.read_json(config_path)
        if previous["model"] != config["model"] or (
            previous["data"]["digest"] != config["data"]["digest"]
        ):
            raise ValueError(
                f"{config_path}: the run being resumed was "
                "trained with another model config or data; "
                "use a new --run_dir."
            )
        config["run_name"] = name = previous["run_name"]
    else:
        run_files.write_json(config_path, config)
    log(f"[Info] run {name} -> {run_dir}")

    keras.utils.set_random_seed(seed)
    trainer = training.Trainer(
        lambda: experiment.build_model(model, kwargs, fold, use_glove),
        training.make_strategy(strategy),
        run_dir,
        train_config,
        fold.num_classes,
        fold.label_names,
        log=log,
    )
    splits = fold.splits
    result = trainer.fit(
        experiment.train_dataset_fn(
            splits["train"], batch_size, sampling, seed, encoder_size_audio
        ),
        experiment.eval_dataset(splits["dev"], batch_size, encoder_size_audio),
        experiment.eval_dataset(splits["test"], batch_size, encoder_size_audio),
        num_train=len(splits["train"]),
    )
    if not trainer.is_chief:
        return run_dir, result, None
    trainer.model.save_weights(os.path.join(run_dir, "model.weights.h5"))
    run_files.write_json(
        os.path.join(run_dir, "metrics.json"),
        {
            "dev": result.final_dev,
            "test": result.final_test,
            "steps": result.steps,
            "best_step": result.best_step,
            "best_dev_loss": result.best_dev_loss,
            "best_dev_accuracy": result.best_dev_accuracy,
            "test_accuracy_at_best": result.test_accuracy_at_best,
            "stopped_early": result.stopped_early,
            "train_seconds": result.train_seconds,
        },
    )
    if export:
        export_lib.export_saved_model(
            trainer.model,
            os.path.join(run_dir, "saved_model"),
            fold.label_names,
        )
    line = run_files.append_result(
        result_file,
        fold.name,
        name,
        result.best_dev_accuracy,
        result.test_accuracy_at_best,
        result.final_test["ua"],
    )
    log(
        f"[Result] best step {result.best_step}: dev WA "
        f"{result.best_dev_accuracy:.3f}, test WA "
        f"{result.test_accuracy_at_best:.3f}; restored best weights: test WA "
        f"{result.final_test['wa']:.3f} UA {result.final_test['ua']:.3f} "
        f"({result.train_seconds:.0f} s)"
    )
    return run_dir, result, line


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if flags.FLAGS.data_dir is None:
        raise app.UsageError(
            "--data_dir is required (a fold folder; make "
            "the demo one with `python -m "
            "preprocessing.demo_corpus --output_dir=...`)."
        )
    values = flags.FLAGS
    kwargs = {
        name: values[name].value
        for name in inspect.signature(train).parameters
        if name != "log"
    }
    logging.set_verbosity(logging.WARNING)
    train(**kwargs, log=lambda line: print(line, flush=True))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    define_flags()
    app.run(main)
