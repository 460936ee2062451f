"""Study definitions and the engine that trains them: `run_one` trains one run from dotted overrides."""
from .config import RunConfig, TrainerConfig, baseline
from .runner import resolve, run_id, run_one, train

__all__ = ["RunConfig", "TrainerConfig", "baseline", "resolve", "run_id", "run_one", "train"]
