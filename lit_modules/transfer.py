"""Transfer learning on the model side: which parts of a pretrained network train, and loading its weights.

A transfer mode is data (`TransferMode`): whether the body starts from pretrained weights, which body
modules stay frozen, and whether the trained body gets a lower learning rate.  `Finetune` applies a
mode through Lightning's `BaseFinetuning` before the optimizer is built; the classifier head is always
new (the target may have a different number of classes) and trains at the base rate.

Checkpoints are plain state_dicts read with `torch.load(weights_only=True)`; `load_body` checks every
key and shape against the network and names the file and the problem before anything trains.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import torch
from lightning.pytorch.callbacks import BaseFinetuning
from torch import nn

from .networks import NETWORKS
from .registry import Registry


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read, or whose weights do not fit the network."""


def top_modules(body: nn.Module, top_layers: int) -> list[nn.Module]:
    """The body's children from its `top_layers`-th last weight layer (Linear, Conv2d or a block holding
    them) to the end, so the norms and activations that follow a layer go with it."""
    children = list(body.children())
    weighted = [i for i, c in enumerate(children)
                if any(isinstance(m, (nn.Linear, nn.Conv2d)) for m in c.modules())]
    start = weighted[-top_layers] if top_layers <= len(weighted) else 0
    return children[start:]


def _frozen_none(body: nn.Module, top_layers: int) -> list[nn.Module]:
    return []


def _frozen_all(body: nn.Module, top_layers: int) -> list[nn.Module]:
    return [body]


def _frozen_below_top(body: nn.Module, top_layers: int) -> list[nn.Module]:
    top = {id(m) for m in top_modules(body, top_layers)}
    return [c for c in body.children() if id(c) not in top]


@dataclass(frozen=True)
class TransferMode:
    pretrained: bool                                     # the body starts from the source's weights
    frozen: Callable[[nn.Module, int], list[nn.Module]]  # (body, top_layers) -> body parts kept fixed
    scale_body_lr: bool = False                          # the trained body uses transfer.body_lr_scale


TRANSFER_MODES: Registry[TransferMode] = Registry("transfer mode", {
    "scratch": TransferMode(pretrained=False, frozen=_frozen_none),       # every run of the suite
    "linear": TransferMode(pretrained=True, frozen=_frozen_all),          # fixed features + new classifier
    "finetune_top": TransferMode(pretrained=True, frozen=_frozen_below_top),
    "finetune_all": TransferMode(pretrained=True, frozen=_frozen_none, scale_body_lr=True),
})


class Finetune(BaseFinetuning):
    """Freezes what the mode keeps fixed and sets the body's learning rate, before configure_optimizers.

    Frozen parts are put in eval mode: a fixed feature extractor uses its pretrained batch-norm
    statistics and no dropout (Lightning's evaluation loop restores each module's mode afterwards).
    """

    def __init__(self, mode: str, top_layers: int = 1, body_lr_scale: float = 0.1):
        super().__init__()
        self.mode, self.spec = mode, TRANSFER_MODES.get(mode)
        self.top_layers, self.body_lr_scale = top_layers, body_lr_scale

    def freeze_before_training(self, pl_module) -> None:
        frozen = self.spec.frozen(pl_module.net.body, self.top_layers)
        if frozen:
            self.freeze(frozen, train_bn=False)
            for module in frozen:
                module.eval()
        if self.spec.scale_body_lr:
            pl_module.lr_scales["body"] = self.body_lr_scale

    def finetune_function(self, pl_module, epoch: int, optimizer) -> None:
        """Nothing unfreezes during training: each mode trains the same parameters throughout."""


def load_body(net: nn.Module, path: Path, prefix: str = "body.", ignore: tuple[str, ...] = ("head.",)) -> None:
    """Copy the body weights of a checkpoint into `net.body`; raise CheckpointError naming the file and the
    problem if the file is unreadable or any key or shape differs.  `prefix` is stripped from the
    checkpoint's keys; keys starting with an `ignore` entry (the source's own classifier) are dropped."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path}: file not found") from None
    except Exception as e:  # truncated zip, pickle garbage, non-tensor objects refused by weights_only
        raise CheckpointError(f"checkpoint {path} could not be read ({type(e).__name__}: {e}); "
                              "delete it and the source model is trained again") from None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"checkpoint {path}: expected a plain state_dict (name -> tensor), "
                              f"got {type(state).__name__}")
    body = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix) and not k.startswith(ignore)}
    expected = net.body.state_dict()
    problems = []
    if missing := sorted(set(expected) - set(body)):
        problems.append(f"missing keys {_few(missing)}")
    if unexpected := sorted(set(body) - set(expected)):
        problems.append(f"unexpected keys {_few(unexpected)}")
    shapes = [f"{k}: checkpoint {tuple(body[k].shape)} vs network {tuple(v.shape)}"
              for k, v in expected.items() if k in body and body[k].shape != v.shape]
    if shapes:
        problems.append(f"shape mismatch {_few(shapes)}")
    if problems:
        raise CheckpointError(f"checkpoint {path} does not fit the network's body: {'; '.join(problems)}")
    net.body.load_state_dict(body)


def _few(items: list[str], n: int = 5) -> str:
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


# ---------------------------------------------------------------- torchvision's ResNet-18 as a body

@NETWORKS.register("tv_resnet18")
def tv_resnet18(cfg, in_shape: tuple[int, int, int]) -> tuple[nn.Module, int]:
    """torchvision's ResNet-18 without its classifier, so ImageNet weights load into it (3-channel input).

    The registry's activation, norm and dropout axes do not apply: the architecture is torchvision's.
    """
    from torchvision.models import resnet18
    body = resnet18()
    features = body.fc.in_features
    body.fc = nn.Identity()
    if in_shape[0] != 3:  # gray images: a new stem (ImageNet weights then no longer fit, and say so)
        body.conv1 = nn.Conv2d(in_shape[0], 64, kernel_size=7, stride=2, padding=3, bias=False)
    return body, features
