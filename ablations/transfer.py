"""Transfer learning on the run side: the `transfer` config section and where pretrained bodies come from.

The in-suite source model is the target's own recipe (network, optimizer, preprocessing) trained on
`transfer.source_data` / `transfer.source_classes`, so every field that decides the source is part of
the target's config and thus of its run id.  It is trained on demand by the first target run that
needs it, as an ordinary run (`runs/<source id>/` keeps its metrics), under that run's lock so two
workers never both train it, and cached as a plain state_dict in `<results>/checkpoints/<source id>.pt`
(written atomically).  Every later target run, in any process, loads the file.

`imagenet_resnet18` loads torchvision's ImageNet weights from the torch hub cache, never downloading;
without the file, `with_available_source` falls back to the in-suite source and says so.
"""
from __future__ import annotations

import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import lightning as L
import torch

from datamodules import DATASETS
from lit_modules import TRANSFER_MODES, CheckpointError, ConfigError, Finetune, Registry, load_body, override
from lit_modules.config_tools import check_choice, check_range, validate_fields

from .ledger import RunLock, read_summary, run_dir

if TYPE_CHECKING:
    from .config import RunConfig

# Frozen parts of a pretrained body are in eval mode on purpose (lit_modules.transfer.Finetune).
warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode at the start of training")


@dataclass(frozen=True)
class SourceSpec:
    checkpoint: Callable[[RunConfig, Path, Sequence], Path]  # (target config, results dir, its loggers) -> weights
    check: Callable[[RunConfig], None]              # config-time checks: the body must fit the weights
    prefix: str                                     # key prefix of the body's weights in the file
    ignore: tuple[str, ...]                         # keys of the source's own classifier
    missing: Callable[[], str | None] = lambda: None  # why the weights cannot be had here (None: they can)
    fallback: str | None = None                     # the source used instead when they cannot


SOURCES: Registry[SourceSpec] = Registry("transfer source")


@dataclass(frozen=True)
class TransferConfig:
    mode: str = "scratch"                 # TRANSFER_MODES; scratch (the default) is a normal run
    source: str = "suite"                 # SOURCES: where the pretrained body comes from
    source_data: str | None = None        # dataset of the in-suite source (None: the target's)
    source_classes: tuple[int, ...] | None = None   # its classes (None: all of them)
    source_epochs: int = 20
    source_seed: int = 0                  # one source model serves every seed of the target
    top_layers: int = 1                   # finetune_top: how many of the body's weight layers train
    body_lr_scale: float = 0.1            # finetune_all: the pretrained body trains at this x optim.lr

    def __post_init__(self):
        validate_fields(self)
        check_choice("mode", self.mode, TRANSFER_MODES)
        check_choice("source", self.source, SOURCES)
        if self.source_data is not None:
            check_choice("source_data", self.source_data, DATASETS)
        check_range("source_epochs", self.source_epochs, 1)
        check_range("source_seed", self.source_seed, 0)
        check_range("top_layers", self.top_layers, 1)
        check_range("body_lr_scale", self.body_lr_scale, 0.0, 1.0, low_open=True)


def check(cfg: RunConfig) -> None:
    """Cross-section checks of a run config with transfer (called by RunConfig.__post_init__)."""
    if TRANSFER_MODES.get(cfg.transfer.mode).pretrained:
        SOURCES.get(cfg.transfer.source).check(cfg)


def source_config(cfg: RunConfig) -> RunConfig:
    """The in-suite source run: the target's recipe on the source data, all of it, trained from scratch."""
    t = cfg.transfer
    try:
        return override(cfg, {"data.name": t.source_data or cfg.data.name, "data.classes": t.source_classes,
                              "data.train_size": None, "transfer": TransferConfig(),
                              "trainer.max_epochs": t.source_epochs, "trainer.devices": 1,
                              "trainer.procedure": "fit", "seed": t.source_seed})
    except ConfigError as e:
        raise ConfigError(f"transfer (the source model's config): {e}") from None


def with_available_source(cfg: RunConfig) -> RunConfig:
    """`cfg`, or `cfg` with the source's fallback when its weights are not on this machine (with a warning,
    so the run's config and id say which source it really used)."""
    t = cfg.transfer
    spec = SOURCES.get(t.source)
    if not TRANSFER_MODES.get(t.mode).pretrained or (reason := spec.missing()) is None:
        return cfg
    warnings.warn(f"transfer.source={t.source!r}: {reason}; using transfer.source={spec.fallback!r} instead",
                  stacklevel=2)
    return override(cfg, {"transfer.source": spec.fallback})


def pretrained_weights(cfg: RunConfig, results_dir: str | Path, loggers: Sequence[Any] = ()) -> Path | None:
    """The checkpoint the target starts from (the source is trained here if needed, logged to W&B
    beside the target when `loggers`, the target's, have a W&B run), or None."""
    if not TRANSFER_MODES.get(cfg.transfer.mode).pretrained:
        return None
    return SOURCES.get(cfg.transfer.source).checkpoint(cfg, Path(results_dir), loggers)


def attach(cfg: RunConfig, module, weights: Path | None) -> list[L.Callback]:
    """Load the pretrained body into `module` (errors name the file) and return the freezing callback."""
    if weights is None:
        return []
    spec = SOURCES.get(cfg.transfer.source)
    load_body(module.net, weights, spec.prefix, spec.ignore)
    return [Finetune(cfg.transfer.mode, cfg.transfer.top_layers, cfg.transfer.body_lr_scale)]


# ---------------------------------------------------------------- the in-suite source

class _SaveWeights(L.Callback):
    """Writes the trained network's state_dict when fit ends without diverging (temp file, then rename)."""

    def __init__(self, path: Path):
        self.path = path

    def on_fit_end(self, trainer, module) -> None:
        if module.diverged:
            return
        state = {k: v.detach().cpu() for k, v in module.net.state_dict().items()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            torch.save(state, tmp)
            os.replace(tmp, self.path)
        finally:
            Path(tmp).unlink(missing_ok=True)


def _suite_checkpoint(cfg: RunConfig, results_dir: Path, loggers: Sequence[Any] = ()) -> Path:
    from .runner import run_id, train  # the runner imports this module through the run config
    from .tracking import finish, source_logger

    source = source_config(cfg)
    sid = run_id(source)
    path = results_dir / "checkpoints" / f"{sid}.pt"
    while not path.is_file():
        with RunLock(run_dir(results_dir, sid)) as got:
            if got and not path.is_file():
                # A diverged source is a finished outcome (the same config diverges again): not retrained.
                summary = read_summary(results_dir, sid) or {}
                if summary.get("status") != "diverged":
                    logger, trained = source_logger(loggers, sid, source), None
                    try:
                        trained = summary = train(source, results_dir, loggers=[logger] if logger else [],
                                                  callbacks=[_SaveWeights(path)], extra={"role": "transfer source"})
                    finally:
                        finish(logger, trained)
                if not path.is_file():
                    why = summary.get("error") or summary.get("status")
                    raise CheckpointError(f"the source model {sid} has no weights ({why}); "
                                          f"see {run_dir(results_dir, sid)}")
        if not got:
            time.sleep(0.5)  # another worker is training it: wait for its file (or its lock to go stale)
    return path


def _suite_check(cfg: RunConfig) -> None:
    source = source_config(cfg)
    have, want = DATASETS.get(source.data.name).in_shape, DATASETS.get(cfg.data.name).in_shape
    if have != want:
        raise ConfigError(f"transfer.source_data: {source.data.name!r} images are {have} but "
                          f"{cfg.data.name!r} images are {want}; one body cannot take both")


SOURCES.add("suite", SourceSpec(_suite_checkpoint, _suite_check, prefix="body.", ignore=("head.",)))


# ---------------------------------------------------------------- torchvision's ImageNet ResNet-18

def _imagenet_path() -> Path:
    from torchvision.models import ResNet18_Weights
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(ResNet18_Weights.IMAGENET1K_V1.url).name


def _imagenet_missing() -> str | None:
    path = _imagenet_path()
    return None if path.is_file() else (
        f"torchvision's ImageNet ResNet-18 weights are not in the torch hub cache ({path}); to get them, "
        "on a machine with internet: python -c \"import torchvision; "
        "torchvision.models.resnet18(weights='IMAGENET1K_V1')\"")


def _imagenet_checkpoint(cfg: RunConfig, results_dir: Path, loggers: Sequence[Any] = ()) -> Path:
    if (reason := _imagenet_missing()) is not None:
        raise CheckpointError(reason)   # never downloads: a run must not wait on the network
    return _imagenet_path()


def _imagenet_check(cfg: RunConfig) -> None:
    channels = DATASETS.get(cfg.data.name).in_shape[0]
    if cfg.model.network != "tv_resnet18" or channels != 3:
        raise ConfigError(f"transfer.source='imagenet_resnet18' needs model.network='tv_resnet18' and colour "
                          f"images; got model.network={cfg.model.network!r} on {cfg.data.name!r} "
                          f"({channels} channel(s))")


SOURCES.add("imagenet_resnet18", SourceSpec(_imagenet_checkpoint, _imagenet_check, prefix="", ignore=("fc.",),
                                            missing=_imagenet_missing, fallback="suite"))
