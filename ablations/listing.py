"""`python run_all.py --list [--json]`: the studies and the names every registry accepts, so a user
(or a script) sees the valid choices of each config axis in one place."""
from __future__ import annotations

import json
from typing import Any

from datamodules import AUGMENTATIONS, DATASETS, MIXES, PREPROCESSORS
from lit_modules import (ACTIVATIONS, INITIALIZERS, NETWORKS, NORMS, OPTIMIZERS, POOLS, SCHEDULES,
                         TRANSFER_MODES, Registry)

from .executors import EXECUTORS
from .presets import PRESETS
from .study import EXPANSIONS
from .tracking import MODES
from .transfer import SOURCES

REGISTRIES = {"datasets": DATASETS, "preprocessing": PREPROCESSORS, "augmentations": AUGMENTATIONS,
              "networks": NETWORKS, "activations": ACTIVATIONS, "initializers": INITIALIZERS, "norms": NORMS,
              "optimizers": OPTIMIZERS, "schedules": SCHEDULES, "expansion modes": EXPANSIONS,
              "executors": EXECUTORS, "wandb modes": MODES, "presets": PRESETS}
REGISTRIES.update({"transfer modes": TRANSFER_MODES, "transfer sources": SOURCES, "pools": POOLS, "mixes": MIXES})


def listing(studies: Registry) -> dict[str, Any]:
    """Every study (claim, mode, axes, trials, staged) and every registry's names."""
    info = {name: {"claim": s.claim, "mode": s.mode, "axes": list(s.axes), "trials": len(s.trials()),
                   "staged": s.then is not None}
            for name, s in ((n, studies.get(n)) for n in studies.names())}
    return {"studies": info, **{k: r.names() for k, r in REGISTRIES.items()}}


def print_listing(studies: Registry, as_json: bool) -> None:
    info = listing(studies)
    if as_json:
        print(json.dumps(info, indent=2))
        return
    print("studies:")
    for name, s in info.pop("studies").items():
        print(f"  {name:<16} {s['mode']:<14} {s['trials']:>3} trials  {s['claim']}")
    for kind, names in info.items():
        print(f"{kind}: {', '.join(names)}")
