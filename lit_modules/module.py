"""The one LightningModule of the suite: an image classifier whose every technique comes from configs.

Metrics are accumulated as tensors and reduced once per epoch (no per-step `self.log`, which would cost
more than a small model's step).  Each finished epoch becomes one row of `history` and is logged to the
attached loggers under Lightning's names: train/loss, train/acc, val/loss, val/acc, lr.
"""
from __future__ import annotations

import math
import time

import lightning as L
import torch
import torch.nn.functional as F

from .config import ModelConfig, OptimConfig, ScheduleConfig
from .networks import build_network
from .optim import OPTIMIZERS, build_optimizer, build_schedule, decay_split


class _Mean:
    """Running sample-weighted loss and accuracy, kept on the device to avoid a sync per step."""

    def __init__(self):
        self.loss = self.correct = self.count = 0

    def add(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        n = y.shape[0]
        self.loss = self.loss + loss.detach() * n
        self.correct = self.correct + (logits.argmax(1) == y).sum()
        self.count += n

    def compute(self, prefix: str) -> dict[str, float]:
        if not self.count:
            return {}
        return {f"{prefix}/loss": float(self.loss) / self.count, f"{prefix}/acc": float(self.correct) / self.count}


class ImageClassifier(L.LightningModule):
    def __init__(self, model: ModelConfig, optim: OptimConfig, schedule: ScheduleConfig,
                 in_shape: tuple[int, int, int], num_classes: int, divergence_factor: float = 3.0):
        super().__init__()
        self.model_cfg, self.optim_cfg, self.schedule_cfg = model, optim, schedule
        self.net = build_network(model, in_shape, num_classes)
        self.spec = OPTIMIZERS.get(optim.name)
        self.divergence_factor = divergence_factor
        self.initial_loss: float | None = None   # loss of the first batch, before any update
        self.diverged = False
        self.history: list[dict[str, float]] = []   # one row per finished epoch
        self.test_metrics: dict[str, float] = {}
        self._train, self._val, self._test = _Mean(), _Mean(), _Mean()
        self._seen: tuple[int, int] | None = None
        self._fit_start = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    # --- training --------------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        self._fit_start = time.perf_counter()

    def l2_penalty(self) -> torch.Tensor | float:
        """Only for optimizers without per-group weight decay (L-BFGS): the same L2 term, in the loss."""
        if not (self.spec.l2_in_loss and self.optim_cfg.weight_decay > 0):
            return 0.0
        decay, _ = decay_split(self.net)
        return 0.5 * self.optim_cfg.weight_decay * sum((p * p).sum() for p in decay)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        # L-BFGS re-evaluates the same batch inside its line search: count each batch once.
        key = (self.current_epoch, batch_idx)
        if key != self._seen:
            self._seen = key
            self._train.add(loss, logits, y)
            self._check_divergence(loss.detach(), batch_idx)
        return loss + self.l2_penalty()

    def _check_divergence(self, loss: torch.Tensor, batch_idx: int) -> None:
        """The lecture's rule: a non-finite loss, or one above 3x the initial loss, ends the run."""
        if self.initial_loss is None:
            self.initial_loss = float(loss)
        elif self.device.type != "cpu" and batch_idx % 16:
            return  # on accelerators a host sync every step would stall the pipeline
        value = float(loss)
        if not math.isfinite(value) or value > self.divergence_factor * self.initial_loss:
            self.diverged = True
            self.trainer.should_stop = True

    def on_train_epoch_end(self) -> None:
        row = {"epoch": self.current_epoch + 1, **self._train.compute("train"), **self._val.compute("val"),
               "lr": self.trainer.optimizers[0].param_groups[0]["lr"],
               "time_s": time.perf_counter() - self._fit_start}
        self._train, self._val = _Mean(), _Mean()
        self.history.append(row)
        logged = {k: v for k, v in row.items() if k != "epoch"}
        if self.current_epoch == 0 and self.initial_loss is not None:
            logged["train/initial_loss"] = self.initial_loss
        self.log_dict(logged, on_epoch=True)

    # --- evaluation ------------------------------------------------------------------------------
    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self._val.add(F.cross_entropy(logits, y), logits, y)

    def test_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self._test.add(F.cross_entropy(logits, y), logits, y)

    def on_test_epoch_end(self) -> None:
        self.test_metrics = self._test.compute("test")
        self._test = _Mean()
        self.log_dict(self.test_metrics)

    # --- optimization ----------------------------------------------------------------------------
    def configure_optimizers(self):
        optimizer = build_optimizer(self.optim_cfg, self.net)
        schedule = build_schedule(self.schedule_cfg)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        # Per-step LambdaLR over the pure schedule: progress = finished steps / total steps.
        lr_lambda = lambda step: schedule(min(1.0, step / total))  # noqa: E731
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
