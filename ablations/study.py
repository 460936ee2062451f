"""A study: one lecture claim, a baseline, the axes that vary, the seeds; expanded into trials.

Axis values come in three forms:
    {"model.activation": ["relu", "tanh"]}                          # values of one config key
    {"optim": {"sgd": OptimConfig("sgd", lr=0.1), ...}}             # labels -> values (here whole sub-configs)
    {"optimizer": {"adam": Bundle({"optim.name": "adam", "optim.lr": 1e-3})}}   # labels -> several keys
and, for random search, distributions: {"optim.lr": LogUniform(1e-4, 1.0)}.
How axes combine is the study's `mode`, an entry of the EXPANSIONS registry.
"""
from __future__ import annotations

import hashlib
import itertools
import math
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from lit_modules import ConfigError, Registry


class Bundle(dict):
    """Several dotted overrides that travel together under one axis label."""


@dataclass(frozen=True)
class LogUniform:
    low: float
    high: float

    def sample(self, rng: random.Random) -> float:
        return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))


@dataclass(frozen=True)
class Uniform:
    low: float
    high: float

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)


@dataclass(frozen=True)
class Choice:
    options: tuple

    def sample(self, rng: random.Random) -> Any:
        return rng.choice(self.options)


@dataclass(frozen=True)
class Better:
    """Verdict rule: `variant` beats every variant in `than` on `metric`, by the paired per-seed
    difference whose 95% bootstrap interval excludes zero.  Evaluated by reports.verdicts."""
    variant: str
    than: tuple[str, ...]
    metric: str = "final_val_acc"   # or best_val_acc, test_acc, val_loss_auc, epochs_to_95
    higher_is_better: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"rule": "better", "variant": self.variant, "than": list(self.than), "metric": self.metric,
                "higher_is_better": self.higher_is_better}

    def variants(self) -> list[str]:
        return [self.variant, *self.than]


@dataclass(frozen=True)
class AllOf:
    """Verdict rule for a claim with several parts: supported when every part is, contradicted when any
    part is.  Each part may use its own metric (a diagnostic such as initial_act_std included)."""
    parts: tuple[Better, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"rule": "all", "parts": [p.to_dict() for p in self.parts]}

    def variants(self) -> list[str]:
        return list(dict.fromkeys(v for p in self.parts for v in p.variants()))


@dataclass(frozen=True)
class Trial:
    """One configuration of a study at one seed; `axes` maps axis name -> label (for tags and reports)."""
    study: str
    variant: str
    axes: Mapping[str, str]
    overrides: Mapping[str, Any]
    seed: int


@dataclass(frozen=True)
class Study:
    name: str
    claim: str
    axes: Mapping[str, Any]
    base: Mapping[str, Any] = field(default_factory=dict)   # overrides shared by every run of the study
    mode: str = "one_at_a_time"                             # EXPANSIONS registry
    seeds: int = 3
    samples: int = 0                                        # trials drawn in mode "random"
    question: str = ""                                      # the study file's docstring
    verdict: Better | AllOf | None = None                   # the rule that turns runs into a verdict

    def trials(self, seeds: int | None = None) -> list[Trial]:
        """Every (variant, seed) of the study; study-level settings first, then the axis values."""
        expand = EXPANSIONS.get(self.mode)
        out = []
        for variant, labels, overrides in expand(self):
            for seed in range(self.seeds if seeds is None else seeds):
                out.append(Trial(self.name, variant, labels, {**self.base, **overrides}, seed))
        return out


def _label(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (tuple, list)):
        return "x".join(_label(v) for v in value)
    return str(value)


def _options(axis: str, values: Any) -> list[tuple[str, dict[str, Any]]]:
    """[(label, overrides)] for one axis, whatever form its values take."""
    if isinstance(values, Mapping):
        pairs = list(values.items())
    elif isinstance(values, Sequence) and not isinstance(values, str):
        pairs = [(_label(v), v) for v in values]
    else:
        raise ConfigError(f"axis {axis!r}: expected a list or a mapping of label -> value, got {values!r}")
    return [(str(label), dict(v) if isinstance(v, Bundle) else {axis: v}) for label, v in pairs]


def _short(axis: str) -> str:
    return axis.rsplit(".", 1)[-1]


Expansion = Callable[[Study], list[tuple[str, dict[str, str], dict[str, Any]]]]
EXPANSIONS: Registry[Expansion] = Registry("expansion mode")


@EXPANSIONS.register("one_at_a_time")
def one_at_a_time(study: Study):
    """The baseline, then each axis varied alone (the lecture's controlled comparisons)."""
    variants = [("baseline", {}, {})]
    for axis, values in study.axes.items():
        for label, overrides in _options(axis, values):
            variants.append((f"{_short(axis)}={label}", {axis: label}, overrides))
    return variants


@EXPANSIONS.register("grid")
def grid(study: Study):
    """Every combination of the axes (interactions: batch norm x learning rate, init x activation)."""
    axes = [[(axis, label, o) for label, o in _options(axis, values)] for axis, values in study.axes.items()]
    variants = []
    for combo in itertools.product(*axes):
        name = ",".join(f"{_short(axis)}={label}" for axis, label, _ in combo)
        overrides = {k: v for _, _, o in combo for k, v in o.items()}
        variants.append((name, {axis: label for axis, label, _ in combo}, overrides))
    return variants


@EXPANSIONS.register("random")
def random_search(study: Study):
    """`samples` draws from the axes' distributions (Bergstra & Bengio), seeded by the study name."""
    if study.samples < 1:
        raise ConfigError(f"study {study.name!r}: mode 'random' needs samples >= 1, got {study.samples}")
    rng = random.Random(int(hashlib.sha256(study.name.encode()).hexdigest()[:8], 16))
    variants = []
    for _ in range(study.samples):
        drawn = {axis: (dist.sample(rng) if hasattr(dist, "sample") else rng.choice(list(dist)))
                 for axis, dist in study.axes.items()}
        labels = {axis: _label(v) for axis, v in drawn.items()}
        name = ",".join(f"{_short(axis)}={label}" for axis, label in labels.items())
        variants.append((name, labels, drawn))
    return variants
