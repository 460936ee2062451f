"""Figures of the babysitting diagnostics each run stores (lit_modules/diagnostics.py).

Reads `runs/<id>/diagnostics.csv` (step, epoch, layer, depth, metric, value) and `activations.json`
(per-layer histograms at step 0 and at the end).  Each figure returns None where the study's runs have
no such files or where it would show nothing (histograms: studies whose variants share one network).
Large grids show at most MAX_VARIANTS variants: those of the shallowest depth, in study order.
"""
from __future__ import annotations

import json
import warnings
from functools import lru_cache
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator
import numpy as np
import pandas as pd

from ablations.results import DONE

from .figures import FIGURES
from .plotting import PAGE_WIDTH_IN, StudyData, shown_variants

MAX_VARIANTS = 12
MAX_LAYERS = 6           # histogram columns: evenly spaced by depth, first and last included
RULE_OF_THUMB = 1e-3     # the lecture's update/weight ratio
PLAIN = FuncFormatter(lambda v, _: f"{v:g}")


def _stamp(path: Path) -> int | None:
    """Modification time: the caches below key on it, so a file rewritten by a later run is read again."""
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def _read_rows(path: Path) -> pd.DataFrame | None:
    return _rows(path, _stamp(path))


def _read_histograms(path: Path) -> dict | None:
    return _histograms(path, _stamp(path))


@lru_cache(maxsize=4096)   # every figure of a study reads the same files
def _rows(path: Path, stamp: int | None) -> pd.DataFrame | None:
    if stamp is None:
        return None
    try:
        return pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:   # ValueError: bad bytes
        warnings.warn(f"skipping unreadable {path}: {e}")
        return None


@lru_cache(maxsize=4096)
def _histograms(path: Path, stamp: int | None) -> dict | None:
    if stamp is None:
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:   # UnicodeDecodeError and JSONDecodeError are ValueErrors
        warnings.warn(f"skipping unreadable {path}: {e}")
        return None


def diagnostics_table(results_dir: str | Path, members: pd.DataFrame) -> pd.DataFrame:
    """Long form over `members` (run_id, variant, seed): their diagnostics rows, empty if none."""
    frames = []
    finished = members[members.status.isin(DONE)] if "status" in members else members
    for m in finished[["run_id", "variant", "seed"]].drop_duplicates().itertuples():
        rows = _read_rows(Path(results_dir) / "runs" / m.run_id / "diagnostics.csv")
        if rows is not None and not rows.empty:
            frames.append(rows.assign(run_id=m.run_id, variant=m.variant, seed=m.seed))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _in_order(members: pd.DataFrame, table: pd.DataFrame) -> list[str]:
    """The study's variants, in study order, that have rows in `table` (the set built once: one per
    element was half of a figure's time)."""
    present = set(table.variant)
    return [v for v in dict.fromkeys(members.variant) if v in present]


def _variants(data: StudyData, table: pd.DataFrame, members: pd.DataFrame | None = None) -> list[str]:
    """Study-ordered variants (of `members`, default the study's) that have rows in `table`; if more than
    MAX_VARIANTS, of those with the fewest layers (one depth of a depth grid) the control and the best
    by final val accuracy, as the study's other figures choose theirs (shown_variants)."""
    members = data.members if members is None else members
    order = _in_order(members, table)
    if len(order) <= MAX_VARIANTS:
        return order
    layers = table.groupby("variant").depth.max()
    shallowest = layers[order].min()
    fewest = [v for v in order if layers[v] == shallowest]
    if "final_val_acc" not in members:
        return fewest[:MAX_VARIANTS]
    return shown_variants(members[members.variant.isin(fewest)], MAX_VARIANTS, control=data.control)[0]


def _members(data: StudyData) -> pd.DataFrame:
    return data.members if data.results_dir is not None else data.members.iloc[:0]


def activation_histograms(data: StudyData) -> plt.Figure | None:
    """The lecture's per-layer activation histograms: rows = variants (lowest seed), cols = layers;
    filled at step 0, outlined at the end of training; each panel notes the step-0 std."""
    members = _members(data).sort_values("seed", kind="stable")   # stable: variants stay in study order
    model = [c for c in members.columns if c.startswith("config.model.")]
    if len(members[model].astype(str).drop_duplicates()) < 2:
        return None   # the study varies only training (optimizer, rates): every variant starts alike
    firsts = {}
    for m in members.drop_duplicates("variant").itertuples():
        hist = _read_histograms(Path(data.results_dir) / "runs" / m.run_id / "activations.json")
        if hist and hist.get("snapshots") and hist["snapshots"][0]["layers"]:
            firsts[m.variant] = hist["snapshots"]
    if not firsts:
        return None
    depths = pd.DataFrame([{"variant": v, "depth": len(s[0]["layers"])} for v, s in firsts.items()])
    variants = _variants(data, depths, members[members.variant.isin(firsts)])
    cols = max(len(firsts[v][0]["layers"]) for v in variants)
    picks = sorted({round(i) for i in np.linspace(0, cols - 1, min(cols, MAX_LAYERS))})
    # Laid out once by hand (tight_layout measured every panel's ticks: half of this figure's time); the
    # left margin fits the longest line of the variant labels, one axis value per line.
    longest = max(len(part) for v in variants for part in v.split(","))
    left, height = 0.25 + 0.062 * longest, 0.95 * len(variants) + 1.2
    fig, axes = plt.subplots(len(variants), len(picks), squeeze=False, figsize=(PAGE_WIDTH_IN, height))
    fig.subplots_adjust(left=left / PAGE_WIDTH_IN, right=1 - 0.15 / PAGE_WIDTH_IN, top=1 - 0.75 / height,
                        bottom=0.35 / height, wspace=0.15, hspace=0.45)
    for r, variant in enumerate(variants):
        snapshots = firsts[variant]
        for c, index in enumerate(picks):
            ax = axes[r][c]
            for snap, style in ((snapshots[0], {"fill": True, "alpha": 0.6}), (snapshots[-1], {"lw": 1})):
                if index < len(snap["layers"]) and (snap is snapshots[0] or len(snapshots) > 1):
                    layer = snap["layers"][index]
                    counts = np.asarray(layer["counts"], float)
                    ax.stairs(counts / max(counts.sum(), 1), layer["edges"], color=data.colors[variant], **style)
            if r == 0:   # a column is one layer index in every row
                ax.set_title(f"layer {index + 1}", fontsize="small")
            if index >= len(snapshots[0]["layers"]):   # a shallower network: no such layer
                ax.set_axis_off()
            ax.tick_params(labelsize="x-small", pad=1)
            ax.xaxis.set_major_formatter(PLAIN)   # no "1e7" offset text over the next row
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(variant.replace(",", "\n"), fontsize="x-small", rotation=0, ha="right", va="center")
    fig.suptitle(f"{data.study}: activations per layer (filled: step 0, outline: end of training)",
                 fontsize="medium")
    return fig


def update_ratio(data: StudyData) -> plt.Figure | None:
    """Update/weight ratios over training for the first, middle and last weight layer, log y, with the
    lecture's 1e-3: lr*|grad|/|weight| (its formula) and |dw|/|w| (the step the optimizer really took)."""
    table = diagnostics_table(data.results_dir, _members(data)) if data.results_dir else pd.DataFrame()
    kinds = {"update_ratio": "lr |grad| / |weight|", "step_ratio": "|dw| / |weight| (step taken)"}
    if table.empty or not set(kinds) & set(table.metric):
        return None
    part = table[table.metric.isin(list(kinds)) & table.variant.isin(_variants(data, table))].copy()
    part = part[np.isfinite(part.value) & (part.value > 0)]
    if part.empty:
        return None
    last = part.groupby("run_id").depth.transform("max")
    part["position"] = np.select([part.depth == 1, part.depth == last, part.depth == (last + 1) // 2],
                                 ["first layer", "head", "middle layer"], "")
    part = part[part.position != ""]
    part["ratio"] = part.metric.map(kinds)
    # each line is the mean over the variant's runs at each epoch
    part = part.groupby(["variant", "position", "ratio", "epoch"], as_index=False).value.mean()
    order = _in_order(data.members, part)
    positions, ratios = set(part.position), set(part.ratio)
    cols = [p for p in ("first layer", "middle layer", "head") if p in positions]
    rows = [kinds[k] for k in kinds if kinds[k] in ratios]
    fig, axes = _panels(len(rows), len(cols), 2.6)
    for r, ratio in enumerate(rows):
        for c, position in enumerate(cols):
            ax = axes[r][c]
            _lines(ax, part[(part.ratio == ratio) & (part.position == position)], order, data.colors)
            ax.axhline(RULE_OF_THUMB, ls="--", color="grey", lw=1)
            ax.set_title(f"{ratio}, {position}", fontsize="small")
    # one log axis for all panels (shared): decades labelled 1e-05 in plain text; mathtext tick labels
    # (10^-5) and minor ticks were most of this figure's drawing time
    axes[0][0].set_yscale("log")
    axes[0][0].yaxis.set_major_locator(LogLocator(numticks=6))
    axes[0][0].yaxis.set_major_formatter(PLAIN)
    axes[0][0].yaxis.set_minor_locator(NullLocator())
    _label_outer(axes, "epoch", "ratio")
    _legend_below(fig, order, data.colors)
    fig.suptitle(f"{data.study}: update/weight ratios (dashed: the lecture's 1e-3)", fontsize="medium")
    return fig


def dead_units(data: StudyData) -> plt.Figure | None:
    """Mean over layers of the dead-unit (ReLU) and saturated-output (tanh, sigmoid) fractions."""
    table = diagnostics_table(data.results_dir, _members(data)) if data.results_dir else pd.DataFrame()
    if table.empty:
        return None
    shown = table.variant.isin(_variants(data, table))
    part = table[table.metric.isin(["dead_frac", "saturated_frac"]) & shown]
    if part.empty or not (part.value.fillna(0) > 0).any():
        return None
    per_step = part.groupby(["run_id", "variant", "metric", "epoch"], as_index=False).value.mean()
    labels = {"dead_frac": "dead units (all probe outputs 0)", "saturated_frac": "saturated outputs"}
    per_step["panel"] = per_step.metric.map(labels)
    per_step = per_step.groupby(["variant", "panel", "epoch"], as_index=False).value.mean()
    order = _in_order(data.members, per_step)
    shown = set(per_step.panel)
    panels = [labels[m] for m in labels if labels[m] in shown]
    fig, axes = _panels(1, len(panels), 3.4)
    for ax, panel in zip(axes[0], panels):
        _lines(ax, per_step[per_step.panel == panel], order, data.colors)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(panel, fontsize="small")
    _label_outer(axes, "epoch", "fraction, mean over layers")
    _legend_below(fig, order, data.colors)
    fig.suptitle(f"{data.study}: dead and saturated units over training", fontsize="medium")
    return fig


def _panels(rows: int, cols: int, height: float) -> tuple:
    """A rows x cols grid of panels laid out once by hand, one x and one y scale (what seaborn's FacetGrid
    gave, without its tight_layout passes, which measured every tick label several times per figure)."""
    width = min(PAGE_WIDTH_IN, 0.9 + 3.4 * cols)
    top, bottom = 0.7, 0.6
    fig = plt.figure(figsize=(width, height * rows + top + bottom))
    fig.subplots_adjust(left=0.9 / width, right=1 - 0.15 / width, top=1 - top / fig.get_figheight(),
                        bottom=bottom / fig.get_figheight(), wspace=0.08, hspace=0.35)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    return fig, axes


def _lines(ax: plt.Axes, part: pd.DataFrame, order: list[str], colors: dict) -> None:
    # Markers: a run with a single diagnostics step (a 10-image training set) is a point, not a line.
    for variant in order:
        line = part[part.variant == variant].sort_values("epoch")
        if not line.empty:
            ax.plot(line.epoch, line.value, color=colors[variant], marker="o", markersize=3, markeredgewidth=0, lw=1.5)


def _label_outer(axes, xlabel: str, ylabel: str) -> None:
    for ax in axes[-1]:
        ax.set_xlabel(xlabel)
    for row in axes:
        row[0].set_ylabel(ylabel)


def _legend_below(fig: plt.Figure, order: list[str], colors: dict) -> None:
    """Variants under the panels, in columns (a legend at the side made the figure 1,600 px wide)."""
    ncol = max(1, min(4, 110 // (max(map(len, order)) + 4)))
    fig.legend(handles=[Line2D([], [], color=colors[v], lw=2, label=v) for v in order], loc="upper center",
               bbox_to_anchor=(0.5, 0.0), ncol=ncol, fontsize="small", frameon=False)


FIGURES.add("activation_hist", activation_histograms)
FIGURES.add("update_ratio", update_ratio)
FIGURES.add("dead_units", dead_units)
