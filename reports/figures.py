"""Seaborn figures from the tidy tables, and the registry of per-study figures the report draws.

A FIGURES entry takes a StudyData and returns a figure, or None where it does not apply (a heatmap
needs two axes); adding a figure to every report is one registered function.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")  # files only: reports are rebuilt on servers and in CI without a display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import LineCollection, PolyCollection  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from scipy import stats  # noqa: E402

from ablations.results import Registry  # noqa: E402

from .stats import t_interval  # noqa: E402

sns.set_theme(style="whitegrid", context="notebook")
# A fixed title height: matplotlib's automatic one measures every tick label of every axis at each draw
# (a fifth of a 1,000-run report's time, with 100+ variant names on an axis); no figure puts ticks on top.
plt.rcParams["axes.titley"] = 1.01
plt.rcParams["figure.dpi"] = 110


@dataclass(frozen=True)
class StudyData:
    """What a per-study figure or table may read: the tidy tables and the study's manifest."""
    study: str
    runs: pd.DataFrame       # every run of the report (convergence columns added)
    history: pd.DataFrame    # long form, every run
    manifest: dict = field(default_factory=dict)
    results_dir: Path | None = None   # for figures that read extra run files (diagnostics, predictions)

    @cached_property   # frozen dataclasses allow it: the cache goes straight into __dict__
    def members(self) -> pd.DataFrame:
        return self.runs[self.runs.study == self.study]

    @property
    def axes(self) -> list[str]:
        """The study's axes present on every run (in manifest order)."""
        part = self.members
        return [c[len("axis."):] for c in part.columns if c.startswith("axis.") and part[c].notna().all()]


FIGURES: Registry[Callable[[StudyData], "plt.Figure | None"]] = Registry("figure")


def mean_ci(values: pd.DataFrame, by: list[str], column: str = "value", level: float | None = 0.95) -> pd.DataFrame:
    """Mean and Student-t interval over seeds per group (columns mean, low, high, n), or with level=None
    mean +- one standard error.  One vectorized pass, where seaborn's errorbar=("ci", 95) bootstraps
    every point of every curve (seconds per figure)."""
    agg = values.groupby(by, sort=False)[column].agg(["mean", "std", "count"])
    n = agg["count"].to_numpy(float)
    scale = 1.0 if level is None else np.where(n > 1, stats.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1)), 0.0)
    half = scale * agg["std"].fillna(0) / np.sqrt(np.maximum(n, 1))
    return agg.assign(low=agg["mean"] - half, high=agg["mean"] + half, n=agg["count"])[["mean", "low", "high", "n"]]


# Per-variant figures draw at most this many variants: beyond it names and colours stop being readable
# (and a 190-sample random search took a third of a 1,000-run report's time).  Every variant is still in
# the study's CSVs, and grids keep their heatmap of all cells.
MAX_VARIANTS = 20


def shown_variants(members: pd.DataFrame, limit: int = MAX_VARIANTS,
                   metric: str = "final_val_acc") -> tuple[list[str], str]:
    """The variants a per-variant figure draws, in the study's order, and a note for its title: all of
    them up to `limit`; beyond, the baseline (the first variant) and the best by mean `metric`."""
    order = list(dict.fromkeys(members.variant))
    if len(order) <= limit:
        return order, ""
    means = members.groupby("variant", sort=False)[metric].mean().reindex(order[1:])
    best = set(means.sort_values(ascending=False, kind="stable").index[:limit - 1])
    return [order[0]] + [v for v in order[1:] if v in best], \
        f"the first + the {limit - 1} best of {len(order)} variants by {metric.replace('_', ' ')}"


def variant_colors(order: list[str]) -> dict[str, tuple]:
    palette = sns.color_palette("husl" if len(order) > 10 else "tab10", len(order))
    return dict(zip(order, palette))


def _legend_columns(n: int) -> int:
    return min(6, max(1, math.ceil(n / 12)))


def learning_curves(history: pd.DataFrame, runs: pd.DataFrame, study: str) -> plt.Figure:
    """Train (dashed) and val (solid) loss and accuracy per epoch: mean over seeds, band +- one standard
    error (a 95% t-interval over 2-3 seeds is wider than the axis).  One collection per split and panel, not an artist per curve: a 190-variant study draws in a second."""
    order, note = shown_variants(runs[runs.study == study])
    members = runs.loc[(runs.study == study) & runs.variant.isin(order), ["run_id", "variant"]]
    data = history[history.metric.isin(["train/loss", "val/loss", "train/acc", "val/acc"])].merge(members, on="run_id")
    points = mean_ci(data, ["variant", "metric", "epoch"], level=None).sort_index().reset_index()
    colors = variant_colors(order)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for ax, quantity, label in zip(axes, ["loss", "acc"], ["cross-entropy loss", "accuracy"]):
        for split, style in (("val", "-"), ("train", "--")):
            part = points[points.metric == f"{split}/{quantity}"]
            lines, bands, rgb = [], [], []
            for variant, c in part.groupby("variant", sort=False):
                e = c.epoch.to_numpy(float)
                lines.append(np.column_stack([e, c["mean"].to_numpy()]))
                bands.append(np.concatenate([np.column_stack([e, c["low"].to_numpy()]),
                                             np.column_stack([e[::-1], c["high"].to_numpy()[::-1]])]))
                rgb.append(colors[variant])
            ax.add_collection(PolyCollection(bands, facecolors=rgb, alpha=0.12, linewidths=0))
            ax.add_collection(LineCollection(lines, colors=rgb, linestyles=style, linewidths=1.3))
        ax.autoscale_view()
        ax.set(xlabel="epoch", ylabel=label, title=f"{study}: {label}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if note:
        fig.suptitle(note, fontsize="medium")
    axes[0].set_yscale("log")  # diverged runs reach 10x the others: only a log axis shows both
    # Ticks at 1, 2, 5 x 10^k written as plain numbers: readable over one or two decades, where the
    # default labels only the powers of ten (in mathtext, a tenth of this figure's drawing time).
    axes[0].yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    axes[0].yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axes[0].yaxis.set_minor_locator(NullLocator())
    handles = [Line2D([], [], color="black", ls="-", label="val"), Line2D([], [], color="black", ls="--", label="train"),
               Patch(color="black", alpha=0.12, label="mean +- 1 SE over seeds")]
    handles += [Line2D([], [], color=colors[v], lw=2, label=v) for v in order]
    fig.tight_layout()
    if len(handles) <= 24:
        axes[1].legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small")
    else:   # many variants: a legend in columns under both panels (the saved bbox takes it in)
        fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), fontsize="x-small",
                   ncol=_legend_columns(len(handles)))
    return fig


def final_accuracy(runs: pd.DataFrame, study: str, metric: str = "final_val_acc") -> plt.Figure:
    """Mean and 95% Student-t CI per variant (black), every seed as a point; the baseline's mean as a
    dashed line.  Variants run down the y axis, so 100+ variants and long names stay readable."""
    order, note = shown_variants(runs[runs.study == study])
    data = runs.loc[(runs.study == study) & runs.variant.isin(order), ["variant", metric]]
    fig, ax = plt.subplots(figsize=(8, max(3.5, 0.22 * len(order) + 1.5)))
    colors = variant_colors(order)
    pos = data.variant.map({v: i for i, v in enumerate(order)})
    jitter = np.random.default_rng(0).uniform(-0.15, 0.15, len(data))
    ax.scatter(data[metric], pos + jitter, s=22, alpha=0.7, c=[colors[v] for v in data.variant], linewidths=0,
               zorder=3, label="one seed")
    cis = [t_interval(data.loc[data.variant == v, metric]) for v in order]
    means = np.array([c.mean for c in cis])
    err = np.array([[c.mean - c.low for c in cis], [c.high - c.mean for c in cis]])
    ax.errorbar(means, np.arange(len(order)), xerr=err, fmt="|", color="black", ms=12, capsize=3, lw=1.2,
                label="mean, 95% CI")
    ax.axvline(means[0], ls="--", lw=1, color="grey", label=f"{order[0]} mean")
    ax.set_yticks(range(len(order)), order, fontsize="small" if len(order) < 40 else "x-small")
    ax.set_ylim(len(order) - 0.5, -0.5)
    name = metric.replace("_", " ")
    ax.set(ylabel="", xlabel=f"{name} (fraction)", title=f"{study}: {name} per variant")
    if note:
        fig.suptitle(note, fontsize="medium")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1 - 0.5 / max(3.5, 0.22 * len(order) + 1.5)), ncol=3,
              fontsize="small")   # under the axes: never over a variant's points
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
# Random search draws a new value per sample: a grid of its labels is nearly all empty cells.
FIGURES.add("heatmap", lambda d: heatmap(d.runs, d.study, *d.axes)
            if len(d.axes) == 2 and d.manifest.get("mode") != "random" and _has_acc(d) else None)
