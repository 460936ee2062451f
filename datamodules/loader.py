"""TensorLoader: batches sliced from tensors that already sit on the training device.

The datasets of this suite are small (at most 50k 32x32 images, ~600 MB as float32), so the whole
split lives on the GPU and a batch is one index operation; augmentation and preprocessing then run on
the batch, on the same device.  No worker processes, no per-sample Python, no host-to-device copies:
on CPU and on CUDA the same code runs, and the data pipeline never becomes the bottleneck of an
ablation.
"""
from __future__ import annotations

import math
from typing import Callable, Iterator

import torch
from torch import Tensor

# Offsets that decorrelate the augmentation stream from the shuffling stream (both generators would
# otherwise be Mersenne twisters with the same seed on CPU) and give each DDP rank its own stream.
_AUGMENT_SEED_MULT, _AUGMENT_SEED_RANK = 1_000_003, 7_919


class TensorLoader:
    """Iterate (x_batch, y_batch) over in-memory tensors; an epoch is one `iter()`.

    With `shuffle`, each `iter()` draws a fresh permutation from a CPU generator seeded once with
    `seed`: epochs differ, and the whole sequence of epochs repeats exactly for the same seed.
    With `world_size > 1` every rank walks a disjoint, equal-size shard of the same permutation (the
    same seed on every rank gives the same permutation; the remainder of N / world_size is dropped
    each epoch, a different remainder each time when shuffling).
    """

    def __init__(self, x: Tensor, y: Tensor, batch_size: int, *, shuffle: bool, seed: int,
                 preprocess: Callable[[Tensor], Tensor] | None = None,
                 augment: Callable[[Tensor, torch.Generator], Tensor] | None = None,
                 drop_last: bool = False, rank: int = 0, world_size: int = 1,
                 mix: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] | None = None):
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world_size {world_size}")
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.preprocess = preprocess
        # An identity augmentation (or none) costs nothing: skip the call and the generator.
        self.augment = None if augment is None or getattr(augment, "is_identity", False) else augment
        self.drop_last, self.rank, self.world_size = drop_last, rank, world_size
        self.mix = mix   # batch mixing (datamodules/mix.py): after preprocessing, yields soft targets
        self._order_gen = torch.Generator().manual_seed(seed)
        self._augment_gen: torch.Generator | None = None   # created on x's device at first use

    @property
    def num_samples(self) -> int:
        """Samples this rank sees per epoch."""
        return len(self.x) // self.world_size

    def __len__(self) -> int:
        rounding = math.floor if self.drop_last else math.ceil
        return rounding(self.num_samples / self.batch_size)

    def _epoch_indices(self) -> Tensor:
        n = len(self.x)
        order = torch.randperm(n, generator=self._order_gen) if self.shuffle else torch.arange(n)
        # A strided slice of the first world_size * num_samples entries: disjoint across ranks.
        shard = order[self.rank:self.world_size * self.num_samples:self.world_size]
        return shard.to(self.x.device)

    def _generator(self) -> torch.Generator:
        if self._augment_gen is None:
            seed = self.seed * _AUGMENT_SEED_MULT + _AUGMENT_SEED_RANK * (self.rank + 1)
            self._augment_gen = torch.Generator(device=self.x.device).manual_seed(seed % 2**63)
        return self._augment_gen

    def batch(self, index: Tensor) -> tuple[Tensor, Tensor]:
        """The (augmented, preprocessed, mixed) batch at `index`, gathered now."""
        xb, yb = self.x[index], self.y[index]
        if self.augment is not None:
            xb = self.augment(xb, self._generator())
        if self.preprocess is not None:
            xb = self.preprocess(xb)
        if self.mix is not None:
            xb, yb = self.mix(xb, yb)
        return xb, yb

    def batch_indices(self) -> list[Tensor]:
        """One epoch's batches as index tensors (draws the epoch's permutation)."""
        index = self._epoch_indices()
        return [index[b * self.batch_size:(b + 1) * self.batch_size] for b in range(len(self))]

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for index in self.batch_indices():
            yield self.batch(index)


class StepGroup:
    """Up to k mini-batches, gathered one at a time as the training step iterates over them.

    Gathering lazily keeps each batch in cache for its own step (eight 128x784 float batches gathered
    up front overflow L2 before the first is used), and, having no `.to`, the group passes Lightning's
    batch-to-device walk untouched (its tensors already sit on the device).
    """

    def __init__(self, loader: TensorLoader, indices: list[Tensor]):
        self.loader, self.indices = loader, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.loader.batch(self.indices[i])

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for index in self.indices:
            yield self.loader.batch(index)


class StepGroups:
    """Yield StepGroups of up to `k` consecutive batches of `loader`: one Lightning batch = k optimizer steps.

    Lightning's loop costs about 0.25 ms per batch on CPU (hooks, progress tracking), as much as a small
    network's whole step; grouping pays it once per k steps.  `num_steps` is the mini-batch count.
    Groups must be consumed in order (augmentation draws from one generator), as Lightning does.
    """

    def __init__(self, loader: TensorLoader, k: int):
        self.loader, self.k = loader, k

    @property
    def num_steps(self) -> int:
        return len(self.loader)

    def __len__(self) -> int:
        return math.ceil(len(self.loader) / self.k)

    def __iter__(self) -> Iterator[StepGroup]:
        indices = self.loader.batch_indices()
        for start in range(0, len(indices), self.k):
            yield StepGroup(self.loader, indices[start:start + self.k])
