"""Checks a plan passes before anything trains: the results folder can be written, the device exists,
and the model fits in memory.  Each problem is a ConfigError that names the setting and the reason,
so run_all and `python -m ablations` report it in one line instead of failing mid-grid.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Iterable

import torch

from datamodules import DATASETS
from lit_modules import ConfigError, ModelConfig
from lit_modules.networks import build_network

from .config import RunConfig


def check_device(cfg: RunConfig) -> None:
    """The accelerator asked for exists here, with enough devices."""
    t = cfg.trainer
    cuda, mps = torch.cuda.device_count(), torch.backends.mps.is_available()
    if t.accelerator == "cuda" or (t.accelerator == "gpu" and not mps):
        if cuda == 0:
            raise ConfigError(f"trainer.accelerator={t.accelerator}: this machine has no CUDA GPU that torch "
                              f"can use; use trainer.accelerator=cpu (or auto)")
        if t.devices > cuda:
            raise ConfigError(f"trainer.devices={t.devices}: this machine has {cuda} CUDA GPU(s)")
    if t.accelerator == "mps" and not mps:
        raise ConfigError("trainer.accelerator=mps: Apple's MPS backend is not available on this machine; "
                          "use trainer.accelerator=cpu (or auto)")


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PB"


def _memory(cfg: RunConfig) -> tuple[int, str]:
    """Bytes of memory the run's parameters will live in, and where."""
    if cfg.trainer.accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return torch.cuda.get_device_properties(0).total_memory, "GPU memory"
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "memory"
    except (ValueError, OSError, AttributeError):   # no sysconf: nothing to compare with
        return 2 ** 62, "memory"


def _changed(model: ModelConfig) -> str:
    default = ModelConfig()
    return ", ".join(f"model.{f.name}={getattr(model, f.name)}" for f in dataclasses.fields(model)
                     if getattr(model, f.name) != getattr(default, f.name)) or "the default model"


def check_size(cfg: RunConfig) -> None:
    """The parameters and their gradients fit in this machine's memory.  The network is built on the
    meta device (shapes only, no storage), so even an absurd width costs nothing to measure."""
    spec = DATASETS.get(cfg.data.name)
    classes = len(cfg.data.classes) if cfg.data.classes is not None else spec.num_classes
    try:
        with torch.device("meta"):
            params = sum(p.numel() for p in build_network(cfg.model, spec.in_shape, classes).parameters())
    except RuntimeError as e:     # sizes past what a tensor can address
        if "overflow" not in str(e):
            raise ConfigError(f"{_changed(cfg.model)}: the model cannot be built ({e})") from None
        raise ConfigError(f"{_changed(cfg.model)}: the model is too large for any tensor to hold ({e})") from None
    need = 2 * params * (8 if cfg.trainer.precision == "64-true" else 4)   # weights + gradients, at least
    have, where = _memory(cfg)
    if need > have:
        raise ConfigError(f"{_changed(cfg.model)}: the model has {params:.3g} parameters; its weights and "
                          f"gradients alone need {_size(need)}, more than this machine's {_size(have)} of {where}")


def check_runs(configs: Iterable[RunConfig]) -> None:
    """Device and size of every distinct model of a plan (a grid has few, however many runs)."""
    seen = set()
    for cfg in configs:
        key = (cfg.model, cfg.data.name, cfg.data.classes, cfg.trainer)
        if key not in seen:
            seen.add(key)
            check_device(cfg)
            check_size(cfg)
