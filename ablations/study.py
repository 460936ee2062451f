"""A study: one lecture claim, a baseline, the axes that vary, the seeds; expanded into trials.

Axis values come in three forms:
    {"model.activation": ["relu", "tanh"]}                          # values of one config key
    {"optim": {"sgd": OptimConfig("sgd", lr=0.1), ...}}             # labels -> values (here whole sub-configs)
    {"optimizer": {"adam": Bundle({"optim.name": "adam", "optim.lr": 1e-3})}}   # labels -> several keys
and, for random search, distributions: {"optim.lr": LogUniform(1e-4, 1.0)}.
How axes combine is the study's `mode`, an entry of the EXPANSIONS registry.

A study may run in stages: `then` maps the finished runs of this stage (ablations.stages.stage_table)
to the next stage's Study, e.g. a narrower search around the best value found so far.
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

    def grid(self, n: int) -> list[float]:
        """n log-spaced points, both ends included."""
        step = (math.log(self.high) - math.log(self.low)) / (n - 1)
        return [math.exp(math.log(self.low) + i * step) for i in range(n)]


@dataclass(frozen=True)
class Uniform:
    low: float
    high: float

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)

    def grid(self, n: int) -> list[float]:
        return [self.low + i * (self.high - self.low) / (n - 1) for i in range(n)]


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

    def check(self, trials: Sequence["Trial"]) -> None:
        check_variants(self.variants(), trials)


def check_variants(variants: Sequence[str], trials: Sequence["Trial"]) -> None:
    """A verdict rule may only name variants the study has (checked when the grid is planned)."""
    names = list(dict.fromkeys(t.variant for t in trials))
    for variant in variants:
        if variant not in names:
            raise ConfigError(f"verdict names unknown variant {variant!r}; valid choices: {', '.join(names)}")


@dataclass(frozen=True)
class BestOf:
    """Verdict rule: per seed, the best `metric` over the trials whose `axis` is `group` is at least the
    best over those whose `axis` is `than` (random vs grid search with the same budget).  Evaluated by
    reports.verdicts: supported when the paired 95% interval of that difference lies at or above zero."""
    axis: str
    group: str
    than: str
    metric: str = "final_val_acc"
    higher_is_better: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"rule": "best_of", "axis": self.axis, "group": self.group, "than": self.than,
                "metric": self.metric, "higher_is_better": self.higher_is_better}

    def check(self, trials: Sequence["Trial"]) -> None:
        labels = sorted({t.axes[self.axis] for t in trials if self.axis in t.axes})
        for label in (self.group, self.than):
            if label not in labels:
                raise ConfigError(f"verdict names unknown {self.axis!r} value {label!r}; "
                                  f"valid choices: {', '.join(labels) or '(no such axis)'}")


@dataclass(frozen=True)
class EnsembleGain:
    """Verdict rule: averaging the softmax of `variant`'s models (`kind` "independent": its seeds;
    "snapshot": the per-cycle snapshots of each run) beats the single model on `split`, with a 95%
    bootstrap interval over examples above zero.  Evaluated by reports.ensembles."""
    variant: str
    kind: str = "independent"
    split: str = "test"

    def to_dict(self) -> dict[str, Any]:
        return {"rule": "ensemble_gain", "variant": self.variant, "kind": self.kind, "split": self.split}

    def variants(self) -> list[str]:
        return [self.variant]

    def check(self, trials: Sequence["Trial"]) -> None:
        check_variants(self.variants(), trials)


@dataclass(frozen=True)
class Interaction:
    """Verdict rule: going from `control` to `variant` gains more on `metric` than going from
    `other_control` to `other_variant` ("decay helps SGD more than Adam").  Per seed the difference of
    the two differences; supported when its 95% bootstrap interval lies above zero."""
    variant: str
    control: str
    other_variant: str
    other_control: str
    metric: str = "final_val_acc"
    higher_is_better: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"rule": "interaction", "variant": self.variant, "control": self.control,
                "other_variant": self.other_variant, "other_control": self.other_control, "metric": self.metric,
                "higher_is_better": self.higher_is_better}

    def variants(self) -> list[str]:
        return [self.variant, self.control, self.other_variant, self.other_control]

    def check(self, trials: Sequence["Trial"]) -> None:
        check_variants(self.variants(), trials)


@dataclass(frozen=True)
class Trial:
    """One configuration of a study at one seed; `axes` maps axis name -> label (for tags and reports)."""
    study: str
    variant: str
    axes: Mapping[str, str]
    overrides: Mapping[str, Any]
    seed: int
    order: int = 0        # the variant's position in the study (trial order for best-so-far curves)


@dataclass(frozen=True)
class Study:
    name: str
    claim: str
    axes: Mapping[str, Any]
    base: Mapping[str, Any] = field(default_factory=dict)   # overrides shared by every run of the study
    mode: str = "one_at_a_time"                             # EXPANSIONS registry
    seeds: int = 3
    fixed_seeds: bool = False       # the seed count is part of the design (a search budget): --seeds leaves it
    samples: int = 0                                        # trials in modes "random", "grid_vs_random"
    question: str = ""                                      # the study file's docstring
    verdict: Any = None   # Better, BestOf, EnsembleGain, Interaction or ablations.rules (AllOf, Holds, LrRange): the rule that turns runs into a verdict
    tuned: tuple[str, ...] = ()     # keys being tuned: the report warns when the best sits at a range edge
    then: Callable[[Any], "Study"] | None = None            # this stage's runs table -> the next stage
    previous: str = ""             # the stage this one was derived from (set by ablations.stages)

    def trials(self, seeds: int | None = None) -> list[Trial]:
        """Every (variant, seed) of the study; study-level settings first, then the axis values."""
        expand = EXPANSIONS.get(self.mode)
        out = []
        for order, (variant, labels, overrides) in enumerate(expand(self)):
            for seed in range(self.seeds if seeds is None or self.fixed_seeds else seeds):
                out.append(Trial(self.name, variant, labels, {**self.base, **overrides}, seed, order))
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
    rng = _rng(study.name)
    variants = []
    for _ in range(study.samples):
        drawn = {axis: (dist.sample(rng) if hasattr(dist, "sample") else rng.choice(list(dist)))
                 for axis, dist in study.axes.items()}
        labels = {axis: _label(v) for axis, v in drawn.items()}
        name = ",".join(f"{_short(axis)}={label}" for axis, label in labels.items())
        variants.append((name, labels, drawn))
    return variants


def _rng(name: str) -> random.Random:
    return random.Random(int(hashlib.sha256(name.encode()).hexdigest()[:8], 16))


@EXPANSIONS.register("grid_vs_random")
def grid_vs_random(study: Study):
    """The same budget spent two ways over the same ranges (Bergstra & Bengio): a full grid of
    samples ** (1 / axes) points per axis (log-spaced for LogUniform, ends included), and `samples`
    random draws.  Axis "search" labels each trial "grid" or "random"."""
    n = len(study.axes)
    points = round(study.samples ** (1 / n)) if n else 0
    if n == 0 or points < 2 or points ** n != study.samples:
        raise ConfigError(f"study {study.name!r}: mode 'grid_vs_random' needs samples = points ** axes with "
                          f"points >= 2 (e.g. 16 for 2 axes), got samples={study.samples} for {n} axes")
    for axis, dist in study.axes.items():
        if not (hasattr(dist, "grid") and hasattr(dist, "sample")):
            raise ConfigError(f"axis {axis!r}: mode 'grid_vs_random' needs LogUniform or Uniform, got {dist!r}")
    rng = _rng(study.name)
    grid_points = [dict(zip(study.axes, combo))
                   for combo in itertools.product(*(d.grid(points) for d in study.axes.values()))]
    # Visit the grid in a random order: a row-major sweep would make its best-so-far curve depend
    # on which axis happens to come first.
    rng.shuffle(grid_points)
    draws = [{axis: dist.sample(rng) for axis, dist in study.axes.items()} for _ in range(study.samples)]
    variants = []
    for kind, chosen in (("grid", grid_points), ("random", draws)):
        for values in chosen:
            labels = {axis: _label(v) for axis, v in values.items()}
            name = f"{kind}:" + ",".join(f"{_short(axis)}={label}" for axis, label in labels.items())
            variants.append((name, {"search": kind, **labels}, values))
    return variants
