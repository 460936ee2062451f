"""The metrics a run (or the report) produces: one registry, each entry with its direction, unit,
smallest effect of interest and the procedures whose runs have it.  summary.json is validated against
it (ablations/results.py), study rules name its entries (ablations/rules.py), and the report reads
directions and smallest effects from it.  Standard library and the torch-free Registry only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from lit_modules.registry import ConfigError, Registry


@dataclass(frozen=True)
class Metric:
    """A number a run (or the report, `derived`) produces.  `smallest_effect` is the smallest difference
    that matters for verdicts unless a rule sets its own; `procedures` are those whose runs have it."""
    higher_is_better: bool | None
    unit: str
    smallest_effect: float = math.nan
    procedures: tuple[str, ...] = ("fit", "overfit")
    derived: bool = False      # computed by the report from metrics.csv, not stored in summary.json


_ACC = dict(higher_is_better=True, unit="fraction", smallest_effect=0.005)   # half a point of accuracy
_LOSS = dict(higher_is_better=False, unit="nats", smallest_effect=0.01)
_LANDSCAPE = ("landscape",)
METRICS: Registry[Metric] = Registry("metric", {
    "initial_loss": Metric(None, "nats"),
    "best_val_acc": Metric(**_ACC),
    "final_val_acc": Metric(**_ACC),
    "test_acc": Metric(**_ACC),
    "train_acc": Metric(**_ACC),
    "clean_train_acc": Metric(**_ACC),
    "test_loss": Metric(**_LOSS),
    "train_loss": Metric(**_LOSS),
    "val_loss": Metric(**_LOSS),
    "wall_time_s": Metric(False, "seconds", 0.5),
    "epochs": Metric(None, "epochs"),
    "train_examples": Metric(None, "images", procedures=("fit", "overfit", "lr_find")),
    "diverged_step": Metric(None, "steps"),
    "stopped_early_epoch": Metric(None, "epochs"),
    # Under data.label_noise: on the corrupted training examples, the share of corrupted labels the net
    # reproduces (memorization) and of true labels it recovers.
    "memorized_frac": Metric(False, "fraction", 0.01),
    "corrupted_true_acc": Metric(**_ACC),
    "corrupted_n": Metric(None, "examples"),
    # Babysitting diagnostics (lit_modules/diagnostics.py), on fit runs with diagnostics on.
    "expected_initial_loss": Metric(None, "nats"),
    "initial_act_std": Metric(None, "std", 0.01),
    "initial_saturated_frac": Metric(None, "fraction", 0.01),
    "final_saturated_frac": Metric(None, "fraction", 0.01),
    "final_dead_frac": Metric(False, "fraction", 0.01),
    "final_update_ratio": Metric(None, "ratio"),
    # Derived by the report from the learning curves (reports/verdicts.py add_convergence).
    "val_loss_auc": Metric(False, "nats x epochs", 0.05, derived=True),
    **{f"epochs_to_{f}": Metric(False, "epochs", 1.0, derived=True) for f in (90, 95, 99)},
    **{f"seconds_to_{f}": Metric(False, "seconds", 0.5, derived=True) for f in (90, 95, 99)},
    "gap": Metric(False, "fraction", 0.01, derived=True),
    # Procedure-specific (ablations/procedures.py, ablations/landscape.py).
    "lr_find_suggestion": Metric(None, "lr", procedures=("lr_find",)),
    "lr_find_points": Metric(None, "count", procedures=("lr_find",)),
    "lr_find_low_change": Metric(False, "fraction", procedures=("lr_find",)),
    "lr_find_blowup": Metric(True, "ratio", procedures=("lr_find",)),
    "lr_find_best_lr": Metric(None, "lr", procedures=("lr_find",)),
    "final_loss": Metric(False, "loss", 1e-3, procedures=_LANDSCAPE),
    "tail_loss": Metric(False, "loss", 1e-3, procedures=_LANDSCAPE),
    "distance": Metric(False, "distance", 1e-3, procedures=_LANDSCAPE),
    "shallow_progress": Metric(True, "fraction", 0.01, procedures=_LANDSCAPE),
    "overshoot": Metric(None, "fraction", 0.01, procedures=_LANDSCAPE),
    "steep_flips": Metric(None, "count", 1.0, procedures=_LANDSCAPE),
    # Censored: a run that never leaves the saddle has no escape step (+inf, never a number).
    "escape_step": Metric(False, "steps", 1.0, procedures=_LANDSCAPE),
    "steps_taken": Metric(None, "steps", procedures=_LANDSCAPE),
})
# Text and flags in summary.json that are not metrics.
LABELS = {"advice": str, "initial_loss_suspect": bool, "predictions": str, "error": str, "traceback": str,
          "device": str, "code_version": str, "versions": dict}


def check_metric(name: str, procedure: str) -> Metric:
    """The metric, if runs of `procedure` produce it; else a ConfigError naming what they produce."""
    metric = METRICS.get(name)
    if procedure not in metric.procedures:
        have = [n for n in METRICS.names() if procedure in METRICS.get(n).procedures]
        raise ConfigError(f"metric {name!r} is not produced by {procedure!r} runs; they produce: {', '.join(have)}")
    return metric


def direction(metric: str, higher_is_better: bool | None) -> bool:
    """A rule's own direction, else the metric's."""
    return METRICS.get(metric).higher_is_better if higher_is_better is None else higher_is_better


def smallest_effect(metric: str, delta: float | None) -> float:
    """A rule's own smallest effect of interest, else the metric's default."""
    return METRICS.get(metric).smallest_effect if delta is None else delta
