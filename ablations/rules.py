"""Verdict rules beyond `Better` (ablations.study): checks on one variant, and several rules at once.

Like `Better`, each is data: `to_dict()` goes into the study manifest and reports.verdicts.RULES
evaluates it from the runs table (the summaries on disk), never from live objects.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .study import check_variants

OPS = ("<", "<=", ">", ">=", "==")


@dataclass(frozen=True)
class Holds:
    """Every seed of `variant` has `metric op value` ("overfit reaches train loss < 0.05")."""
    variant: str
    metric: str
    op: str
    value: Any

    def __post_init__(self):
        if self.op not in OPS:
            raise ValueError(f"op: unknown comparison {self.op!r}; valid choices: {', '.join(OPS)}")

    def to_dict(self) -> dict[str, Any]:
        return {"rule": "holds", "variant": self.variant, "metric": self.metric, "op": self.op, "value": self.value}

    def variants(self) -> list[str]:
        return [self.variant]

    def check(self, trials) -> None:
        check_variants(self.variants(), trials)


@dataclass(frozen=True)
class LrRange:
    """The lr range test of `variant` is flat at the low end (relative loss change over its first decade
    below `flat`) and explodes at the high end (last loss above `blowup` x its minimum), every seed."""
    variant: str
    flat: float = 0.1
    blowup: float = 2.0

    def to_dict(self) -> dict[str, Any]:
        return {"rule": "lr_range", "variant": self.variant, "flat": self.flat, "blowup": self.blowup}

    def variants(self) -> list[str]:
        return [self.variant]

    def check(self, trials) -> None:
        check_variants(self.variants(), trials)


@dataclass(frozen=True)
class AllOf:
    """Supported when every rule is; contradicted when any is."""
    rules: tuple

    def to_dict(self) -> dict[str, Any]:
        return {"rule": "all", "rules": [r.to_dict() for r in self.rules]}

    def variants(self) -> list[str]:
        return [v for r in self.rules for v in r.variants()]

    def check(self, trials) -> None:
        for rule in self.rules:
            rule.check(trials)
