"""Configs of what lit_modules builds: the network, the optimizer and the learning-rate schedule."""
from __future__ import annotations

import inspect
from dataclasses import dataclass

from .config_tools import check_choice, check_range, validate_fields
from .registry import ConfigError
from .layers import ACTIVATIONS, INITIALIZERS, NORMS
from .networks import NETWORKS, NORM_PLACEMENTS
from .optim import OPTIMIZERS, SCHEDULES
from .regularizers import POOLS, STOCHASTIC_DEPTH_MODES


@dataclass(frozen=True)
class ModelConfig:
    network: str = "mlp"
    depth: int = 2                        # hidden layers (mlp)
    width: int = 128                      # hidden units per layer (mlp)
    channels: tuple[int, ...] = (32, 64)  # one stage per entry (convnet, resnet)
    blocks_per_stage: int = 1             # conv layers (convnet) or residual blocks (resnet) per stage
    activation: str = "relu"
    init: str = "kaiming_normal"
    norm: str = "none"
    norm_position: str = "before"         # normalize before or after the nonlinearity
    dropout: float = 0.0                  # inverted dropout after hidden nonlinearities
    drop_connect: float = 0.0             # DropConnect probability on every hidden Linear/Conv weight
    stochastic_depth: float = 0.0         # resnet: drop rate of the last block, linear in depth from 0
    stochastic_depth_mode: str = "per_batch"  # STOCHASTIC_DEPTH_MODES: Huang et al.'s, or "per_sample"
    pool: str | None = None               # stage downsampling (POOLS); None: max-pool (convnet), stride (resnet)
    # The classifier's weights are scaled down after init so the initial loss is ~ln(C), the
    # lecture's sanity check (a confident random classifier starts far above it).
    head_init_scale: float = 0.1

    def __post_init__(self):
        validate_fields(self)
        check_choice("network", self.network, NETWORKS)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("init", self.init, INITIALIZERS)
        check_choice("norm", self.norm, NORMS)
        check_choice("norm_position", self.norm_position, NORM_PLACEMENTS)
        check_range("depth", self.depth, 0)
        check_range("width", self.width, 1)
        if not self.channels:
            check_range("channels", 0, 1)
        for c in self.channels:
            check_range("channels", c, 1)
        check_range("blocks_per_stage", self.blocks_per_stage, 1)
        check_range("dropout", self.dropout, 0.0, 1.0, high_open=True)
        check_range("drop_connect", self.drop_connect, 0.0, 1.0, high_open=True)
        check_range("stochastic_depth", self.stochastic_depth, 0.0, 1.0, high_open=True)
        check_choice("stochastic_depth_mode", self.stochastic_depth_mode, STOCHASTIC_DEPTH_MODES)
        if self.pool is not None:
            check_choice("pool", self.pool, POOLS)
        # Options only some networks implement say so on the network entry (`options`), so asking an
        # mlp for stochastic depth fails here instead of being silently ignored.
        supported = getattr(NETWORKS.get(self.network), "options", frozenset())
        for key, on in (("stochastic_depth", self.stochastic_depth > 0), ("pool", self.pool is not None)):
            if on and key not in supported:
                able = [n for n in NETWORKS.names() if key in getattr(NETWORKS.get(n), "options", ())]
                raise ConfigError(f"{key}: network {self.network!r} has no {key} option; "
                                  f"networks that have it: {', '.join(able)}")
        check_range("head_init_scale", self.head_init_scale, 0.0)


@dataclass(frozen=True)
class OptimConfig:
    name: str = "momentum"
    lr: float = 0.05
    weight_decay: float = 5e-4            # L2 on weights only (not biases or norm parameters)
    l1: float = 0.0                       # L1 penalty l1 * sum|w| added to the loss, same weights as L2
    momentum: float = 0.9                 # for the optimizers that take it

    def __post_init__(self):
        validate_fields(self)
        check_choice("name", self.name, OPTIMIZERS)
        check_range("lr", self.lr, 0.0, low_open=True)
        check_range("weight_decay", self.weight_decay, 0.0)
        check_range("l1", self.l1, 0.0)
        check_range("momentum", self.momentum, 0.0, 1.0, high_open=True)


@dataclass(frozen=True)
class ScheduleConfig:
    name: str = "constant"
    warmup: float = 0.0                   # fraction of training with a linear ramp from 0
    final: float | None = None            # final multiplier (exponential, inverse_time, cosine)
    milestones: tuple[float, ...] = (0.5, 0.75)  # fractions of training (step)
    gamma: float = 0.1                    # factor at each milestone (step)
    cycles: int = 1                       # restarts (cosine_restarts); > 1 also saves a snapshot per cycle

    def __post_init__(self):
        validate_fields(self)
        check_choice("name", self.name, SCHEDULES)
        check_range("warmup", self.warmup, 0.0, 1.0, high_open=True)
        if self.final is not None:
            check_range("final", self.final, 0.0, 1.0, low_open=True)
        for m in self.milestones:
            check_range("milestones", m, 0.0, 1.0)
        check_range("gamma", self.gamma, 0.0, 1.0, low_open=True)
        check_range("cycles", self.cycles, 1)
        cyclic = [n for n in SCHEDULES.names() if "cycles" in inspect.signature(SCHEDULES.get(n)).parameters]
        if self.cycles > 1 and self.name not in cyclic:
            raise ConfigError(f"cycles: {self.cycles} needs a cyclic schedule, not {self.name!r}; "
                              f"valid choices: {', '.join(cyclic)}")
