"""One training run: settings + model options -> a finished run folder.

`train(settings, options)` is what `train.py` calls: it checks the
settings, resolves the recipe (`recipes.py`), loads the fold, builds the
model from its options, names the run as the original did
(`run_names.py`), writes `config.json` before anything trains (a killed
run resumes from its checkpoints with `run_dir`), trains with
`models.training.Trainer`, then writes the result files and the result
line (`run_finish.finish_run`).

`run(model, data_dir, **values)` is the same with train.py's flag names as
keyword arguments (common settings, the Yoon flag names, and any option of
the model), for scripts and tests.
"""

import dataclasses
import os
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import keras

from common import constants
from models import bert_text_encoder
from models import encoders
from models import optimizers
from models import registry
from models import training
from tasks import baselines
from tasks import datasets
from tasks import folds
from tasks import model_options as model_options_lib
from tasks import model_setup
from tasks import recipes
from tasks import run_dir as run_files
from tasks import run_finish
from tasks import run_names


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """The settings every model shares (train.py's common flags).

    Schedule settings left None take the recipe's value (`recipes.py`):
    reference = the original schedule exactly; real = for small real
    corpora.
    """

    model: str
    data_dir: Optional[str]
    output_dir: str = "runs"
    run_dir: Optional[str] = None
    result_file: str = "TEST_run_result.txt"
    graph_prefix: Optional[str] = None
    recipe: str = "reference"
    batch_size: Optional[int] = None
    lr: Optional[float] = None
    num_train_steps: Optional[int] = None
    patience: Optional[int] = None
    max_epochs: Optional[int] = None
    min_epochs: Optional[int] = None
    warmup_epochs: Optional[int] = None
    lr_decay: Optional[str] = None
    weight_decay: Optional[float] = None
    class_balance: Optional[bool] = None
    speaker_norm: Optional[bool] = None
    spec_augment: Optional[bool] = None
    wave_augment: Optional[bool] = None
    selection: Optional[str] = None
    normalize_audio: Optional[bool] = None
    sampling: Optional[str] = None
    encoder_size_audio: int = constants.MFCC_FRAMES
    use_glove: bool = True
    embedding_dim: int = 100
    seed: int = 0
    strategy: str = "auto"
    jit_compile: bool = False
    cpu_threads: str = "auto"
    mixed_precision: bool = False
    export: bool = True
    encoder_lr: float = 1e-5
    baseline_select: bool = True


SETTING_NAMES = tuple(field.name for field in dataclasses.fields(
    TrainSettings))
_RECIPE_OPTIONS = ("batch_size", "lr", "num_train_steps", "patience",
                   "sampling", "max_epochs", "min_epochs", "warmup_epochs",
                   "lr_decay", "weight_decay", "class_balance",
                   "speaker_norm", "normalize_audio", "spec_augment",
                   "wave_augment", "selection")


def accepted_names(model: Optional[str] = None) -> Tuple[str, ...]:
    """The keyword names `run` takes: settings, Yoon flag names, and the
    options of `model` (of every model when None)."""
    models = [model] if model else registry.model_names()
    options = {name for each in models
               for name in model_options_lib.options_of(each)}
    aliases = tuple(flag for flag, option in
                    model_options_lib.FLAG_ALIASES.items()
                    if option in options)
    return tuple(SETTING_NAMES) + aliases + tuple(
        sorted(options - set(SETTING_NAMES)))


def split_values(values: Mapping[str, Any]) -> Tuple[
        Dict[str, Any], Dict[str, Any], Dict[str, Any]]:
    """train.py names -> (settings, Yoon alias flags, model options)."""
    settings, aliases, options = {}, {}, {}
    for name, value in values.items():
        if name in SETTING_NAMES:
            settings[name] = value
        elif name in model_options_lib.FLAG_ALIASES:
            aliases[name] = value
        else:
            options[name] = value
    return settings, aliases, options


def _full_options(model: str, options: Mapping[str, Any],
                  seed: int) -> Dict[str, Any]:
    """Every option of the model: its defaults, then `options`, then the
    run's seed (where the model takes one)."""
    known = model_options_lib.options_of(model)
    full = {name: option.default for name, option in known.items()}
    full.update(options)
    if "seed" in registry.model_options(model):
        full["seed"] = seed
    return full


def _absolute_handle(handle: Optional[str]) -> Optional[str]:
    """A local SavedModel directory as an absolute path (so evaluate.py and
    export.py rebuild the model from anywhere); URLs unchanged."""
    if handle and "://" not in handle:
        return os.path.abspath(handle)
    return handle


def train(settings: TrainSettings, options: Mapping[str, Any],
          log: Callable[[str], None] = print):
    """Trains one model; returns (run_dir, TrainResult, result line).

    Args:
        settings: the common settings.
        options: the model's options (validated by `model_options.check`
            or `resolve`); the model's defaults fill in the rest.
        log: callable(str) for progress lines.

    A run folder that already finished (same model config and data) is not
    trained again: its result line is returned with TrainResult None.

    Raises:
        run_files.RunError: a setting no run can use (checked before
            anything is read or written), a resumed run with another
            config, a damaged checkpoint state.
        reference_arrays.DataError: a bad fold folder.
    """
    s = settings
    run_files.check_settings(
        batch_size=s.batch_size, num_train_steps=s.num_train_steps,
        encoder_size_audio=s.encoder_size_audio, patience=s.patience,
        embedding_dim=s.embedding_dim, lr=s.lr, encoder_lr=s.encoder_lr,
        graph_prefix=s.graph_prefix)
    options = dict(model_options_lib.check(s.model, options, "options"))
    recipe = recipes.resolve(
        s.recipe, **{name: getattr(s, name) for name in _RECIPE_OPTIONS})
    family = registry.spec(s.model).family
    if family == "baseline":
        # Fitted by scikit-learn, not by the Trainer (baseline_runs.py); the
        # training-schedule settings do not apply.
        class_weight = options.get("class_weight", "balanced")
        return baselines.train_baseline(
            s.model, s.data_dir, s.output_dir, s.run_dir, s.result_file,
            s.graph_prefix, s.batch_size or 128, s.encoder_size_audio,
            s.seed, s.export, s.baseline_select,
            "none" if class_weight is None else class_weight,
            recipe["speaker_norm"], log)
    batch_size, sampling = recipe["batch_size"], recipe["sampling"]
    # Before TF's runtime starts: the GRU loops' streams need it.
    model_setup.configure_cpu_threads(s.model, s.cpu_threads, log)
    # Before any TF op (multi_worker needs that) and before any output:
    # the global batch must split over the replicas.
    distribution = training.make_strategy(s.strategy)
    training.check_batch_size(batch_size, distribution)
    hparams = _full_options(s.model, options, s.seed)
    # A wav2vec2 audio encoder: the W2V2 models, or TRANSFORMER_FUSION
    # with audio_encoder=wav2vec2.
    is_wav2vec2 = family == "wav2vec2" or (
        hparams.get("audio_encoder") == "wav2vec2")
    if is_wav2vec2 and not hparams.get("hub_handle"):
        raise run_files.RunError(
            f"--model={s.model} needs --hub_handle: a TF-Hub URL such as "
            "https://tfhub.dev/vasudevgupta7/wav2vec2/1 or a SavedModel "
            "directory (an offline stand-in: python "
            "tools/make_wav2vec2_standin.py --output_dir=DIR).")
    for key in ("hub_handle", "text_encoder_handle"):
        if key in hparams:
            hparams[key] = _absolute_handle(hparams[key])
    uses_text_encoder = bool(hparams.get("text_encoder_handle"))
    # The model's options decide what is read (e.g. the waveforms of a
    # log-mel CNN_SPEC).
    fold = folds.load_fold(s.data_dir, s.model, hparams)
    if recipe["speaker_norm"]:
        folds.normalize_speakers(fold, s.encoder_size_audio)
    kwargs = model_setup.model_kwargs(
        s.model, fold, s.use_glove, s.embedding_dim,
        recipe["normalize_audio"], **hparams)
    name = run_files.run_name(
        s.graph_prefix or registry.spec(s.model).run_prefix,
        fold.name,
        batch_size,
        run_names.run_name_parts(
            s.model,
            dict(hparams, encoder_size_audio=s.encoder_size_audio,
                 encoder_lr=s.encoder_lr),
            s.use_glove,
            hparams.get("embedding_trainable", True)),
    )
    run_files.check_run_name(name)
    run_dir = s.run_dir
    resuming = run_dir is not None and os.path.exists(
        os.path.join(run_dir, "config.json"))
    if run_dir is None:
        run_dir = os.path.join(s.output_dir, name)
        # The same command within the same minute names the same folder.
        line = run_files.finished_run(run_dir, s.result_file, log)
        if line is not None:
            return run_dir, None, line
    train_config = recipes.train_config(
        recipe, len(fold.splits["train"]), fold.splits["train"].label,
        fold.num_classes, jit_compile=s.jit_compile,
        mixed_precision=s.mixed_precision)
    config = {
        "run_name": name,
        "model": {"name": s.model, "kwargs": kwargs},
        "data": {
            "data_dir": os.path.abspath(s.data_dir),
            "dataset": fold.name,
            "digest": folds.manifest_digest(s.data_dir),
            "label_names": list(fold.label_names),
            "encoder_size_audio": s.encoder_size_audio,
            **({"speaker_norm": True} if recipe["speaker_norm"] else {}),
        },
        "train": dict(
            vars(train_config),
            **({} if s.recipe == "reference" else {"recipe": s.recipe}),
            recipe_options=recipe,
            sampling=sampling,
            seed=s.seed,
            use_glove=s.use_glove,
            strategy=s.strategy,
            **({"encoder_lr": s.encoder_lr}
               if is_wav2vec2 or uses_text_encoder else {}),
        ),
    }
    config_path = os.path.join(run_dir, "config.json")
    if resuming:
        previous = run_files.read_json(config_path)
        if previous["model"] != config["model"] or (
                previous["data"]["digest"] != config["data"]["digest"]):
            raise run_files.RunError(
                f"{config_path}: the run being resumed was trained with "
                "another model config or data; use a new --run_dir.")
        config["run_name"] = name = previous["run_name"]
        # The same model and data: a finished run is not trained again.
        line = run_files.finished_run(run_dir, s.result_file, log)
        if line is not None:
            return run_dir, None, line
    else:
        run_files.write_json(config_path, config)
    log(f"[Info] run {name} -> {run_dir}")

    keras.utils.set_random_seed(s.seed)
    extra_trainer_args = {}
    # The pretrained encoders (wav2vec2 and/or the BERT-style text
    # encoder) get encoder_lr, everything else lr.
    encoder_layers = []
    if is_wav2vec2:
        encoder_layers.append(encoders.WAV2VEC2_LAYER_NAME)
    if uses_text_encoder:
        encoder_layers.append(bert_text_encoder.TEXT_ENCODER_LAYER_NAME)
    if encoder_layers:
        extra_trainer_args["optimizer_fn"] = (
            optimizers.encoder_head_optimizer_fn(s.encoder_lr,
                                                 encoder_layers))
    trainer = training.Trainer(
        lambda: model_setup.build_model(s.model, kwargs, fold, s.use_glove),
        distribution, run_dir, train_config, fold.num_classes,
        fold.label_names, log=log, **extra_trainer_args)
    splits = fold.splits
    # What the model reads decides the features: raw waveforms, log-mel.
    data_args = datasets.dataset_options(trainer.model)
    result = trainer.fit(
        datasets.train_dataset_fn(
            splits["train"], batch_size, sampling, s.seed,
            s.encoder_size_audio, augmentation=recipes.augmentation(recipe),
            **data_args),
        datasets.eval_dataset(splits["dev"], batch_size,
                                s.encoder_size_audio, by_length=True,
                                **data_args),
        datasets.eval_dataset(splits["test"], batch_size,
                                s.encoder_size_audio, by_length=True,
                                **data_args),
        num_train=len(splits["train"]),
    )
    if not trainer.is_chief:
        return run_dir, result, None
    line = run_finish.finish_run(
        run_dir, trainer.model, result, fold.name, name, s.result_file,
        s.export, log)
    return run_dir, result, line


def run(model: str, data_dir: Optional[str] = None,
        log: Callable[[str], None] = print, model_config: Optional[str] = None,
        model_override=(), **values):
    """`train` with train.py's names as keyword arguments.

    Args:
        model, data_dir: as the flags.
        log: callable(str).
        model_config, model_override: as the flags.
        **values: common settings (`TrainSettings` fields), Yoon flag names
            (`model_options.FLAG_ALIASES`) and options of `model`; a name
            that is none of these is an error (`model_options.OptionError`).

    Returns:
        (run_dir, TrainResult or None, result line).
    """
    settings, aliases, options = split_values(values)
    resolved = model_options_lib.resolve(
        model, model_config, aliases, list(model_override))
    resolved.update(model_options_lib.check(model, options, "options"))
    return train(TrainSettings(model=model, data_dir=data_dir, **settings),
                 resolved, log)
