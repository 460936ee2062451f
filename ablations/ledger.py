"""The results on disk are the ledger: a run is done when its summary says completed, diverged or
stopped_early (the opt-in search-time stop): the same config would end the same way again.

A run directory is claimed with an exclusive lock file before training, so two grids started on the
same results folder (or two Ray workers sharing a filesystem) never train the same run at once; a lock
left by a killed process on this host is taken over.
"""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from . import results
from .results import DONE, ResultsError, run_dir

__all__ = ["DONE", "run_dir", "read_summary", "finished", "stale", "state", "attempts", "RunLock", "take_over", "clear_partial_writes"]


def read_summary(results_dir: str | Path, run_id: str) -> dict[str, Any] | None:
    """The run's summary through the results contract; None when it has none or it is damaged (a
    damaged run is not done: it trains again)."""
    try:
        return results.read_summary(results_dir, run_id)
    except ResultsError:
        return None


def finished(results_dir: str | Path, run_id: str, code_version: str | None = None) -> dict[str, Any] | None:
    """The summary of a run that is done with every file intact (and, when `code_version` is given, by
    that code version); None otherwise: train it."""
    try:
        summary = results.check_run(results_dir, run_id)
    except ResultsError:
        return None
    done = summary is not None and summary.get("status") in DONE and not stale(summary, code_version)
    return summary if done else None


def stale(summary: dict[str, Any], code_version: str | None) -> bool:
    """Whether a result was trained by another code version than `code_version` (None: not asked)."""
    return code_version is not None and summary.get("code_version") != code_version


def state(results_dir: str | Path, run_id: str, max_attempts: int, code_version: str | None = None) -> str:
    """'done', 'stale' (done, by another code version than `code_version`, when given), 'failed'
    (attempts used up), 'retry' (failed or damaged, attempts left) or 'pending'."""
    try:
        summary = results.check_run(results_dir, run_id)   # every file the report reads, checked
    except ResultsError:
        return "retry"
    if summary is None:
        return "pending"
    if summary.get("status") in DONE:
        return "stale" if stale(summary, code_version) else "done"
    return "failed" if summary.get("attempt", 1) >= max_attempts else "retry"


def attempts(results_dir: str | Path, run_id: str) -> int:
    """Failed attempts so far; a finished result trained again (stale) starts from none."""
    summary = read_summary(results_dir, run_id)
    return 0 if summary is None or summary.get("status") in DONE else int(summary.get("attempt", 1))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clear_partial_writes(directory: Path) -> None:
    """Delete the temp files of writes a killed process never finished (storage.write_atomic's
    `.NAME.XXXX.tmp`); only the lock holder calls it, so no live write is touched."""
    for tmp in directory.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def take_over(directory: Path) -> bool:
    """Remove a run's lock that no live process holds and return True: whoever trained it was killed."""
    lock = RunLock(directory)
    if lock.path.exists() and lock._stale():
        lock.path.unlink(missing_ok=True)
        return True
    return False


class RunLock:
    """`with RunLock(dir) as got:` -> got is False when another live process holds the run."""

    def __init__(self, directory: Path):
        self.path = directory / ".lock"
        self.held = False

    def __enter__(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                if not self._stale():
                    return False
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump({"host": socket.gethostname(), "pid": os.getpid()}, f)
            self.held = True
            return True
        return False

    def _stale(self) -> bool:
        try:
            owner = json.loads(self.path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return True  # vanished, or killed between create and write
        return owner.get("host") == socket.gethostname() and not _alive(int(owner.get("pid", -1)))

    def __exit__(self, *exc) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
