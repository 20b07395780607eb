"""The application layer: a fold, a model and a run folder wired together.

`models/` (Keras models) and `preprocessing/` (corpora → arrays) never import
each other; this package joins them, and the binaries (`apps/`) are flags →
config → one call into it. Each module imports only the modules listed above
it (and `common`, `models`, `preprocessing`), never one below and never
`apps` (tests/test_import_layers.py checks this order):

    model_options      a model's options: --model_config, the Yoon flag
                       names, --model_override, validated per model
    run_names          the original's run-name scheme, per model
    folds              a fold folder as a model reads it (which arrays, loaded
                       and validated), per-model input facts, data digest
    model_setup        fold + settings → constructor arguments → built model
    datasets           tf.data datasets of a split as a given model reads them
    recipes            training recipes (reference / real) → TrainConfig
    run_dir            run names, settings checks, config.json and the other
                       JSON files (atomic), result lines
    loading            a finished run's model back in memory (and ensembles
                       from their member runs)
    raw_serving        serve_raw / serve_wav: features computed in the graph
    serving            ServingAssets (wav + transcript → inputs), export_run
    run_finish         the end of every training run (weights, metrics,
                       export, result line)
    ensemble_run       ensembles of trained runs as runs of their own
    baselines          the classical baselines as runs
    train_run          one training run: settings + model options → a
                       finished run folder (what train.py calls)
    prediction         Predictor: emotion probabilities from wav files
    explanation_plots  the PNGs of an explanation (matplotlib)
    explanation        integrated gradients, ablations, attention; JSON+plots
    evaluation         a run evaluated on a split (+ confusion-matrix PNG)
    protocol           every model on every fold of a build, summarised
    search             hyperparameter search with optuna, scored on dev

`tasks.run_dir` is imported as `run_files` where its functions take a
`run_dir` argument (the folder), so the two names never clash.
"""

LAYERS = ("model_options", "run_names", "folds", "model_setup", "datasets",
          "recipes", "run_dir", "loading", "raw_serving", "serving",
          "run_finish", "ensemble_run", "baselines", "train_run",
          "prediction", "explanation_plots", "explanation", "evaluation",
          "protocol", "search")
