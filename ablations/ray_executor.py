"""The `ray` executor: the runs of a plan train in a pool of long-lived Ray actors.

    python run_all.py --executor ray                         # a local Ray instance on this machine
    python run_all.py --executor ray --address HOST:6379     # an existing cluster

Each actor is started once and trains many runs through the same `execute(job)` as the local
executor, so imports and W&B's start-up are paid once per actor, and a run already done is skipped.
"""
from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
from contextlib import contextmanager
from typing import Any, Callable, Sequence

from lit_modules import ConfigError

from . import ledger
from .executors import Job, execute

try:
    import ray
except ImportError:  # an optional dependency: run_ray says how to install it before anything trains
    ray = None

_TOKEN = secrets.token_hex(32)  # one per process: Ray caches the first token it reads


class _Trainer:
    """One Ray actor: trains jobs one after another with its share of the CPU threads."""

    def __init__(self, threads: int):
        import torch

        from . import runner, tracking  # noqa: F401  imported once here, not on the first job

        torch.set_num_threads(threads)  # Ray does not limit torch's threads to the CPUs it reserved

    def execute(self, job: Job) -> dict[str, Any]:
        return execute(job)


@contextmanager
def _local_instance_settings():
    """Settings that only a Ray instance private to this process should get, undone after ray.init."""
    from ray._private import ray_constants

    # Ray turns "127.0.0.1" into the machine's reachable IP and then binds its servers to every
    # interface; only its single-machine mode (meant for macOS and Windows) keeps them on loopback.
    cluster_mode, ray_constants.ENABLE_RAY_CLUSTER = ray_constants.ENABLE_RAY_CLUSTER, False
    # Newer Rays guard a local instance with a token that they would write, world-readable, to
    # ~/.ray/auth_token; this one lives only in the environment Ray's own processes inherit.
    added = "RAY_AUTH_TOKEN" not in os.environ  # the user's own token wins
    os.environ.setdefault("RAY_AUTH_TOKEN", _TOKEN)
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = cluster_mode
        if added:
            del os.environ["RAY_AUTH_TOKEN"]


def _start_ray(address: str | None) -> str | None:
    """Connect to `address`, or start a quiet local instance; returns the temp dir to delete after."""
    # Opt out of Ray's usage statistics (sent to Anyscale) unless the user explicitly opted in.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Lightning's progress bars and warnings stay in the actors' log files.
    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address:
        ray.init(address=address, **quiet)
        return None
    # Ray's sockets live in its temp dir and a Unix socket path must fit in ~107 bytes, so the dir is
    # a short one under /tmp rather than somewhere deep in the results folder.
    temp_dir = tempfile.mkdtemp(prefix="ray-")
    try:
        with _local_instance_settings():
            # "local": a new instance even where RAY_ADDRESS is set or a `ray start` cluster runs here.
            ray.init(address="local", _temp_dir=temp_dir, _node_ip_address="127.0.0.1",
                     include_dashboard=False, **quiet)
    except BaseException:
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    return temp_dir


def run_ray(jobs: Sequence[Job], on_result: Callable[[dict[str, Any]], None], *, workers: int = 1,
            address: str | None = None) -> None:
    """Train `jobs` on Ray; each summary goes to `on_result` as soon as its run finishes.

    `workers` is the number of actors; 1 or less means as many as the cluster's CPUs hold, and never
    more than that or than there are jobs (an actor that cannot be placed would wait forever).  Each
    actor reserves cluster CPUs // workers CPUs and, on a cluster with GPUs, GPUs / workers of them:
    a fraction when several small trials share a GPU.

    Without `address` a local Ray instance is started for this call (on 127.0.0.1, no dashboard,
    its files in a temp dir that is removed afterwards) and shut down at the end.  With `address`
    the driver connects to that cluster and only disconnects at the end; the results dir must then
    be on a filesystem every node shares, because the actors write the runs there themselves, and
    `workers` should split each node's CPUs evenly: an actor too big for any node's free CPUs waits.

    An actor that dies (out of memory, killed) fails only the run it was training: that run is
    reported as failed (the ledger retries it next time), and a new actor takes its place.
    """
    if ray is None:
        raise ConfigError('the ray executor needs Ray: pip install "cs231n-ablations[ray]"')
    if not jobs:
        return  # everything is done already: no reason to start a cluster
    temp_dir = _start_ray(address)
    try:
        _train(jobs, on_result, workers)
    finally:
        ray.shutdown()  # stops a local instance; for a cluster, only disconnects this driver
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)


def _train(jobs: Sequence[Job], on_result: Callable[[dict[str, Any]], None], workers: int) -> None:
    resources = ray.cluster_resources()
    cpus, gpus = int(resources.get("CPU", 1)), resources.get("GPU", 0)
    workers = min(cpus if workers <= 1 else workers, cpus, len(jobs))
    share_gpus = gpus / workers if gpus < workers else gpus // workers  # > 1 GPU only in whole GPUs
    threads = max(1, cpus // workers)
    actor = ray.remote(num_cpus=threads, num_gpus=share_gpus)(_Trainer)

    # A small loop over ray.wait instead of ActorPool.map_unordered: the pool's iterator stops at the
    # first error and does not say which job an actor died on, and here both matter.
    pending = list(reversed(jobs))  # pop() from the end hands them out in plan order
    running: dict[Any, tuple[Any, Job]] = {}  # result ref -> (actor, job)

    def submit(trainer) -> None:
        if pending:
            job = pending.pop()
            running[trainer.execute.remote(job)] = (trainer, job)

    for _ in range(workers):
        submit(actor.remote(threads))
    while running:
        [ref], _ = ray.wait(list(running), num_returns=1)
        trainer, job = running.pop(ref)
        try:
            summary = ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            reason = " ".join(str(exc).split())  # Ray's multi-line account, on one line for the CLI
            done = ledger.read_summary(job.results_dir, job.run_id)   # it may have died just after writing
            summary = done if done and done.get("status") in ledger.DONE else \
                {"run_id": job.run_id, "status": "failed", "error": f"ray worker died: {reason}"}
            ray.kill(trainer)
            trainer = actor.remote(threads)  # a fresh actor for the rest of the grid
        except ray.exceptions.RayError as exc:  # e.g. the job could not be shipped: report it, go on
            summary = {"run_id": job.run_id, "status": "failed", "error": f"ray error: {exc}"}
        on_result(summary)
        submit(trainer)
