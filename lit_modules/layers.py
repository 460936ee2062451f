"""Registries for the per-layer axes: activations, weight initializers and normalization layers.

Networks never look at these names; they call `build_activation`, `build_norm` and `init_weights`, so a
new technique is one entry here and every network and test picks it up.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .registry import Registry


# --- activations ---------------------------------------------------------------------------------
class Maxout(nn.Module):
    """max over k pieces: the layer before produces k * width outputs (channel dim 1), this keeps width."""

    def __init__(self, k: int = 2):
        super().__init__()
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        return x.view(n, c // self.k, self.k, *x.shape[2:]).amax(dim=2)

    def extra_repr(self) -> str:
        return f"k={self.k}"


Predicate = Callable[[torch.Tensor], torch.Tensor]   # outputs -> bool tensor of the same shape


@dataclass(frozen=True)
class ActSpec:
    make: Callable[[], nn.Module]
    gain: float          # std multiplier that keeps activations' scale (nn.init.calculate_gain)
    width_factor: int = 1  # how many outputs per unit the preceding layer must produce (maxout: k)
    # Diagnostics (lit_modules/diagnostics.py), on outputs: `dead` marks outputs whose local gradient is
    # exactly zero (a unit is dead when it holds for every probe example); `saturated` marks outputs on a
    # flat asymptote.  None: the nonlinearity has no such regime (or none worth counting).
    dead: Predicate | None = None
    saturated: Predicate | None = None


SATURATION_MARGIN = 0.01   # "on the asymptote": within this distance of it (tanh: |y| > 0.99, slope < 0.02)


def _near(*asymptotes: float) -> Predicate:
    return lambda y: torch.stack([(y - a).abs() < SATURATION_MARGIN for a in asymptotes]).any(0)


_SELU_FLOOR = -1.0507009873554805 * 1.6732632423543772   # selu's negative asymptote, -scale * alpha


_relu_gain = nn.init.calculate_gain("relu")
ACTIVATIONS: Registry[ActSpec] = Registry("activation", {
    "sigmoid": ActSpec(nn.Sigmoid, nn.init.calculate_gain("sigmoid"), saturated=_near(0.0, 1.0)),
    "tanh": ActSpec(nn.Tanh, nn.init.calculate_gain("tanh"), saturated=_near(-1.0, 1.0)),
    "relu": ActSpec(nn.ReLU, _relu_gain, dead=lambda y: y <= 0),
    "leaky_relu": ActSpec(lambda: nn.LeakyReLU(0.01), nn.init.calculate_gain("leaky_relu", 0.01)),
    # PReLU's slope starts at 0.25 and is learned (He et al. 2015 derive the gain for that start).
    "prelu": ActSpec(lambda: nn.PReLU(init=0.25), nn.init.calculate_gain("leaky_relu", 0.25)),
    "elu": ActSpec(nn.ELU, _relu_gain, saturated=_near(-1.0)),
    # SELU is self-normalizing with unit-gain (LeCun) init; torch's 3/4 gain targets dropout-free nets
    # with other inits, so we use 1.
    "selu": ActSpec(nn.SELU, 1.0, saturated=_near(_SELU_FLOOR)),
    "maxout": ActSpec(lambda: Maxout(2), 1.0, width_factor=2),
    "gelu": ActSpec(nn.GELU, _relu_gain),
    "silu": ActSpec(nn.SiLU, _relu_gain),
})


def build_activation(name: str) -> nn.Module:
    return ACTIVATIONS.get(name).make()


# --- initializers --------------------------------------------------------------------------------
def _fans(w: torch.Tensor) -> tuple[int, int]:
    receptive = w[0][0].numel() if w.dim() > 2 else 1
    return w.shape[1] * receptive, w.shape[0] * receptive


def _normal(std_of: Callable[[torch.Tensor, float], float]) -> Callable[[torch.Tensor, float], None]:
    def init(w: torch.Tensor, gain: float) -> None:
        nn.init.normal_(w, 0.0, std_of(w, gain))
    return init


# Each entry fills a weight tensor given the gain of the activation that follows it.  `None` means
# "keep PyTorch's own reset_parameters()" (kaiming_uniform with a=sqrt(5) for Linear/Conv).
INITIALIZERS: Registry[Callable[[torch.Tensor, float], None] | None] = Registry("initializer", {
    "zeros": lambda w, gain: nn.init.zeros_(w),
    "small_normal": _normal(lambda w, gain: 0.01),
    "large_normal": _normal(lambda w, gain: 1.0),
    "torch_default": None,
    "xavier_normal": lambda w, gain: nn.init.xavier_normal_(w, gain=gain),
    "xavier_uniform": lambda w, gain: nn.init.xavier_uniform_(w, gain=gain),
    "kaiming_normal": _normal(lambda w, gain: gain / math.sqrt(_fans(w)[0])),
    "kaiming_uniform": lambda w, gain: nn.init.uniform_(w, -1, 1).mul_(gain * math.sqrt(3.0 / _fans(w)[0])),
    "lecun_normal": _normal(lambda w, gain: 1.0 / math.sqrt(_fans(w)[0])),
    "orthogonal": lambda w, gain: nn.init.orthogonal_(w, gain=gain),
})


def init_layer(layer: nn.Module, init: str, gain: float) -> None:
    """Initialize one Linear/Conv layer: weights from the registry entry, biases zero."""
    fill = INITIALIZERS.get(init)
    if fill is None:
        layer.reset_parameters()
        return
    with torch.no_grad():
        fill(layer.weight, gain)
        if layer.bias is not None:
            layer.bias.zero_()


# --- normalization -------------------------------------------------------------------------------
def _groups(channels: int, wanted: int = 8) -> int:
    return math.gcd(channels, wanted)


# Entries take (num_features, spatial) where spatial says the input is N,C,H,W rather than N,C.
# GroupNorm accepts both shapes, and GroupNorm(1, C) is LayerNorm over (C, H, W).
NORMS: Registry[Callable[[int, bool], nn.Module]] = Registry("norm", {
    "none": lambda c, spatial: nn.Identity(),
    "batch": lambda c, spatial: nn.BatchNorm2d(c) if spatial else nn.BatchNorm1d(c),
    "layer": lambda c, spatial: nn.GroupNorm(1, c),
    "group": lambda c, spatial: nn.GroupNorm(_groups(c), c),
})


def build_norm(name: str, num_features: int, spatial: bool) -> nn.Module:
    return NORMS.get(name)(num_features, spatial)
