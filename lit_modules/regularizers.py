"""Regularizers of lecture 7 that live inside the network or the loss: DropConnect, stochastic depth,
pooling choices (fractional max pooling) and the L1 weight penalty.

Each is off by default and then adds nothing to a training step: the networks only insert these
modules when their config asks for them.  (Dropout, batch norm and L2 live in networks.py, layers.py
and optim.py; cutout is an augmentation; mixup and cutmix mix batches in datamodules/mix.py.)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torchvision.ops import stochastic_depth

from .registry import Registry


# --- DropConnect (Wan et al. 2013) -----------------------------------------------------------------
class DropConnect(nn.Module):
    """Weight parametrization: in training each weight is zeroed with probability p and the survivors
    are scaled by 1/(1-p) (inverted, as dropout is), so eval uses the plain weights with no rescaling.
    A fresh mask is drawn every time the layer reads its weight, i.e. once per forward pass (one mask
    per batch, as in the paper's efficient variant)."""

    def __init__(self, p: float):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"DropConnect probability must lie in [0, 1), got {p}")
        self.p = p

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return w
        keep = torch.empty_like(w).bernoulli_(1.0 - self.p)
        return w * keep / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def add_drop_connect(body: nn.Module, p: float) -> None:
    """Parametrize the weight of every Linear and Conv2d layer of `body` (call after initialization:
    the parametrization keeps the initialized tensor as `parametrizations.weight.original`)."""
    layers = [m for m in body.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    for layer in layers:
        parametrize.register_parametrization(layer, "weight", DropConnect(p))


# --- stochastic depth (Huang et al. 2016) ----------------------------------------------------------
def survival_probabilities(drop_last: float, blocks: int) -> list[float]:
    """The paper's linear decay rule: block l of L (1-based) keeps its residual branch with probability
    p_l = 1 - l / L * (1 - p_L), where 1 - p_L = `drop_last` (model.stochastic_depth; the paper's p_L
    = 0.5 is 0.5 here).  Early blocks, which every later block builds on, are kept more often."""
    return [1.0 - drop_last * (i + 1) / blocks for i in range(blocks)]


class SkippedBranch(nn.Sequential):
    """Huang et al.'s stochastic depth on a residual branch (the branch's layers, in order).

    Training: one Bernoulli(p) draw per forward pass, i.e. per block per mini-batch, from torch's
    global generator (seeded per run); a dropped branch is not computed at all and the forward returns
    None (the block then passes its shortcut alone), which is where the paper's training-time saving
    comes from.  Eval: the branch is computed and scaled by its survival probability p, the expected
    value of what training saw (the paper's test-time rule; survivors are not rescaled in training).
    A Sequential subclass, so parameter names match the plain branch's (checkpoints transfer)."""

    def __init__(self, survival: float, *layers: nn.Module):
        super().__init__(*layers)
        self.survival = survival

    def forward(self, x: torch.Tensor) -> torch.Tensor | None:
        if not self.training:
            return super().forward(x) * self.survival
        if float(torch.rand(())) >= self.survival:
            return None
        return super().forward(x)

    def extra_repr(self) -> str:
        return f"survival={self.survival:.3g}"


class PerSampleBranch(nn.Sequential):
    """torchvision's stochastic_depth in "row" mode on the branch's output: every sample keeps or
    drops the branch on its own, survivors scaled by 1/p in training, identity in eval.  The whole
    branch is computed for every sample (dropped rows are multiplied by zero): no time is saved."""

    def __init__(self, survival: float, *layers: nn.Module):
        super().__init__(*layers)
        self.survival = survival

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return stochastic_depth(super().forward(x), 1.0 - self.survival, "row", self.training)

    def extra_repr(self) -> str:
        return f"survival={self.survival:.3g}"


# model.stochastic_depth_mode: how a residual branch with survival probability p < 1 is dropped.
STOCHASTIC_DEPTH_MODES: Registry[Callable[..., nn.Module]] = Registry("stochastic depth mode", {
    "per_batch": SkippedBranch,     # Huang et al. 2016 (the default)
    "per_sample": PerSampleBranch,  # the per-sample variant (torchvision's mode="row")
})


# --- pooling for stage downsampling -----------------------------------------------------------------
class FractionalMaxPool(nn.FractionalMaxPool2d):
    """Fractional max pooling (Graham 2014) by a factor of 1/sqrt(2) per side, with kernel 2.

    torch draws random pooling regions on every call, in eval too; here eval uses the fixed regions
    of u = 0.5 so validation and test are deterministic (Graham instead averages several test passes).
    """

    def __init__(self, out_hw: tuple[int, int]):
        super().__init__(kernel_size=2, output_size=out_hw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return super().forward(x)
        fixed = torch.full((x.shape[0], x.shape[1], 2), 0.5, dtype=x.dtype, device=x.device)
        return F.fractional_max_pool2d(x, self.kernel_size, output_size=self.output_size, _random_samples=fixed)


def _fractional_size(side: int) -> int:
    # A ratio of exactly 1/2 with kernel 2 gives regular 2x2 regions (no randomness), so use 1/sqrt(2);
    # the kernel must fit: out + kernel - 1 <= side.
    return max(1, min(side - 1, round(side / math.sqrt(2))))


@dataclass(frozen=True)
class PoolSpec:
    make: Callable[[int, int], nn.Module]   # (h, w) of the input -> the pooling module
    size: Callable[[int], int]              # one side of the input -> that side of the output


POOLS: Registry[PoolSpec] = Registry("pool", {
    "max": PoolSpec(lambda h, w: nn.MaxPool2d(2), lambda side: side // 2),
    "avg": PoolSpec(lambda h, w: nn.AvgPool2d(2), lambda side: side // 2),
    "fractional": PoolSpec(lambda h, w: FractionalMaxPool((_fractional_size(h), _fractional_size(w))),
                           _fractional_size),
})


def build_pool(name: str, h: int, w: int) -> tuple[nn.Module, int, int]:
    """The pooling module for an (h, w) input and the (h, w) of its output."""
    spec = POOLS.get(name)
    return spec.make(h, w), spec.size(h), spec.size(w)


# --- L1 weight penalty ---------------------------------------------------------------------------
def l1_penalty(weights: Iterable[torch.Tensor]) -> torch.Tensor:
    """sum |w| over the given tensors (the module passes the weights decay_split selects)."""
    return torch.stack([w.abs().sum() for w in weights]).sum()
