"""The one LightningModule of the suite: an image classifier whose every technique comes from configs.

Optimization is manual (one closure, so L-BFGS works too).  Metrics are accumulated as tensors and reduced once per epoch (no per-step `self.log`, which would cost
more than a small model's step).  Each finished epoch becomes one row of `history` and is logged to the
attached loggers under Lightning's names: train/loss, train/acc, val/loss, val/acc, lr.

Two rules can end training before max_epochs:
- divergence (always on): a non-finite loss.  Every step's loss is kept on the device; once per
  Lightning batch (a group of `data.steps_per_call` steps, the same on every device) the group's
  losses are checked with one host sync, and `diverged_step` is the first optimizer step (1-based)
  whose loss was not finite.  CPU and GPU therefore stop after the same group, at the same step.
- early stop (opt-in, `early_stop_factor` > 0): lecture 6's search-time rule of cutting a trial whose
  loss climbs above 3x where it started, applied to a smoothed loss: the epoch's mean training loss
  against the first mini-batch's loss, checked at the end of each epoch (`stopped_early_epoch`).
  One noisy mini-batch cannot fire it; a run that is merely noisy trains on.
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
from .regularizers import l1_penalty


class _Mean:
    """Sample-weighted loss and accuracy over an epoch.  A step only appends detached tensors (the
    logits of an epoch are a few MB); the reductions run once, at the end of the epoch."""

    def __init__(self):
        self.losses: list[torch.Tensor] = []
        self.logits: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []

    def add(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        self.losses.append(loss)
        self.logits.append(logits)
        self.labels.append(y)

    def compute(self, prefix: str) -> dict[str, float]:
        if not self.labels:
            return {}
        sizes = torch.tensor([len(y) for y in self.labels], dtype=torch.float64)
        loss = float((torch.stack(self.losses).double().cpu() * sizes).sum() / sizes.sum())
        # Mixed batches (mixup, cutmix) carry soft targets: a prediction is right if it names the
        # dominant class.  Resolved here, once per epoch, so hard-label steps pay nothing for it.
        logits, labels = torch.cat(self.logits), torch.cat(self.labels)
        correct = int((logits.argmax(1) == (labels.argmax(1) if labels.dim() > 1 else labels)).sum())
        return {f"{prefix}/loss": loss, f"{prefix}/acc": correct / float(sizes.sum())}


class ImageClassifier(L.LightningModule):
    def __init__(self, model: ModelConfig, optim: OptimConfig, schedule: ScheduleConfig,
                 in_shape: tuple[int, int, int], num_classes: int, early_stop_factor: float = 0.0):
        super().__init__()
        self.model_cfg, self.optim_cfg, self.schedule_cfg = model, optim, schedule
        self.net = build_network(model, in_shape, num_classes)
        self.spec = OPTIMIZERS.get(optim.name)
        self.early_stop_factor = early_stop_factor   # 0: off
        self.initial_loss: float | None = None   # loss of the first batch, before any update
        self.diverged_step: int | None = None   # first optimizer step whose loss was not finite
        self.stopped_early_epoch: int | None = None   # epoch whose mean loss fired the early stop
        self.history: list[dict[str, float]] = []   # one row per finished epoch
        self.test_metrics: dict[str, float] = {}
        # Submodule name of `net` -> learning-rate multiplier, set before configure_optimizers by
        # callbacks (transfer: a pretrained body fine-tuned at 0.1x the head's rate).
        self.lr_scales: dict[str, float] = {}
        self._train, self._val, self._test = _Mean(), _Mean(), _Mean()
        self._fit_start = 0.0
        # Averaged weights (EMA, SWA; lit_modules.averaging sets it): what evaluation uses when present.
        self.averaged: torch.nn.Module | None = None
        # One explicit step per batch: Lightning's automatic-optimization closure machinery costs about
        # 0.3 ms a step, more than a small model's whole step on CPU (benchmarks/throughput.py).
        self.automatic_optimization = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Training steps call self.net directly; evaluation (validation, test, predictions) comes here.
        if self.averaged is not None and not self.training:
            return self.averaged(x)
        return self.net(x)

    # --- training --------------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        self._fit_start = time.perf_counter()

    def objective(self, loss: torch.Tensor) -> torch.Tensor:
        """The loss plus the L1 penalty (optim.l1) and, for optimizers without per-group weight decay
        (L-BFGS), the same L2 term; both on the weights decay_split selects (not biases, norms)."""
        if self.optim_cfg.l1 > 0:
            loss = loss + self.optim_cfg.l1 * l1_penalty(decay_split(self.net)[0])
        if not (self.spec.l2_in_loss and self.optim_cfg.weight_decay > 0):
            return loss
        decay, _ = decay_split(self.net)
        return loss + 0.5 * self.optim_cfg.weight_decay * sum((p * p).sum() for p in decay)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        """`batch` is a group of mini-batches (datamodules.StepGroups): one optimizer step each.

        The raw torch optimizer steps here: Lightning's per-step wrappers (LightningOptimizer,
        manual_backward and their hooks) cost ~0.1 ms a step, 10% of a small MLP's step on CPU
        (benchmarks/throughput.py).  Steps are still counted in Lightning's own progress tracker, so
        trainer.global_step, max_steps and the tuner see every one (tests/test_runs.py checks this).
        """
        optimizer, scheduler = self.optimizers(use_pl_optimizer=False), self.lr_schedulers()
        progress = self.trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress
        # Loop invariants hoisted: at ~1 ms a step, attribute lookups and nn.Module.__setattr__ on
        # this module (a few us each) add up to percents.
        net, full_batch, train = self.net, self.spec.full_batch, self._train
        first, steps_before = len(train.losses), progress.total.completed
        for x, y in batch:
            progress.increment_ready()
            if full_batch:
                loss, logits = self._closure_step(optimizer, x, y)
            else:  # one evaluation per step: no closure machinery
                logits = net(x)
                loss = F.cross_entropy(logits, y)
                optimizer.zero_grad(set_to_none=True)
                self.objective(loss).backward()
                optimizer.step()
                loss, logits = loss.detach(), logits.detach()
            progress.increment_completed()
            scheduler.step()
            train.add(loss, logits, y)
            if self.initial_loss is None:
                self.initial_loss = float(loss)
        self._check_finite(train.losses[first:], steps_before)
        return loss  # what the tuner (lr_find) reads as this batch's loss

    def _closure_step(self, optimizer, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of a full-batch optimizer (L-BFGS), which calls the closure several times (line
        search); metrics keep the first call, the loss at the weights the step started from."""
        first: dict[str, torch.Tensor] = {}

        def closure() -> torch.Tensor:
            logits = self.net(x)
            loss = F.cross_entropy(logits, y)
            first.setdefault("loss", loss.detach())
            first.setdefault("logits", logits.detach())
            objective = self.objective(loss)
            optimizer.zero_grad(set_to_none=True)
            objective.backward()
            return objective

        optimizer.step(closure)
        return first["loss"], first["logits"]

    @property
    def diverged(self) -> bool:
        return self.diverged_step is not None

    @property
    def stopped_early(self) -> bool:
        return self.stopped_early_epoch is not None

    def _check_finite(self, losses: list[torch.Tensor], steps_before: int) -> None:
        """End the run if a loss of this group of steps is not finite, recording the first such step.

        One host sync per group, not per step (on a GPU a per-step sync would stall the queue), and the
        steps after the first bad one in the group still run: the outcome and the recorded step do not
        depend on the device or the group size.  Under DDP the ranks agree on the earliest bad step.
        """
        bad = ~torch.isfinite(torch.stack(losses))
        offset = torch.where(bad.any(), bad.int().argmax(), len(losses))   # argmax: the first True
        offset = int(self.trainer.strategy.reduce(offset, reduce_op="min"))
        if offset < len(losses):
            self.diverged_step = steps_before + offset + 1
            self.trainer.should_stop = True

    def on_train_epoch_end(self) -> None:
        row = {"epoch": self.current_epoch + 1, **self._train.compute("train"), **self._val.compute("val"),
               "lr": self.trainer.optimizers[0].param_groups[0]["lr"],
               "time_s": time.perf_counter() - self._fit_start}
        self._train, self._val = _Mean(), _Mean()
        self.history.append(row)
        self._check_early_stop(row)
        logged = {k: v for k, v in row.items() if k != "epoch"}
        if self.current_epoch == 0 and self.initial_loss is not None:
            logged["train/initial_loss"] = self.initial_loss
        self.log_dict(logged, on_epoch=True)

    def _check_early_stop(self, row: dict[str, float]) -> None:
        """Opt-in search-time stop: this epoch's mean training loss above early_stop_factor x the first
        mini-batch's loss.  Not Lightning's EarlyStopping: its threshold is absolute while this one is
        relative to a loss known only after step 1, and callbacks' epoch-end hooks run before this
        module logs the epoch's train/loss.  Ranks of a DDP run stop together if any of them fires."""
        if not self.early_stop_factor or self.diverged or self.initial_loss is None:
            return
        fired = row.get("train/loss", math.nan) > self.early_stop_factor * self.initial_loss
        if self.trainer.strategy.reduce_boolean_decision(fired, all=False):
            self.stopped_early_epoch = row["epoch"]
            self.trainer.should_stop = True

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

    @torch.no_grad()
    def accuracy(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
        """Eval-mode accuracy on (x, y): the training set seen without dropout, DropConnect, stochastic
        depth, augmentation or mixing, for a train-val gap that measures the model, not the noise."""
        was_training = self.net.training
        self.net.eval()
        correct = sum(int((self.net(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
                      for i in range(0, len(x), batch_size))
        self.net.train(was_training)
        return correct / max(1, len(y))

    # --- optimization ----------------------------------------------------------------------------
    def configure_optimizers(self):
        optimizer = build_optimizer(self.optim_cfg, self.net, self.lr_scales)
        schedule = build_schedule(self.schedule_cfg)
        # Lightning counts batches; a batch here is a group of optimizer steps, so count the steps.
        self.trainer.estimated_stepping_batches  # noqa: B018 (loads the train loader)
        total = max(1, self.trainer.max_epochs * self.trainer.train_dataloader.num_steps)
        # Per-step LambdaLR over the pure schedule: progress = finished steps / total steps.
        lr_lambda = lambda step: schedule(min(1.0, step / total))  # noqa: E731
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
