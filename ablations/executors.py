"""Where the runs of a plan train: in this process, in long-lived local workers, or on a Ray cluster.

A worker is started once and trains many runs, so imports and W&B's start-up are paid once per worker.
CPU threads are split between local workers so they do not oversubscribe the cores; with GPUs each
worker owns one GPU, or a share of one when several workers are packed onto it.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from lit_modules import Registry

from . import ledger
from .config import RunConfig


WANDB_ENV = "ABLATIONS_WANDB"   # W&B settings for the rank-0 process of a DDP run (see __main__)


@dataclass(frozen=True)
class Job:
    run_id: str
    cfg: RunConfig
    group: str            # W&B group: the (first) study the run belongs to
    name: str             # readable variant name
    tags: tuple[str, ...]
    results_dir: str
    tracking: Any         # ablations.tracking.Tracking
    max_attempts: int = 2


def execute(job: Job) -> dict[str, Any]:
    """Train one run unless the ledger says it is done; never raises (failures become summaries)."""
    from .runner import train
    from .tracking import finish, make_logger

    done = ledger.read_summary(job.results_dir, job.run_id)
    if done is not None and done.get("status") in ledger.DONE:
        return {**done, "skipped": True}
    directory = ledger.run_dir(job.results_dir, job.run_id)
    with ledger.RunLock(directory) as got:
        if not got:
            return {"run_id": job.run_id, "status": "busy", "skipped": True}
        logger = None
        try:
            attempt = ledger.attempts(job.results_dir, job.run_id) + 1
            if job.cfg.trainer.devices > 1:
                # DDP ranks run in a torchrun child: rank 0 there makes the logger from these settings.
                os.environ[WANDB_ENV] = json.dumps({"mode": job.tracking.mode, "project": job.tracking.project,
                                                    "group": job.group, "name": job.name, "tags": job.tags})
            else:
                logger = make_logger(job.tracking, Path(job.results_dir), job.run_id, job.cfg,
                                     group=job.group, name=job.name, tags=job.tags)
            summary = train(job.cfg, job.results_dir, loggers=[logger] if logger else [],
                            extra={"attempt": attempt})
        except Exception as exc:  # a config or data error inside a worker: report, keep the grid going
            summary = {"run_id": job.run_id, "status": "failed", "error": f"{type(exc).__name__}: {exc}",
                       "traceback": traceback.format_exc()}
        finally:
            os.environ.pop(WANDB_ENV, None)
            finish(logger)
    summary.pop("traceback", None)  # stays in summary.json; the parent only needs the outcome
    return summary


def _init_worker(threads: int, slots, gpus: int) -> None:
    """Runs once in each worker: its share of the CPU threads, and its GPU when there are GPUs."""
    torch.set_num_threads(threads)
    slot = slots.get()
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(slot % gpus)


def default_workers() -> int:
    """One worker per GPU, else one per CPU core (up to 8): the suite's runs are small, and
    single-threaded workers in parallel beat one multi-threaded process (benchmarks/grid_scaling.py)."""
    return torch.cuda.device_count() or min(os.cpu_count() or 1, 8)


def run_local(jobs: Sequence[Job], on_result: Callable[[dict[str, Any]], None], *, workers: int = 1,
              address: str | None = None) -> None:
    """`address` is for cluster executors; a local grid has none."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
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
        ctx.set_forkserver_preload(["ablations.executors", "ablations.runner", "ablations.tracking"])
    slots = ctx.Queue()  # handed to each worker at its creation (no manager process needed)
    for i in range(workers):
        slots.put(i)
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(threads, slots, gpus)) as pool:
        futures = {pool.submit(execute, job): job for job in jobs}
        for future in as_completed(futures):
            try:
                on_result(future.result())
            except BrokenProcessPool:  # a worker was killed (out of memory, signal): the ledger resumes
                job = futures[future]
                on_result({"run_id": job.run_id, "status": "failed", "error": "worker process died"})


EXECUTORS: Registry[Callable[..., None]] = Registry("executor", {"local": run_local})


def _run_ray(*args, **kwargs):
    from .ray_executor import run_ray  # ray is an optional dependency: imported only when chosen
    return run_ray(*args, **kwargs)


EXECUTORS.add("ray", _run_ray)
