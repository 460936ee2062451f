"""Registries for the per-layer axes: activations, weight initializers and normalization layers.

Networks never look at these names; they call `build_activation`, `build_norm` and `init_layer`, so a
new technique is one entry here and every network and test picks it up.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
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


def variance_gain(activation: nn.Module, pieces: int = 1) -> float:
    """He et al. (2015)'s forward argument, for any nonlinearity: 1 / sqrt(E[y^2]).

    A layer y_l = W x_l with zero-mean weights has Var[y_l] = fan_in * Var[w] * E[x_l^2]; with the
    pre-activations at unit variance, x = f(z) with z ~ N(0, 1), the weight std gain / sqrt(fan_in)
    keeps Var[y] = 1 from layer to layer when gain = 1 / sqrt(E[f(z)^2]).  This gives sqrt(2) for ReLU
    and sqrt(2 / (1 + a^2)) for leaky ReLU (He et al.'s closed forms) and 1 for SELU (Klambauer et
    al. 2017 built it so E[selu(z)^2] = 1 and initialize with std 1/sqrt(fan_in)).  A unit with
    `pieces` > 1 pre-activations (maxout) sees their maximum, whose density is
    pieces * phi(m) * Phi(m)^(pieces - 1); the module is fed that value in every piece.
    Computed by quadrature in float64, split at 0 where most of these have their kink.
    """
    from scipy import integrate   # only when a network is first built: keeps `import lit_modules` light

    module = activation.double()

    def integrand(m: float) -> float:
        with torch.no_grad():
            y = float(module(torch.full((1, pieces), m, dtype=torch.float64)).squeeze())
        pdf, cdf = math.exp(-m * m / 2) / math.sqrt(2 * math.pi), 0.5 * math.erfc(-m / math.sqrt(2))
        return y * y * pieces * pdf * cdf ** (pieces - 1)

    second_moment = sum(integrate.quad(integrand, lo, hi)[0] for lo, hi in ((-math.inf, 0.0), (0.0, math.inf)))
    return 1.0 / math.sqrt(second_moment)


@dataclass(frozen=True)
class ActSpec:
    make: Callable[[], nn.Module]
    width_factor: int = 1  # how many outputs per unit the preceding layer must produce (maxout: k)
    # Diagnostics (lit_modules/diagnostics.py), on outputs: `dead` marks outputs whose local gradient is
    # exactly zero (a unit is dead when it holds for every probe example); `saturated` marks outputs on a
    # flat asymptote.  None: the nonlinearity has no such regime (or none worth counting).
    dead: Predicate | None = None
    saturated: Predicate | None = None

    @cached_property
    def gain(self) -> float:
        """Weight-std multiplier of the layers feeding this nonlinearity (kaiming_*, orthogonal): one
        principle for every entry, `variance_gain`; derived on first use, then cached."""
        with torch.device("cpu"):   # a real computation even when a net is built on the meta device
            return variance_gain(self.make(), self.width_factor)


SATURATION_MARGIN = 0.01   # "on the asymptote": within this distance of it (tanh: |y| > 0.99, slope < 0.02)


def _near(*asymptotes: float) -> Predicate:
    return lambda y: torch.stack([(y - a).abs() < SATURATION_MARGIN for a in asymptotes]).any(0)


_SELU_FLOOR = -1.0507009873554805 * 1.6732632423543772   # selu's negative asymptote, -scale * alpha


# Gains (see `variance_gain`; tests/test_lit_modules.py checks them against closed forms and Monte
# Carlo): sigmoid 1.85, tanh 1.59, relu 1.41, leaky_relu 1.41, prelu 1.37, elu 1.25, selu 1, maxout 1,
# gelu 1.53, silu 1.68.  They differ from torch's calculate_gain where torch picks another rule (tanh
# 5/3, sigmoid 1, selu 3/4).  For tanh, sigmoid, ELU and SELU unit variance is a stable fixed point of
# the layer-to-layer variance map, so deep plain nets keep their scale; GELU and SiLU have no stable
# fixed point for any gain (the map's slope at 1 is 1.14 and 1.17), so 30-layer plain nets with them
# drift whatever the init.
ACTIVATIONS: Registry[ActSpec] = Registry("activation", {
    "sigmoid": ActSpec(nn.Sigmoid, saturated=_near(0.0, 1.0)),
    "tanh": ActSpec(nn.Tanh, saturated=_near(-1.0, 1.0)),
    "relu": ActSpec(nn.ReLU, dead=lambda y: y <= 0),
    "leaky_relu": ActSpec(lambda: nn.LeakyReLU(0.01)),
    # PReLU's slope starts at 0.25 and is learned; the gain is that of the starting slope.
    "prelu": ActSpec(lambda: nn.PReLU(init=0.25)),
    "elu": ActSpec(nn.ELU, saturated=_near(-1.0)),
    "selu": ActSpec(nn.SELU, saturated=_near(_SELU_FLOOR)),
    "maxout": ActSpec(lambda: Maxout(2), width_factor=2),
    "gelu": ActSpec(nn.GELU),
    "silu": ActSpec(nn.SiLU),
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


# Each entry fills a weight tensor given the gain of the activation that follows it (ActSpec.gain);
# entries named after a paper use that paper's formula, whether or not it involves the gain.
# `None` means "keep PyTorch's own reset_parameters()" (kaiming_uniform with a=sqrt(5) for Linear/Conv).
# Fans of a conv weight count its receptive field: fan_in = in_channels * kh * kw.
INITIALIZERS: Registry[Callable[[torch.Tensor, float], None] | None] = Registry("initializer", {
    "zeros": lambda w, gain: nn.init.zeros_(w),
    "small_normal": _normal(lambda w, gain: 0.01),
    "large_normal": _normal(lambda w, gain: 1.0),
    "torch_default": None,
    # Glorot & Bengio (2010): Var[w] = 2 / (fan_in + fan_out), derived for a linear (tanh near 0) net;
    # no activation gain (uniform: bound sqrt(6 / (fan_in + fan_out))).
    "xavier_normal": lambda w, gain: nn.init.xavier_normal_(w, gain=1.0),
    "xavier_uniform": lambda w, gain: nn.init.xavier_uniform_(w, gain=1.0),
    # He et al. (2015): std = gain / sqrt(fan_in), the activation's gain (sqrt(2) for ReLU).
    "kaiming_normal": _normal(lambda w, gain: gain / math.sqrt(_fans(w)[0])),
    "kaiming_uniform": lambda w, gain: nn.init.uniform_(w, -1, 1).mul_(gain * math.sqrt(3.0 / _fans(w)[0])),
    # LeCun et al. (1998, "Efficient BackProp"): std = 1 / sqrt(fan_in), no gain.
    "lecun_normal": _normal(lambda w, gain: 1.0 / math.sqrt(_fans(w)[0])),
    # Saxe et al. (2014): a random orthogonal matrix scaled by the activation's gain.
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
