"""Data side of the ablation suite: datasets, splits, preprocessing and augmentation as registries,
served by an in-memory TensorLoader on the training device."""
from .augment import AUGMENTATIONS, build_augmentation
from .config import DataConfig
from .datamodule import ImageDataModule
from .datasets import DATASETS, DataUnavailableError, DatasetSpec, load_dataset
from .loader import StepGroup, StepGroups, TensorLoader
from .mix import MIXES, build_mix
from .preprocess import PREPROCESSORS, build_preprocessor

__all__ = [
    "DataConfig", "ImageDataModule", "DATASETS", "DatasetSpec", "load_dataset", "DataUnavailableError",
    "PREPROCESSORS", "build_preprocessor", "AUGMENTATIONS", "build_augmentation", "StepGroup", "StepGroups",
    "TensorLoader", "MIXES", "build_mix",
]
