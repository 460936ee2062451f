"""Seaborn figures from the tidy tables, and the registry of per-study figures the report draws.

A FIGURES entry takes a StudyData and returns a figure, or None where it does not apply (a heatmap
needs two axes); adding a figure to every report is one registered function.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")  # files only: reports are rebuilt on servers and in CI without a display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from lit_modules import Registry  # noqa: E402

sns.set_theme(style="whitegrid", context="notebook")


@dataclass(frozen=True)
class StudyData:
    """What a per-study figure or table may read: the tidy tables and the study's manifest."""
    study: str
    runs: pd.DataFrame       # every run of the report (convergence columns added)
    history: pd.DataFrame    # long form, every run
    manifest: dict = field(default_factory=dict)
    results_dir: Path | None = None   # for figures that read extra run files (diagnostics, predictions)

    @property
    def members(self) -> pd.DataFrame:
        return self.runs[self.runs.study == self.study]

    @property
    def axes(self) -> list[str]:
        """The study's axes present on every run (in manifest order)."""
        part = self.members
        return [c[len("axis."):] for c in part.columns if c.startswith("axis.") and part[c].notna().all()]


FIGURES: Registry[Callable[[StudyData], "plt.Figure | None"]] = Registry("figure")


def learning_curves(history: pd.DataFrame, runs: pd.DataFrame, study: str) -> plt.Figure:
    """Train (dashed) and val (solid) loss and accuracy per epoch: mean and 95% CI over seeds."""
    members = runs[runs.study == study][["run_id", "variant"]]
    data = history.merge(members, on="run_id")
    data = data[data.metric.isin(["train/loss", "val/loss", "train/acc", "val/acc"])].copy()
    data["split"] = data.metric.str.split("/").str[0]
    data["quantity"] = data.metric.str.split("/").str[1]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for ax, quantity, label in zip(axes, ["loss", "acc"], ["cross-entropy loss", "accuracy"]):
        part = data[data.quantity == quantity]
        sns.lineplot(part, x="epoch", y="value", hue="variant", style="split", style_order=["val", "train"],
                     errorbar=("ci", 95), ax=ax, legend=quantity == "acc")
        ax.set(xlabel="epoch", ylabel=label, title=f"{study}: {label}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_yscale("log")  # diverged runs reach 10x the others: only a log axis shows both
    axes[1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small")
    fig.tight_layout()
    return fig


def final_accuracy(runs: pd.DataFrame, study: str, metric: str = "final_val_acc") -> plt.Figure:
    """Mean and 95% CI per variant, every seed as a point; the baseline's mean as a dashed line."""
    data = runs[runs.study == study]
    order = list(dict.fromkeys(data.variant))
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(order) + 2), 4.5))
    sns.pointplot(data, x="variant", y=metric, order=order, errorbar=("ci", 95), linestyle="none",
                  color="black", markers="_", ax=ax)
    sns.stripplot(data, x="variant", y=metric, order=order, hue="variant", alpha=0.6, legend=False, ax=ax)
    base = data[data.variant == order[0]][metric].mean()
    ax.axhline(base, ls="--", lw=1, color="grey", label=f"{order[0]} mean")
    ax.set(xlabel="", ylabel=metric.replace("_", " "), title=f"{study}: {metric.replace('_', ' ')} per variant")
    ax.tick_params(axis="x", rotation=35)
    plt.setp(ax.get_xticklabels(), ha="right")
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return fig


def heatmap(runs: pd.DataFrame, study: str, rows: str, cols: str, metric: str = "final_val_acc") -> plt.Figure:
    """Mean metric over seeds for a two-axis grid (e.g. norm x learning rate)."""
    data = runs[runs.study == study]
    table = data.pivot_table(index=f"axis.{rows}", columns=f"axis.{cols}", values=metric, aggfunc="mean")
    fig, ax = plt.subplots(figsize=(1.3 * len(table.columns) + 3, 0.8 * len(table.index) + 2))
    sns.heatmap(table, annot=True, fmt=".3f", cmap="viridis", vmin=0, vmax=1, ax=ax,
                cbar_kws={"label": metric.replace("_", " ")})
    ax.set(xlabel=cols, ylabel=rows, title=f"{study}: {metric.replace('_', ' ')} (mean over seeds)")
    fig.tight_layout()
    return fig


# Studies whose runs have no accuracy (lr range tests, optimizer landscapes only) get none of these.
_has_acc = lambda d: "final_val_acc" in d.members and d.members.final_val_acc.notna().any()  # noqa: E731
FIGURES.add("curves", lambda d: learning_curves(d.history, d.runs, d.study) if _has_acc(d) else None)
FIGURES.add("final_acc", lambda d: final_accuracy(d.runs, d.study) if _has_acc(d) else None)
FIGURES.add("heatmap", lambda d: heatmap(d.runs, d.study, *d.axes) if len(d.axes) == 2 and _has_acc(d) else None)
