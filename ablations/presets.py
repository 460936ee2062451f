"""Presets: the same studies sized for a dataset and a machine (`python run_all.py --preset NAME`).

A preset holds three layers of overrides, applied in this order (later wins):
    base       -> under every study's own settings (the dataset, the baseline network, epochs)
    study's own base and axis values
    per_study  -> over one study's settings (e.g. a larger "small" training set on CIFAR)
and the user's `--set`/`--dataset`/`--epochs` win over all of them.  A preset never sets a key a study
varies (checked when the grid is planned), so every study keeps its question.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from lit_modules import Registry


@dataclass(frozen=True)
class Preset:
    description: str
    base: Mapping[str, Any] = field(default_factory=dict)
    per_study: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    seeds: int | None = None          # None: each study's own (3 for most)
    # Add seeds in rounds to the variants of undecided comparisons (run_all --until-decided), up to
    # --max-seeds: worth it where a run takes a second.
    until_decided: bool = False
    runtime: str = ""                 # measured, with the machine and the command


PRESETS: Registry[Preset] = Registry("preset")

PRESETS.add("digits", Preset(
    "scikit-learn's 8x8 digits, embedded: every study, 5 seeds and more where undecided, on a laptop CPU",
    seeds=5, until_decided=True,
    runtime="see README (measured on the 2-core CI machine)",
))

# 60k 28x28 images: a CPU workstation.  Fewer epochs than digits (each is 35x larger); the studies that
# need overfitting keep their small training sets, scaled up.
PRESETS.add("fashion_mnist", Preset(
    "Fashion-MNIST (Debian's dataset-fashion-mnist or a download): CPU workstation sizes",
    base={"data.name": "fashion_mnist", "trainer.max_epochs": 5},
    runtime="598 runs in 34 min 49 s on a 2-core machine (2 workers, W&B offline)",
))

# CIFAR: GPU sizes with a ResNet baseline and the standard flip+crop augmentation.
_CIFAR = {"model.network": "resnet", "model.channels": (64, 128, 256), "model.blocks_per_stage": 2,
          "model.norm": "batch", "data.augment": "flip+crop", "data.preprocess": "center_channel",
          "data.batch_size": 256, "optim.lr": 0.1, "schedule.name": "cosine", "schedule.warmup": 0.05,
          "trainer.max_epochs": 30}
for _name in ("cifar10", "cifar100"):
    PRESETS.add(_name, Preset(f"{_name.upper()} (torchvision download): GPU sizes, ResNet baseline",
                              base={"data.name": _name, **_CIFAR},
                              runtime="not measured yet (needs GPUs and the CIFAR files)"))
