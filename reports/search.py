"""Hyperparameter search in the report: best-so-far curves, tuning curves, edge-of-range warnings.

Reads only the tidy runs table and the study manifest: the manifest's `mode` says whether the study
compares grid and random search, and `tuned` lists the config keys being tuned.
"""
from __future__ import annotations

import math
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .figures import FIGURES
from .plotting import PAGE_WIDTH_IN, StudyData, mean_ci, percent_axis


def best_so_far(values: Sequence[float]) -> list[float]:
    """Running maximum in trial order; a missing value (a diverged run) never raises it, and the curve
    is NaN until the first finite value."""
    out, best = [], -math.inf
    for v in values:
        if v is not None and not math.isnan(v):
            best = max(best, v)
        out.append(best if math.isfinite(best) else math.nan)
    return out


def _groups(part: pd.DataFrame, tuned: Sequence[str]) -> list[str]:
    """Config columns that vary within the study besides the tuned keys and the seed (e.g. the optimizer
    in a per-optimizer learning-rate sweep): each combination is searched separately."""
    skip = {f"config.{k}" for k in tuned} | {"config.seed"}
    cols = [c for c in part.columns if c.startswith("config.") and c not in skip]
    return [c for c in cols if part[c].astype(str).nunique() > 1]


def edge_warnings(runs: pd.DataFrame, tuned: Sequence[str], metric: str = "final_val_acc") -> list[str]:
    """A warning per tuned key whose best value (mean metric over seeds; diverged runs count as worst)
    is the smallest or largest value tried: the optimum may lie outside the searched range."""
    keys = [k for k in tuned if f"config.{k}" in runs]
    if runs.empty or not keys:
        return []
    cols = [f"config.{k}" for k in keys]
    groups = _groups(runs, keys)
    warnings = []
    for group, part in (runs.groupby([runs[c].astype(str) for c in groups], sort=False) if groups
                        else [((), runs)]):
        score = part.assign(_score=part[metric].fillna(-math.inf)).groupby(cols, sort=False)._score.mean()
        if not part[metric].notna().any() or score.empty:   # nothing finished (or no config read): no best
            continue
        best = dict(zip(keys, score.idxmax() if len(keys) > 1 else (score.idxmax(),)))
        where = ", ".join(f"{c[len('config.'):]}={v}" for c, v in zip(groups, np.atleast_1d(group)))
        for key, col in zip(keys, cols):
            tried = part[col].astype(float)
            if tried.nunique() < 2:
                continue
            low, high = tried.min(), tried.max()
            side = "smallest" if best[key] == low else "largest" if best[key] == high else None
            if side:
                warnings.append(f"{where + ': ' if where else ''}best {key}={best[key]:.3g} is the {side} value "
                                f"tried (range {low:.3g} to {high:.3g}); the optimum may lie outside: widen it.")
    return warnings


def _best_so_far_figure(d: StudyData) -> plt.Figure | None:
    """Best val accuracy so far against the number of trials, grid vs random (mean and CI over seeds)."""
    part = d.members
    if d.manifest.get("mode") != "grid_vs_random" or "axis.search" not in part or part.empty:
        return None
    rows = []
    for (kind, seed), g in part.groupby(["axis.search", "seed"], sort=False):   # manifest = trial order
        for i, best in enumerate(best_so_far(g.final_val_acc.tolist()), start=1):
            rows.append({"search": kind, "seed": seed, "trials": i, "best val acc": best})
    # Mean and Student-t 95% interval over seeds (seaborn's default bootstrap interval covers far less
    # than 95% with 3 seeds).
    curve = mean_ci(pd.DataFrame(rows), ["search", "trials"], column="best val acc").reset_index()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for (kind, part), color in zip(curve.groupby("search", sort=False), ("tab:blue", "tab:orange")):
        ax.plot(part.trials, part["mean"], marker="o", ms=4, color=color, label=kind)
        ax.fill_between(part.trials, part.low, part.high, color=color, alpha=0.15, lw=0)
    ax.fill_between([], [], [], color="grey", alpha=0.15, label=f"95% CI over {part.n.max()} seeds (t)")
    ax.set(title=f"{d.study}: best val accuracy so far (same budget)", xlabel="trials run", ylabel="best val acc (%)")
    ax.set_ylim(top=min(ax.get_ylim()[1], 1.005))
    percent_axis(ax.yaxis)
    ax.legend(loc="lower right", fontsize="small", title="search", title_fontsize="small")
    fig.tight_layout()
    return fig


def _tuning_figure(d: StudyData) -> plt.Figure | None:
    """Final val accuracy against each tuned key (log scale), one colour per searched group."""
    part, tuned = d.members, [k for k in d.manifest.get("tuned", []) if f"config.{k}" in d.members]
    if not tuned or part.empty:
        return None
    groups = _groups(part, tuned)
    hue = (part[groups].astype(str).agg(",".join, axis=1) if groups
           else part.get("axis.search"))   # grid vs random trials in their own colours
    fig, axes = plt.subplots(1, len(tuned), figsize=(PAGE_WIDTH_IN, 4.2), squeeze=False, sharey=True)
    for ax, key in zip(axes[0], tuned):
        if groups:   # one sweep per group: its tuning curve, mean over seeds
            sns.lineplot(x=part[f"config.{key}"], y=part.final_val_acc, hue=hue, marker="o", errorbar=None, ax=ax)
        else:
            sns.scatterplot(x=part[f"config.{key}"], y=part.final_val_acc, hue=hue, ax=ax, alpha=0.7)
        ax.set(xscale="log", xlabel=f"{key} (log scale)", ylabel="final val acc (%)", title=f"final val acc vs {key}")
        percent_axis(ax.yaxis)
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0]:   # one legend for the row, under it: never over a point
        if ax.get_legend():
            ax.get_legend().remove()
    if handles:
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(4, len(labels)),
                   fontsize="small", frameon=False, title=", ".join(c[len("config."):] for c in groups) or "search")
    fig.suptitle(f"{d.study}: tuning curves", fontsize="medium")
    fig.tight_layout()
    return fig


FIGURES.add("best_so_far", _best_so_far_figure)
FIGURES.add("tuning", _tuning_figure)
