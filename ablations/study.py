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

from lit_modules.registry import ConfigError, Registry

# Rules live in ablations.rules (torch-free, shared with the report); study files may import them here.
from .rules import AllOf, BestOf, Better, EnsembleGain, Holds, Interaction, LrRange  # noqa: F401


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
    verdict: Any = None             # a rule of ablations.rules: how the runs answer the claim
    # The variant every other one is compared with in the report's vs_control column: the baseline of a
    # one-axis study; grids and searches name a cell.  None: no such column (no meaningful control).
    control: str | None = None
    tuned: tuple[str, ...] = ()     # keys being tuned: the report warns when the best sits at a range edge
    then: Callable[[Any], "Study"] | None = None            # this stage's runs table -> the next stage
    previous: str = ""             # the stage this one was derived from (set by ablations.stages)

    @property
    def control_variant(self) -> str | None:
        return self.control if self.control is not None else ("baseline" if self.mode == "one_at_a_time" else None)

    def trials(self, seeds: int | None = None, more: Mapping[str, int] | None = None) -> list[Trial]:
        """Every (variant, seed) of the study; study-level settings first, then the axis values.
        `more` raises the seed count of some variants (run_all --until-decided adds seeds there only)."""
        expand = EXPANSIONS.get(self.mode)
        n = self.seeds if seeds is None or self.fixed_seeds else seeds
        out = []
        for order, (variant, labels, overrides) in enumerate(expand(self)):
            for seed in range(max(n, (more or {}).get(variant, 0))):
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
