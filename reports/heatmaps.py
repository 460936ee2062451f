"""Heatmaps of a grid study: each cell's paired difference to the control (mean over seeds, its sd,
how many runs diverged), on a diverging scale centred at 0 and symmetric, so that "no difference" is
white whatever the range; three or more axes are faceted (one panel per value of the later axes).
A study without a control shows the mean itself on a sequential scale over the values' own range.
"""
from __future__ import annotations

import itertools
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle

from ablations.results import DONE, smallest_effect

from .plotting import ENDED_EARLY, PAGE_WIDTH_IN, StudyData, is_fraction, paired_to_control, unit_label


def cell_table(data: StudyData, metric: str = "final_val_acc") -> pd.DataFrame:
    """Per variant: axis labels, value (mean paired difference to the control, or the mean itself),
    sd over seeds, n seeds with a value, runs, diverged runs (stopped early included)."""
    members = data.members
    cols = [f"axis.{a}" for a in data.axes]
    runs = members.groupby("variant", sort=False).agg(runs=("status", "size"),
                                                      diverged=("status", lambda s: int(s.isin(ENDED_EARLY).sum())))
    if data.control:
        values = paired_to_control(members, data.control, metric).rename(columns={"diff": "x"})
    else:
        values = members[members.status.isin(DONE)].assign(x=members[metric])
    stats = values.groupby("variant", sort=False).x.agg(value="mean", sd="std", n="count")
    labels = members.drop_duplicates("variant").set_index("variant")[cols].astype(str)
    return labels.join(runs).join(stats).reset_index()


def _facets(data: StudyData) -> tuple[str, str, list[str]]:
    """(rows, columns, facets): the axis with the most values across (the page is wider than tall), the
    next one down, one panel per combination of the others."""
    ranked = sorted(data.axes, key=lambda a: -data.members[f"axis.{a}"].nunique())   # stable: ties keep order
    cols, rows = ranked[:2]
    return rows, cols, [a for a in data.axes if a not in (rows, cols)]


def _annotation(row, scale: float, control: str | None) -> str:
    if row.variant == control:
        return "control"
    if not np.isfinite(row.value):
        return f"no value\n{row.diverged}/{row.runs} div." if row.diverged else "no value"
    sign = "+" if control else ""
    digits = 1 if scale == 100 else 3
    text = f"{row.value * scale:{sign}.{digits}f}"
    if np.isfinite(row.sd):
        text += f"\n±{row.sd * scale:.{digits}f}"
    return text + (f"\n{row.diverged}/{row.runs} div." if row.diverged else "")


def heatmap(data: StudyData, metric: str = "final_val_acc") -> plt.Figure | None:
    if len(data.axes) < 2 or data.manifest.get("mode") in ("random", "grid_vs_random") \
            or metric not in data.members or data.members[metric].isna().all():
        return None   # random draws: a grid of their labels is nearly all empty cells
    table = cell_table(data, metric)
    rows, cols, rest = _facets(data)
    order = {a: list(dict.fromkeys(data.members[f"axis.{a}"].astype(str))) for a in data.axes}
    facets = list(itertools.product(*(order[a] for a in rest))) or [()]
    scale = 100.0 if is_fraction(metric) else 1.0
    values = table.value.to_numpy(float) * scale
    if data.control:   # symmetric around 0; at least the smallest effect, so noise stays pale
        reach = max(np.nanmax(np.abs(values), initial=0.0), 2 * smallest_effect(metric, None) * scale)
        vmin, vmax, cmap = -reach, reach, "RdBu"
    else:
        vmin, vmax, cmap = np.nanmin(values), np.nanmax(values), "viridis"
    n_rows, n_cols = len(order[rows]), len(order[cols])
    width = min(PAGE_WIDTH_IN, len(facets) * (1.15 * n_cols + 1.6) + 1.4)
    fig, axes = plt.subplots(1, len(facets), figsize=(width, 0.72 * n_rows + 2.2), squeeze=False, sharey=True,
                             layout="constrained")   # room for the colour bar and a two-line title
    image = None
    for ax, facet in zip(axes[0], facets):
        part = table
        for a, label in zip(rest, facet):
            part = part[part[f"axis.{a}"] == label]
        grid = part.set_index([f"axis.{rows}", f"axis.{cols}"])
        cells = np.full((n_rows, n_cols), np.nan)
        image = ax.imshow(cells, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
        for (i, r), (j, c) in itertools.product(enumerate(order[rows]), enumerate(order[cols])):
            if (r, c) not in grid.index:
                continue
            row = grid.loc[(r, c)]
            row = row.iloc[0] if isinstance(row, pd.DataFrame) else row
            cells[i, j] = row.value * scale
            _mark(ax, i, j, row, cells[i, j], vmin, vmax, scale, data.control)
        image.set_data(np.ma.masked_invalid(cells))
        ax.set_xticks(range(n_cols), order[cols], fontsize="small", rotation=30 if n_cols > 4 else 0,
                      ha="right" if n_cols > 4 else "center")
        ax.set_yticks(range(n_rows), order[rows], fontsize="small")
        ax.set_xlabel(cols, fontsize="small")
        ax.grid(False)
        ax.set_facecolor("0.9")   # a cell without any value
        if facet:
            ax.set_title(", ".join(f"{a}={v}" for a, v in zip(rest, facet)), fontsize="small")
    axes[0][0].set_ylabel(rows, fontsize="small")
    name = metric.replace("_", " ")
    label = f"minus the control ({unit_label(metric, True)})" if data.control else f"{name} ({unit_label(metric)})"
    fig.colorbar(image, ax=list(axes[0]), label=label, shrink=0.9)
    what = (f"{name} minus the control's ({data.control}), paired by seed" if data.control else name)
    fig.suptitle(f"{data.study}: {what}\ncell: mean ± sd over seeds; hatched: runs diverged or stopped early",
                 fontsize="medium")
    # Lay out now and freeze: the report measures the figure's box before drawing it, and a layout
    # that ran only at draw time would move the colour bar out of that box.
    fig.get_layout_engine().execute(fig)
    fig.set_layout_engine("none")
    return fig


def _mark(ax: plt.Axes, i: int, j: int, row, value: float, vmin: float, vmax: float, scale: float,
          control: str | None) -> None:
    """A cell's text (black or white by its shade), hatching for diverged runs, a frame for the control."""
    t = (value - vmin) / ((vmax - vmin) or 1.0)   # where the cell's shade sits on the scale, 0 to 1
    # RdBu is dark at both ends, viridis at the low end only
    dark = math.isfinite(value) and (abs(t - 0.5) > 0.3 if control else t < 0.6)
    ax.text(j, i, _annotation(row, scale, control), ha="center", va="center", fontsize="x-small",
            color="white" if dark else "black")
    if row.diverged:
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", edgecolor="0.35", lw=0))
    if row.variant == control:
        ax.add_patch(Rectangle((j - 0.48, i - 0.48), 0.96, 0.96, fill=False, edgecolor="black", lw=2))
