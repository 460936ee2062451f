"""Verdict rules: how a study's runs answer its claim.  Each rule is data.

A study file writes its rule next to its claim (`verdict=Better(...)`); `to_dict` is the one
serialization (stored in the study's manifest); `from_dict` reads it back; `check` runs when the grid
is planned, so a rule naming a variant the study lacks, or a metric its runs will not produce, fails
before anything trains.  reports.verdicts evaluates the stored dicts from the results folder alone.

Every comparison carries `delta`, the smallest difference that matters (None: the metric's default in
ablations.results.METRICS); reports.stats turns it into one of four outcomes.  No torch here.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from lit_modules.registry import ConfigError, Registry

from .results import check_metric

OPS = ("<", "<=", ">", ">=", "==")


def check_variants(variants: Sequence[str], trials: Sequence[Any]) -> None:
    """A verdict rule may only name variants the study has."""
    names = list(dict.fromkeys(t.variant for t in trials))
    for variant in variants:
        if variant not in names:
            raise ConfigError(f"verdict names unknown variant {variant!r}; valid choices: {', '.join(names)}")


def _check_metric(metric: str, variants: Sequence[str], procedure_of: Mapping[str, str],
                  higher_is_better: bool | None = False) -> None:
    try:
        for variant in variants:
            m = check_metric(metric, procedure_of.get(variant, "fit"))
            if higher_is_better is None and m.higher_is_better is None:
                raise ConfigError(f"metric {metric!r} has no better direction; the rule must set higher_is_better")
    except ConfigError as e:
        raise ConfigError(f"verdict: {e}") from None


class _Rule:
    """Serialization shared by every rule: {"rule": kind, **fields}, tuples as lists."""
    rule = ""

    def to_dict(self) -> dict[str, Any]:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {"rule": self.rule, **{k: (list(v) if isinstance(v, tuple) else v) for k, v in fields.items()}}

    def variants(self) -> list[str]:
        return [self.variant]


@dataclass(frozen=True)
class Better(_Rule):
    """`variant` beats every variant in `than` on `metric` (paired by seed; Holm over the `than`s)."""
    variant: str
    than: tuple[str, ...]
    metric: str = "final_val_acc"
    higher_is_better: bool | None = None      # None: the metric's own direction
    delta: float | None = None
    rule = "better"

    def variants(self) -> list[str]:
        return [self.variant, *self.than]

    def check(self, trials, procedure_of: Mapping[str, str]) -> None:
        check_variants(self.variants(), trials)
        _check_metric(self.metric, self.variants(), procedure_of, self.higher_is_better)


@dataclass(frozen=True)
class BestOf(_Rule):
    """Per seed, the trial whose `select` metric (val) is best among those with `axis` == `group` against
    the same among `than` (random vs grid search, one budget); compared on `metric`, held-out test data,
    so the verdict does not report on the data that chose."""
    axis: str
    group: str
    than: str
    metric: str = "test_acc"
    select: str = "final_val_acc"
    higher_is_better: bool | None = None
    delta: float | None = None
    rule = "best_of"

    def variants(self) -> list[str]:
        return []

    def check(self, trials, procedure_of: Mapping[str, str]) -> None:
        labels = sorted({t.axes[self.axis] for t in trials if self.axis in t.axes})
        for label in (self.group, self.than):
            if label not in labels:
                raise ConfigError(f"verdict names unknown {self.axis!r} value {label!r}; "
                                  f"valid choices: {', '.join(labels) or '(no such axis)'}")
        names = list(dict.fromkeys(t.variant for t in trials))
        _check_metric(self.metric, names, procedure_of, self.higher_is_better)
        _check_metric(self.select, names, procedure_of, None)


@dataclass(frozen=True)
class Interaction(_Rule):
    """Going from `control` to `variant` gains more on `metric` than going from `other_control` to
    `other_variant` ("decay helps SGD more than Adam"): per seed the difference of the differences."""
    variant: str
    control: str
    other_variant: str
    other_control: str
    metric: str = "final_val_acc"
    higher_is_better: bool | None = None
    delta: float | None = None
    rule = "interaction"

    def variants(self) -> list[str]:
        return [self.variant, self.control, self.other_variant, self.other_control]

    def check(self, trials, procedure_of: Mapping[str, str]) -> None:
        check_variants(self.variants(), trials)
        _check_metric(self.metric, self.variants(), procedure_of, self.higher_is_better)


@dataclass(frozen=True)
class EnsembleGain(_Rule):
    """Averaging the softmax of `variant`'s models ("independent": its seeds; "snapshot": the per-cycle
    snapshots of each run) beats the single model on `split` (paired over that split's examples)."""
    variant: str
    kind: str = "independent"
    split: str = "test"
    delta: float = 0.005
    rule = "ensemble_gain"

    def check(self, trials, procedure_of: Mapping[str, str]) -> None:
        check_variants(self.variants(), trials)
        if self.kind not in ("independent", "snapshot") or self.split not in ("val", "test"):
            raise ConfigError(f"verdict: ensemble kind {self.kind!r} / split {self.split!r}; valid choices: "
                              "independent, snapshot / val, test")


@dataclass(frozen=True)
class Holds(_Rule):
    """A check on each run, not a test: every seed of `variant` has `metric op value` ("the overfit run
    reaches train loss < 0.05").  Contradicted by any finished seed where it fails."""
    variant: str
    metric: str
    op: str
    value: Any
    rule = "holds"

    def __post_init__(self):
        if self.op not in OPS:
            raise ConfigError(f"op: unknown comparison {self.op!r}; valid choices: {', '.join(OPS)}")

    def check(self, trials, procedure_of: Mapping[str, str]) -> None:
        check_variants(self.variants(), trials)
        if self.metric not in ("advice",):   # text labels are checked by value, not as metrics
            _check_metric(self.metric, self.variants(), procedure_of)


@dataclass(frozen=True)
class LrRange(_Rule):
    """The lr range test of `variant` is flat at the low end (relative loss change over its first decade
    below `flat`) and explodes at the high end (last loss above `blowup` x its minimum), every seed."""
    variant: str
    flat: float = 0.1
    blowup: float = 2.0
    rule = "lr_range"

    def check(self, trials, procedure_of: Mapping[str, str]) -> None:
        check_variants(self.variants(), trials)
        for metric in ("lr_find_low_change", "lr_find_blowup"):
            _check_metric(metric, self.variants(), procedure_of)


@dataclass(frozen=True)
class AllOf(_Rule):
    """Several parts of one claim: supported when every part is, contradicted when any is."""
    rules: tuple
    rule = "all"

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "rules": [r.to_dict() for r in self.rules]}

    def variants(self) -> list[str]:
        return [v for r in self.rules for v in r.variants()]

    def check(self, trials, procedure_of: Mapping[str, str]) -> None:
        for rule in self.rules:
            rule.check(trials, procedure_of)


RULES: Registry[type] = Registry("verdict rule", {cls.rule: cls for cls in
                                                 (Better, BestOf, Interaction, EnsembleGain, Holds, LrRange, AllOf)})


def from_dict(d: Mapping[str, Any]) -> _Rule:
    """The rule a manifest stores, back as an object (inverse of to_dict)."""
    cls = RULES.get(d.get("rule"))
    fields = {k: v for k, v in d.items() if k != "rule"}
    if cls is AllOf:
        return AllOf(tuple(from_dict(r) for r in fields["rules"]))
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(fields) - names
    if unknown:
        raise ConfigError(f"verdict rule {d.get('rule')!r}: unknown fields {sorted(unknown)}; valid: {sorted(names)}")
    return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in fields.items()})
