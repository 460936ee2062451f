"""LightningModules and their building blocks: one registry per ablation axis.

Names are loaded on first use (PEP 562), so `lit_modules.registry` (the torch-free Registry and
ConfigError) can be imported by the report side without pulling in torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "averaging": ["AVERAGING", "AveragingConfig", "build_averaging"],
    "config": ["ModelConfig", "OptimConfig", "ScheduleConfig"],
    "config_tools": ["config_hash", "flat_dict", "leaf_keys", "override", "to_dict"],
    "layers": ["ACTIVATIONS", "INITIALIZERS", "NORMS", "build_activation", "build_norm", "init_layer"],
    "module": ["ImageClassifier"],
    "networks": ["NETWORKS", "NORM_PLACEMENTS", "build_network"],
    "optim": ["OPTIMIZERS", "SCHEDULES", "OptimSpec", "build_optimizer", "build_schedule"],
    "registry": ["ConfigError", "Registry"],
    "transfer": ["TRANSFER_MODES", "CheckpointError", "Finetune", "load_body"],
    "regularizers": ["POOLS", "STOCHASTIC_DEPTH_MODES", "build_pool"],
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'lit_modules' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
    globals()[name] = value   # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
