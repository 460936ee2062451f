"""The data half of a run config: which dataset, how it is split, preprocessed and augmented.

Every field is checked here, at construction, so a typo fails before any data is loaded or any model
is built.  The split fields (`val_fraction`, `train_size`, `split_seed`) are deliberately independent
of the run seed: all runs of an ablation see the same validation set and the same training subset.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from lit_modules.config_tools import check_choice, check_range, validate_fields
from lit_modules.registry import ConfigError

from .augment import AUGMENTATIONS
from .datasets import DATASETS
from .mix import MIXES
from .preprocess import PREPROCESSORS


@dataclass(frozen=True)
class DataConfig:
    name: str = "digits"                  # DATASETS registry
    # Where the files live and whether to fetch them do not change the data, so they stay out of
    # the config hash (the same run on two machines must land in the same result slot).
    data_dir: str | None = field(default=None, metadata={"hash": False})
    download: bool = field(default=True, metadata={"hash": False})
    batch_size: int = 128
    eval_batch_size: int = 1024
    val_fraction: float = 0.1             # held out of the official train split
    train_size: int | None = None         # seeded subset of the remaining train split
    # A subset of the dataset's classes (e.g. (5, 6, 7, 8, 9)), relabelled 0..k-1 in this order, in
    # every split; None keeps them all.  Transfer studies train a source on some classes, a target on others.
    classes: tuple[int, ...] | None = None
    split_seed: int = 0                   # fixed: val split and subset identical across runs/seeds
    preprocess: str = "standardize"       # PREPROCESSORS registry
    augment: str = "none"                 # AUGMENTATIONS names joined with "+", e.g. "flip+crop"
    mix: str = "none"                     # MIXES registry: mixup / cutmix of training batches (soft targets)
    mix_alpha: float = 1.0                # mixing weight ~ Beta(mix_alpha, mix_alpha)
    # Fraction of TRAINING labels replaced by a uniformly drawn other class (Zhang et al. 2017's
    # corrupted labels); which ones and their new labels are seeded by split_seed.  Val and test keep theirs.
    label_noise: float = 0.0
    # Mini-batches handed to one training_step call: amortizes Lightning's per-batch loop (~0.25 ms)
    # over several optimizer steps.  The steps and their order are the same, so results are too.
    steps_per_call: int = field(default=32, metadata={"hash": False})

    def __post_init__(self) -> None:
        validate_fields(self)
        check_choice("name", self.name, DATASETS)
        check_choice("preprocess", self.preprocess, PREPROCESSORS)
        for part in self.augment.split("+"):
            check_choice("augment", part.strip(), AUGMENTATIONS)
        check_choice("mix", self.mix, MIXES)
        _check_finite_range("mix_alpha", self.mix_alpha, 0.0, math.inf, "(0.0, inf)")
        check_range("batch_size", self.batch_size, low=1)
        check_range("eval_batch_size", self.eval_batch_size, low=1)
        check_range("val_fraction", self.val_fraction, low=0.0, high=1.0, low_open=True, high_open=True)
        if self.train_size is not None:
            check_range("train_size", self.train_size, low=1)
        check_range("split_seed", self.split_seed, low=0)
        _check_finite_range("label_noise", self.label_noise, 0.0, 1.0, "[0.0, 1.0)", low_open=False)
        if self.classes is not None:
            _check_classes(self.classes, self.name)
        check_range("steps_per_call", self.steps_per_call, low=1)


def _check_finite_range(key: str, value: float, low: float, high: float, interval: str,
                        low_open: bool = True) -> None:
    """low < value < high (or low <= value where not low_open); NaN and inf, which slip through plain
    comparisons or make no sense here, are rejected by name."""
    inside = (low < value if low_open else low <= value) and value < high
    if not (inside and math.isfinite(value)):
        raise ConfigError(f"{key}: {value!r} is out of range; it must be a finite number in {interval}")


def _check_classes(classes: tuple[int, ...], name: str) -> None:
    known = DATASETS.get(name).num_classes
    if len(classes) < 2:
        raise ConfigError(f"classes: {classes!r} has fewer than two classes; a classifier needs at least two")
    for c in classes:
        if not 0 <= c < known:
            raise ConfigError(f"classes: {c} is not a class of {name!r}; valid class ids: 0..{known - 1}")
    if len(set(classes)) != len(classes):
        raise ConfigError(f"classes: {classes!r} names a class more than once")
