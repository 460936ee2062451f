"""Batch mixing (lecture 7, "regularization: a common pattern"): mixup and cutmix blend pairs of
training images and their labels, so the targets become class distributions (soft targets).

An entry takes the number of classes and returns `(x, y) -> (x_mixed, y_soft)` over a whole batch,
or None for no mixing (the loader then skips the call).  torchvision.transforms.v2 does the work: it
pairs each image with its neighbour in the (already shuffled) batch, draws one mixing weight per
batch from Beta(alpha, alpha) (`data.mix_alpha`) with torch's global generator (seeded per run by seed_everything), and
returns one-hot-mixed targets that sum to 1.  Only training batches are mixed; validation and test see
clean images and hard labels.  F.cross_entropy takes the soft targets as they are, and the module
counts a training prediction as right when it names the dominant class.
"""
from __future__ import annotations

from typing import Callable

from torch import Tensor
from torchvision.transforms import v2

from lit_modules.registry import Registry

MixFn = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]

# Entries take (num_classes, alpha): lambda ~ Beta(alpha, alpha).  alpha = 1 (lambda uniform in [0, 1]) is
# what Zhang et al. use on CIFAR and torchvision defaults to; against corrupted labels they use up to 32.
MIXES: Registry[Callable[[int, float], MixFn | None]] = Registry("mix", {
    "none": lambda num_classes, alpha: None,
    "mixup": lambda num_classes, alpha: v2.MixUp(alpha=alpha, num_classes=num_classes),
    # A box of area 1 - lambda is pasted from the partner image; labels mix by the pasted area.
    "cutmix": lambda num_classes, alpha: v2.CutMix(alpha=alpha, num_classes=num_classes),
    # Per batch, one of the two with equal probability (the recipe of timm and torchvision's references).
    "mixup_or_cutmix": lambda num_classes, alpha: v2.RandomChoice([v2.MixUp(alpha=alpha, num_classes=num_classes),
                                                                   v2.CutMix(alpha=alpha, num_classes=num_classes)]),
})


def build_mix(name: str, num_classes: int, alpha: float = 1.0) -> MixFn | None:
    return MIXES.get(name)(num_classes, alpha)
