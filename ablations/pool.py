"""Long-lived worker processes that train one run at a time and never outlive the grid.

Not concurrent.futures.ProcessPoolExecutor: when one of its workers dies (the OOM killer, a signal)
the whole pool breaks, the other workers are terminated mid-run, and no future says which run its
worker was training, so an innocent run gets charged with the death.  Here the parent hands each
worker one job at a time over its own pipe and so always knows which run a worker holds: a death is
charged to that run alone (and only if the worker held the run's lock), and the other workers go on.

Workers die with the parent: the kernel's parent-death signal on Linux, a watchdog thread elsewhere.
Stopping (Ctrl-C, SIGTERM, a full disk) sets STOP: queued runs are dropped at once, in-flight runs get
SIGINT and end `interrupted`, and a worker still busy GRACE_S later is killed.
"""
from __future__ import annotations

import collections
import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import wait
from typing import Any, Callable, Sequence

from . import ledger

STOP = threading.Event()   # set by run_all's signal handler or a full disk: start nothing new
GRACE_S = 5.0              # how long in-flight runs get to record themselves as interrupted
_ACTIVE: list["_Worker"] = []   # the running pool's workers, for a hard stop (kill_all)


class RunInterrupted(BaseException):
    """Raised inside a training process by Ctrl-C or SIGTERM.  A BaseException, so that neither the
    runner's `except Exception` (a failure) nor Lightning's KeyboardInterrupt handler (which would
    exit the process) takes it for something else: the run ends `interrupted`, not charged."""


def pool_active() -> bool:
    return bool(_ACTIVE)


def kill_all() -> None:
    """Kill every worker now (a second Ctrl-C).  Their locks name dead pids: the next grid takes them."""
    for worker in list(_ACTIVE):
        worker.kill()


# ------------------------------------------------------------------------------------ in a worker

_state = {"armed": False, "signalled": False}


def _on_signal(signum, frame) -> None:
    if _state["signalled"]:
        return                    # the run is stopping already; the parent kills us if it takes long
    _state["signalled"] = True
    if _state["armed"]:
        raise RunInterrupted(signal.Signals(signum).name)


def _die_with_parent() -> None:
    parent = mp.parent_process()
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    elif parent is not None:
        def watchdog() -> None:
            wait([parent.sentinel])   # readable once the parent is gone
            os._exit(1)
        threading.Thread(target=watchdog, daemon=True, name="parent-watchdog").start()
    if parent is not None and not parent.is_alive():   # it died before the signal was armed
        os._exit(1)


def _interrupted(job) -> dict[str, Any]:
    return ledger.finished(job.results_dir, job.run_id) or \
        {"run_id": job.run_id, "status": ledger.INTERRUPTED, "error": "interrupted before it trained"}


def _work(conn, execute: Callable, threads: int, slot: int, gpus: int) -> None:
    _die_with_parent()
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    import torch
    torch.set_num_threads(threads)
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(slot % gpus)
    while not _state["signalled"]:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            _state["armed"] = True
            result = _interrupted(job) if _state["signalled"] else execute(job)
        except RunInterrupted:    # outside the part of execute that records it (e.g. taking the lock)
            result = _interrupted(job)
        finally:
            _state["armed"] = False
        try:
            conn.send(result)
        except OSError:
            return


# ------------------------------------------------------------------------------------ the parent

class _Worker:
    def __init__(self, ctx, execute: Callable, threads: int, slot: int, gpus: int):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_work, args=(child, execute, threads, slot, gpus),
                                   name=f"ablations-worker-{slot}")
        self.process.start()
        child.close()
        self.slot = slot
        self.job = None           # the job this worker was handed and has not answered

    def give(self, job) -> bool:
        try:
            self.conn.send(job)
        except OSError:
            return False
        self.job = job
        return True

    def answer(self) -> dict[str, Any] | None:
        """The worker's result, or None when it died without one."""
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            return None

    def signal(self, signum: int) -> None:
        try:
            os.kill(self.process.pid, signum)
        except (ProcessLookupError, TypeError):
            pass

    def kill(self) -> None:
        self.signal(signal.SIGKILL)

    def close(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.process.join(1.0)
        if self.process.exitcode is None:
            self.kill()
            self.process.join()
        self.conn.close()


def _how(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"killed by {signal.Signals(-exitcode).name}: out of memory or a signal"
    return f"exit code {exitcode}"


def _after_death(job, worker: _Worker, stopping: bool) -> tuple[dict[str, Any] | None, bool]:
    """What a worker's death means for the run it was handed: (summary to report or None to start the
    run again, whether the run is to blame).  Its finished result if it wrote one; `interrupted` while
    stopping; a failed attempt only if the worker held the run's lock, i.e. was training it."""
    worker.process.join()
    directory = ledger.run_dir(job.results_dir, job.run_id)
    held = ledger.release_dead(directory, worker.process.pid)
    done = ledger.finished(job.results_dir, job.run_id)
    if done is not None:           # died after writing its result (e.g. in W&B's finish)
        return done, False
    if stopping:
        return (ledger.record_interrupted(job.results_dir, job.run_id, job.cfg.seed) if held
                else _interrupted(job)), False
    if not held:                   # it died before taking the run: nothing of the run to blame
        return None, False
    summary = ledger.record(directory, {
        "run_id": job.run_id, "status": "failed", "seed": job.cfg.seed,
        "attempt": ledger.attempts(job.results_dir, job.run_id) + 1,
        "error": f"its worker process died while training it ({_how(worker.process.exitcode)})"})
    retry = summary["status"] == "failed" and summary["attempt"] < job.max_attempts
    return (None if retry else summary), True


class _Pool:
    def __init__(self, jobs, on_result, execute, ctx, workers: int, threads: int, gpus: int):
        self.pending = collections.deque(jobs)
        self.on_result = on_result
        self.spawn = lambda slot: _Worker(ctx, execute, threads, slot, gpus)
        self.workers = [self.spawn(slot) for slot in range(min(workers, len(jobs)))]
        self.stopping_since: float | None = None
        self.unblamed = 0          # deaths in a row with no run to blame

    def busy(self) -> list[_Worker]:
        return [w for w in self.workers if w.job is not None]

    def step(self) -> None:
        if STOP.is_set() and self.stopping_since is None:
            self.stopping_since = time.monotonic()
            self.pending.clear()                  # queued runs are cancelled at once
            for w in self.busy():
                w.signal(signal.SIGINT)           # in-flight runs end `interrupted`
        if self.stopping_since is None:
            for w in self.workers:
                if w.job is None and self.pending and w.process.is_alive():
                    job = self.pending.popleft()
                    if not w.give(job):
                        self.pending.appendleft(job)
        elif time.monotonic() - self.stopping_since > GRACE_S:
            for w in self.busy():
                w.kill()
        busy = self.busy()
        ready = set(wait([h for w in busy for h in (w.conn, w.process.sentinel)], timeout=0.2))
        for i, w in enumerate(self.workers):
            if w.job is not None and w.conn in ready:
                job, w.job = w.job, None
                result = w.answer()
                if result is not None:
                    self.unblamed = 0
                    self.on_result(result)
                    continue
                self._death(i, w, job)
            elif w.job is not None and w.process.sentinel in ready:
                job, w.job = w.job, None
                self._death(i, w, job)
            elif w.job is None and self.pending and not w.process.is_alive():
                self._death(i, w, None)

    def _death(self, i: int, worker: _Worker, job) -> None:
        summary, blamed = _after_death(job, worker, self.stopping_since is not None) if job else (None, False)
        if summary is not None:
            self.on_result(summary)
        elif job is not None and self.stopping_since is None:
            self.pending.appendleft(job)          # a retry, or a run its worker never started
        self.unblamed = 0 if blamed or summary is not None else self.unblamed + 1
        worker.close()
        if self.stopping_since is None:
            self.workers[i] = self.spawn(worker.slot)
            _ACTIVE[:] = self.workers
        if self.unblamed >= 3:                    # workers die with no run to blame: stop trying
            for left in self.pending:
                self.on_result({"run_id": left.run_id, "status": "failed", "error": "worker processes kept dying"})
            self.pending.clear()


def run_pool(jobs: Sequence[Any], on_result: Callable[[dict[str, Any]], None], execute: Callable, *,
             ctx: mp.context.BaseContext, workers: int, threads: int, gpus: int) -> None:
    """Train `jobs` with `execute(job)` in `workers` processes; `on_result` gets one summary per run
    that finished, failed for good or was interrupted.  Returns early (runs left) once STOP is set."""
    pool = _Pool(jobs, on_result, execute, ctx, workers, threads, gpus)
    _ACTIVE[:] = pool.workers
    try:
        while pool.pending or pool.busy():
            pool.step()
    finally:
        for w in pool.workers:
            w.close()
            if w.job is not None:   # left mid-run (the parent is failing, e.g. its disk is full): free the run
                ledger.release_dead(ledger.run_dir(w.job.results_dir, w.job.run_id), w.process.pid)
        _ACTIVE.clear()
