"""Where the runs of a plan train: in this process, in long-lived local workers, or on a Ray cluster.

A worker is started once and trains many runs, so imports and W&B's start-up are paid once per worker.
CPU threads are split between local workers so they do not oversubscribe the cores; with GPUs each
worker owns one GPU, or a share of one when several workers are packed onto it.
"""
from __future__ import annotations

import atexit
import dataclasses
import functools
import gc
import json
import multiprocessing as mp
import os
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from lit_modules import Registry

from . import ledger
from .config import RunConfig
from .results import write_summary


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


def execute(job: Job) -> dict[str, Any]:
    """Train one run unless the ledger says it is done; never raises (failures become summaries)."""
    from .runner import train
    from .tracking import finish, make_logger

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
    with ledger.RunLock(directory) as got:
        if not got:
            return {"run_id": job.run_id, "status": "busy", "skipped": True}
        ledger.clear_partial_writes(directory)   # a killed attempt's half-written temp files
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
        except Exception as exc:  # a config or data error inside a worker: report, keep the grid going
            summary = {"run_id": job.run_id, "status": "failed", "error": f"{type(exc).__name__}: {exc}",
                       "traceback": traceback.format_exc()}
        finally:
            os.environ.pop(WANDB_ENV, None)
            finish(logger, summary)
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
    pool = functools.partial(_pool_round, ctx=ctx, threads=threads, gpus=gpus, on_result=on_result)
    pending, fruitless = list(jobs), 0
    while pending:
        broken = pool(pending, workers)
        # A worker was killed (out of memory, a signal) and the pool with it.  The runs that were
        # training hold a lock no live process owns: each gets a failed attempt in its summary and,
        # attempts left, a retry alone in a fresh worker, so a run that kills its worker cannot take
        # others down with it again.  Runs that had not started go to a new pool.
        suspects = [job for job in broken if ledger.take_over(ledger.run_dir(job.results_dir, job.run_id))]
        for job in suspects:
            outcome = _record_death(job)
            if outcome["attempt"] < job.max_attempts:
                if not pool([job], 1):
                    continue              # the retry finished: on_result has had its summary
                outcome = _record_death(job)
            on_result(outcome)
        pending = [job for job in broken if job not in suspects]
        fruitless = 0 if suspects else fruitless + 1
        if pending and fruitless == 3:   # workers die with no run to blame: stop trying
            for job in pending:
                on_result({"run_id": job.run_id, "status": "failed", "error": "worker processes kept dying"})
            return


def _pool_round(jobs: Sequence[Job], workers: int, *, ctx, threads: int, gpus: int,
                on_result: Callable[[dict[str, Any]], None]) -> list[Job]:
    """Run `jobs` in a pool of `workers`; returns the jobs lost to a broken pool (none normally)."""
    slots = ctx.Queue()  # handed to each worker at its creation (no manager process needed)
    for i in range(workers):
        slots.put(i)
    broken = []
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(threads, slots, gpus)) as pool:
        futures = {pool.submit(execute, job): job for job in jobs}
        for future in as_completed(futures):
            try:
                on_result(future.result())
            except BrokenProcessPool:
                broken.append(futures[future])
    return broken


def _record_death(job: Job) -> dict[str, Any]:
    """Write a failed attempt for a run whose worker died under it; returns that summary."""
    ledger.take_over(ledger.run_dir(job.results_dir, job.run_id))   # the dead worker's lock
    summary = {"run_id": job.run_id, "status": "failed", "seed": job.cfg.seed,
               "attempt": ledger.attempts(job.results_dir, job.run_id) + 1,
               "error": "its worker process died while training it (killed: out of memory or a signal)"}
    write_summary(job.results_dir, summary)
    return summary


EXECUTORS: Registry[Callable[..., None]] = Registry("executor", {"local": run_local})


def _run_ray(*args, **kwargs):
    from .ray_executor import run_ray  # ray is an optional dependency: imported only when chosen
    return run_ray(*args, **kwargs)


EXECUTORS.add("ray", _run_ray)
