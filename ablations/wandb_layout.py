"""The W&B layout of a run, written down once and torch-free: ablations/tracking.py logs what it says and
reports/wandb_report.py builds its panels from it (the W&B side of the results contract).

A run's config is the nested run config plus `code_version` and `studies`: {study: {"variant": ...,
"axes": {axis: label}}}, axis being the last part of the axis name as in the run's tags (`optim.lr` ->
`lr`).  Epoch metrics are logged against `epoch`, per-step families against `optimizer_step`.
"""
from __future__ import annotations

import netrc
import os
import socket
from urllib.parse import urlparse

CONNECT_TIMEOUT_S = 5.0
DEFAULT_BASE_URL = "https://api.wandb.ai"

# --- what a run logs (ablations/tracking.py) -------------------------------------------------------
EPOCH_AXIS = "epoch"                    # finished epochs, as in metrics.csv: train/*, val/*, test/*, lr, time_s
STEP_AXIS = "optimizer_step"            # optimizer steps: the families below
STEP_FAMILIES = ("diag/", "landscape/")
EPOCH_METRICS = ("train/*", "val/*", "test/*", "lr", "time_s")
STUDIES_KEY = "studies"
CODE_VERSION_KEY = "code_version"       # also a field of summary.json


def base_url() -> str:
    return os.environ.get("WANDB_BASE_URL", DEFAULT_BASE_URL)


def has_credentials() -> bool:
    """Whether W&B would find an API key without asking: the env var, or a netrc entry for its host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(base_url()).hostname or "api.wandb.ai"
    path = os.environ.get("NETRC") or os.path.join(os.path.expanduser("~"), ".netrc")
    try:
        return netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):  # no file, unreadable or malformed: no usable key
        return False


def connect_error(url: str, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """Why a TCP connection to the server of `url` does not open within `timeout` seconds (None: it does)."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "", port), timeout=timeout):
            return None
    except OSError as exc:   # refused, no route, unknown host, or the timeout
        return f"{type(exc).__name__}: {exc}" if str(exc) else f"no connection within {timeout:.0f} s"


def axis_name(axis: str) -> str:
    """`optim.lr` -> `lr`: the name an axis has in a run's tags and in its W&B config."""
    return axis.rsplit(".", 1)[-1]


