"""ImageDataModule: one DataConfig -> train / val / test TensorLoaders on the training device.

The splits (and the corrupted training labels of `label_noise`) depend only on the config
(`val_fraction`, `train_size`, `split_seed`), never on the run seed: every run of an ablation is
validated on the same images and trained on the same subset, so differences between runs come from the
technique and the run seed alone.  The test split is kept
apart: only `test_dataloader` reads it, so no training or model-selection step can.
"""
from __future__ import annotations

import lightning as L
import torch

from lit_modules.registry import ConfigError

from .augment import build_augmentation
from .config import DataConfig
from .datasets import DATASETS, DatasetSpec, load_dataset
from .loader import StepGroups, TensorLoader
from .mix import build_mix
from .preprocess import Preprocessor, build_preprocessor


# Seeds the label-noise stream apart from the split permutation that split_seed also seeds.
_LABEL_NOISE_STREAM = 0x6E6F697365


def corrupt_labels(y: torch.Tensor, fraction: float, num_classes: int,
                   seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(labels, corrupted mask): round(fraction * n) labels, chosen at random, each replaced by a class
    drawn uniformly from the num_classes - 1 OTHER classes, so every corrupted label is wrong (Zhang et
    al. 2017 draw from all classes, which leaves 1/C of theirs correct: their p is our p * C / (C - 1)).
    A prefix of one seeded permutation is corrupted, so 20% noise corrupts a subset of 40%'s examples,
    with the same wrong labels."""
    n = len(y)
    generator = torch.Generator().manual_seed((seed * 1_000_003 + _LABEL_NOISE_STREAM) % 2**63)
    order = torch.randperm(n, generator=generator)
    shift = torch.randint(1, num_classes, (n,), generator=generator)   # never 0 mod C: another class
    chosen = order[:round(fraction * n)]
    noisy = y.clone()
    noisy[chosen] = (y[chosen] + shift[:len(chosen)]) % num_classes
    corrupted = torch.zeros(n, dtype=torch.bool)
    corrupted[chosen] = True
    return noisy, corrupted


class ImageDataModule(L.LightningDataModule):
    def __init__(self, cfg: DataConfig, seed: int = 0, full_batch: bool = False):
        super().__init__()
        self.cfg, self.seed, self.full_batch = cfg, seed, full_batch
        self.augment = build_augmentation(cfg.augment)
        self.preprocessor: Preprocessor | None = None
        self._is_split = False
        self._ready: dict[str, torch.Tensor | None] | None = None   # preprocessed splits, see setup

    # What a model needs before any data is read (building it must not wait for a download).
    @property
    def spec(self) -> DatasetSpec:
        return DATASETS.get(self.cfg.name)

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes if self.cfg.classes is None else len(self.cfg.classes)

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return self.spec.in_shape

    def _load(self):
        return load_dataset(self.cfg.name, self.cfg.data_dir, self.cfg.download)

    def prepare_data(self) -> None:
        # Loading here (rank 0 only under DDP) makes missing data fail before any training starts.
        self._load()

    def setup(self, stage: str | None = None) -> None:
        if not self._is_split:
            self._split()
        # Lightning calls setup once per stage; moving to the device again is a no-op if already there.
        device = self._device()
        for name in ("x_train", "y_train", "y_train_true", "corrupted", "x_val", "y_val", "x_test", "y_test"):
            setattr(self, name, getattr(self, name).to(device))
        self.preprocessor = self.preprocessor.to(device)
        # Preprocessing is a fixed map fitted once: apply it once per split instead of to every batch,
        # except for training under augmentation, which must see raw pixels first (augment, then
        # normalize, as torchvision pipelines do).
        if self._ready is None or self._ready["val"].device != device:
            self._ready = {"val": self.preprocessor(self.x_val), "test": self.preprocessor(self.x_test),
                           "train": self.preprocessor(self.x_train) if self.augment.is_identity else None}

    def _split(self) -> None:
        cfg, raw = self.cfg, self._load()
        n = len(raw.y_train)
        n_val = min(max(1, round(cfg.val_fraction * n)), n - 1)
        # One permutation seeded by split_seed decides both the validation set and the subset; taking
        # its prefix makes smaller train_size subsets nested in larger ones (clean data-size curves).
        order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.split_seed))
        val_idx, train_idx = order[:n_val], order[n_val:]
        if cfg.classes is not None:
            # Split first, then keep the chosen classes: a class subset's validation images are the
            # full validation set's images of those classes, so a source model trained on other
            # classes of the same split never saw them.
            keep = torch.isin(raw.y_train, torch.tensor(cfg.classes))
            val_idx, train_idx = val_idx[keep[val_idx]], train_idx[keep[train_idx]]
        if cfg.train_size is not None:
            if cfg.train_size > len(train_idx):
                raise ConfigError(
                    f"train_size: {cfg.train_size} is more than the {len(train_idx)} training samples "
                    f"of {cfg.name!r} left after holding out val_fraction={cfg.val_fraction}")
            train_idx = train_idx[:cfg.train_size]
        # Indices into the official train split, kept for provenance (and for tests of the split).
        self.train_indices, self.val_indices = train_idx, val_idx
        relabel = self._relabel()
        self.x_train, self.y_train = raw.x_train[train_idx], relabel[raw.y_train[train_idx]]
        self.x_val, self.y_val = raw.x_train[val_idx], relabel[raw.y_train[val_idx]]
        test = relabel[raw.y_test] >= 0
        self.x_test, self.y_test = raw.x_test[test], relabel[raw.y_test[test]]
        # Label noise touches the training labels only; the true ones stay for measuring memorization.
        self.y_train_true = self.y_train
        self.y_train, self.corrupted = corrupt_labels(self.y_train, cfg.label_noise, self.num_classes, cfg.split_seed)
        # Statistics come from the training split only: fitting on val/test would leak them.
        self.preprocessor = build_preprocessor(cfg.preprocess).fit(self.x_train)
        self._is_split = True

    def corrupted_train(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The training examples whose labels label_noise replaced: (preprocessed inputs without
        augmentation, the labels training saw, their true labels); empty without label noise."""
        return self.clean_train()[self.corrupted], self.y_train[self.corrupted], self.y_train_true[self.corrupted]

    def _relabel(self) -> torch.Tensor:
        """Lookup table: dataset label -> label of this run (-1 for classes left out)."""
        classes = self.cfg.classes if self.cfg.classes is not None else range(self.spec.num_classes)
        table = torch.full((self.spec.num_classes,), -1, dtype=torch.int64)
        table[torch.tensor(list(classes))] = torch.arange(len(classes))
        return table

    def _device(self) -> torch.device:
        return self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")

    def ready(self, split: str) -> torch.Tensor | None:
        """The preprocessed inputs of 'train', 'val' or 'test' (None for train under augmentation)."""
        return self._ready[split]

    def clean_train(self) -> torch.Tensor:
        """The preprocessed training inputs without augmentation or mixing (for the clean train accuracy)."""
        ready = self.ready("train")
        return self.preprocessor(self.x_train) if ready is None else ready

    def train_dataloader(self) -> StepGroups:
        """Training batches come in groups of `steps_per_call` (a StepGroup of (x, y) pairs per call)."""
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        batch_size = len(self.x_train) if self.full_batch else self.cfg.batch_size
        ready = self.ready("train")
        # Lightning turns shuffling off under overfit_batches for DataLoaders; this loader is not one.
        overfit = trainer is not None and trainer.overfit_batches > 0
        loader = TensorLoader(self.x_train if ready is None else ready, self.y_train, batch_size,
                              shuffle=not overfit, seed=self.seed, rank=rank, world_size=world,
                              preprocess=self.preprocessor if ready is None else None,
                              augment=self.augment if ready is None else None,
                              mix=build_mix(self.cfg.mix, self.num_classes, self.cfg.mix_alpha))
        return StepGroups(loader, self.cfg.steps_per_call)

    def _eval_loader(self, split: str, y: torch.Tensor) -> TensorLoader:
        return TensorLoader(self.ready(split), y, self.cfg.eval_batch_size, shuffle=False, seed=self.seed)

    def val_dataloader(self) -> TensorLoader:
        return self._eval_loader("val", self.y_val)

    def test_dataloader(self) -> TensorLoader:
        return self._eval_loader("test", self.y_test)
