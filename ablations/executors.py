"""Where the runs of a plan train: in this process, in long-lived local workers, or on a Ray cluster.

A worker is started once and trains many runs, so imports and W&B's start-up are paid once per worker.
CPU threads are split between local workers so they do not oversubscribe the cores; with GPUs each
worker owns one GPU, or a share of one when several workers are packed onto it.
"""
from __future__ import annotations

import atexit
import dataclasses
import gc
import json
import multiprocessing as mp
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from lit_modules import Registry

from . import ledger
from .config import RunConfig
from .pool import STOP, RunInterrupted, run_pool
from .storage import disk_full


WANDB_ENV = "ABLATIONS_WANDB"   # W&B settings for the rank-0 process of a DDP run (see __main__)


@dataclass(frozen=True)
class Job:
    run_id: str
    cfg: RunConfig
    group: str            # W&B group: the study the run belongs to (every study, for a shared run)
    name: str             # readable variant name (W&B adds the seed)
    tags: tuple[str, ...]
    results_dir: str
    tracking: Any         # ablations.tracking.Tracking
    max_attempts: int = 2
    studies: Mapping[str, Any] = field(default_factory=dict)   # W&B config: {study: {variant, axes}}
    code_version: str | None = None   # set: a finished result of another code version is trained again


# execute() freezes what survives each collection; frozen objects are never finalized, so they are
# handed back to the collector before the interpreter shuts down (a no-op when nothing was frozen).
atexit.register(gc.unfreeze)

PAUSE_ENV = "ABLATIONS_TEST_PAUSE"


def _pause_point(name: str, run_id: str) -> None:
    """Fault-injection tests stop a worker at a chosen moment to kill or interrupt it there:
    ABLATIONS_TEST_PAUSE=<point>:<run_id>:<file>[,...] makes the first process that reaches <point>
    of run <run_id> write its pid to <file> and wait.  Points: "locked", "summary-written"."""
    for spec in os.environ.get(PAUSE_ENV, "").split(","):
        point, rid, marker = (spec.split(":", 2) + ["", ""])[:3]
        if (point, rid) != (name, run_id) or not marker:
            continue
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return                               # paused once already: a retry goes through
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        while True:
            time.sleep(0.05)


def execute(job: Job) -> dict[str, Any]:
    """Train one run unless the ledger says it is done; never raises (failures become summaries).

    Besides the run's own outcomes it returns `busy` (a live process elsewhere holds the run; `holder`
    says which), `no_space` (the disk is full: nothing was recorded or charged) and `interrupted`."""
    # A run leaves reference cycles (trainer <-> module <-> datamodule) holding its tensors, and the
    # collector gets to them only every few dozen runs: a Fashion-MNIST worker grew ~400 MB a run until
    # the OOM killer took it.  So the previous run is collected before this one loads its data (here,
    # not after a run, so a summary is returned the moment it is written).  What survives is frozen
    # (imports, caches): each collection then scans only what one run created, 0.04 s instead of 0.3 s
    # (benchmarks/run_overhead.py).
    gc.collect()
    gc.freeze()
    done = ledger.finished(job.results_dir, job.run_id, job.code_version)
    if done is not None:
        return {**done, "skipped": True}
    directory = ledger.run_dir(job.results_dir, job.run_id)
    lock = ledger.RunLock(directory)
    try:
        with lock as got:
            if not got:
                return {"run_id": job.run_id, "status": "busy", "skipped": True, "holder": lock.holder}
            done = ledger.finished(job.results_dir, job.run_id, job.code_version)   # finished meanwhile
            if done is not None:
                return {**done, "skipped": True}
            try:
                ledger.clear_partial_writes(directory)   # a killed attempt's half-written temp files
                _pause_point("locked", job.run_id)
                summary = _train(job)
            except RunInterrupted:   # Ctrl-C or SIGTERM: recorded as such, never as an attempt
                summary = ledger.record_interrupted(job.results_dir, job.run_id, job.cfg.seed)
    except OSError as exc:   # the lock's own files, or a full disk during the run
        status = "no_space" if disk_full(exc) else "failed"
        return {"run_id": job.run_id, "status": status, "error": f"{type(exc).__name__}: {exc}"}
    summary.pop("traceback", None)  # stays in summary.json; the parent only needs the outcome
    return summary


def _train(job: Job) -> dict[str, Any]:
    """Train a run whose lock this process holds."""
    from .runner import train
    from .tracking import finish, make_logger
    logger, summary = None, None
    try:
        attempt = ledger.attempts(job.results_dir, job.run_id) + 1
        if job.cfg.trainer.devices > 1:
            # DDP ranks run in a torchrun child: rank 0 there makes the logger from these settings.
            os.environ[WANDB_ENV] = json.dumps({"tracking": dataclasses.asdict(job.tracking), "group": job.group,
                                                "name": job.name, "tags": job.tags, "studies": job.studies})
        else:
            logger = make_logger(job.tracking, Path(job.results_dir), job.run_id, job.cfg, group=job.group,
                                 name=job.name, tags=job.tags, studies=job.studies)
        summary = train(job.cfg, job.results_dir, loggers=[logger] if logger else [],
                        extra={"attempt": attempt})
        _pause_point("summary-written", job.run_id)
    except Exception as exc:  # a config or data error inside a worker: report, keep the grid going
        if disk_full(exc):
            raise
        summary = {"run_id": job.run_id, "status": "failed", "error": f"{type(exc).__name__}: {exc}",
                   "traceback": traceback.format_exc()}
    finally:
        os.environ.pop(WANDB_ENV, None)
        finish(logger, summary)
    return summary


def default_workers() -> int:
    """One worker per GPU, else one per CPU core (up to 8): the suite's runs are small, and
    single-threaded workers in parallel beat one multi-threaded process (benchmarks/grid_scaling.py)."""
    return torch.cuda.device_count() or min(os.cpu_count() or 1, 8)


def run_local(jobs: Sequence[Job], on_result: Callable[[dict[str, Any]], None], *, workers: int = 1,
              address: str | None = None) -> None:
    """Train `jobs` here (one worker) or in local worker processes (ablations.pool); returns early,
    with runs left, once pool.STOP is set.  `address` is for cluster executors; a local grid has none."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            if STOP.is_set():
                return
            on_result(execute(job))
        return
    gpus = torch.cuda.device_count()
    threads = max(1, (os.cpu_count() or 1) // workers)
    # CUDA cannot be re-initialized in a forked child: spawn there.  Without CUDA, single-threaded
    # workers fork from this process, which has imported everything already (a fresh interpreter
    # pays ~4 s of imports); as in DataLoader workers, one torch thread keeps fork safe with OpenMP.
    # Multi-threaded CPU workers come from a forkserver that imports the suite once.
    method = "spawn" if gpus else ("fork" if threads == 1 else "forkserver")
    ctx = mp.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(["ablations.executors", "ablations.pool", "ablations.runner", "ablations.tracking"])
    run_pool(jobs, on_result, execute, ctx=ctx, workers=workers, threads=threads, gpus=gpus)


EXECUTORS: Registry[Callable[..., None]] = Registry("executor", {"local": run_local})


def _run_ray(*args, **kwargs):
    from .ray_executor import run_ray  # ray is an optional dependency: imported only when chosen
    return run_ray(*args, **kwargs)


EXECUTORS.add("ray", _run_ray)
