"""Time-to-accuracy and generalization-gap tables and figures (registered in FIGURES as `time_to_acc`, `gap`).

Time to accuracy reads the convergence columns `add_convergence` puts on the runs table (epochs and
seconds to 90/95/99% of the study's best val accuracy); the gap reads the final train and val metrics
of each run's summary.  Means and intervals are computed here with pandas/numpy and drawn with plain
matplotlib: seaborn's per-point bootstrap costs seconds per figure on a 1,000-run report.
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .figures import FIGURES
from .plotting import (PAGE_WIDTH_IN, StudyData, panel_titles, percent_axis, shown_variants,
                       variant_axis)

FRACTIONS = (90, 95, 99)
TO_COLUMNS = [f"{unit}_to_{f}" for unit in ("epochs", "seconds") for f in FRACTIONS]   # add_convergence's


def time_to_accuracy_table(runs: pd.DataFrame, study: str) -> pd.DataFrame:
    """Per variant: mean epochs and seconds to 90/95/99% of the study's best val accuracy over the seeds
    that got there, and how many seeds got there (a mean over the fast seeds alone would flatter)."""
    data = runs.loc[runs.study == study, ["variant", *TO_COLUMNS]]
    groups = data.groupby("variant", sort=False)
    table = pd.DataFrame({"n": groups.size()})
    for f in FRACTIONS:
        table[f"epochs_to_{f}"] = groups[f"epochs_to_{f}"].mean()
        table[f"seconds_to_{f}"] = groups[f"seconds_to_{f}"].mean()
        table[f"reached_{f}"] = groups[f"epochs_to_{f}"].count()
    return table.reset_index()


def gap_table(runs: pd.DataFrame, study: str) -> pd.DataFrame:
    """Per variant, over seeds: the generalization gap of the final epoch in accuracy (train - val) and
    in loss (val - train), so that a positive gap means overfitting in both."""
    data = runs.loc[runs.study == study, ["variant", "train_acc", "final_val_acc", "val_loss", "train_loss"]]
    gaps = pd.DataFrame({"variant": data.variant, "acc_gap": data.train_acc - data.final_val_acc,
                         "loss_gap": data.val_loss - data.train_loss})
    groups = gaps.groupby("variant", sort=False)
    table = groups.agg(n=("acc_gap", "count"), acc_gap=("acc_gap", "mean"), acc_gap_std=("acc_gap", "std"),
                       loss_gap=("loss_gap", "mean"), loss_gap_std=("loss_gap", "std"))
    return table.reset_index()


def _height(n: int) -> float:
    return max(4.0, 0.22 * n + 1.5)


def _seeds_and_means(ax: plt.Axes, data: pd.DataFrame, order: list[str], column: str, color: str,
                     label: str, offset: float = 0.0) -> None:
    """Every seed as a small dot, the mean over seeds as a bar-shaped marker."""
    pos = data.variant.map({v: i for i, v in enumerate(order)}) + offset
    ax.scatter(data[column], pos, s=12, alpha=0.5, color=color, linewidths=0)
    means = data.groupby("variant", sort=False)[column].mean().reindex(order)
    ax.scatter(means, np.arange(len(order)) + offset, marker="|", s=160, color=color, linewidths=2, label=label)


def time_to_accuracy(data: StudyData) -> plt.Figure | None:
    """Left: epochs to 90/95/99% of the study's best val accuracy per variant (seeds as dots, mean as a
    tick; a seed that never got there is not drawn).  Right: mean val accuracy against mean wall-clock
    seconds per epoch, one line per variant (at most 12: the fastest to 95%, so the lines stay apart)."""
    runs = data.members
    if runs.empty or runs["epochs_to_90"].isna().all():
        return None
    order, note = shown_variants(runs, control=data.control)
    # The columns drawn only: copying the table's hundred config columns costs more than the drawing.
    runs = runs.loc[runs.variant.isin(order), ["run_id", "variant", "status", "best_val_acc", *TO_COLUMNS]]
    members = runs[runs.status == "completed"][["run_id", "variant"]]
    curves = data.history[data.history.run_id.isin(members.run_id) & data.history.metric.isin(["val/acc", "time_s"])]
    wide = curves.pivot_table(index=["run_id", "epoch"], columns="metric", values="value").reset_index()
    wide = wide.merge(members, on="run_id").groupby(["variant", "epoch"], sort=False)[["time_s", "val/acc"]].mean()
    ranked = runs.groupby("variant", sort=False)["seconds_to_95"].mean().reindex(order)
    shown = [v for v in ranked.sort_values(kind="stable").index if v in wide.index.get_level_values(0)][:12]
    titles, _ = panel_titles(order)
    # Room under the panels for the longer of the two legends (the lines' names, two columns).
    height = _height(len(order)) + 0.22 * math.ceil((len(shown) + 1) / 2)
    fig, (left, right) = plt.subplots(1, 2, figsize=(PAGE_WIDTH_IN, height),
                                      gridspec_kw={"width_ratios": [1, 1.1]})
    colors = plt.get_cmap("viridis")(np.linspace(0.05, 0.8, len(FRACTIONS)))
    for i, (f, color) in enumerate(zip(FRACTIONS, colors)):
        _seeds_and_means(left, runs, order, f"epochs_to_{f}", color, f"{f}% of best", (i - 1) * 0.22)
    variant_axis(left, order, data.control)
    left.set(xlabel="epochs", title="epochs to x% of the best val accuracy")
    left.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08 - 0.6 / _height(len(order))), ncol=3,
                fontsize="small", title="target (seeds as dots, mean as a tick)", title_fontsize="small")
    for v in shown:   # the study's colour of each variant, as in its other figures
        curve = wide.loc[v]
        right.plot(curve["time_s"], curve["val/acc"], color=data.colors[v], lw=1.5, label=titles[order.index(v)])
    best = float(data.members.best_val_acc.max())   # the study's best, shown or not
    if not math.isnan(best):
        right.axhline(0.95 * best, color="grey", ls=":", lw=1, label="95% of the best")
    right.set(xlabel="wall-clock time (s)", ylabel="val accuracy (mean over seeds)",
              title="val accuracy vs time" + (f" ({len(shown)} fastest to 95%)" if 12 == len(shown) < len(order)
                                              else ""))
    percent_axis(right.yaxis)
    right.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08 - 0.6 / _height(len(order))), ncol=2,
                 fontsize="small")
    fig.suptitle(f"{data.study}: time to accuracy" + (f" ({note})" if note else ""), fontsize="medium")
    fig.tight_layout()
    return fig


def generalization_gap(data: StudyData) -> plt.Figure | None:
    """Final train - val accuracy and val - train loss per variant: every seed a dot, the mean a tick;
    zero (no gap) as a line."""
    members = data.members
    runs = pd.DataFrame({"variant": members.variant, "final_val_acc": members.final_val_acc,
                         "acc_gap": members.train_acc - members.final_val_acc,
                         "loss_gap": members.val_loss - members.train_loss})
    if runs.acc_gap.isna().all():
        return None
    order, note = shown_variants(runs, control=data.control)
    runs = runs[runs.variant.isin(order)]
    fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH_IN, _height(len(order))), sharey=True)
    runs = runs.assign(acc_gap=runs.acc_gap * 100)   # percentage points, as the other accuracy figures
    for ax, column, label, color in [(axes[0], "acc_gap", "train acc - val acc (percentage points)", "tab:blue"),
                                     (axes[1], "loss_gap", "val loss - train loss (nats)", "tab:red")]:
        _seeds_and_means(ax, runs, order, column, color, "mean over seeds (dots: seeds)")
        ax.axvline(0, color="grey", lw=1)
        ax.set(xlabel=label, title=f"{column.replace('_', ' ')} (> 0: overfitting)")
        ax.grid(axis="y", visible=False)
    variant_axis(axes[0], order, data.control)
    fig.suptitle(f"{data.study}: generalization gap at the last epoch" + (f" ({note})" if note else ""),
                 fontsize="medium")
    fig.tight_layout()
    fig.legend(*axes[0].get_legend_handles_labels(), loc="upper center", bbox_to_anchor=(0.5, 0.0), fontsize="small",
               frameon=False)
    return fig


FIGURES.add("time_to_acc", time_to_accuracy)
FIGURES.add("gap", generalization_gap)
