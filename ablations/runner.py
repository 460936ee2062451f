"""Train and test one run from a config, and leave its files in the results folder.

`run_one` is the whole life of a run: resolve and validate the config (bad input fails here, before
anything trains), train with Lightning, test once with the final weights, and write config.json,
metrics.csv (every epoch, as it finishes) and summary.json (last).  A run that raises is recorded as
`failed` with its traceback; a run whose loss turns non-finite is an outcome, `diverged`, not an error,
and so is `stopped_early` (the opt-in search-time stop, trainer.early_stop_factor).
"""
from __future__ import annotations

import logging
import math
import os
import platform
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import lightning as L
import torch
import torchvision

from datamodules import ImageDataModule
from lit_modules import ConfigError, ImageClassifier, OPTIMIZERS, build_averaging, config_hash, override, to_dict
from lit_modules.diagnostics import Diagnostics

from . import ledger
from .code_version import code_version
from .config import RunConfig, baseline
from .predictions import prediction_callbacks
from .procedures import PROCEDURES, Context
from .storage import disk_full, write_json, write_rows
from .transfer import attach, pretrained_weights, with_available_source

# A grid trains hundreds of runs: Lightning's per-run banners (GPU available, tips) drown the progress.
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated")


def resolve(overrides: Mapping[str, Any] | None = None, base: RunConfig | None = None) -> RunConfig:
    """The baseline (or `base`) with dotted overrides applied; raises ConfigError on any bad key or value.
    A transfer source whose weights are not on this machine is replaced by its fallback, with a warning."""
    cfg = with_available_source(override(base or baseline(), dict(overrides or {})))
    # What the run's procedure needs wins (overfit: no regularization), so the config says what ran.
    return override(cfg, PROCEDURES.get(cfg.trainer.procedure).settings)


def run_id(cfg: RunConfig) -> str:
    """Content address: the hash of the resolved config, seed included."""
    return config_hash(cfg)


def _rank() -> int:
    """This process's rank in a torchrun launch (0 outside one): only rank 0 writes files."""
    return int(os.environ.get("RANK", "0"))


class _MetricsWriter(L.Callback):
    """Persists the finished epochs at the start of the next one, so a crash keeps them."""

    def __init__(self, path: Path):
        self.path = path

    def on_train_epoch_start(self, trainer, module) -> None:
        if module.history and _rank() == 0:
            write_rows(self.path, module.history)


def versions() -> dict[str, str]:
    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "lightning": L.__version__}


def _device_name(trainer: L.Trainer) -> str:
    device = trainer.strategy.root_device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    return f"{device} ({name}) x{trainer.world_size}"


def _diagnostics(cfg: RunConfig, run_dir: Path, num_classes: int) -> list[Diagnostics]:
    """Lecture 6's babysitting diagnostics, stored beside the metrics (off with diagnostics_every=0)."""
    if not cfg.trainer.diagnostics_every or _rank() != 0:   # under DDP, rank 0 measures and writes
        return []

    def persist(rows, histograms) -> None:
        write_rows(run_dir / "diagnostics.csv", rows)
        if histograms is not None:
            write_json(run_dir / "activations.json", histograms)
    return [Diagnostics(cfg.model.activation, num_classes, cfg.trainer.diagnostics_every, persist)]


def make_trainer(cfg: RunConfig, run_dir: Path, loggers: Sequence[Any] = (),
                 callbacks: Sequence[L.Callback] = (), **extra: Any) -> L.Trainer:
    """The suite's Trainer: no checkpoints, summaries or sanity checks; the module keeps the metrics."""
    t = cfg.trainer
    kwargs = dict(
        max_epochs=t.max_epochs, accelerator=t.accelerator, devices=t.devices, precision=t.precision,
        logger=list(loggers) or False, callbacks=list(callbacks), enable_checkpointing=False,
        enable_model_summary=False, enable_progress_bar=t.progress_bar, num_sanity_val_steps=0,
        log_every_n_steps=1, default_root_dir=str(run_dir), strategy="ddp" if t.devices > 1 else "auto",
    )
    return L.Trainer(**{**kwargs, **extra})   # `extra` may replace a default (lr_find: max_epochs)


def _summarize(module: ImageClassifier, status: str) -> dict[str, Any]:
    history = module.history
    nan = float("nan")
    # A diverged net's last epoch ran on non-finite weights: its accuracies are no measurement (argmax of
    # NaN logits), so they stay missing; epochs evaluated before that (finite val loss) still count.
    last = history[-1] if history and status != "diverged" else {}
    val_accs = [row["val/acc"] for row in history if "val/acc" in row and math.isfinite(row.get("val/loss", nan))]
    return {
        "epochs": len(history),
        "initial_loss": module.initial_loss if module.initial_loss is not None else nan,
        "best_val_acc": max(val_accs) if val_accs else nan,
        "final_val_acc": last.get("val/acc", nan),
        "test_acc": module.test_metrics.get("test/acc", nan) if status == "completed" else nan,
        "test_loss": module.test_metrics.get("test/loss", nan) if status == "completed" else nan,
        "train_acc": last.get("train/acc", nan),
        "train_loss": last.get("train/loss", nan),
        "val_loss": last.get("val/loss", nan),
    }


def train(cfg: RunConfig, results_dir: str | Path, loggers: Sequence[Any] = (),
          callbacks: Sequence[L.Callback] = (), extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Train, test and record one resolved config; returns the summary that was written.

    `extra` goes into the summary as is (the grid records the attempt number there).
    """
    if cfg.trainer.devices > 1 and "LOCAL_RANK" not in os.environ:
        return _launch_ddp(cfg, results_dir, extra)
    spec = OPTIMIZERS.get(cfg.optim.name)
    datamodule = ImageDataModule(cfg.data, seed=cfg.seed, full_batch=spec.full_batch)
    # Missing data and impossible sizes (train_size above the split) fail here, before anything is
    # written or trained; Lightning's own setup call later only moves the tensors to the device.
    datamodule.prepare_data()
    datamodule.setup("fit")

    rid = run_id(cfg)
    run_dir = Path(results_dir) / "runs" / rid
    writer = _rank() == 0
    if writer:
        write_json(run_dir / "config.json", to_dict(cfg))
    summary: dict[str, Any] = {"run_id": rid, "status": "running", "seed": cfg.seed, **(extra or {})}
    start = time.perf_counter()
    module: ImageClassifier | None = None
    trainer: L.Trainer | None = None
    diagnostics: list[Diagnostics] = []
    try:
        weights = pretrained_weights(cfg, results_dir, loggers)   # trains a transfer source on demand (seeds its own)
        L.seed_everything(cfg.seed, verbose=False)
        module = ImageClassifier(cfg.model, cfg.optim, cfg.schedule, datamodule.in_shape,
                                 datamodule.num_classes, cfg.trainer.early_stop_factor)
        callbacks = [*attach(cfg, module, weights), *callbacks]   # loads and checks weights before fit
        # Weight averaging and snapshots are callbacks, present only when their config asks for them.
        technique = [*build_averaging(cfg.averaging), *prediction_callbacks(cfg.schedule)]
        diagnostics = _diagnostics(cfg, run_dir, datamodule.num_classes)
        procedure = PROCEDURES.get(cfg.trainer.procedure)
        trainer = make_trainer(cfg, run_dir, loggers,
                               [_MetricsWriter(run_dir / "metrics.csv"), *technique, *diagnostics, *callbacks],
                               **procedure.trainer)
        summary["status"] = procedure.run(Context(cfg, module, datamodule, trainer, run_dir, summary, writer,
                                                  technique))
    except ConfigError:
        raise
    except Exception as exc:  # recorded, never lost: the grid goes on and reports it
        if disk_full(exc):    # no fault of the run: nothing is recorded, the grid stops (executors)
            raise
        summary.update(status="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    finally:
        if module is not None:
            if module.history and writer:
                write_rows(run_dir / "metrics.csv", module.history)
            summary.update(_summarize(module, summary["status"]))
        for d in diagnostics:
            summary.update(d.summary())
        summary.update(wall_time_s=time.perf_counter() - start, versions=versions(), code_version=code_version(),
                       device=_device_name(trainer) if trainer is not None else "unknown")
        if summary["status"] != "running" and writer:  # an interrupt (Ctrl-C, kill) leaves it unfinished
            summary = ledger.record(run_dir, summary)   # never over a finished result
    return summary


def _launch_ddp(cfg: RunConfig, results_dir: str | Path, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """One run over several devices: torchrun starts one process per device on `python -m ablations`.

    Lightning's own DDP launcher re-executes the current script for every rank, which inside a grid
    worker (or a notebook) would be the wrong program; a torchrun child trains exactly this config.
    Each rank trains on its shard of every batch order (batch_size is per device); rank 0 writes.
    """
    run_dir = Path(results_dir) / "runs" / run_id(cfg)
    write_json(run_dir / "config.json", to_dict(cfg))
    pretrained_weights(cfg, results_dir)   # a transfer source trains here, once, not in every rank
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc-per-node={cfg.trainer.devices}", "-m", "ablations",
           "--config", str(run_dir / "config.json"), "--results-dir", str(results_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    summary = ledger.read_summary(results_dir, run_id(cfg))
    if summary is None:
        summary = {"run_id": run_id(cfg), "status": "failed", "seed": cfg.seed,
                   "error": f"torchrun exited with {proc.returncode}", "traceback": proc.stderr[-4000:]}
    summary.update(extra or {})
    return ledger.record(run_dir, summary)


def run_one(overrides: Mapping[str, Any] | None = None, results_dir: str | Path = "results") -> dict[str, Any]:
    """Train and test the baseline plus dotted overrides ({"optim.name": "adam"}); returns the summary."""
    return train(resolve(overrides), results_dir)
