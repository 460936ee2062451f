"""Study definitions and the engine that trains them: `run_one` trains one run from dotted overrides.

Names are loaded on first use (PEP 562): `ablations.results`, the results-folder contract, and
`ablations.rules` import without torch, so reports rebuild anywhere.
"""
from __future__ import annotations

import importlib
from typing import Any

_MODULE_OF = {"RunConfig": "config", "TrainerConfig": "config", "baseline": "config",
              "resolve": "runner", "run_id": "runner", "run_one": "runner", "train": "runner"}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'ablations' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
    globals()[name] = value
    return value
