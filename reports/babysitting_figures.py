"""Figures of the babysitting checks and the optimizer landscapes, from the run files on disk.

Each reads the runs of its procedure (config column `trainer.procedure`) and returns None when the
study has none: lr_find.csv (range test), metrics.csv (overfit), trajectory.csv and surface.csv
(landscape).
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ablations.results import DONE

from .figures import FIGURES, StudyData

PROCEDURE = "config.trainer.procedure"
PALETTE = list(plt.get_cmap("tab10").colors)


def _runs_of(data: StudyData, procedure: str) -> pd.DataFrame:
    part = data.members
    if PROCEDURE not in part or data.results_dir is None:
        return part.iloc[0:0]
    return part[(part[PROCEDURE] == procedure) & part.status.isin(DONE)]


def _read(data: StudyData, run_id: str, name: str) -> pd.DataFrame | None:
    path = Path(data.results_dir) / "runs" / run_id / name
    return pd.read_csv(path) if path.exists() else None


@FIGURES.register("lr_find")
def lr_find_curve(data: StudyData) -> plt.Figure | None:
    """Loss vs learning rate (log x), one line per seed, Lightning's suggestion as a dot."""
    runs = _runs_of(data, "lr_find")
    curves = [(row, _read(data, row.run_id, "lr_find.csv")) for row in runs.itertuples()]
    curves = [(row, c) for row, c in curves if c is not None and len(c)]
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row, curve in curves:
        curve = curve[~curve.warmup] if "warmup" in curve else curve
        line, = ax.plot(curve.lr, curve.loss, label=f"{row.variant} seed {row.seed}")
        lr = getattr(row, "lr_find_suggestion", math.nan)
        if lr is not None and np.isfinite(lr):
            at = np.interp(np.log(lr), np.log(curve.lr), curve.loss)
            ax.plot([lr], [at], "o", color=line.get_color(), markersize=8)
    ax.plot([], [], "o", color="grey", label="suggested lr")
    # Log y: the blow-up at the high end is 10x the rest; smoothing warm-up points are left out.
    ax.set(xscale="log", yscale="log", xlabel="learning rate", ylabel="smoothed training loss",
           title=f"{data.study}: learning-rate range test")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


@FIGURES.register("overfit")
def overfit_curve(data: StudyData) -> plt.Figure | None:
    """Training loss per epoch on the one fixed batch (log y), one line per seed."""
    runs = _runs_of(data, "overfit")
    if runs.empty:
        return None
    hist = data.history[data.history.run_id.isin(runs.run_id) & (data.history.metric == "train/loss")]
    if hist.empty:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in runs.itertuples():
        part = hist[hist.run_id == row.run_id].sort_values("epoch")
        ax.plot(part.epoch, part.value, label=f"{row.variant} seed {row.seed}")
    ax.set(yscale="log", xlabel="epoch (one step on the same batch)", ylabel="training loss",
           title=f"{data.study}: overfitting one small batch")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


@FIGURES.register("landscape")
def landscape_paths(data: StudyData) -> plt.Figure | None:
    """One panel per toy function: its contours and every optimizer's path (lowest seed)."""
    runs = _runs_of(data, "landscape")
    if runs.empty:
        return None
    functions = list(dict.fromkeys(runs["config.landscape.function"]))
    fig, axes = plt.subplots(1, len(functions), figsize=(6 * len(functions), 5), squeeze=False)
    colors: dict[str, str] = {}   # one color per optimizer across the panels
    for ax, function in zip(axes[0], functions):
        part = runs[runs["config.landscape.function"] == function].sort_values("seed")
        surface = _read(data, part.run_id.iloc[0], "surface.csv")
        if surface is not None:
            grid = surface.pivot_table(index="y", columns="x", values="loss")
            levels = np.quantile(grid.to_numpy(), np.linspace(0.0, 1.0, 25) ** 2)
            ax.contour(grid.columns, grid.index, grid.to_numpy(), levels=np.unique(levels), cmap="Greys",
                       linewidths=0.6)
            ax.set_xlim(grid.columns.min(), grid.columns.max())
            ax.set_ylim(grid.index.min(), grid.index.max())
        for name, runs_of_optimizer in part.groupby("config.optim.name", sort=False):
            path = _read(data, runs_of_optimizer.run_id.iloc[0], "trajectory.csv")
            if path is not None:
                color = colors.setdefault(name, PALETTE[len(colors) % len(PALETTE)])
                # Cycle dashes so that paths lying on top of each other (adam, adamw) both show.
                ax.plot(path.x, path.y, marker=".", markersize=3, linewidth=1, label=name, color=color,
                        linestyle=("-", "--", ":")[list(colors).index(name) % 3])
        start = _read(data, part.run_id.iloc[0], "trajectory.csv")
        if start is not None:
            ax.plot(start.x.iloc[:1], start.y.iloc[:1], "k*", markersize=12)
        ax.set(title=f"{function} (seed {part.seed.iloc[0]})", xlabel="x", ylabel="y")
    axes[0][-1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small", title="optimizer")
    fig.suptitle(f"{data.study}: optimizer paths (star: start)")
    fig.tight_layout()
    return fig
