"""Weights & Biases logging for the suite: one W&B run per ablation run, and never a reason to fail one.

`make_logger` starts the W&B run and wraps it in a Lightning `WandbLogger` to pass to
`runner.train(..., loggers=[...])`; `finish(logger, summary)` writes the run's summary and outcome and
ends it.  W&B is a side channel: the results folder (config.json, metrics.csv, summary.json) stays
the record of truth, so every W&B problem becomes a warning, never a failed run.

What a run looks like in W&B (the layout reports/wandb_report.py reads):
  - config: the nested run config, `code_version`, and `studies` {study: {variant, axes}};
  - name `<variant> seed=<seed>`, group: the study (or every study, for a shared run), a tag per
    study and per axis label, plus `diverged` / `failed` once it ends that way;
  - epoch metrics (train/*, val/*, test/*, lr, time_s) against `epoch` (finished epochs, as in
    metrics.csv), per-step metrics (diag/*, landscape/*) against `optimizer_step`;
  - summary: every field of summary.json (status, initial loss, best/final val and test accuracy,
    diagnostics, code_version, ...) but the traceback; a failed run exits with code 1 (state failed).

Online without a reachable server, the first run to find out creates the grid's fallback file, says
so once, and every later run of the grid (any worker) goes straight to offline mode: offline runs
land in `<results_dir>/wandb/offline-run-*/`, to upload later with `wandb sync`.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from lightning.pytorch.loggers import WandbLogger

from lit_modules import ConfigError, Registry, to_dict
from lit_modules.config_tools import check_choice, validate_fields

from .code_version import code_version
from .ledger import DONE
from .wandb_layout import (CODE_VERSION_KEY, CONNECT_TIMEOUT_S, EPOCH_AXIS, EPOCH_METRICS, STEP_AXIS, STEP_FAMILIES,
                           STUDIES_KEY, base_url, connect_error, has_credentials)

log = logging.getLogger(__name__)

MODES = Registry("wandb mode", {n: n for n in ("auto", "online", "offline", "disabled")})

# Spellings that W&B itself accepts in WANDB_MODE, mapped onto ours.
_ENV_MODES = {"online": "online", "run": "online", "offline": "offline", "dryrun": "offline",
              "disabled": "disabled"}

# Bounded so that a server that accepts connections but never answers costs seconds, not W&B's 90 s.
INIT_TIMEOUT_S = 20.0
# W&B's default is to wait for every upload at finish.  The local run-<id>.wandb log still holds
# everything, so a run cut short here can be completed later with `wandb sync`.
FINISH_TIMEOUT_S = 60.0
MAX_GROUP, MAX_TAG = 128, 64   # W&B's limits
SOURCE_GROUP = "transfer source"


@dataclass(frozen=True)
class Tracking:
    mode: str = "auto"          # auto: online when credentials exist, else offline
    project: str = "cs231n-ablations"
    # Created by the first run that cannot reach the server: every run of the grid that sees it logs
    # offline.  One per grid (run_all names it), so a later grid tries the network again.
    fallback_file: str = ""

    def __post_init__(self):
        validate_fields(self)
        check_choice("mode", self.mode, MODES)


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
    return "online" if has_credentials() else "offline"


def _settings(mode: str, alongside: bool) -> Any:
    import wandb

    # Quiet (a grid prints one line per run, not W&B's banners) and lean: no console capture, code,
    # git, requirements, metadata or system-stats sampling.  The config says what a run is (with
    # code_version); these extras cost time on every init and would be the same for every run of a
    # grid.  Measured offline (2 cores): about 0.11 s per run with W&B's defaults, 0.02 s with these.
    # `alongside`: a second run while one is open (a transfer source inside its target's run).
    return wandb.Settings(
        mode=mode, silent=True, console="off", save_code=False, disable_code=True, disable_git=True,
        x_disable_stats=True, x_disable_meta=True, x_disable_machine_info=True, x_save_requirements=False,
        init_timeout=INIT_TIMEOUT_S, finish_timeout=FINISH_TIMEOUT_S,
        reinit="create_new" if alongside else "return_previous",
    )


def _fall_back(tracking: Tracking, why: str) -> None:
    """Switch the grid to offline; the run that creates the fallback file says so (once per grid)."""
    if not tracking.fallback_file:
        log.warning("W&B server %s: %s; this run logs offline (upload later with `wandb sync`)", base_url(), why)
        return
    path = Path(tracking.fallback_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "x") as f:
            f.write(f"{base_url()}: {why}\n")
    except FileExistsError:
        return
    log.warning("W&B server %s: %s; every further run of this grid logs offline to %s "
                "(upload later with `wandb sync %s/offline-run-*`)", base_url(), why, path.parent, path.parent)


def _online_or_offline(tracking: Tracking) -> str:
    if tracking.fallback_file and Path(tracking.fallback_file).exists():
        return "offline"
    if (why := connect_error(base_url(), CONNECT_TIMEOUT_S)) is not None:
        _fall_back(tracking, why)
        return "offline"
    return "online"


class SafeWandbLogger(WandbLogger):
    """A WandbLogger over a started W&B run whose failures are warnings (a broken W&B connection must not
    fail the training run), and which puts each metric family on its own step axis."""

    _warned = False

    def __init__(self, run: Any, tracking: Tracking, save_dir: str):
        # Given the run, Lightning neither starts one nor declares its own trainer/global_step axis.
        super().__init__(experiment=run, id=run.id, project=tracking.project, save_dir=save_dir)
        self.tracking = tracking
        self._epochs = 0   # finished epochs logged so far: the `epoch` of epoch metrics

    def _failed(self, what: str, exc: Exception) -> None:
        if not self._warned:  # once per run: a dead connection would otherwise warn every epoch
            self._warned = True
            log.warning("W&B %s failed (%s: %s); the run goes on, W&B may miss data", what, type(exc).__name__, exc)

    def log_metrics(self, metrics, step=None) -> None:
        """Per-step families are logged at `step` (the optimizer step), the rest at the finished
        epochs: a dict with train/ metrics is the end of an epoch; test/ metrics come after the last."""
        try:
            per_step = {k: v for k, v in metrics.items() if k.startswith(STEP_FAMILIES)}
            # Lightning adds its own `epoch` (the 0-based epoch in progress): replaced by finished epochs.
            per_epoch = {k: v for k, v in metrics.items() if k not in per_step and k != "epoch"}
            if per_step:
                self.experiment.log({**per_step, **({STEP_AXIS: step} if step is not None else {})})
            if per_epoch:
                self._epochs += any(k.startswith("train/") for k in per_epoch)
                self.experiment.log({**per_epoch, EPOCH_AXIS: self._epochs})
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


def _start(tracking: Tracking, mode: str, save_dir: str, run_id: str, cfg: Any, *, group: str, name: str,
           tags: Sequence[str], studies: Mapping[str, Any], alongside: bool) -> Any:
    import wandb  # here, not at the top: disabled runs should not pay its ~1 s import

    config = {**to_dict(cfg), CODE_VERSION_KEY: code_version(), STUDIES_KEY: dict(studies)}
    if len(group) > MAX_GROUP:
        group = f"shared by {group.count('+') + 1} studies"
    run = wandb.init(project=tracking.project, group=group, name=f"{name} seed={cfg.seed}",
                     tags=[t[:MAX_TAG] for t in tags if t], id=run_id, resume="allow", dir=save_dir, config=config,
                     job_type=cfg.trainer.procedure, settings=_settings(mode, alongside))
    run.define_metric(EPOCH_AXIS)
    run.define_metric(STEP_AXIS)
    for pattern in EPOCH_METRICS:
        run.define_metric(pattern, step_metric=EPOCH_AXIS)
    for family in STEP_FAMILIES:
        run.define_metric(f"{family}*", step_metric=STEP_AXIS)
    return run


def make_logger(tracking: Tracking, save_dir: str | Path, run_id: str, cfg: Any, *, group: str, name: str,
                tags: Sequence[str], studies: Mapping[str, Any] | None = None,
                alongside: bool = False) -> SafeWandbLogger | None:
    """A Lightning WandbLogger for one run, or None when disabled or when W&B cannot start (never raises).

    `run_id` becomes the W&B id with resume="allow": training the same config again continues the
    same W&B run instead of adding a duplicate.  `alongside`: another W&B run of this process stays open.
    """
    mode = resolve_mode(tracking.mode)
    if mode == "disabled":
        return None
    if mode == "online" and not has_credentials():
        # Without a key W&B would prompt for one (and wait) on a terminal, or raise on a cluster.
        log.warning("W&B online mode asked for but no API key found; use mode='offline' and `wandb sync`")
        return None
    try:
        import wandb

        if not alongside and wandb.run is not None:
            # A run left open would be returned by wandb.init and mix two runs' metrics.
            log.warning("W&B run %s was still open; finishing it before run %s", wandb.run.id, run_id)
            wandb.finish()
        # W&B falls back to a temp dir when `dir` does not exist; the offline run must land here.
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        if mode == "online":
            mode = _online_or_offline(tracking)
        start = dict(group=group, name=name, tags=tags, studies=studies or {}, alongside=alongside)
        try:
            run = _start(tracking, mode, str(save_dir), run_id, cfg, **start)
        except Exception as exc:
            if mode != "online" or alongside:   # teardown below would end the open run too
                raise
            # Reachable but no W&B (a proxy, a refused key, a timeout): the run is kept offline.
            _fall_back(tracking, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            wandb.teardown()   # the service still holds the half-started run's id
            run = _start(tracking, "offline", str(save_dir), run_id, cfg, **start)
        return SafeWandbLogger(run, tracking, str(save_dir))
    except Exception as exc:
        log.warning("W&B could not start (%s: %s); run %s continues without W&B", type(exc).__name__, exc, run_id)
        return None


def source_logger(loggers: Sequence[Any], run_id: str, cfg: Any) -> SafeWandbLogger | None:
    """A W&B run for a transfer source trained inside a target's run, with the target's settings."""
    target = next((lg for lg in loggers if isinstance(lg, SafeWandbLogger)), None)
    if target is None:
        return None
    return make_logger(target.tracking, target.save_dir, run_id, cfg, group=SOURCE_GROUP, name=SOURCE_GROUP,
                       tags=["transfer-source"], alongside=True)


def finish(logger: Any, summary: Mapping[str, Any] | None = None) -> None:
    """Record the run's summary and outcome, then end its W&B run, so the next run in this process
    starts its own.  Never raises.

    wandb-core closes run-<id>.wandb a few ms after this returns (and at the latest when the process
    exits); a reader in the same process must wait for its final `exit` record.
    """
    run = getattr(logger, "_experiment", None)  # the attribute, not .experiment: that would start a run
    if run is None:
        return
    exit_code = 0
    try:
        if summary is not None:
            run.summary.update({k: v for k, v in summary.items() if k != "traceback"})
            status = summary.get("status")
            if isinstance(status, str) and status != "completed":   # diverged, failed: seen in the runs table
                run.tags = (*run.tags, status)
            exit_code = 0 if status in DONE else 1
    except Exception as exc:
        log.warning("W&B summary failed (%s: %s); summary.json has it", type(exc).__name__, exc)
    try:
        run.finish(exit_code=exit_code)
    except Exception as exc:
        log.warning("W&B finish failed (%s: %s); the local run-*.wandb file keeps the data", type(exc).__name__, exc)
