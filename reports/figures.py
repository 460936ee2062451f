"""Seaborn figures from the tidy tables; each function takes frames and returns a figure to save."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only: reports are rebuilt on servers and in CI without a display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

sns.set_theme(style="whitegrid", context="notebook")


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
