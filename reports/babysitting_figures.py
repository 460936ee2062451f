"""Figures of the babysitting checks and the optimizer landscapes, from the run files on disk.

Each reads the runs of its procedure (config column `trainer.procedure`) and returns None when the
study has none: lr_find.csv (range test), metrics.csv (overfit), trajectory.csv and surface.csv
(landscape).
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter
import numpy as np
import pandas as pd

from ablations.results import DONE

from .figures import FIGURES
from .plotting import PAGE_WIDTH_IN, StudyData, value_colors

PROCEDURE = "config.trainer.procedure"
PALETTE = list(plt.get_cmap("tab10").colors)
STYLES = ("-", "--", ":")


def _runs_of(data: StudyData, procedure: str) -> pd.DataFrame:
    part = data.members
    if PROCEDURE not in part or data.results_dir is None:
        return part.iloc[0:0]
    return part[(part[PROCEDURE] == procedure) & part.status.isin(DONE)]


def _read(data: StudyData, run_id: str, name: str) -> pd.DataFrame | None:
    path = Path(data.results_dir) / "runs" / run_id / name
    return pd.read_csv(path) if path.exists() else None


# The range test's plateau: the loss has fallen less than this share of the way from its first value
# (after the smoothing warm-up) to its minimum.
PLATEAU = 0.1


def _steepest_per_decade(curve: pd.DataFrame) -> float:
    """The lr where the loss falls fastest per decade of lr, before its minimum (what the eye reads off
    a log axis)."""
    head = curve.iloc[: int(np.argmin(curve.loss.to_numpy())) + 1]
    if len(head) < 3:
        return math.nan
    return float(head.lr.iloc[int(np.argmin(np.gradient(head.loss.to_numpy(), np.log10(head.lr.to_numpy()))))])


@FIGURES.register("lr_find")
def lr_find_curve(data: StudyData) -> plt.Figure | None:
    """Loss vs learning rate (log-log), one line per seed; Lightning's suggested rate as a dot and the
    lowest loss as a triangle, with a caption saying how the suggestion is chosen and whether it sits
    on the plateau."""
    runs = _runs_of(data, "lr_find")
    curves = [(row, _read(data, row.run_id, "lr_find.csv")) for row in runs.itertuples()]
    curves = [(row, c) for row, c in curves if c is not None and len(c)]
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.6))
    notes = []
    for i, (row, curve) in enumerate(curves):
        curve = curve[~curve.warmup.astype(bool)] if "warmup" in curve else curve   # the smoothing warm-up
        curve = curve[np.isfinite(curve.loss) & (curve.loss > 0)]
        color = PALETTE[i % len(PALETTE)]
        ax.plot(curve.lr, curve.loss, color=color, lw=1.5, label=f"seed {row.seed}")
        lr, best = getattr(row, "lr_find_suggestion", math.nan), getattr(row, "lr_find_best_lr", math.nan)
        if len(curve) < 2:
            continue
        for rate, marker in ((lr, "o"), (best, "v")):
            if rate is not None and np.isfinite(rate):
                at = np.interp(np.log(rate), np.log(curve.lr), curve.loss)
                ax.plot([rate], [at], marker, color=color, mec="black", ms=9, zorder=4)
        if lr is not None and np.isfinite(lr):
            first, low = curve.loss.iloc[0], curve.loss.min()
            at = np.interp(np.log(lr), np.log(curve.lr), curve.loss)
            where = "on the plateau" if first - at < PLATEAU * (first - low) else "on the falling part"
            notes.append(f"seed {row.seed}: suggested {lr:.2g} ({where}), lowest loss at {best:.2g}, "
                         f"fastest fall per decade at {_steepest_per_decade(curve):.2g}")
    ax.plot([], [], "o", color="grey", mec="black", label="suggested lr (Lightning)")
    ax.plot([], [], "v", color="grey", mec="black", label="lowest loss")
    # Log y: the blow-up at the high end is 10x the rest; plain numbers on it, not powers of ten.
    ax.set(xscale="log", yscale="log", xlabel="learning rate (log scale)", ylabel="smoothed training loss",
           title=f"{data.study}: learning-rate range test (Lightning Tuner.lr_find)")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.legend(fontsize="small", loc="upper left")
    caption = ("Lightning suggests the lr where the smoothed loss falls most steeply per unit of lr (d loss / d lr "
               "on a linear lr axis). Small steps at small rates make that slope large even where the loss "
               f"barely moves, so the suggestion can sit on the plateau (loss fallen < {PLATEAU:.0%} of the way "
               "to its minimum).\n" + "\n".join(notes))
    fig.text(0.01, -0.01, caption, ha="left", va="top", fontsize="x-small", wrap=True)
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


def _contours(ax: plt.Axes, surface: pd.DataFrame | None) -> None:
    if surface is None:
        return
    grid = surface.pivot_table(index="y", columns="x", values="loss")
    levels = np.quantile(grid.to_numpy(), np.linspace(0.0, 1.0, 20) ** 2)
    ax.contour(grid.columns, grid.index, grid.to_numpy(), levels=np.unique(levels), colors="0.6", linewidths=0.5)
    ax.set_xlim(grid.columns.min(), grid.columns.max())
    ax.set_ylim(grid.index.min(), grid.index.max())


@FIGURES.register("landscape")
def landscape_paths(data: StudyData) -> plt.Figure | None:
    """One row per toy function: its loss against the step for every optimizer (left; log scale, above
    the lowest loss on the function's grid), and each optimizer's path over the contours in a small
    panel of its own (right), one colour per optimizer throughout; the lowest seed of each."""
    runs = _runs_of(data, "landscape")
    if runs.empty:
        return None
    functions = list(dict.fromkeys(runs["config.landscape.function"]))
    optimizers = list(dict.fromkeys(runs["config.optim.name"]))
    colors = value_colors(optimizers)
    cols = math.ceil(len(optimizers) / 2)
    fig = plt.figure(figsize=(PAGE_WIDTH_IN, 3.0 * len(functions) + 0.6), layout="constrained")
    rows = fig.subfigures(len(functions), 1, squeeze=False)[:, 0]
    for row_fig, function in zip(rows, functions):
        part = runs[runs["config.landscape.function"] == function].sort_values("seed", kind="stable")
        first = part.drop_duplicates("config.optim.name").set_index("config.optim.name")
        paths = {name: _read(data, first.run_id[name], "trajectory.csv") for name in optimizers if name in first.index}
        surface = _read(data, part.run_id.iloc[0], "surface.csv")
        left, right = row_fig.subfigures(1, 2, width_ratios=[1.1, 2])
        loss_ax = left.subplots()
        lowest = min(([surface.loss.min()] if surface is not None else []) +
                     [p.loss.min() for p in paths.values() if p is not None])
        for name, path in paths.items():
            if path is not None:   # dashes cycle so that equal curves (adam, adamw at weight decay 0) both show
                style = optimizers.index(name) % len(STYLES)   # broken lines on top of solid ones
                loss_ax.plot(path.step, np.maximum(path.loss - lowest, 1e-10), color=colors[name], lw=1.4,
                             ls=STYLES[style], zorder=2 + style)
        loss_ax.set(yscale="log", xlabel="step", ylabel="loss - lowest loss",
                    title=f"{function}: loss per step (seed {part.seed.iloc[0]})")
        panels = right.subplots(2, cols, sharex=True, sharey=True, squeeze=False).flat
        for ax, name in zip(panels, optimizers):
            _contours(ax, surface)
            path = paths.get(name)
            if path is not None:
                ax.plot(path.x, path.y, color=colors[name], lw=1.2, marker=".", ms=2.5)
                ax.plot(path.x.iloc[:1], path.y.iloc[:1], "k*", ms=9)
            ax.set_title(name, fontsize="small", color=colors[name])
            ax.set_xticks([])
            ax.set_yticks([])
        right.suptitle(f"{function}: paths over the contours (star: start)", fontsize="small")
    handles = [plt.Line2D([], [], color=colors[n], lw=2, ls=STYLES[i % len(STYLES)], label=n)
               for i, n in enumerate(optimizers)]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(optimizers), fontsize="small", frameon=False)
    fig.suptitle(f"{data.study}: optimizers on toy losses")
    # Lay out now and freeze: the report measures the figure's box before drawing it.
    fig.get_layout_engine().execute(fig)
    fig.set_layout_engine("none")
    return fig
