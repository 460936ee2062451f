"""Ctrl-C and SIGTERM for a grid: the first stops it gracefully, a second at once.

Handlers live in the grid's own process only.  Every process forked while they are installed (a
report's drawing process, a grid worker before it sets its own) starts with the handlers that were
there before, so a signal in a child never stops the grid or gets lost there.
"""
from __future__ import annotations

import os
import signal
import sys
import threading

from .pool import STOP, RunInterrupted, kill_all, pool_active


class GridSignals:
    """Ctrl-C and SIGTERM: the first stops the grid (queued runs cancelled at once, in-flight runs end
    `interrupted`, not charged); a second kills the workers and exits at once."""

    active: list["GridSignals"] = []

    def __init__(self, resume: str):
        self.resume, self.count, self.previous = resume, 0, {}

    def __enter__(self) -> "GridSignals":
        if threading.current_thread() is threading.main_thread():   # handlers live in the main thread
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self.handle)
            GridSignals.active.append(self)
        return self

    def handle(self, signum, frame) -> None:
        self.count += 1
        if self.count > 1:
            kill_all()
            print(f"\nstopped at once; resume with: {self.resume}", file=sys.stderr, flush=True)
            os._exit(130)
        STOP.set()
        if not pool_active():   # this process is training or planning: stop it where it is
            raise RunInterrupted(signal.Signals(signum).name)

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        if self in GridSignals.active:
            GridSignals.active.remove(self)

    # A forked child (a report's drawing process, a grid worker before it sets its own handlers) must
    # not run these: a signal there must not stop the grid, and a Python-level handler can lose a
    # SIGTERM that arrives while the child starts (its pending flags are reset after a fork), which
    # leaves multiprocessing.Pool.terminate() waiting forever.  So both signals are blocked across the
    # fork and the child gets the earlier handlers back before they are unblocked.
    _blocked = False

    @staticmethod
    def before_fork() -> None:
        GridSignals._blocked = bool(GridSignals.active)
        if GridSignals._blocked:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})

    @staticmethod
    def after_fork_in_parent() -> None:
        if GridSignals._blocked:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})

    @staticmethod
    def after_fork_in_child() -> None:
        for grid in GridSignals.active:
            for sig, handler in grid.previous.items():
                signal.signal(sig, handler)
        GridSignals.active.clear()
        GridSignals.after_fork_in_parent()


os.register_at_fork(before=GridSignals.before_fork, after_in_parent=GridSignals.after_fork_in_parent,
                    after_in_child=GridSignals.after_fork_in_child)
