"""Statistics over seeds: bootstrap intervals, paired differences, time to a threshold, verdicts.

All functions are pure (arrays in, numbers out) and seeded, so a report rebuilt from the same runs
prints the same intervals.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

N_BOOT = 2000


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    n: int

    def excludes_zero(self) -> bool:
        return self.n > 1 and (self.low > 0 or self.high < 0)


def bootstrap_ci(values: Sequence[float], level: float = 0.95, seed: int = 0) -> Interval:
    """Percentile bootstrap of the mean; NaNs (diverged runs) are dropped, n counts what is left."""
    x = np.asarray([math.nan if v is None else v for v in values], dtype=float)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    if x.size == 1:
        return Interval(float(x[0]), float(x[0]), float(x[0]), 1)
    means = x[_resamples(x.size, seed)].mean(axis=1)
    tail = (1 - level) / 2 * 100
    return Interval(float(x.mean()), float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail)),
                    int(x.size))


@functools.lru_cache(maxsize=64)
def _resamples(n: int, seed: int) -> np.ndarray:
    """The bootstrap's index draws depend only on n and the seed: drawn once per report, not per variant."""
    return np.random.default_rng(seed).integers(0, n, size=(N_BOOT, n))


def paired_difference(variant: dict[int, float], baseline: dict[int, float], level: float = 0.95) -> Interval:
    """Mean per-seed difference variant - baseline: runs with the same seed share init and data order,
    so pairing removes the seed-to-seed spread both share."""
    seeds = sorted(s for s in set(variant) & set(baseline) if not (_missing(variant[s]) or _missing(baseline[s])))
    return bootstrap_ci([variant[s] - baseline[s] for s in seeds], level)


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def time_to_threshold(times: Sequence[float], values: Sequence[float], threshold: float) -> float:
    """First time (epoch or seconds) at which `values` reaches `threshold`; NaN if it never does."""
    for t, v in zip(times, values):
        if v is not None and not math.isnan(v) and v >= threshold:
            return float(t)
    return math.nan


def area_under_curve(epochs: Sequence[float], values: Sequence[float]) -> float:
    """Trapezoidal area under a per-epoch curve (lower val-loss area = faster convergence)."""
    e, v = np.asarray(epochs, dtype=float), np.asarray(values, dtype=float)
    if e.size < 2 or np.isnan(v).any():
        return math.nan
    return float(np.sum((v[1:] + v[:-1]) / 2 * np.diff(e)))


def verdict(diff: Interval, expect_positive: bool = True) -> str:
    """'supported' when the paired interval excludes zero on the claimed side, 'contradicted' when it
    excludes zero on the other side, else 'inconclusive at this scale'."""
    if not diff.excludes_zero():
        return "inconclusive at this scale"
    return "supported" if (diff.low > 0) == expect_positive else "contradicted"
