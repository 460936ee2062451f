"""Weight averaging (lecture 7): Polyak/EMA and SWA of the weights visited during training.

Training updates the raw weights; validation, test and the stored predictions use the average (the
module's forward switches to `module.averaged` in eval mode).  Built on torch.optim.swa_utils.

Lightning's StochasticWeightAveraging does not fit this module: it replaces the LR scheduler with an
epoch-wise SWALR, which the module (manual optimization, see ImageClassifier.training_step) would step
after every optimizer step, it averages once per epoch, and it trains an extra epoch to refresh batch
norm.  Here the average is updated by a post-step hook on the optimizer, so it sees every optimizer
step whatever `data.steps_per_call` groups them into.  Off by default: "none" builds no callback, so
plain runs pay nothing per step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import lightning as L
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn

from .config_tools import check_choice, check_range, validate_fields
from .registry import Registry


@dataclass(frozen=True)
class AveragingSpec:
    # (decay) -> multi_avg_fn for AveragedModel; None averages with equal weights (SWA).
    make_avg_fn: Callable[[float], Callable] | None
    # EMA tracks the batch-norm running statistics with the weights; SWA's average of weights has no
    # statistics of its own, so they are recomputed on the training data before each evaluation.
    use_buffers: bool
    uses_start: bool      # averaging begins after the `start` fraction of training (SWA)


AVERAGING: Registry[AveragingSpec | None] = Registry("weight averaging", {
    "none": None,
    "ema": AveragingSpec(get_ema_multi_avg_fn, use_buffers=True, uses_start=False),
    "swa": AveragingSpec(None, use_buffers=False, uses_start=True),
})


@dataclass(frozen=True)
class AveragingConfig:
    name: str = "none"
    decay: float = 0.99       # ema: weight kept by the average at each optimizer step
    start: float = 0.75       # swa: fraction of training after which every step is averaged

    def __post_init__(self):
        validate_fields(self)
        check_choice("name", self.name, AVERAGING)
        check_range("decay", self.decay, 0.0, 1.0, low_open=True, high_open=True)
        check_range("start", self.start, 0.0, 1.0, high_open=True)


class WeightAveraging(L.Callback):
    """Keeps `module.averaged` (an AveragedModel of `module.net`) updated after each optimizer step."""

    def __init__(self, spec: AveragingSpec, cfg: AveragingConfig):
        self.spec, self.cfg = spec, cfg
        self.module = None
        self.average: AveragedModel | None = None
        self.start_step, self.steps, self._handle = 0, 0, None

    def attach(self, module, optimizer, total_steps: int) -> None:
        """Start averaging `module.net` as `optimizer` steps it (total_steps: length of training)."""
        avg_fn = self.spec.make_avg_fn(self.cfg.decay) if self.spec.make_avg_fn else None
        self.module, self.steps = module, 0
        self.average = AveragedModel(module.net, multi_avg_fn=avg_fn, use_buffers=self.spec.use_buffers)
        self.average.requires_grad_(False)   # never trained (and ignored by DDP's gradient sync)
        self.start_step = math.floor(self.cfg.start * total_steps) if self.spec.uses_start else 0
        self._handle = optimizer.register_step_post_hook(self._after_step)

    def _after_step(self, optimizer, args, kwargs) -> None:
        self.steps += 1
        if self.steps > self.start_step:
            self.average.update_parameters(self.module.net)
            if self.module.averaged is None:   # evaluation switches to the average once it exists
                self.module.averaged = self.average

    def on_train_start(self, trainer, module) -> None:
        self.attach(module, trainer.optimizers[0], trainer.max_epochs * trainer.train_dataloader.num_steps)

    def on_train_end(self, trainer, module) -> None:
        if self._handle is not None:
            self._handle.remove()

    def _refresh_batch_norm(self, trainer) -> None:
        if self.spec.use_buffers or self.module is None or self.module.averaged is None:
            return
        # update_bn returns at once for networks without batch norm; the generator is never started.
        batches = (x for group in trainer.datamodule.train_dataloader() for x, _ in group)
        update_bn(batches, self.average)

    def on_validation_start(self, trainer, module) -> None:
        self._refresh_batch_norm(trainer)

    def on_test_start(self, trainer, module) -> None:
        self._refresh_batch_norm(trainer)


def build_averaging(cfg: AveragingConfig) -> list[L.Callback]:
    """The callbacks that average the weights of a run ([] when off)."""
    spec = AVERAGING.get(cfg.name)
    return [] if spec is None else [WeightAveraging(spec, cfg)]
