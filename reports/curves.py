"""Learning curves per variant: overlaid up to MAX_LINES variants, small multiples beyond.

Overlaid: loss (log y) and accuracy per epoch, train dashed and val solid, mean over seeds with a band
of +- one standard error (a 95% t-interval over 2-3 seeds is wider than the axis).  Small multiples:
one panel per variant with its train and val accuracy, and the control's val accuracy in grey in every
panel as the reference; grids are laid out along their axes (rows: the first axis' values).
"""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator

from .plotting import (ENDED_EARLY, MAX_LINES, PAGE_WIDTH_IN, StudyData, columns_for, mean_ci,
                       panel_titles, percent_axis, same_scale, shown_variants,
                       small_multiples)

METRICS = ["train/loss", "val/loss", "train/acc", "val/acc"]


def _points(data: StudyData, order: list[str]) -> pd.DataFrame:
    members = data.members.loc[data.members.variant.isin(order), ["run_id", "variant"]]
    curves = data.history[data.history.metric.isin(METRICS)].merge(members, on="run_id")
    return mean_ci(curves, ["variant", "metric", "epoch"], level=None).sort_index().reset_index()


def learning_curves(data: StudyData) -> plt.Figure | None:
    if "final_val_acc" not in data.members or data.members.final_val_acc.isna().all():
        return None   # lr range tests, landscapes: no accuracy per epoch
    order, note = shown_variants(data.members, control=data.control)
    points = _points(data, order)
    if points.empty:
        return None
    return (_overlaid if len(order) <= MAX_LINES else _small_multiples)(data, order, note, points)


def _lines(ax: plt.Axes, part: pd.DataFrame, colors: dict, style: str, band: bool = True,
           width: float = 1.6, autoscale: bool = False) -> None:
    """One collection per split and panel, not an artist per curve: a 20-variant panel draws in a blink."""
    lines, bands, rgb = [], [], []
    for variant, c in part.groupby("variant", sort=False):
        e = c.epoch.to_numpy(float)
        lines.append(np.column_stack([e, c["mean"].to_numpy()]))
        bands.append(np.concatenate([np.column_stack([e, c["low"].to_numpy()]),
                                     np.column_stack([e[::-1], c["high"].to_numpy()[::-1]])]))
        rgb.append(colors[variant])
    if band:
        ax.add_collection(PolyCollection(bands, facecolors=rgb, alpha=0.15, linewidths=0))
    ax.add_collection(LineCollection(lines, colors=rgb, linestyles=style, linewidths=width))
    if autoscale:
        ax.autoscale_view()


def _split_handles() -> list:
    return [Line2D([], [], color="black", ls="-", label="val"), Line2D([], [], color="black", ls="--", label="train"),
            Patch(color="black", alpha=0.15, label="mean +- 1 SE over seeds")]


def _overlaid(data: StudyData, order: list[str], note: str, points: pd.DataFrame) -> plt.Figure:
    fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH_IN, 4.2))
    for ax, quantity, label in zip(axes, ["loss", "acc"], ["cross-entropy loss", "accuracy"]):
        for split, style in (("val", "-"), ("train", "--")):
            _lines(ax, points[points.metric == f"{split}/{quantity}"], data.colors, style, autoscale=True)
        ax.set(xlabel="epoch", ylabel=label, title=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    percent_axis(axes[1].yaxis)
    axes[0].set_yscale("log")  # diverged runs reach 10x the others: only a log axis shows both
    # Ticks at 1, 2, 5 x 10^k written as plain numbers: readable over one or two decades, where the
    # default labels only the powers of ten (in mathtext, a tenth of this figure's drawing time).
    axes[0].yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    axes[0].yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axes[0].yaxis.set_minor_locator(NullLocator())
    handles = _split_handles()
    drawn = set(points.variant)   # lr range tests have no curves
    handles += [Line2D([], [], color=data.colors[v], lw=2, label=v + (" (control)" if v == data.control else ""))
                for v in order if v in drawn]
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), fontsize="small", frameon=False,
               ncol=3 if max(map(len, order)) < 30 else 2)
    fig.suptitle(f"{data.study}: learning curves" + (f" ({note})" if note else ""), fontsize="medium")
    fig.tight_layout()
    return fig


def _small_multiples(data: StudyData, order: list[str], note: str, points: pd.DataFrame) -> plt.Figure:
    cols = columns_for(data, len(order))
    fig, axes = small_multiples(len(order), cols, margins=(0.8, 0.15, 0.75 + 0.25 * bool(note), 0.75))
    acc = points[points.metric.isin(["train/acc", "val/acc"])]
    reference = acc[(acc.variant == data.control) & (acc.metric == "val/acc")]
    status = data.members.groupby("variant").status.agg(lambda s: f"{s.isin(ENDED_EARLY).sum()}/{len(s)}")
    titles, shows = panel_titles(order)
    chars = int(12 * axes[0].get_position().width * fig.get_figwidth())   # what fits over a panel in "small"
    for ax, variant, name in zip(axes, order, titles):
        if data.control and variant != data.control:
            _lines(ax, reference, {data.control: (0.72, 0.72, 0.72)}, "-", band=False, width=1.0)
        for split, style in (("val", "-"), ("train", "--")):
            _lines(ax, acc[(acc.variant == variant) & (acc.metric == f"{split}/acc")], data.colors, style)
        diverged = status.get(variant, "0/0")
        title = textwrap.fill(name, chars) + ("" if diverged.startswith("0/") else f"\n[{diverged} diverged/stopped]")
        ax.set_title(title, fontsize="small", color="firebrick" if not diverged.startswith("0/") else "black",
                     fontweight="bold" if variant == data.control else "normal")   # bold: the control
        percent_axis(ax.yaxis)
    low, high = np.nanmin(acc["low"]), np.nanmax(acc["high"])
    pad = 0.05 * (high - low or 1.0)
    ylim = (max(0.0, low - pad), min(1.02, high + pad))
    epochs = (acc.epoch.min(), acc.epoch.max())
    xticks = [t for t in MaxNLocator(4, integer=True).tick_values(*epochs) if epochs[0] <= t <= epochs[1]]
    yticks = [t for t in MaxNLocator(4).tick_values(*ylim) if ylim[0] <= t <= ylim[1]]
    same_scale(axes, cols, (epochs[0] - 0.5, epochs[1] + 0.5), ylim, xticks, yticks)
    fig.supxlabel("epoch", fontsize="small", y=0.1 / fig.get_figheight(), va="bottom")
    fig.supylabel("accuracy", fontsize="small")
    handles = _split_handles()
    if data.control:
        handles.append(Line2D([], [], color=(0.72, 0.72, 0.72), label=f"control's val ({data.control}, bold title)"))
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=4, fontsize="small",
               frameon=False)
    fig.suptitle(f"{data.study}: accuracy per epoch, one panel per variant ({shows})"
                 + (f"\n{note}" if note else ""), fontsize="medium")
    return fig
