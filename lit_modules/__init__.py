"""LightningModules and their building blocks: one registry per ablation axis."""
from .averaging import AVERAGING, AveragingConfig, build_averaging
from .config import ModelConfig, OptimConfig, ScheduleConfig
from .config_tools import config_hash, flat_dict, leaf_keys, override, to_dict
from .layers import ACTIVATIONS, INITIALIZERS, NORMS, build_activation, build_norm, init_layer
from .module import ImageClassifier
from .networks import NETWORKS, NORM_PLACEMENTS, build_network
from .optim import OPTIMIZERS, SCHEDULES, OptimSpec, build_optimizer, build_schedule
from .registry import ConfigError, Registry
from .transfer import TRANSFER_MODES, CheckpointError, Finetune, load_body
from .regularizers import POOLS, STOCHASTIC_DEPTH_MODES, build_pool

__all__ = [
    "ACTIVATIONS", "INITIALIZERS", "NETWORKS", "NORMS", "NORM_PLACEMENTS", "OPTIMIZERS", "SCHEDULES",
    "ConfigError", "ImageClassifier", "ModelConfig", "OptimConfig", "OptimSpec", "Registry",
    "ScheduleConfig", "build_activation", "build_network", "build_norm", "build_optimizer",
    "build_schedule", "config_hash", "flat_dict", "init_layer", "leaf_keys", "override", "to_dict",
    "POOLS", "STOCHASTIC_DEPTH_MODES", "build_pool",
]
__all__ += ["AVERAGING", "AveragingConfig", "build_averaging"]
__all__ += ["CheckpointError", "Finetune", "TRANSFER_MODES", "load_body"]
