"""What a run does with its config (`trainer.procedure`): fit and test, or one of the lecture's checks.

    fit        train, then test the final weights (the default); the summary gets the train-val gap advice
    lr_find    Lightning's learning-rate range test (Tuner.lr_find); <run_dir>/lr_find.csv holds the curve
    overfit    Lightning's overfit_batches: one fixed mini-batch, no regularization; the loss should reach ~0
    landscape  an optimizer on a 2-D toy function (ablations.landscape); <run_dir>/trajectory.csv

Every procedure goes through runner.train, so it shares the grid, the ledger and the atomic files of
a fit.  What a procedure needs from the config is data on its entry (`settings`, applied by
runner.resolve so config.json and the run id say what ran), as are its extra Trainer arguments.
"""
from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from lit_modules import Registry

from .predictions import save_predictions
from .storage import write_rows


@dataclass
class Context:
    """What runner.train hands a procedure; `summary` is the run's summary, to add results to."""
    cfg: Any            # ablations.config.RunConfig
    module: Any         # lit_modules.ImageClassifier
    datamodule: Any     # datamodules.ImageDataModule
    trainer: Any        # lightning.Trainer from runner.make_trainer
    run_dir: Path
    summary: dict[str, Any]
    writer: bool = True  # rank 0: the only process that writes files
    technique: list = field(default_factory=list)   # averaging / snapshot callbacks (ablations.predictions)


@dataclass(frozen=True)
class Procedure:
    run: Callable[[Context], str]                                # returns the run's status
    settings: Mapping[str, Any] = field(default_factory=dict)    # config values it needs (they win)
    trainer: Mapping[str, Any] = field(default_factory=dict)     # extra lightning.Trainer arguments


# --- train-val gap advice (lecture 6: babysitting the learning process) ------------------------------
BIG_GAP, LOW_ACC = 0.08, 0.9
OVERFITTING = "overfitting: more regularization or more data"
UNDERFITTING = "underfitting: more capacity or longer training"
HEALTHY = "healthy: keep the settings"


def gap_advice(train_acc: float, val_acc: float, big_gap: float = BIG_GAP, low_acc: float = LOW_ACC) -> str:
    """The lecture's reading of final train vs val accuracy: a gap above `big_gap` overfits; a small
    gap with val accuracy below `low_acc` underfits.  (Digits baseline: gap ~0.02 at val ~0.98.)"""
    if any(v is None or not math.isfinite(v) for v in (train_acc, val_acc)):
        return "no advice (no accuracy)"
    if train_acc - val_acc > big_gap:
        return OVERFITTING
    if val_acc < low_acc:
        return UNDERFITTING
    return HEALTHY


def stopped(ctx: Context) -> str | None:
    """`diverged` (a non-finite loss; the summary gets the optimizer step) or `stopped_early` (the
    opt-in search-time stop; the summary gets the epoch), else None: the module's outcome as a status."""
    if ctx.module.diverged:
        ctx.summary["diverged_step"] = ctx.module.diverged_step
        return "diverged"
    if ctx.module.stopped_early:
        ctx.summary["stopped_early_epoch"] = ctx.module.stopped_early_epoch
        return "stopped_early"
    return None


def memorization(module, datamodule) -> dict[str, Any]:
    """Under data.label_noise (Zhang et al. 2017): on the corrupted training examples, in eval mode,
    `memorized_frac` is the fraction of their corrupted labels the final net reproduces (memorization)
    and `corrupted_true_acc` the fraction it labels with their true class (generalization through
    the noise); `corrupted_n` is how many there are.  Nothing without label noise."""
    x, noisy, true = datamodule.corrupted_train()
    if len(x) == 0:
        return {}
    return {"corrupted_n": len(x), "memorized_frac": module.accuracy(x, noisy),
            "corrupted_true_acc": module.accuracy(x, true)}


def fit(ctx: Context) -> str:
    ctx.trainer.fit(ctx.module, datamodule=ctx.datamodule)
    if status := stopped(ctx):   # a cut trial is not tested: its test accuracy would mean nothing
        return status
    ctx.trainer.test(ctx.module, datamodule=ctx.datamodule, verbose=False)
    # Accuracy of the final weights in eval mode on the un-augmented training set: the honest side of
    # the train-val gap (train/acc in training mode is lowered by dropout, mixup and augmentation).
    ctx.summary["clean_train_acc"] = ctx.module.accuracy(ctx.datamodule.clean_train(), ctx.datamodule.y_train)
    ctx.summary.update(memorization(ctx.module, ctx.datamodule))
    if ctx.writer:  # class probabilities for ensembles (ablations/predictions.py), before the summary
        save_predictions(ctx.run_dir / "predictions.npz", ctx.module, ctx.datamodule, ctx.technique)
        ctx.summary["predictions"] = "predictions.npz"   # reports look for the file only where this says so
    last = ctx.module.history[-1] if ctx.module.history else {}
    ctx.summary["advice"] = gap_advice(last.get("train/acc", math.nan), last.get("val/acc", math.nan))
    return "completed"


# --- learning-rate range test ----------------------------------------------------------------------
LR_FIND = {"min_lr": 1e-6, "max_lr": 10.0, "num_training": 200}   # 7 decades, ~29 lrs per decade
LR_FIND_SKIP = 10   # first points of the smoothed loss are its warm-up (Lightning's suggestion skips 10 too)


def lr_find(ctx: Context) -> str:
    """Lightning's range test: the lr grows exponentially each optimizer step; the loss it records is
    Lightning's smoothed batch loss, and the search stops once it exceeds 4x its minimum."""
    from lightning.pytorch.tuner import Tuner

    # Lightning's stop rule (4x the smoothed loss's minimum) decides here; the module's opt-in early
    # stop is off (`settings` below) and a non-finite loss still stops the module.
    # Lightning always draws a progress bar for the search; a grid prints one line per run instead.
    quiet = contextlib.nullcontext() if ctx.cfg.trainer.progress_bar else contextlib.redirect_stderr(io.StringIO())
    with quiet:
        finder = Tuner(ctx.trainer).lr_find(ctx.module, datamodule=ctx.datamodule, update_attr=False, **LR_FIND)
    ctx.module.history.clear()   # epochs crossed during the search are not a training history
    rows = [{"lr": lr, "loss": loss, "warmup": i < LR_FIND_SKIP}
            for i, (lr, loss) in enumerate(zip(finder.results["lr"], finder.results["loss"]))]
    if ctx.writer:
        write_rows(ctx.run_dir / "lr_find.csv", rows)
    ctx.summary.update(lr_find_suggestion=finder.suggestion(), **lr_curve_metrics(rows))
    return "completed"


def lr_curve_metrics(rows: list[dict[str, float]]) -> dict[str, float]:
    """lr_find_low_change: relative loss change over the first decade of lrs after the smoothing
    warm-up (flat: near 0); lr_find_blowup: last finite loss / minimum loss (explodes: well above 1);
    lr_find_best_lr: the lr at the minimum loss; lr_find_points: how many lrs were tried."""
    finite = [r for r in rows[LR_FIND_SKIP:] if math.isfinite(r["loss"])]
    if len(finite) < 2:
        return {"lr_find_points": len(rows)}
    first = finite[0]
    low = [r for r in finite if r["lr"] <= 10 * first["lr"]]
    best = min(finite, key=lambda r: r["loss"])
    return {"lr_find_points": len(rows), "lr_find_low_change": abs(low[-1]["loss"] - first["loss"]) / first["loss"],
            "lr_find_blowup": finite[-1]["loss"] / best["loss"], "lr_find_best_lr": best["lr"]}


# --- overfit a tiny subset -------------------------------------------------------------------------
def overfit(ctx: Context) -> str:
    """Train on the same `overfit_batches` mini-batch(es) every epoch; no test (it would say nothing)."""
    ctx.trainer.fit(ctx.module, datamodule=ctx.datamodule)
    return stopped(ctx) or "completed"


# --- optimizer trajectories on toy functions ---------------------------------------------------------
def landscape(ctx: Context) -> str:
    """Pure torch on two parameters: the run's module and data are not used."""
    from .landscape import log_trajectory, surface, trajectory, trajectory_metrics

    cfg = ctx.cfg
    rows = trajectory(cfg.optim, cfg.landscape.function, cfg.landscape.steps, cfg.seed)
    if ctx.writer:
        write_rows(ctx.run_dir / "trajectory.csv", rows)
        write_rows(ctx.run_dir / "surface.csv", surface(cfg.landscape.function))
    log_trajectory(ctx.trainer.loggers, rows)
    ctx.summary.update(trajectory_metrics(rows, cfg.landscape.function))
    return "completed" if math.isfinite(rows[-1]["loss"]) else "diverged"


PROCEDURES: Registry[Procedure] = Registry("procedure", {
    "fit": Procedure(fit),
    # One optimizer step per Lightning batch: the finder records one (lr, loss) point per batch and
    # the module steps the scheduler once per optimizer step, so grouped steps would move the lr
    # several times per recorded point (and past max_lr).  Epochs without bound (the module's
    # schedule needs a finite count): the finder's step budget ends the search, whatever max_epochs says.
    # The early stop would cut the curve before it shows the blow-up the range test looks for.
    "lr_find": Procedure(lr_find, settings={"data.steps_per_call": 1, "trainer.early_stop_factor": 0.0},
                         trainer={"max_epochs": 10**6}),
    # The datamodule turns shuffling off under overfit_batches (as Lightning does for DataLoaders), so
    # every epoch sees the same batch.  Regularization off: the check is that the model CAN fit.
    "overfit": Procedure(overfit, settings={"data.steps_per_call": 1, "data.augment": "none",
                                            "optim.weight_decay": 0.0, "model.dropout": 0.0},
                         trainer={"overfit_batches": 1}),
    "landscape": Procedure(landscape),
})
