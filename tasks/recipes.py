"""Training recipes: the reference schedule, and one for small real corpora.

`train.py --recipe=NAME` picks a recipe; every option it sets can still be
given on its own (an explicit value wins), so each part can be switched off
to measure what it adds (README "Recipes for real corpora").

* `reference` (default): the original schedule exactly (yoon_spec.md §4):
  batch 128, Adam 1e-3, batches drawn with replacement, validation every
  `int(n·0.3/batch)+1` steps, patience 7 validations, at most 10,000 steps.
* `real`: what trains on a few hundred utterances (measured on EmoDB,
  leave-one-speaker-out, decided on dev UA; README "On the development
  corpus"): shuffled epochs of batch 32, one validation per epoch on the
  speaker-disjoint dev split, early stopping with a patience and a minimum
  counted in epochs, class-balanced loss, per-speaker normalisation and
  global standardisation. Off, because they did not help there (each
  switched on by its own flag): linear warm-up then cosine decay (±0.000
  dev UA over 10 folds), AdamW weight decay (1e-3 changed no prediction:
  lr · wd ≈ 1e-6 per step; the search space has it), SpecAugment (−2.5
  points of dev UA); waveform perturbation (`wave_augment`) was not
  measured (the MFCC models read precomputed features).

Options (None = the recipe's value):

| option | meaning |
|---|---|
| batch_size, lr, num_train_steps, patience, sampling | as the flags of the same name; with `max_epochs` patience counts epochs |
| max_epochs | train at most this many epochs and validate once per epoch (None: steps, as the original) |
| min_epochs | never stop early before this many epochs |
| warmup_epochs, lr_decay | linear warm-up, then none / cosine / linear decay to 0 at the last step |
| weight_decay | AdamW decoupled weight decay (0 = Adam) |
| class_balance | training loss weighted n / (K · n_class) |
| speaker_norm | per-speaker MFCC and prosody standardisation (`preprocessing.speaker_norm`) |
| normalize_audio | global train-split standardisation inside the model |
| spec_augment, wave_augment | SpecAugment masks / gain, noise, speed perturbation (`preprocessing.augment`) |
| selection | keep the weights of the lowest dev loss ("loss") or highest dev UA ("ua") |
"""

import json
from typing import Any, Collection, Dict, Optional, Sequence, Tuple

import numpy as np

from common import constants
from models import training
from preprocessing import augment

REFERENCE = dict(
    batch_size=128, lr=0.001, num_train_steps=10000, patience=7,
    sampling="sample", max_epochs=None, min_epochs=0, warmup_epochs=0,
    lr_decay="none", weight_decay=0.0, class_balance=False,
    speaker_norm=False, normalize_audio=False, spec_augment=False,
    wave_augment=False, selection="loss")
REAL = dict(
    REFERENCE, batch_size=32, patience=6, sampling="epochs", max_epochs=30,
    min_epochs=10, warmup_epochs=0, lr_decay="none", weight_decay=0.0,
    class_balance=True, speaker_norm=True, normalize_audio=True)
RECIPES = {"reference": REFERENCE, "real": REAL}
OPTIONS = tuple(REFERENCE)
# The masks and perturbations `spec_augment` / `wave_augment` switch on:
# 2 bands of up to 6 of the 39 MFCC features (or of the mel bands), 2 spans
# of up to 20 frames (0.2 s, at most a fifth of the utterance); ±6 dB,
# 15–40 dB SNR, ±10% speed.
SPEC_AUGMENT = dict(freq_masks=2, freq_width=6, time_masks=2, time_width=20,
                    time_ratio=0.2)
WAVE_AUGMENT = dict(gain_db=6.0, snr_db_min=15.0, snr_db_max=40.0, speed=0.1)


def resolve(recipe: str = "reference", **given: Any) -> Dict[str, Any]:
    """The recipe's options with every given non-None value put over them.

    Raises:
        ValueError: unknown recipe or option.
    """
    if recipe not in RECIPES:
        raise ValueError(f"Unknown recipe {recipe!r}; valid: "
                         f"{', '.join(RECIPES)}.")
    unknown = set(given) - set(OPTIONS)
    if unknown:
        raise ValueError(f"Unknown recipe options {sorted(unknown)}; valid: "
                         f"{', '.join(OPTIONS)}.")
    options = dict(RECIPES[recipe])
    options.update({k: v for k, v in given.items() if v is not None})
    return options


def class_weights(labels: Sequence[int],
                  num_classes: int) -> Tuple[float, ...]:
    """n / (K · n_c) per class, K the classes present (so the mean weight
    over the examples is 1); an absent class gets 0 (it never occurs)."""
    counts = np.bincount(np.asarray(labels), minlength=num_classes)
    counts = counts[:num_classes].astype(np.float64)
    total, present = counts.sum(), max(int((counts > 0).sum()), 1)
    return tuple(float(total / (present * c)) if c else 0.0
                 for c in counts)


def steps_per_epoch(num_train: int, batch_size: int) -> int:
    """Full batches per shuffled epoch (the epochs sampler drops the rest)."""
    return max(num_train // batch_size, 1)


def train_config(options: Dict[str, Any], num_train: int,
                 labels: Optional[Sequence[int]] = None,
                 num_classes: int = constants.NUM_CLASSES,
                 jit_compile: bool = False,
                 mixed_precision: bool = False) -> training.TrainConfig:
    """The `training.TrainConfig` of resolved options (see `resolve`).

    With `max_epochs` the schedule is counted in epochs of
    `steps_per_epoch(num_train, batch_size)` steps: one validation per
    epoch, patience and `min_epochs` in epochs, warm-up in epochs, and
    `num_train_steps` = max_epochs epochs. Without it the original's step
    schedule is kept (warm-up still counted in epochs).
    """
    batch = options["batch_size"]
    epoch = steps_per_epoch(num_train, batch)
    by_epochs = options["max_epochs"] is not None
    weights = (class_weights(labels, num_classes)
               if options["class_balance"] else None)
    return training.TrainConfig(
        batch_size=batch, learning_rate=options["lr"],
        num_train_steps=(options["max_epochs"] * epoch if by_epochs
                         else options["num_train_steps"]),
        patience=options["patience"], jit_compile=jit_compile,
        mixed_precision=mixed_precision,
        validation_every=epoch if by_epochs else 0,
        min_steps=options["min_epochs"] * epoch,
        warmup_steps=options["warmup_epochs"] * epoch,
        lr_decay=options["lr_decay"], weight_decay=options["weight_decay"],
        class_weights=weights, selection=options["selection"])


def augmentation(options: Dict[str, Any]) -> Optional[augment.Augmentation]:
    """The `augment.Augmentation` of resolved options, or None."""
    values = {}
    if options["spec_augment"]:
        values.update(SPEC_AUGMENT)
    if options["wave_augment"]:
        values.update(WAVE_AUGMENT)
    return augment.Augmentation(**values) if values else None


def read_config_file(path: str, known: Collection[str]) -> Dict[str, Any]:
    """Flag values from a JSON configuration file (e.g. written by
    `search.py`): a dict flag name → value, or {"flags": {...}}.

    Args:
        path: str.
        known: collection of valid flag names.

    Raises:
        ValueError: unreadable file, not a dict, or an unknown flag name
            (one line naming the file and the names).
    """
    try:
        with open(path) as f:
            values = json.load(f)
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a readable JSON configuration "
                         f"({error}).") from error
    if isinstance(values, dict) and isinstance(values.get("flags"), dict):
        values = values["flags"]
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a JSON object of flag values; "
                         f"found {type(values).__name__}.")
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"{path}: unknown flags {unknown}.")
    return values
