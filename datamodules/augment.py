"""Augmentation registry (lecture 7, "data augmentation"), applied to whole batches on the training device.

torchvision.transforms.v2 called on a batch tensor draws one set of parameters for the whole batch,
so every image in it would be flipped (or cropped, or darkened) the same way.  Here every function
`(x: Tensor[N, C, H, W] in [0, 1], g: torch.Generator) -> Tensor` draws per-sample parameters from
`g` (which lives on x's device) and applies them with a few vectorized tensor ops: no per-sample
Python loop, so augmenting costs about as much as one extra layer of the network.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from lit_modules.registry import Registry

AugmentFn = Callable[[Tensor, torch.Generator], Tensor]


def _uniform(n: int, low: float, high: float, x: Tensor, g: torch.Generator) -> Tensor:
    """n draws from U[low, high) with x's dtype and device, shaped (n, 1, 1, 1) to broadcast over CHW."""
    u = torch.rand(n, generator=g, device=x.device, dtype=x.dtype)
    return (low + (high - low) * u).view(n, 1, 1, 1)


def identity(x: Tensor, g: torch.Generator) -> Tensor:
    return x


def flip(x: Tensor, g: torch.Generator) -> Tensor:
    """Mirror left-right with probability 1/2, independently per image."""
    mirrored = torch.rand(x.shape[0], generator=g, device=x.device) < 0.5
    return torch.where(mirrored.view(-1, 1, 1, 1), x.flip(-1), x)


def crop(x: Tensor, g: torch.Generator) -> Tensor:
    """Zero-pad by H//8 (at least 1) and cut an HxW window at a per-image random offset."""
    n, _, h, w = x.shape
    pad = max(1, h // 8)
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=g, device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=g, device=x.device)
    # unfold views every HxW window without copying: (N, C, 2*pad+1, 2*pad+1, H, W); one advanced
    # index then picks window (dy[i], dx[i]) of image i for all channels at once.
    windows = padded.unfold(2, h, 1).unfold(3, w, 1)
    return windows[torch.arange(n, device=x.device), :, dy, dx]


def scale(x: Tensor, g: torch.Generator) -> Tensor:
    """Random resized crop: a window of 35-100% of the area, aspect ratio 3/4-4/3, resized back.

    The window is expressed as an affine map of the normalized [-1, 1] output grid, one theta per
    image, so a single grid_sample resamples the whole batch.
    """
    n = x.shape[0]
    area = _uniform(n, 0.35, 1.0, x, g).view(n)
    log_ratio = _uniform(n, math.log(3 / 4), math.log(4 / 3), x, g).view(n)
    ratio = log_ratio.exp()                            # log-uniform, so 3/4 and 4/3 are equally likely
    width = (area * ratio).sqrt().clamp(max=1.0)       # fractions of the full side
    height = (area / ratio).sqrt().clamp(max=1.0)
    # The window centre may move as far as keeps the window inside the image.
    cx = (1 - width) * (2 * torch.rand(n, generator=g, device=x.device, dtype=x.dtype) - 1)
    cy = (1 - height) * (2 * torch.rand(n, generator=g, device=x.device, dtype=x.dtype) - 1)
    zero = torch.zeros_like(width)
    theta = torch.stack([torch.stack([width, zero, cx], 1), torch.stack([zero, height, cy], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def color_jitter(x: Tensor, g: torch.Generator) -> Tensor:
    """Per-image brightness, contrast and saturation factors in [0.6, 1.4], in that order."""
    n = x.shape[0]
    brightness, contrast, saturation = (_uniform(n, 0.6, 1.4, x, g) for _ in range(3))
    # lerp(a, x, f) = a + f * (x - a) blends towards the reference a in one fused op.
    x = (x * brightness).clamp_(0, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)         # mean gray level of each image
    x = torch.lerp(mean, x, contrast).clamp_(0, 1)
    # The gray image is the plain channel mean: for 1-channel images it equals x, making this a
    # no-op without a branch on the channel count.
    gray = x.mean(dim=1, keepdim=True)
    return torch.lerp(gray, x, saturation).clamp_(0, 1)


def cutout(x: Tensor, g: torch.Generator) -> Tensor:
    """Zero a square of side H//2 (W//2) centred at a per-image random pixel, clipped at the borders."""
    n, _, h, w = x.shape
    side_h, side_w = max(1, h // 2), max(1, w // 2)
    cy = torch.randint(0, h, (n, 1), generator=g, device=x.device)
    cx = torch.randint(0, w, (n, 1), generator=g, device=x.device)
    top, left = cy - side_h // 2, cx - side_w // 2
    rows = torch.arange(h, device=x.device).view(1, h)
    cols = torch.arange(w, device=x.device).view(1, w)
    in_rows = (rows >= top) & (rows < top + side_h)    # (n, h)
    in_cols = (cols >= left) & (cols < left + side_w)  # (n, w)
    hole = (in_rows.unsqueeze(2) & in_cols.unsqueeze(1)).unsqueeze(1)
    return x.masked_fill(hole, 0.0)


AUGMENTATIONS: Registry[AugmentFn] = Registry("augmentation", {
    "none": identity,
    "flip": flip,
    "crop": crop,
    "scale": scale,
    "color_jitter": color_jitter,
    "cutout": cutout,
})


class Augmentation:
    """The parts of an "a+b+c" spec applied in order; `is_identity` lets callers skip the call."""

    def __init__(self, spec: str):
        names = [part.strip() for part in spec.split("+")]
        fns = [AUGMENTATIONS.get(name) for name in names]   # unknown names raise with the choices
        self.names = tuple(name for name, fn in zip(names, fns) if fn is not identity)
        self.parts = tuple(fn for fn in fns if fn is not identity)
        self.is_identity = not self.parts

    def __call__(self, x: Tensor, g: torch.Generator) -> Tensor:
        for part in self.parts:
            x = part(x, g)
        return x

    def __repr__(self) -> str:
        return f"Augmentation({'+'.join(self.names) or 'none'!r})"


def build_augmentation(spec: str) -> Augmentation:
    return Augmentation(spec)
