"""Optimizer and learning-rate-schedule registries.

Optimizer quirks are data on the entry (`OptimSpec`), not branches in the training code.  Schedules are
pure functions of training progress p in [0, 1] returning a multiplier of the base learning rate, so
they can be tested against known values and are independent of epochs, steps or batch size.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch
from torch import nn

from .registry import Registry


@dataclass(frozen=True)
class OptimSpec:
    cls: type[torch.optim.Optimizer]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    uses_momentum: bool = False   # receives OptimConfig.momentum
    full_batch: bool = False      # one step per epoch over the whole training set (L-BFGS)
    l2_in_loss: bool = False      # no per-group weight decay: the module adds the L2 term to the loss


OPTIMIZERS: Registry[OptimSpec] = Registry("optimizer", {
    "sgd": OptimSpec(torch.optim.SGD),
    "momentum": OptimSpec(torch.optim.SGD, uses_momentum=True),
    "nesterov": OptimSpec(torch.optim.SGD, {"nesterov": True}, uses_momentum=True),
    "adagrad": OptimSpec(torch.optim.Adagrad),
    "rmsprop": OptimSpec(torch.optim.RMSprop, {"alpha": 0.99}),
    "adam": OptimSpec(torch.optim.Adam),
    "adamw": OptimSpec(torch.optim.AdamW),   # weight decay decoupled from the gradient
    # L-BFGS takes one parameter group only and calls the closure Lightning passes several times.
    "lbfgs": OptimSpec(torch.optim.LBFGS, {"max_iter": 20, "history_size": 10,
                                           "line_search_fn": "strong_wolfe"},
                       full_batch=True, l2_in_loss=True),
})


def decay_split(model: nn.Module | list[nn.Parameter]) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Weights (matrices, conv kernels) get weight decay; biases, norm gains and PReLU slopes do not."""
    params = [p for p in (model.parameters() if isinstance(model, nn.Module) else model) if p.requires_grad]
    return [p for p in params if p.dim() >= 2], [p for p in params if p.dim() < 2]


def build_optimizer(cfg, model: nn.Module, lr_scales: Mapping[str, float] | None = None) -> torch.optim.Optimizer:
    """cfg: lit_modules.config.OptimConfig.  `lr_scales` maps submodule names of `model` to multipliers
    of the learning rate (fine-tuning a pretrained body at 0.1x); the rest trains at cfg.lr, and its
    groups come first, so param_groups[0] carries the base rate."""
    spec = OPTIMIZERS.get(cfg.name)
    kwargs = dict(spec.defaults, lr=cfg.lr)
    if spec.uses_momentum:
        kwargs["momentum"] = cfg.momentum
    if spec.l2_in_loss:
        if lr_scales:
            raise ValueError(f"optimizer {cfg.name!r} takes one parameter group: it cannot train "
                             f"{', '.join(lr_scales)} at a different learning rate")
        return spec.cls([p for p in model.parameters() if p.requires_grad], **kwargs)
    scaled = {name: model.get_submodule(name) for name in (lr_scales or {})}
    taken = {id(p) for m in scaled.values() for p in m.parameters()}
    rest = [p for p in model.parameters() if id(p) not in taken]
    groups = []
    for part, scale in [(rest, 1.0), *((scaled[n], s) for n, s in (lr_scales or {}).items())]:
        decay, no_decay = decay_split(part)
        groups += [{"params": decay, "weight_decay": cfg.weight_decay, "lr": cfg.lr * scale},
                   {"params": no_decay, "weight_decay": 0.0, "lr": cfg.lr * scale}]
    return spec.cls([g for g in groups if g["params"]], **kwargs)


# --- schedules: progress in [0, 1] -> lr multiplier ---------------------------------------------
Schedule = Callable[[float], float]
SCHEDULES: Registry[Callable[..., Schedule]] = Registry("schedule")


@SCHEDULES.register("constant")
def constant() -> Schedule:
    return lambda p: 1.0


@SCHEDULES.register("step")
def step(milestones: tuple[float, ...] = (0.5, 0.75), gamma: float = 0.1) -> Schedule:
    """Multiply by gamma at each milestone (fractions of training), as in the lecture's step decay."""
    return lambda p: gamma ** sum(p >= m for m in milestones)


@SCHEDULES.register("exponential")
def exponential(final: float = 0.01) -> Schedule:
    """lr0 * exp(-k t) with k chosen so the multiplier reaches `final` at the end."""
    return lambda p: final ** p


@SCHEDULES.register("inverse_time")
def inverse_time(final: float = 0.1) -> Schedule:
    """lr0 / (1 + k t) with k chosen so the multiplier reaches `final` at the end."""
    k = 1.0 / final - 1.0
    return lambda p: 1.0 / (1.0 + k * p)


@SCHEDULES.register("cosine")
def cosine(final: float = 0.0) -> Schedule:
    return lambda p: final + 0.5 * (1.0 - final) * (1.0 + math.cos(math.pi * p))


@SCHEDULES.register("cosine_restarts")
def cosine_restarts(cycles: int = 1, final: float = 0.0) -> Schedule:
    """SGDR (Loshchilov & Hutter): `cycles` equal cosine decays, each restarting at the base lr.  The
    weights at the end of each cycle (lr near `final`) are the snapshots of a snapshot ensemble."""
    def schedule(p: float) -> float:
        # Position inside the current cycle; p = 1 is the end of the last cycle, not a restart.
        q = p * cycles - min(math.floor(p * cycles), cycles - 1)
        return final + 0.5 * (1.0 - final) * (1.0 + math.cos(math.pi * q))
    return schedule


def with_warmup(schedule: Schedule, warmup: float) -> Schedule:
    """Ramp linearly from 0 to the schedule's value over the first `warmup` fraction of training."""
    if warmup <= 0:
        return schedule
    return lambda p: schedule(p) * min(1.0, p / warmup)


def build_schedule(cfg) -> Schedule:
    """cfg: lit_modules.config.ScheduleConfig; passes each schedule only the options it takes."""
    make = SCHEDULES.get(cfg.name)
    options = {"milestones": cfg.milestones, "gamma": cfg.gamma, "final": cfg.final, "cycles": cfg.cycles}
    accepted = inspect.signature(make).parameters
    kwargs = {k: v for k, v in options.items() if k in accepted and v is not None}
    return with_warmup(make(**kwargs), cfg.warmup)
