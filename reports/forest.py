"""Forest plots: the verdict's own picture, and every variant against the study's control.

`verdict_forest` draws the comparisons the verdict was decided from (reports.verdicts.evaluate): one
row per comparison, every per-seed difference as a dot over the estimate and its interval, coloured
by the comparison's outcome, and the smallest effect of interest as a grey band around 0.  Differences
are signed so that > 0 favours the claim.  `final_accuracy` puts each variant's final val accuracy
next to its paired difference to the control (the same seeds on both sides), the band the metric's
own smallest effect.
"""
from __future__ import annotations

import math
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from ablations.results import smallest_effect

from .plotting import (ENDED_EARLY, OUTCOME_COLORS, PAGE_WIDTH_IN, StudyData, is_fraction, paired_to_control,
                       percent_axis, shown_variants, unit_label, variant_axis)
from .stats import OUTCOMES, Comparison, t_interval
from .verdicts import evaluate

JITTER = 0.18   # seeds of one row spread over +-JITTER of its height, so equal values stay countable


def _wrap(label: str, width: int = 46) -> str:
    return "\n".join(textwrap.wrap(label.replace(",", ", "), width, break_long_words=False))


def _band(ax: plt.Axes, y: float, delta: float) -> None:
    """The smallest effect of interest of one row: differences inside it do not matter."""
    if math.isfinite(delta) and delta > 0:
        ax.fill_betweenx([y - 0.5, y + 0.5], -delta, delta, color="0.85", lw=0, zorder=0)


def _seed_dots(ax: plt.Axes, y: float, values, color, rng) -> None:
    values = np.asarray(values, float)
    shown = values[np.isfinite(values)]
    ax.scatter(shown, y + rng.uniform(-JITTER, JITTER, len(shown)), s=18, color=color, alpha=0.55,
               linewidths=0, zorder=2)


def _limits(ax: plt.Axes, values: list[float], delta: float, zero: bool = True) -> tuple[float, float]:
    """x limits over every finite value, 0 and the whole band (differences; `zero` False: the values
    alone); an infinite estimate sits at the edge."""
    finite = [v for v in values if math.isfinite(v)] + ([-delta, delta] if math.isfinite(delta) else [])
    finite += [0.0] if zero or not finite else []
    low, high = min(finite), max(finite)
    pad = 0.08 * (high - low or 1.0)
    ax.set_xlim(low - pad, high + pad)
    return low - pad, high + pad


def _row(ax: plt.Axes, y: float, c: Comparison, scale: float, rng) -> list[float]:
    """One comparison; returns the x values it drew (scaled)."""
    color = OUTCOME_COLORS.get(c.outcome, "black")
    if c.test == "sign test":   # per seed +1 (win), -1 (loss), 0 (tie): no interval, no band
        _seed_dots(ax, y, c.diffs, color, rng)
        ax.plot([c.estimate], [y], "D", color=color, mec="black", ms=7, zorder=4)
        return [*c.diffs, c.estimate]
    _band(ax, y, c.delta * scale)
    if c.unit == "seeds":
        _seed_dots(ax, y, np.asarray(c.diffs) * scale, color, rng)
    est, low, high = c.estimate * scale, c.interval.low * scale, c.interval.high * scale
    if math.isfinite(low) and low != high:
        ax.errorbar([est], [y], xerr=[[est - low], [high - est]], fmt="none", ecolor=color, elinewidth=2.5,
                    capsize=4, zorder=3)
    if math.isfinite(est):
        ax.plot([est], [y], "D", color=color, mec="black", ms=7, zorder=4)
    seeds = np.asarray(c.diffs) * scale if c.unit == "seeds" else []   # per-example 0/1s stay out of the view
    return [v for v in (est, low, high, *seeds) if math.isfinite(v)]


def _right_labels(ax: plt.Axes, ys, texts) -> None:
    twin = ax.twinx()
    twin.set_ylim(ax.get_ylim())
    twin.set_yticks(ys, texts, fontsize="x-small")
    twin.grid(False)


def _describe(c: Comparison, m: int) -> str:
    if c.test == "sign test":
        wins, losses = sum(d > 0 for d in c.diffs), sum(d < 0 for d in c.diffs)
        return f"{c.outcome}\nsign test: {wins} wins, {losses} losses of {c.n}"
    if c.test == "exact" and not math.isfinite(c.estimate):   # drawn as an arrow at the edge
        side = "first" if c.estimate > 0 else "second"
        return f"{c.outcome}\nexact: only the {side} has a value ({c.n} seeds)"
    if c.test == "exact":
        return f"{c.outcome}\nexact: same values on all {c.n} seeds"
    needed = f"\nabout {c.seeds_needed} seeds would decide it" if c.seeds_needed else ""
    return f"{c.outcome}\n{c.test}, n={c.n} {c.unit}, {'Holm ' if m > 1 else ''}p={c.p_adjusted:.2g}{needed}"


def verdict_forest(data: StudyData) -> plt.Figure | None:
    """One panel per metric (sign tests in their own): the comparisons of the study's verdict."""
    verdict = evaluate(data.manifest.get("verdict"), data.members, data.results_dir, data.manifest.get("design"))
    comparisons = list(verdict.comparisons)
    if not comparisons:
        return None
    panels: dict[tuple[str, bool], list[Comparison]] = {}
    for c in comparisons:
        panels.setdefault((c.metric, c.test == "sign test"), []).append(c)
    heights = [len(rows) + 1.2 for rows in panels.values()]
    fig, axes = plt.subplots(len(panels), 1, squeeze=False, gridspec_kw={"height_ratios": heights},
                             figsize=(PAGE_WIDTH_IN, 0.62 * sum(heights) + 1.4))
    rng = np.random.default_rng(0)
    levels = set()
    for ax, ((metric, signs), rows) in zip(axes[:, 0], panels.items()):
        scale = 1.0 if signs or not is_fraction(metric) else 100.0
        drawn = [x for y, c in enumerate(rows) for x in _row(ax, y, c, scale, rng)]
        low, high = _limits(ax, drawn, np.nan if signs else max(c.delta for c in rows) * scale)
        for y, c in enumerate(rows):   # an infinite exact difference: only one side has a number
            if c.test == "exact" and not math.isfinite(c.estimate):
                edge = high if c.estimate > 0 else low
                ax.plot([edge], [y], ">" if c.estimate > 0 else "<", color=OUTCOME_COLORS[c.outcome], ms=10)
        ax.axvline(0, color="black", lw=0.8)
        ax.xaxis.set_major_locator(MaxNLocator(6))   # the panel is narrow: fewer, readable ticks
        ax.set_yticks(range(len(rows)), [_wrap(c.label) for c in rows], fontsize="small")
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.grid(axis="y", visible=False)
        _right_labels(ax, range(len(rows)), [_describe(c, len(comparisons)) for c in rows])
        name = metric.replace("_", " ")
        ax.set_xlabel(f"sign per seed (+1: the claim's side wins), {name}" if signs
                      else f"difference in {name} ({unit_label(metric, True)}; > 0 favours the claim)",
                      fontsize="small")
        levels |= {c.interval.level for c in rows if c.test == "paired t"}
    level = "/".join(f"{lv * 100:.3g}%" for lv in sorted(levels)) or "95%"
    handles = [Patch(color=OUTCOME_COLORS[o], label=o) for o in OUTCOMES if any(c.outcome == o for c in comparisons)]
    handles += [Line2D([], [], ls="", marker="o", color="grey", alpha=0.6, label="one seed")
                ] if any(c.unit == "seeds" for c in comparisons) else []
    handles += [Line2D([], [], ls="", marker="D", color="grey", mec="black", label="mean difference"),
                Line2D([], [], color="grey", lw=2.5, label=f"{level} interval (paired t)"),
                Patch(color="0.85", label="smallest effect of interest")]
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=4, fontsize="small",
               frameon=False)
    fig.suptitle(f"{data.study}: the verdict's comparisons (verdict: {verdict.outcome})", fontsize="medium")
    fig.tight_layout()
    return fig


def final_accuracy(runs: pd.DataFrame, study: str, metric: str = "final_val_acc",
                   control: str | None = None, colors: dict | None = None) -> plt.Figure:
    """Left: `metric` per variant, every seed a dot in its variant's colour (an x where the run diverged
    or stopped early), mean and 95% Student-t CI in black.  Right, where the study has a control: each
    variant's paired difference to it per seed, mean and 95% CI, the metric's smallest effect as a grey
    band.  Variants run down the y axis, so 100+ variants and long names stay readable."""
    members = runs[runs.study == study]
    if "status" not in members:
        members = members.assign(status="completed")
    # Variants whose runs never measure the metric (an lr range test in the babysitting study) have no
    # row; a variant whose runs all diverged keeps one, with its crosses.
    measured = members[metric].notna() | members.status.isin(ENDED_EARLY)
    members = members[members.variant.isin(members.variant[measured])]
    data = StudyData(study, runs, pd.DataFrame(), {"control": control})
    colors = colors or data.colors
    order, note = shown_variants(members, control=data.control)
    shown = members[members.variant.isin(order)]
    panels = 2 if data.control else 1
    fig, axes = plt.subplots(1, panels, figsize=(PAGE_WIDTH_IN if panels == 2 else 7.5,
                                                 max(3.5, 0.24 * len(order) + 1.8)), sharey=True, squeeze=False)
    scale = 100.0 if is_fraction(metric) else 1.0
    name = metric.replace("_", " ")
    values = shown.assign(x=shown[metric], diverged=shown.status.isin(ENDED_EARLY))
    marks = _per_variant(axes[0, 0], values, order, colors, np.nan, (0.0, 1.0) if scale == 100 else None)
    axes[0, 0].set(xlabel=f"{name} ({unit_label(metric)})", title=f"{name} per variant")
    percent_axis(axes[0, 0].xaxis, metric)
    variant_axis(axes[0, 0], order, data.control)
    handles = [Line2D([], [], ls="", marker="o", color="grey", label="one seed"),
               Line2D([], [], color="black", marker="|", ms=10, label="mean, 95% CI (t)")]
    if data.control:
        diffs = paired_to_control(shown, data.control, metric).rename(columns={"diff": "x"})
        delta = smallest_effect(metric, None) * scale
        marks |= _per_variant(axes[0, 1], diffs.assign(x=diffs.x * scale), order, colors, delta,
                              (-scale, scale) if scale == 100 else None)
        axes[0, 1].axvline(0, color="black", lw=0.8)
        axes[0, 1].set(xlabel=f"paired difference to the control ({unit_label(metric, True)})",
                       title=f"vs the control ({control})")
        handles.append(Patch(color="0.85", label="smallest effect of interest"))
    if marks:
        handles.append(Line2D([], [], ls="", marker="x", color="black",
                              label="diverged or stopped early (left edge: no value)"))
    fig.suptitle(f"{study}: {name}" + (f" ({note})" if note else ""), fontsize="medium")
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=4, fontsize="small",
               frameon=False)
    fig.tight_layout()
    return fig


def _per_variant(ax: plt.Axes, frame: pd.DataFrame, order: list[str], colors: dict, delta: float,
                 bounds: tuple[float, float] | None) -> bool:
    """One row per variant of `frame` (columns variant, x, diverged): seeds, mean and 95% CI.  The view
    stays inside `bounds` (no accuracy beyond 0-100%: a t-interval over 2-3 seeds reaches past them and
    is cut at the edge).  Returns whether any seed diverged."""
    pos = frame.variant.map({v: i for i, v in enumerate(order)}) + \
        np.random.default_rng(0).uniform(-JITTER, JITTER, len(frame))
    ok, bad = frame[~frame.diverged], frame[frame.diverged]
    ax.scatter(ok.x, pos[ok.index], s=20, alpha=0.7, c=[colors[v] for v in ok.variant], linewidths=0, zorder=3)
    cis = [t_interval(frame.x[frame.variant == v]) for v in order]
    means = np.array([c.mean for c in cis])
    err = np.nan_to_num(np.array([[c.mean - c.low for c in cis], [c.high - c.mean for c in cis]]))
    ax.errorbar(means, np.arange(len(cis)), xerr=err, fmt="|", color="black", ms=12, capsize=3, lw=1.2, zorder=4)
    for y in range(len(order)):
        _band(ax, y, delta)
    # the seeds and means (intervals may run off); 0 where the values are differences
    low, high = _limits(ax, list(frame.x) + list(means), delta, zero=math.isfinite(delta))
    if bounds:
        low, high = max(low, bounds[0] - 0.005 * (bounds[1] - bounds[0])), min(high, bounds[1] * 1.005)
        ax.set_xlim(low, high)
    if not bad.empty:
        ax.scatter(bad.x.fillna(low), pos[bad.index], marker="x", s=30, c=[colors[v] for v in bad.variant],
                   zorder=5, clip_on=False)
    return not bad.empty
