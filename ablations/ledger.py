"""The results on disk are the ledger: a run is done when its summary says it finished.

Ownership of a run is proven, not guessed.  A run directory is claimed with a lock file that names its
holder (host, pid namespace, pid, a random token) and carries a heartbeat (the file's mtime, refreshed
by a thread while the run trains).  A lock is taken over only when its holder is provably gone: a dead
pid on this machine, or, from anywhere, no heartbeat for LOCK_EXPIRY_S (a holder on another host or
container cannot be asked whether it lives).  A finished summary is never replaced by anything but a
newer finished one (`record`), so no crash, kill or late writer can turn a finished run into a failure.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Any

from . import results
from .results import DONE, ResultsError, run_dir

INTERRUPTED = "interrupted"                          # stopped by Ctrl-C/SIGTERM: not an attempt

HEARTBEAT_S = 30.0     # a holder refreshes its lock this often...
LOCK_EXPIRY_S = 300.0  # ...and a lock without a heartbeat for this long is abandoned, wherever its holder ran


def read_summary(results_dir: str | Path, run_id: str) -> dict[str, Any] | None:
    """The run's summary through the results contract (ablations/results.py), or None when it has none
    or it is damaged (a run that is not done)."""
    try:
        return results.read_summary(results_dir, run_id)
    except ResultsError:
        return None


def _finished_in(directory: Path) -> dict[str, Any] | None:
    summary = read_summary(directory.parent.parent, directory.name)
    return summary if summary is not None and summary.get("status") in DONE else None


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


def attempts(results_dir: str | Path, run_id: str) -> int:
    """Failed attempts so far; a finished result trained again (stale, damaged) starts from none."""
    summary = read_summary(results_dir, run_id)
    return 0 if summary is None or summary.get("status") in DONE else summary.get("attempt", 1)


def state(results_dir: str | Path, run_id: str, max_attempts: int, code_version: str | None = None) -> str:
    """'done', 'stale' (done, by another code version than `code_version`, when given), 'failed'
    (attempts used up), 'retry' (tried before, or damaged, attempts left) or 'pending'."""
    try:
        summary = results.check_run(results_dir, run_id)   # every file the report reads, checked
    except ResultsError:
        return "retry"
    if summary is None:
        return "pending"
    if summary.get("status") in DONE:
        return "stale" if stale(summary, code_version) else "done"
    tried = attempts(results_dir, run_id)
    if summary.get("status") == INTERRUPTED:   # an interruption never uses up an attempt
        return "retry" if tried else "pending"
    return "failed" if tried >= max_attempts else "retry"


def record(directory: Path, summary: dict[str, Any]) -> dict[str, Any]:
    """Write summary.json (validated by the results contract) unless that would replace a finished
    result with an unfinished one.  Returns the summary that is on disk afterwards."""
    if summary.get("status") not in DONE:
        on_disk = _finished_in(directory)
        if on_disk is not None:
            return on_disk
    results.write_summary(directory.parent.parent, summary)
    return summary


def record_interrupted(results_dir: str | Path, run_id: str, seed: int) -> dict[str, Any]:
    """Mark a run stopped by a signal; its attempt count stays as it was.  Best effort: on a full disk
    nothing is written and the run simply stays unfinished."""
    summary = {"run_id": run_id, "status": INTERRUPTED, "seed": seed, "attempt": attempts(results_dir, run_id),
               "error": "interrupted (Ctrl-C or SIGTERM); a re-run trains it again"}
    try:
        return record(run_dir(results_dir, run_id), summary)
    except OSError:
        return summary


def clear_partial_writes(directory: Path) -> None:
    """Delete the temp files of writes a killed process never finished (storage.write_atomic's
    `.NAME.XXXX.tmp`); only the lock holder calls it, so no live write is touched."""
    for tmp in directory.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------ locks

def _pid_namespace() -> str:
    """Processes share pids only within one pid namespace: containers on one host name differ here."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _identity() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pidns": _pid_namespace(), "pid": os.getpid()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, ValueError):
        return False
    try:   # a zombie (dead, not yet reaped: an orphan in a container whose init never reaps) holds nothing
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _owner(path: Path) -> tuple[dict[str, Any] | None, float] | None:
    """(content, heartbeat age in s) of a lock; content None when unreadable; None when there is no lock."""
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return None
    try:
        owner = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None, age
    return (owner if isinstance(owner, dict) else None), age


def _stale(owner: dict[str, Any] | None, age: float) -> bool:
    """No live process holds a lock with this content and heartbeat age."""
    if owner is None:   # written atomically, so unreadable means damaged
        return True
    if age > LOCK_EXPIRY_S:
        return True
    here = _identity()
    same_machine = owner.get("host") == here["host"] and owner.get("pidns", "") == here["pidns"]
    try:
        return same_machine and not _alive(int(owner.get("pid", -1)))
    except (TypeError, ValueError):
        return True


def describe(holder: dict[str, Any] | None) -> str:
    holder = holder or {}
    return f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}"


def release_dead(directory: Path, pid: int) -> bool:
    """Remove the run's lock if the (dead) process `pid` of this machine holds it; True when it did,
    i.e. that process died while it owned the run."""
    found = _owner(directory / ".lock")
    if not found or found[0] is None or found[0].get("pid") != pid or _alive(pid):
        return False
    here = _identity()
    if (found[0].get("host"), found[0].get("pidns", "")) != (here["host"], here["pidns"]):
        return False
    RunLock(directory)._break(found[0])
    return True


class RunLock:
    """`with RunLock(dir) as got:` -> got is False when another live process holds the run
    (then `.holder` says who).  While held, a thread refreshes the heartbeat."""

    def __init__(self, directory: Path):
        self.path = directory / ".lock"
        self.token = secrets.token_hex(8)
        self.held = False
        self.holder: dict[str, Any] | None = None
        self._stop = threading.Event()

    def __enter__(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            if self._create():
                self.held = True
                threading.Thread(target=self._beat, daemon=True, name="run-lock-heartbeat").start()
                return True
            found = _owner(self.path)
            if found is None:
                continue                  # released between our attempt and the look
            owner, age = found
            if not _stale(owner, age):
                self.holder = {**(owner or {}), "heartbeat_age_s": round(age, 1)}
                return False
            self._break(owner)
        return False

    def _create(self) -> bool:
        """Create the lock with its content in one step: write a private file, then hard-link it to
        `.lock` (atomic, and fails if the lock exists, on local filesystems and NFS alike)."""
        content = json.dumps({**_identity(), "token": self.token, "since": time.time(),
                              "heartbeat_s": HEARTBEAT_S, "expires_after_s": LOCK_EXPIRY_S})
        private = self.path.with_name(f".lock-{self.token}.new")
        private.write_text(content)
        try:
            os.link(private, self.path)
            return True
        except FileExistsError:
            return False
        except OSError:   # a filesystem without hard links: exclusive create, then write
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w") as f:
                f.write(content)
            return True
        finally:
            private.unlink(missing_ok=True)

    def _break(self, owner: dict[str, Any] | None) -> None:
        """Remove an abandoned lock.  It is first renamed aside (only one taker can succeed) and checked:
        a fresh lock that replaced the abandoned one in the meantime is put back untouched."""
        aside = self.path.with_name(f".lock-{self.token}.broken")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        try:
            taken = json.loads(aside.read_text())
        except (OSError, ValueError):
            taken = None
        if owner is not None and isinstance(taken, dict) and taken.get("token") != owner.get("token"):
            try:
                os.link(aside, self.path)   # not the one we judged abandoned: give it back
            except OSError:
                pass
        aside.unlink(missing_ok=True)

    def owned(self) -> bool:
        """Whether the lock file is still ours (it was not taken over as abandoned)."""
        found = _owner(self.path)
        return bool(found and found[0] and found[0].get("token") == self.token)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            if not self.owned():
                return
            try:
                os.utime(self.path)
            except OSError:
                pass

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self.held and self.owned():
            self.path.unlink(missing_ok=True)
        self.held = False


def wait_released(directory: Path, stop: threading.Event, poll_s: float = 1.0) -> None:
    """Block until nobody holds the run's lock (released, or abandoned), or until `stop` is set."""
    path = directory / ".lock"
    while not stop.is_set():
        found = _owner(path)
        if found is None or _stale(*found):
            return
        stop.wait(poll_s)
