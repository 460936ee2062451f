"""Lecture 6's "babysitting" diagnostics as one Lightning callback, sampled so it stays cheap.

At optimizer step 0 and every `every` optimizer steps it records, as tidy rows (step, epoch, layer,
depth, metric, value):
  - per weight tensor (Linear/Conv weights, head included): `grad_norm` |g| (gradient flow by depth),
    `update_ratio` lr * |g| / |w|, the size of a plain SGD step relative to the weights (the lecture's
    rule of thumb: about 1e-3), and `step_ratio` |dw| / |w|, the step the optimizer really took
    (momentum, weight decay and adaptive scaling included; equal to update_ratio for plain SGD);
  - per hidden nonlinearity, on a fixed probe batch (the first training mini-batch, at most 256 images):
    `act_mean`, `act_std`, `dead_frac` (fraction of units, channels for convs, for which the
    activation's `dead` predicate holds on every probe example) and `saturated_frac` (fraction of
    outputs on a flat asymptote); the predicates are data on the ActSpec registry entries;
and per-layer histograms of those outputs at step 0 and at the end of training.

The module steps the raw torch optimizer several times per Lightning batch, so Lightning's optimizer
hooks never fire: sampling hangs on torch's own step pre-hook, where the step's gradients are in place
and the weights not yet changed, and its post-hook, for the step taken.  The probe forward runs in
training mode (as training sees the network: batch statistics) under no_grad, with the RNG forked and
every buffer restored afterwards, so diagnostics never change a run's numbers (tested).
"""
from __future__ import annotations

import math
import statistics
import time
from typing import Any, Callable

import lightning as L
import torch
from torch import nn

from .layers import ACTIVATIONS, ActSpec

# The initial loss is flagged when it is further than this fraction of ln(C) from ln(C).  A network
# whose logits start with std s has an initial loss of about ln(C) + s^2/2, so 25% of ln(10) allows
# logits of std ~1; an overconfident head (std ~10) lands far outside.
INITIAL_LOSS_TOLERANCE = 0.25
PROBE_SIZE = 256
# Files are rewritten at an epoch's end when this long has passed since the last write, and always at
# the end (or crash) of training: an fsync costs ~10 ms, as much as a whole digits epoch.
SAVE_EVERY_S = 5.0
BINS = 60
_QUANTILE_MAX = 1_000_000   # torch.quantile refuses huge inputs: histogram ranges use a strided sample

# persist(rows, histograms): histograms is None when no snapshot was added since the last call.
Persist = Callable[[list[dict[str, Any]], "dict[str, Any] | None"], None]


def activation_outputs(net: nn.Module, kind: type, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """(module name, output) of every `kind` module for input x, leaving the network exactly as it was."""
    outputs: list[tuple[str, torch.Tensor]] = []
    named = [(name, m) for name, m in net.named_modules() if isinstance(m, kind)]
    hooks = [m.register_forward_hook(lambda _m, _i, y, name=name: outputs.append((name, y.detach())))
             for name, m in named]
    buffers = [b.clone() for b in net.buffers()]   # batch-norm running statistics and counters
    devices = [x.device] if x.device.type == "cuda" else []
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=devices):   # dropout draws stay unseen
            net(x)
    finally:
        for h in hooks:
            h.remove()
        with torch.no_grad():
            for b, saved in zip(net.buffers(), buffers):
                b.copy_(saved)
    return outputs


def activation_stats(spec: ActSpec, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean, std, dead-unit and saturated-output fractions of one layer's outputs (0-dim tensors)."""
    stats = {"act_mean": y.mean(), "act_std": y.std()}
    if spec.dead is not None:   # a unit (channel) is dead when every example, every position is dead
        dims = (0, *range(2, y.dim()))
        stats["dead_frac"] = spec.dead(y).amin(dim=dims).float().mean()
    if spec.saturated is not None:
        stats["saturated_frac"] = spec.saturated(y).float().mean()
    return stats


def update_ratios(params: list[tuple[str, nn.Parameter]], lr_of: dict[int, float]) -> dict[str, list[float]]:
    """Per weight tensor: |g| and lr * |g| / |w| (NaN where |w| = 0), in one host transfer."""
    # One fused call per list (what clip_grad_norm_ uses): a norm per tensor costs ~30 us of dispatch.
    grad = torch.stack(torch._foreach_norm([p.grad.detach() for _, p in params]))
    weight = torch.stack(torch._foreach_norm([p.detach() for _, p in params]))
    lr = torch.tensor([lr_of[id(p)] for _, p in params], dtype=grad.dtype, device=grad.device)
    ratio = torch.where(weight > 0, lr * grad / weight, torch.full_like(grad, math.nan))
    g, r = torch.stack([grad, ratio]).cpu().tolist()
    return {"grad_norm": g, "update_ratio": r}


def histograms(outputs: list[tuple[str, torch.Tensor]], bins: int = BINS) -> list[dict[str, Any]]:
    """Per layer: counts over shared edges.  The range spans the 0.05-99.95% quantiles of all layers,
    widened to include [-1, 1] (or [0, 1] for non-negative outputs) so a collapse to 0 stays visible;
    outliers fall in the end bins."""
    finite = [y[torch.isfinite(y)].float().flatten() for _, y in outputs]
    pooled = torch.cat([f[::max(1, len(f) * len(finite) // _QUANTILE_MAX)] for f in finite])
    if pooled.numel() == 0:
        return []
    lo, hi = torch.quantile(pooled, torch.tensor([0.0005, 0.9995], device=pooled.device)).tolist()
    lo, hi = min(lo, -1.0 if lo < 0 else 0.0), max(hi, 1.0)
    edges = torch.linspace(lo, hi, bins + 1).tolist()
    layers = []
    for depth, ((name, _), f) in enumerate(zip(outputs, finite), start=1):
        counts = torch.histc(f.clamp(lo, hi), bins=bins, min=lo, max=hi) if f.numel() else torch.zeros(bins)
        layers.append({"layer": name, "depth": depth, "edges": edges, "counts": counts.long().tolist()})
    return layers


class Diagnostics(L.Callback):
    """Samples the diagnostics above; `persist(rows, histograms)` stores them (see SAVE_EVERY_S)."""

    def __init__(self, activation: str, num_classes: int, every: int = 25, persist: Persist | None = None,
                 probe_size: int = PROBE_SIZE):
        self.spec = ACTIVATIONS.get(activation)
        self.kind = type(self.spec.make())
        self.num_classes, self.every, self.persist, self.probe_size = num_classes, every, persist, probe_size
        self.rows: list[dict[str, Any]] = []
        self.histograms: dict[str, Any] = {"activation": activation, "snapshots": []}
        self.initial_loss: float | None = None
        self._probe: torch.Tensor | None = None
        self._step, self._steps_per_epoch, self._saved_snapshots = 0, 1, 0
        self._saved_at = time.monotonic()
        self._hook: tuple | None = None
        self._pending: tuple | None = None   # (step, weights, their values before the step)
        self._trainer: L.Trainer | None = None
        self._net: nn.Module | None = None

    # --- Lightning hooks ----------------------------------------------------------------------------
    def on_train_start(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:   # gradients are the same on every rank; rank 0 measures
            return
        self._trainer, self._net = trainer, pl_module.net
        loader = trainer.train_dataloader
        self._steps_per_epoch = max(1, getattr(loader, "num_steps", None) or trainer.num_training_batches)
        optimizer = trainer.optimizers[0]
        self._hook = (optimizer.register_step_pre_hook(self._before_step),
                      optimizer.register_step_post_hook(self._after_step))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._probe is None and self._hook is not None:   # the first mini-batch of the group
            self._probe = batch[0][0][:self.probe_size].detach().clone()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if time.monotonic() - self._saved_at >= SAVE_EVERY_S:
            self._save()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._save()   # a crash keeps what was measured

    def on_train_end(self, trainer, pl_module) -> None:
        if self._hook is None:
            return
        for handle in self._hook:
            handle.remove()
        self._hook = None
        self.initial_loss = getattr(pl_module, "initial_loss", None)
        if self._probe is not None:
            self._sample_activations(self._step, with_histograms=True)
        self._save()

    # --- sampling -----------------------------------------------------------------------------------
    def _before_step(self, optimizer, args, kwargs) -> None:
        step, self._step = self._step, self._step + 1
        if step % self.every:
            return
        weights = [(n.removesuffix(".weight"), depth, p) for depth, (n, p) in
                   enumerate(((n, p) for n, p in self._net.named_parameters() if p.dim() > 1), start=1)]
        graded = [(name, p) for name, _, p in weights if p.grad is not None]   # L-BFGS: none before its closure
        if graded:
            lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
            depth_of = {name: depth for name, depth, _ in weights}
            for metric, values in update_ratios(graded, lr_of).items():
                self._record(step, [(name, depth_of[name], metric, v) for (name, _), v in zip(graded, values)])
        self._pending = (step, weights, [p.detach().clone() for _, _, p in weights])
        if self._probe is not None:
            self._sample_activations(step, with_histograms=step == 0)

    def _after_step(self, optimizer, args, kwargs) -> None:
        """`step_ratio`: the step the optimizer really took, |w_after - w_before| / |w_before| (momentum,
        weight decay and adaptive scaling included; for plain SGD it equals `update_ratio`)."""
        if self._pending is None:
            return
        (step, weights, before), self._pending = self._pending, None
        after = [p.detach() for _, _, p in weights]
        moved = torch.stack(torch._foreach_norm(torch._foreach_sub(after, before)))
        scale = torch.stack(torch._foreach_norm(before))
        ratio = torch.where(scale > 0, moved / scale, torch.full_like(moved, math.nan)).cpu().tolist()
        self._record(step, [(name, depth, "step_ratio", v) for (name, depth, _), v in zip(weights, ratio)])

    def _sample_activations(self, step: int, with_histograms: bool) -> None:
        outputs = activation_outputs(self._net, self.kind, self._probe)
        if not outputs:
            return
        per_layer = [activation_stats(self.spec, y) for _, y in outputs]
        metrics = list(per_layer[0])
        values = torch.stack([torch.stack([s[m] for m in metrics]) for s in per_layer]).cpu().tolist()
        self._record(step, [(name, depth, metric, v)
                            for depth, ((name, _), row) in enumerate(zip(outputs, values), start=1)
                            for metric, v in zip(metrics, row)])
        if with_histograms:
            self.histograms["snapshots"].append({"step": step, "epoch": self._epoch(step),
                                                 "layers": histograms(outputs)})

    def _epoch(self, step: int) -> float:
        return step / self._steps_per_epoch

    def _record(self, step: int, entries: list[tuple[str, int, str, float]]) -> None:
        epoch = self._epoch(step)
        self.rows += [{"step": step, "epoch": epoch, "layer": name, "depth": depth, "metric": metric,
                       "value": value} for name, depth, metric, value in entries]
        scalars = {f"diag/{metric}/{name}": value for name, _, metric, value in entries}
        for logger in self._trainer.loggers:
            logger.log_metrics(scalars, step=self._trainer.global_step)

    def _save(self) -> None:
        if self.persist is not None and self.rows:
            snapshots = len(self.histograms["snapshots"])
            self.persist(self.rows, self.histograms if snapshots > self._saved_snapshots else None)
            self._saved_snapshots, self._saved_at = snapshots, time.monotonic()

    # --- per-run summary ----------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Columns for summary.json: the initial-loss check and a few first/last diagnostic values."""
        expected = math.log(self.num_classes)
        loss = self.initial_loss
        out: dict[str, Any] = {"expected_initial_loss": expected}
        if loss is not None:
            out["initial_loss_suspect"] = bool(not math.isfinite(loss)
                                               or abs(loss - expected) > INITIAL_LOSS_TOLERANCE * expected)
        if not self.rows:
            return out
        first, last = self.rows[0]["step"], self.rows[-1]["step"]
        at = lambda step, metric: [r["value"] for r in self.rows if r["step"] == step and r["metric"] == metric]  # noqa: E731
        stds = at(first, "act_std")
        if stds:
            out["initial_act_std"] = stds[-1]   # the deepest hidden layer: collapse shows here first
        for name, step, metric, reduce in [
                ("initial_saturated_frac", first, "saturated_frac", statistics.fmean),
                ("final_saturated_frac", last, "saturated_frac", statistics.fmean),
                ("final_dead_frac", last, "dead_frac", statistics.fmean),
                ("final_update_ratio", max((r["step"] for r in self.rows if r["metric"] == "update_ratio"),
                                           default=last), "update_ratio", statistics.median)]:
            values = [v for v in at(step, metric) if math.isfinite(v)]
            if values:
                out[name] = reduce(values)
        return out
