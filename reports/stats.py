"""Statistics over seeds: Student-t intervals, paired comparisons with four outcomes, Holm, power.

Why t and not the bootstrap: with 3-10 seeds a percentile bootstrap of the mean is about [min, max] of
the seeds and covers ~75% at n=3 (0.84 at n=5, 0.91 at n=10), not the 95% it is labelled with; the
t-interval holds its level for normal-ish per-seed values at any n (tests/test_stats.py simulates
the coverage of every interval printed here).  Where a pair has no number on one side (a diverged run,
a saddle never escaped) the comparison falls back to an exact sign test over seeds.

All functions are pure (numbers in, numbers out), so a report rebuilt from the same runs is the same.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
from scipy import stats

ALPHA = 0.05
POWER = 0.8
MAX_SEEDS_SEARCHED = 1000

SUPPORTED, CONTRADICTED, NO_DIFFERENCE, UNDECIDED = ("supported", "contradicted", "no practical difference",
                                                     "undecided")
OUTCOMES = (SUPPORTED, CONTRADICTED, NO_DIFFERENCE, UNDECIDED)


@dataclass(frozen=True)
class Interval:
    """Mean and a Student-t interval at `level`; low/high are NaN when n < 2 or every value is equal
    (the spread cannot be estimated, and a zero-width interval would claim certainty)."""
    mean: float
    low: float
    high: float
    n: int
    level: float = 1 - ALPHA
    sd: float = math.nan

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0   # False when NaN

    def text(self, digits: int = 3) -> str:
        """[low, high] to `digits` significant digits; n/a with the reason when there is none."""
        if math.isnan(self.low):
            return "n/a (n < 2)" if self.n < 2 else f"n/a (all {self.n} equal)"
        return f"[{self.low:+.{digits}g}, {self.high:+.{digits}g}]"


def finite(values: Sequence[float | None]) -> np.ndarray:
    x = np.asarray([math.nan if v is None else v for v in values], dtype=float)
    return x[np.isfinite(x)]


def t_interval(values: Sequence[float | None], level: float = 1 - ALPHA) -> Interval:
    """Student-t interval of the mean; missing and non-finite values are dropped (n counts the rest)."""
    x = finite(values)
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, level)
    mean = float(x.mean())
    sd = float(x.std(ddof=1)) if n > 1 else math.nan
    if n < 2 or not sd > 1e-12 * max(1.0, abs(mean)):    # all equal, up to rounding
        return Interval(mean, math.nan, math.nan, n, level, sd)
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, level, sd)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error control for several comparisons)."""
    p = np.asarray(pvalues, dtype=float)
    order = np.argsort(p, kind="stable")
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


@dataclass(frozen=True)
class Comparison:
    """One claimed difference, per seed.  `diffs` are signed so that positive favours the claim; `test` is
    "paired t" or "sign test" (used when some pair has no number on one side)."""
    label: str
    metric: str
    delta: float                       # smallest effect of interest, in the metric's unit
    diffs: tuple[float, ...]           # claim-direction differences (sign test: +1 win, -1 loss, 0 tie)
    pairs: tuple[str, ...]             # per-seed values as text, for the verdict line
    test: str
    estimate: float
    interval: Interval
    p: float                           # two-sided: is there a difference?
    p_equivalence: float               # is the difference inside +-delta? (interval inside the band)
    p_adjusted: float = math.nan       # Holm over the rule's family
    p_equivalence_adjusted: float = math.nan
    outcome: str = UNDECIDED
    seeds_needed: int | None = None    # for an undecided outcome: the power calculation's answer
    unit: str = "seeds"                # what the pairs are (seeds; test examples for ensembles)
    variants: tuple[str, ...] = ()     # the variants whose runs it compares (more seeds go to these)

    @property
    def n(self) -> int:
        return len(self.diffs)


def paired_t(label: str, metric: str, delta: float, diffs: Sequence[float], pairs: Sequence[str],
             level: float = 1 - ALPHA, unit: str = "seeds") -> Comparison:
    """Paired t-test of the claim-direction differences against 0, and its equivalence counterpart: the
    `level` interval lying inside +-delta (two one-sided tests, each at (1 - level) / 2)."""
    d = np.asarray(diffs, dtype=float)
    interval = t_interval(d, level)
    n, sd = interval.n, interval.sd
    if not math.isnan(interval.low):
        se = sd / math.sqrt(n)
        t0 = interval.mean / se
        p = float(2 * stats.t.sf(abs(t0), n - 1))
        p_low = stats.t.sf((interval.mean + delta) / se, n - 1)     # H0: mean <= -delta
        p_high = stats.t.cdf((interval.mean - delta) / se, n - 1)   # H0: mean >= +delta
        p_eq = float(min(1.0, 2 * max(p_low, p_high)))
    else:   # no spread to test with: never a decision
        p, p_eq = 1.0, 1.0
    return Comparison(label, metric, delta, tuple(map(float, d)), tuple(pairs), "paired t", interval.mean,
                      interval, p, p_eq, unit=unit)


def sign_test(label: str, metric: str, delta: float, signs: Sequence[int], pairs: Sequence[str],
              level: float = 1 - ALPHA) -> Comparison:
    """Exact two-sided binomial test of wins against losses (ties dropped); it has no interval, and it
    can never show equivalence.  3 wins of 3 give p = 0.25: agreement of a few seeds is no evidence."""
    wins, losses = sum(s > 0 for s in signs), sum(s < 0 for s in signs)
    p = float(stats.binomtest(wins, wins + losses, 0.5).pvalue) if wins + losses else 1.0
    nan = math.nan
    estimate = (wins - losses) / len(signs) if signs else nan
    return Comparison(label, metric, delta, tuple(float(s) for s in signs), tuple(pairs), "sign test", estimate,
                      Interval(estimate, nan, nan, len(signs), level), p, 1.0)


def exact(label: str, metric: str, delta: float, difference: float, n: int, pairs: Sequence[str]) -> Comparison:
    """A comparison whose runs do not vary with the seed (every seed gave the same value on each side:
    a deterministic toy problem, say): the difference is measured without sampling error, so it is
    decided by the smallest effect alone.  `difference` is +-inf where one side has no number."""
    big = abs(difference) >= delta
    return Comparison(label, metric, delta, (difference,) * n, tuple(pairs), "exact", difference,
                      Interval(difference, difference, difference, n), 0.0 if big else 1.0, 1.0 if big else 0.0)


def decide(comparisons: Sequence[Comparison], alpha: float = ALPHA) -> list[Comparison]:
    """Holm over the family, then one of four outcomes per comparison, and for undecided ones the
    number of seeds a power calculation says would decide it (at the Holm-worst level alpha / m)."""
    if not comparisons:
        return []
    p_adj = holm([c.p for c in comparisons])
    eq_adj = holm([c.p_equivalence for c in comparisons])
    out = []
    for c, p, q in zip(comparisons, p_adj, eq_adj):
        if p < alpha:
            outcome = SUPPORTED if c.estimate > 0 else CONTRADICTED
        elif q < alpha:
            outcome = NO_DIFFERENCE
        else:
            outcome = UNDECIDED
        needed = seeds_needed(c, alpha / len(comparisons)) if outcome == UNDECIDED and c.unit == "seeds" else None
        out.append(replace(c, p_adjusted=p, p_equivalence_adjusted=q, outcome=outcome, seeds_needed=needed))
    return out


def seeds_needed(c: Comparison, alpha: float, power: float = POWER) -> int | None:
    """Smallest n at which the test would decide with probability `power`, if the observed mean and
    spread are the truth: a difference at least delta is to be shown significant, a smaller one
    equivalent (two one-sided tests against the nearer bound).  None when it cannot be computed."""
    if c.test == "exact":
        return None
    if c.test == "sign test":
        wins, losses = sum(d > 0 for d in c.diffs), sum(d < 0 for d in c.diffs)
        if wins == losses:
            return None
        # the seeds at which unanimous agreement would be significant: 2 * 0.5**n < alpha
        return max(c.n + 1, math.floor(math.log2(2 / alpha)) + 1)
    sd, mean = c.interval.sd, abs(c.estimate)
    if not (sd > 0 and math.isfinite(sd)):
        return None
    for n in range(max(c.n, 2), MAX_SEEDS_SEARCHED + 1):
        df = n - 1
        if mean >= c.delta:
            crit = stats.t.ppf(1 - alpha / 2, df)
            achieved = stats.nct.sf(crit, df, mean * math.sqrt(n) / sd)
        else:
            crit = stats.t.ppf(1 - alpha / 4, df)   # each one-sided test at alpha / 4 (see paired_t)
            achieved = stats.nct.sf(crit, df, (c.delta - mean) * math.sqrt(n) / sd)
        if achieved >= power:
            return n
    return None


def combine(outcomes: Sequence[str]) -> str:
    """Several comparisons of one claim: contradicted if any is; supported if all are; no practical
    difference if any claimed effect is absent (and none contradicts); else undecided."""
    if not outcomes:
        return UNDECIDED
    if CONTRADICTED in outcomes:
        return CONTRADICTED
    if all(o == SUPPORTED for o in outcomes):
        return SUPPORTED
    return NO_DIFFERENCE if NO_DIFFERENCE in outcomes else UNDECIDED


def describe(c: Comparison, m: int) -> str:
    """The verdict line of one comparison: per-seed values, estimate, interval, test, n, p."""
    if c.test == "exact":
        diff = (f"difference {c.estimate:+.4g}" if math.isfinite(c.estimate) else
                f"only the {'first' if c.estimate > 0 else 'second'} has a {c.metric}")
        test = (f"{diff} on every one of n={c.n} seeds (the runs do not vary with the seed: an exact "
                f"comparison against +-{c.delta:g}, no test")
    elif c.test == "sign test":
        wins, losses = sum(d > 0 for d in c.diffs), sum(d < 0 for d in c.diffs)
        test = (f"{wins} wins, {losses} losses, {c.n - wins - losses} ties (some runs have no {c.metric}: "
                f"exact sign test over n={c.n} seeds, p={c.p:.3g}")
    else:
        level = f"{c.interval.level * 100:.4g}%"
        test = (f"mean difference {c.estimate:+.4g}, {level} CI {c.interval.text(4)} (paired t-test over "
                f"n={c.n} seeds, p={c.p:.3g}; inside +-{c.delta:g}: p={c.p_equivalence:.3g}")
    if m > 1 and c.test != "exact":
        test += f"; Holm over {m} comparisons: p={c.p_adjusted:.3g}"
    needed = f"; about {c.seeds_needed} seeds would decide it" if c.seeds_needed else ""
    per = "per seed " if c.unit == "seeds" else ""
    return f"[{c.outcome}] {c.label}: {c.metric} {per}{', '.join(c.pairs)}; {test}){needed}"


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
