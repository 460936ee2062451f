"""Fixed cost of one run in a warm worker: config to finished summary, minus the training itself.

For several different one-epoch runs in this process, the grid's worker function
(`ablations.executors.execute`: ledger check, lock, W&B logger, data set-up, fit, test, files) is
timed with W&B offline, and right after it a bare `trainer.fit` of the same config on the same
prepared data with no logger and no files.  The difference is the per-run overhead.  The first run
pays imports and W&B's start-up and is reported apart.

    python benchmarks/run_overhead.py            # target: <= 0.3 s per run, W&B offline
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import lightning as L

from ablations import resolve, run_id
from ablations.executors import Job, execute
from ablations.runner import make_trainer
from ablations.tracking import Tracking
from datamodules import ImageDataModule
from lit_modules import ImageClassifier


def bare_fit(cfg, tmp: str) -> float:
    dm = ImageDataModule(cfg.data, seed=cfg.seed)
    dm.prepare_data()
    dm.setup("fit")
    L.seed_everything(cfg.seed, verbose=False)
    module = ImageClassifier(cfg.model, cfg.optim, cfg.schedule, dm.in_shape, dm.num_classes)
    trainer = make_trainer(cfg, tmp)
    start = time.perf_counter()
    trainer.fit(module, datamodule=dm)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--wandb-mode", default="offline")
    args = parser.parse_args()
    os.environ.pop("WANDB_MODE", None)  # the mode asked for here, not one inherited from a test shell
    tracking = Tracking(mode=args.wandb_mode)
    overheads = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs + 1):
            cfg = resolve({"trainer.max_epochs": 1, "seed": i})
            start = time.perf_counter()
            summary = execute(Job(run_id(cfg), cfg, "bench", f"seed={i}", ("bench",), tmp, tracking))
            wall = time.perf_counter() - start
            assert summary["status"] == "completed", summary
            overheads.append(wall - bare_fit(cfg, tmp))
    first, warm = overheads[0], overheads[1:]
    print(f"W&B {args.wandb_mode}: first run overhead {first:.2f} s (imports, W&B start-up)")
    print(f"warm worker, {len(warm)} runs: median {statistics.median(warm):.3f} s, max {max(warm):.3f} s per run "
          f"(target <= 0.3 s)")


if __name__ == "__main__":
    main()
