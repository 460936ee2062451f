"""The run config: composed from the configs of the packages that own each part, plus the trainer."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from datamodules import DataConfig
from lit_modules import AveragingConfig, ConfigError, ModelConfig, OptimConfig, Registry, ScheduleConfig
from lit_modules.config_tools import check_choice, check_range, validate_fields

from .landscape import LandscapeConfig
from .procedures import PROCEDURES
from .transfer import TransferConfig, check as check_transfer

ACCELERATORS = Registry("accelerator", {n: n for n in ("auto", "cpu", "gpu", "cuda", "mps")})
# No "16-mixed": the module steps the raw optimizer (see ImageClassifier.training_step), so there is
# no GradScaler; bf16 has float32's range and needs no loss scaling.
PRECISIONS = Registry("precision", {n: n for n in ("32-true", "64-true", "bf16-mixed")})


@dataclass(frozen=True)
class TrainerConfig:
    max_epochs: int = 20
    # Where a run trains does not change what it is: runs from a laptop and a cluster share their ids.
    accelerator: str = field(default="auto", metadata={"hash": False})
    devices: int = 1                      # > 1: one run over several devices with DDP
    precision: str = "32-true"
    # Opt-in search-time early stop (lecture 6: cut a trial whose loss climbs above 3x where it started):
    # > 0 ends the run as `stopped_early` at the end of the first epoch whose mean training loss exceeds
    # this multiple of the first mini-batch's loss; 0 is off.  A non-finite loss always ends a run as
    # `diverged`, whatever this says (lit_modules/module.py).
    early_stop_factor: float = 0.0
    progress_bar: bool = field(default=False, metadata={"hash": False})
    procedure: str = "fit"                # PROCEDURES: fit, lr_find, overfit, landscape
    # Lecture 6's babysitting diagnostics (lit_modules/diagnostics.py) every this many optimizer steps,
    # plus step 0 and the end; 0 turns them off.  They never change results, so they stay out of the id.
    diagnostics_every: int = field(default=25, metadata={"hash": False})

    def __post_init__(self):
        validate_fields(self)
        check_range("max_epochs", self.max_epochs, 1)
        check_choice("accelerator", self.accelerator, ACCELERATORS)
        check_range("devices", self.devices, 1)
        check_choice("precision", self.precision, PRECISIONS)
        if self.early_stop_factor != 0 and not 1.0 < self.early_stop_factor < math.inf:   # NaN fails too
            raise ConfigError(f"early_stop_factor: {self.early_stop_factor!r} must be 0 (off) or a finite "
                              f"factor above 1 (the lecture's rule is 3)")
        check_choice("procedure", self.procedure, PROCEDURES)
        check_range("diagnostics_every", self.diagnostics_every, 0)


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    optim: OptimConfig = OptimConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    averaging: AveragingConfig = AveragingConfig()   # EMA / SWA of the weights (lit_modules.averaging)
    trainer: TrainerConfig = TrainerConfig()
    landscape: LandscapeConfig = LandscapeConfig()   # only read by trainer.procedure=landscape
    seed: int = 0
    transfer: TransferConfig = TransferConfig()   # default mode "scratch": no transfer

    def __post_init__(self):
        validate_fields(self)
        check_range("seed", self.seed, 0)
        check_transfer(self)


def baseline() -> RunConfig:
    """The baseline every study varies: a 2-hidden-layer ReLU MLP, He init, SGD+momentum, on digits."""
    return RunConfig()
