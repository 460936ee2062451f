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

# Fashion-MNIST: each study at a scaled-down version of the setting of the paper behind its claim (the
# study files say which and why); everything else at 10,000 of the 54,000 training images and a 3,000
# image val split, so every study fits a 2-core machine.  Sized from the papers, before any outcome.
PRESETS.add("fashion_mnist", Preset(
    "Fashion-MNIST (Debian's dataset-fashion-mnist or a download): each study in its paper's setting, "
    "scaled down to a 2-core CPU",
    base={"data.name": "fashion_mnist", "data.train_size": 10000, "data.val_fraction": 0.05,
          "trainer.max_epochs": 10},
    per_study={
        # Glorot & Bengio 2010: deep, plain SGD, mini-batches of 10.
        "activations": {"model.depth": 5, "model.width": 256, "data.batch_size": 10, "optim.name": "sgd",
                        "optim.lr": 0.01, "data.train_size": 5000},
        # He et al. 2015 / the lecture's demo: a deep plain ReLU net.
        "initializers": {"model.depth": 10, "model.width": 128},
        # Ioffe & Szegedy 2015's MNIST net: 3 x 100, mini-batches of 60.
        "batchnorm_lr": {"model.depth": 3, "model.width": 100, "data.batch_size": 60},
        # The lecture's overfit check on 20 examples: mini-batches of 20.
        "babysitting": {"data.batch_size": 20},
        "transfer": {"transfer.source_epochs": 10},
        # A memorized training set, long enough for dropout and mixup to converge (1,200 steps).
        "regularization": {"data.train_size": 1000, "model.width": 512, "trainer.max_epochs": 30},
        # The baseline's lr 0.05 at batch 128 scaled to the study's batch 25 (Goyal et al.'s linear rule).
        "augmentation": {"data.train_size": 1000, "model.channels": (16, 32), "optim.lr": 0.01},
    },
    runtime="see README (estimate: python benchmarks/preset_budget.py --preset fashion_mnist)",
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
