"""Verdict rules, stored as data in each study's manifest and evaluated on the runs table.

A rule's `rule` field names its entry here.  Every comparison is paired by seed (same initialization
and data order), and a claim is `supported` only when every paired 95% interval excludes zero on the
claimed side, `contradicted` when any excludes zero on the other side, else `inconclusive at this
scale`.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import pandas as pd

from lit_modules import Registry

from .stats import paired_difference, time_to_threshold

RULES: Registry[Callable[[dict[str, Any], pd.DataFrame], tuple[str, str]]] = Registry("verdict rule")


@RULES.register("better")
def better(rule: dict[str, Any], runs: pd.DataFrame) -> tuple[str, str]:
    metric, sign = rule["metric"], 1.0 if rule["higher_is_better"] else -1.0
    if metric not in runs:   # e.g. a diagnostic metric of runs trained with diagnostics off
        return "inconclusive at this scale", f"no run has {metric}"
    values = {v: dict(zip(part.seed, part[metric])) for v, part in runs.groupby("variant")}
    if rule["variant"] not in values:
        return "inconclusive at this scale", f"no runs of {rule['variant']}"
    outcomes, lines = [], []
    for other in rule["than"]:
        if other not in values:
            outcomes.append("inconclusive at this scale")
            lines.append(f"no runs of {other}")
            continue
        # A diverged run has no metric; it loses to any run that finished.
        mine = {s: v if not _nan(v) else -sign * math.inf for s, v in values[rule["variant"]].items()}
        theirs = {s: v if not _nan(v) else -sign * math.inf for s, v in values[other].items()}
        diffs = {s: sign * (mine[s] - theirs[s]) for s in set(mine) & set(theirs)}
        finite = {s: (d if math.isfinite(d) else math.copysign(1.0, d)) for s, d in diffs.items()}
        interval = paired_difference(finite, {s: 0.0 for s in finite})
        if interval.excludes_zero():
            outcomes.append("supported" if interval.low > 0 else "contradicted")
        else:
            outcomes.append("inconclusive at this scale")
        lines.append(f"{rule['variant']} vs {other}: {metric} advantage {interval.mean:+.4f} "
                     f"[{interval.low:+.4f}, {interval.high:+.4f}] over {interval.n} seeds")
    if "contradicted" in outcomes:
        verdict = "contradicted"
    elif all(o == "supported" for o in outcomes):
        verdict = "supported"
    else:
        verdict = "inconclusive at this scale"
    return verdict, "; ".join(lines)


@RULES.register("all")
def all_of(rule: dict[str, Any], runs: pd.DataFrame) -> tuple[str, str]:
    """Several claims at once (ablations.study.AllOf): each part is judged alone, then combined."""
    results = [evaluate(part, runs) for part in rule["parts"]]
    outcomes = [verdict for verdict, _ in results]
    if "contradicted" in outcomes:
        verdict = "contradicted"
    elif all(o == "supported" for o in outcomes):
        verdict = "supported"
    else:
        verdict = "inconclusive at this scale"
    return verdict, " | ".join(f"{v}: {why}" for v, why in results)


def _nan(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def evaluate(rule: dict[str, Any] | None, runs: pd.DataFrame) -> tuple[str, str]:
    if not rule:
        return "no rule", ""
    return RULES.get(rule["rule"])(rule, runs)


def add_convergence(runs: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Per run: area under the val-loss curve, and epochs and seconds to 90/95/99% of its study's best
    val accuracy (NaN when never reached)."""
    wide = history.pivot_table(index=["run_id", "epoch"], columns="metric", values="value").reset_index()
    per_run = {rid: g.sort_values("epoch") for rid, g in wide.groupby("run_id")}
    best = runs.groupby("study").best_val_acc.max()
    out = runs.copy()
    auc, reach = [], {f: ([], []) for f in (90, 95, 99)}
    for _, row in runs.iterrows():
        curve = per_run.get(row.run_id)
        ok = curve is not None and "val/loss" in curve and row.status == "completed"
        e = curve.epoch.to_numpy(float) if ok else np.array([])
        vl = curve["val/loss"].to_numpy(float) if ok else np.array([])
        auc.append(float(np.sum((vl[1:] + vl[:-1]) / 2 * np.diff(e))) if len(e) > 1 else math.nan)
        for f, (epochs, seconds) in reach.items():
            target = f / 100 * best.get(row.study, math.nan)
            epochs.append(time_to_threshold(e, curve["val/acc"], target) if ok else math.nan)
            seconds.append(time_to_threshold(curve["time_s"], curve["val/acc"], target) if ok else math.nan)
    out["val_loss_auc"] = auc
    for f, (epochs, seconds) in reach.items():
        out[f"epochs_to_{f}"], out[f"seconds_to_{f}"] = epochs, seconds
    return out
