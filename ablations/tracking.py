"""Weights & Biases logging for the suite: one W&B run per ablation run, and never a reason to fail one.

`make_logger` builds a Lightning `WandbLogger` to pass to `runner.train(..., loggers=[...])` and `finish`
ends its W&B run afterwards.  W&B is a side channel: the results folder (config.json, metrics.csv,
summary.json) stays the record of truth, so every W&B problem becomes a warning, never a failed run.

Offline runs land in `<results_dir>/wandb/offline-run-*/` and can be uploaded later with `wandb sync`.
"""
from __future__ import annotations

import logging
import netrc
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlparse

from lightning.pytorch.loggers import WandbLogger

from lit_modules import ConfigError, Registry, flat_dict
from lit_modules.config_tools import check_choice, validate_fields

log = logging.getLogger(__name__)

MODES = Registry("wandb mode", {n: n for n in ("auto", "online", "offline", "disabled")})

# Spellings that W&B itself accepts in WANDB_MODE, mapped onto ours.
_ENV_MODES = {"online": "online", "run": "online", "offline": "offline", "dryrun": "offline",
              "disabled": "disabled"}

# Bounded so that an unreachable server costs a run seconds, not W&B's default 90 s per init.
INIT_TIMEOUT_S = 20.0
# W&B's default is to wait for every upload at finish.  The local run-<id>.wandb log still holds
# everything, so a run cut short here can be completed later with `wandb sync`.
FINISH_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Tracking:
    mode: str = "auto"          # auto: online when credentials exist, else offline
    project: str = "cs231n-ablations"

    def __post_init__(self):
        validate_fields(self)
        check_choice("mode", self.mode, MODES)


def _has_credentials() -> bool:
    """Whether W&B would find an API key without asking: the env var, or a netrc entry for its host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    path = os.environ.get("NETRC") or os.path.join(os.path.expanduser("~"), ".netrc")
    try:
        return netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):  # no file, unreadable or malformed: no usable key
        return False


def resolve_mode(mode: str) -> str:
    """The mode to run W&B in: 'auto' becomes WANDB_MODE if set, else 'online' with credentials, else 'offline'.

    Explicit modes are taken as given, whatever WANDB_MODE says: a caller that asks for offline
    must get a local record, not a silently disabled run.
    """
    check_choice("tracking.mode", mode, MODES)
    if mode != "auto":
        return mode
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    if env:
        if env not in _ENV_MODES:
            raise ConfigError(f"WANDB_MODE: unknown value {env!r}; valid choices: {', '.join(_ENV_MODES)}")
        return _ENV_MODES[env]
    return "online" if _has_credentials() else "offline"


def _settings(mode: str) -> Any:
    import wandb

    # Quiet (a grid prints one line per run, not W&B's banners) and lean: no console capture, code,
    # git, requirements, metadata or system-stats sampling.  The config says what a run is; these
    # extras cost time on every init and would be the same for every run of a grid.  Measured offline
    # (2 cores): about 0.11 s per run with W&B's defaults, 0.02 s with these; requirements.txt (a scan
    # of every installed package) is most of the difference.
    return wandb.Settings(
        mode=mode, silent=True, console="off", save_code=False, disable_code=True, disable_git=True,
        x_disable_stats=True, x_disable_meta=True, x_disable_machine_info=True, x_save_requirements=False,
        init_timeout=INIT_TIMEOUT_S, finish_timeout=FINISH_TIMEOUT_S,
    )


class SafeWandbLogger(WandbLogger):
    """A WandbLogger whose failures are warnings: a broken W&B connection must not fail the training run."""

    _warned = False

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        # Lightning always passes anonymous=None to wandb.init, and this wandb (0.31) prints a
        # deprecation warning for any value, None included, before silent=True applies.
        if self._wandb_init.get("anonymous") is None:
            self._wandb_init.pop("anonymous", None)

    def _failed(self, what: str, exc: Exception) -> None:
        if not self._warned:  # once per run: a dead connection would otherwise warn every epoch
            self._warned = True
            log.warning("W&B %s failed (%s: %s); the run goes on, W&B may miss data", what, type(exc).__name__, exc)

    def log_metrics(self, metrics, step=None) -> None:
        try:
            super().log_metrics(metrics, step)
        except Exception as exc:
            self._failed("log_metrics", exc)

    def log_hyperparams(self, params) -> None:
        try:
            super().log_hyperparams(params)
        except Exception as exc:
            self._failed("log_hyperparams", exc)

    def after_save_checkpoint(self, checkpoint_callback) -> None:
        try:
            super().after_save_checkpoint(checkpoint_callback)
        except Exception as exc:
            self._failed("after_save_checkpoint", exc)

    def finalize(self, status: str) -> None:
        try:
            super().finalize(status)
        except Exception as exc:
            self._failed("finalize", exc)


def make_logger(tracking: Tracking, save_dir: str | Path, run_id: str, cfg: Any, *, group: str, name: str,
                tags: Sequence[str]) -> SafeWandbLogger | None:
    """A Lightning WandbLogger for one run, or None when disabled or when W&B cannot start (never raises).

    `run_id` becomes the W&B id with resume="allow": training the same config again continues the
    same W&B run instead of adding a duplicate.  The W&B config is exactly `flat_dict(cfg)`.
    """
    mode = resolve_mode(tracking.mode)
    if mode == "disabled":
        return None
    if mode == "online" and not _has_credentials():
        # Without a key W&B would prompt for one (and wait) on a terminal, or raise on a cluster.
        log.warning("W&B online mode asked for but no API key found; use mode='offline' and `wandb sync`")
        return None
    try:
        import wandb  # here, not at the top: disabled runs should not pay its ~1 s import

        if wandb.run is not None:
            # WandbLogger would silently reuse a run left open and mix two runs' metrics into it.
            log.warning("W&B run %s was still open; finishing it before run %s", wandb.run.id, run_id)
            wandb.finish()
        # W&B falls back to a temp dir when `dir` does not exist; the offline run must land here.
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        logger = SafeWandbLogger(
            project=tracking.project, group=group, name=name, tags=[t[:64] for t in tags if t],  # W&B limit
            id=run_id, resume="allow", save_dir=str(save_dir), config=flat_dict(cfg), settings=_settings(mode),
        )
        logger.experiment  # noqa: B018 -- start W&B now, so a failure shows here and not mid-training
        return logger
    except Exception as exc:
        log.warning("W&B could not start (%s: %s); run %s continues without W&B", type(exc).__name__, exc, run_id)
        return None


def finish(logger: Any) -> None:
    """End the W&B run of this logger, so the next run in this process starts its own.  Never raises.

    wandb-core closes run-<id>.wandb a few ms after this returns (and at the latest when the process
    exits); a reader in the same process must wait for its final `exit` record.
    """
    run = getattr(logger, "_experiment", None)  # the attribute, not .experiment: that would start a run
    if run is None:
        return
    try:
        run.finish()
    except Exception as exc:
        log.warning("W&B finish failed (%s: %s); the local run-*.wandb file keeps the data", type(exc).__name__, exc)
