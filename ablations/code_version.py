"""Which code trained a result: recorded in every summary.json (`code_version`) and W&B run.

The git commit of the checkout the suite runs from, with `-dirty-<hash of the diff>` when tracked files
differ from that commit (so two different uncommitted states never share a version); outside a git
checkout (an installed package) the package's version.  `run_all.py --rerun-stale` retrains the
results whose code_version is not the current one.
"""
from __future__ import annotations

import functools
import hashlib
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGE = "cs231n-ablations"
ROOT = Path(__file__).resolve().parent.parent   # the checkout (or site-packages) holding `ablations/`
GIT_TIMEOUT_S = 10


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, timeout=GIT_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):   # no git, or it hangs
        return None
    return done.stdout.decode(errors="replace") if done.returncode == 0 else None


@functools.cache
def code_version() -> str:
    """'git:<commit>[-dirty-<12 hex>]', or 'package:<version>' outside git (once per process)."""
    top = _git("rev-parse", "--show-toplevel")
    commit = _git("rev-parse", "HEAD")
    # Only a checkout of this project counts: an install inside some other repository is no commit of ours.
    if top is not None and commit and Path(top.strip()).resolve() == ROOT:
        diff = _git("diff", "HEAD", "--no-ext-diff", "--binary")
        dirty = f"-dirty-{hashlib.sha256(diff.encode()).hexdigest()[:12]}" if diff else ""
        return f"git:{commit.strip()}{dirty}"
    try:
        return f"package:{metadata.version(PACKAGE)}"
    except metadata.PackageNotFoundError:
        return "unknown"
