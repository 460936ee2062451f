"""What every report figure shares: the file-only backend and theme, StudyData (all a figure may read),
one colour per variant for the whole study, the colours of the four outcomes, accuracy in percent, and
the layout of small multiples.

Figure modules import from here; reports/figures.py holds the registry (FIGURES) and its order.
"""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: reports are rebuilt on servers and in CI without a display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from scipy import stats  # noqa: E402

from ablations.results import DONE, METRICS  # noqa: E402

from .display import is_fraction, metric_name  # noqa: E402,F401  (is_fraction: figures import it from here)
from .stats import CONTRADICTED, NO_DIFFERENCE, SUPPORTED, UNDECIDED  # noqa: E402

sns.set_theme(style="whitegrid", context="notebook")
# A fixed title height: matplotlib's automatic one measures every tick label of every axis at each draw
# (a fifth of a 1,000-run report's time, with 100+ variant names on an axis); no figure puts ticks on top.
plt.rcParams["axes.titley"] = 1.01
plt.rcParams["figure.dpi"] = 110
# The report shows figures at about 1,100 px; at dpi 110 that is 10 inches.  Wider figures are scaled
# down in the page and their text with them, so figure modules keep to this width.
PAGE_WIDTH_IN = 10.5


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
        """The study's axes present on every run, in the manifest's order (the runs table's columns are in
        the order the studies first used them)."""
        part = self.members
        present = [c[len("axis."):] for c in part.columns if c.startswith("axis.") and part[c].notna().all()]
        declared = [a for a in self.manifest.get("axes", []) if a in present]
        return declared + [a for a in present if a not in declared]

    @cached_property
    def order(self) -> list[str]:
        """Every variant of the study, in the study's order (the manifest's)."""
        return list(dict.fromkeys(self.members.variant))

    @property
    def control(self) -> str | None:
        """The variant the study compares the others with, when it names one that has runs."""
        control = self.manifest.get("control")
        return control if control in self.order else None

    @cached_property
    def shown(self) -> list[str]:
        """The variants the per-variant figures draw (shown_variants: all of them up to MAX_VARIANTS)."""
        if len(self.order) <= MAX_VARIANTS or "final_val_acc" not in self.members:
            return self.order
        return shown_variants(self.members, control=self.control)[0]

    @cached_property
    def colors(self) -> dict[str, tuple]:
        """One colour per variant, the same in every figure of the study; the distinct ones go to the
        variants the figures draw."""
        return variant_colors(self.order, self.control, self.shown)


# --- colours --------------------------------------------------------------------------------------
# Finished runs that ended before their last epoch: the loss turned non-finite, or the opt-in
# search-time stop ended them.  Figures mark them wherever they show runs.
ENDED_EARLY = ("diverged", "stopped_early")
GOLDEN = (5 ** 0.5 - 1) / 2   # hue step: consecutive hues as far apart as any sequence keeps them
CONTROL_COLOR = (0.2, 0.2, 0.2)   # the reference: dark grey wherever it appears
OUTCOME_COLORS = {SUPPORTED: "#1a9850", CONTRADICTED: "#d73027", NO_DIFFERENCE: "#4575b4", UNDECIDED: "#e08214"}


def variant_colors(order: list[str], control: str | None = None, first: list[str] = ()) -> dict[str, tuple]:
    """A function of the variant order (and `first`) alone, so every figure of a study agrees: the
    control dark grey, the others tab10 (up to 10) or tab20 (up to 20: neighbours in a grid's order,
    such as two depths of one init, get a dark and a light shade of one hue).  Beyond 20, tab20 goes
    to the variants in `first` (those the figures draw, at most 20), and the rest get hues a golden
    angle apart in study order, at two lightnesses, so that any few neighbours differ (evenly spaced
    hues made a dozen neighbours of a search one smear of green)."""
    others = [v for v in order if v != control]
    if len(others) <= 20:
        colors = dict(zip(others, sns.color_palette("tab10" if len(others) <= 10 else "tab20", len(others))))
    else:
        chosen = set(first)
        lead = [v for v in others if v in chosen][:20]
        chosen = set(lead)
        rest = [v for v in others if v not in chosen]
        colors = dict(zip(lead, sns.color_palette("tab20", len(lead))))
        colors.update({v: colorsys.hls_to_rgb((i * GOLDEN) % 1.0, (0.42, 0.6)[i % 2], 0.7) for i, v in enumerate(rest)})
    if control is not None:
        colors[control] = CONTROL_COLOR
    return {v: colors[v] for v in order}


def value_colors(values: list) -> dict:
    """One colour per value of one axis (an optimizer across landscape panels, a transfer mode)."""
    return variant_colors([str(v) for v in values])


# --- numbers --------------------------------------------------------------------------------------
def mean_ci(values: pd.DataFrame, by: list[str], column: str = "value", level: float | None = 0.95) -> pd.DataFrame:
    """Mean and Student-t interval over seeds per group (columns mean, low, high, n), or with level=None
    mean +- one standard error.  One vectorized pass, where seaborn's errorbar=("ci", 95) bootstraps
    every point of every curve (seconds per figure)."""
    agg = values.groupby(by, sort=False)[column].agg(["mean", "std", "count"])
    n = agg["count"].to_numpy(float)
    scale = 1.0 if level is None else np.where(n > 1, stats.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1)), 0.0)
    half = scale * agg["std"].fillna(0) / np.sqrt(np.maximum(n, 1))
    return agg.assign(low=agg["mean"] - half, high=agg["mean"] + half, n=agg["count"])[["mean", "low", "high", "n"]]


def percent_axis(axis, metric: str = "final_val_acc") -> None:
    """Tick labels of a fraction axis in percent: the tables show percentages too."""
    if is_fraction(metric):
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v * 100:.4g}%"))


def unit_label(metric: str, difference: bool = False) -> str:
    if is_fraction(metric):
        return "percentage points" if difference else "%"
    return METRICS.get(metric_name(metric)).unit if metric_name(metric) in METRICS else "no unit"


def paired_to_control(members: pd.DataFrame, control: str, metric: str = "final_val_acc") -> pd.DataFrame:
    """Per variant and seed that both it and the control finished: the paired difference (variant -
    control) of `metric`, NaN where one of the two runs has no number (diverged); column `diverged`
    marks the variant's own run as diverged or stopped early."""
    done = members[members.status.isin(DONE)][["variant", "seed", "status", metric]]
    reference = done[done.variant == control].set_index("seed")[metric]
    out = done[done.seed.isin(reference.index)]
    out = out.assign(reference=out.seed.map(reference))
    return out.assign(diff=out[metric] - out.reference, diverged=out.status.isin(ENDED_EARLY))


# --- variants shown and small multiples -----------------------------------------------------------
# Per-variant figures draw at most this many variants: beyond it names and colours stop being readable
# (and a 190-sample random search took a third of a 1,000-run report's time).  Every variant is still in
# the study's CSVs, and grids keep their heatmap of all cells.
MAX_VARIANTS = 20
MAX_LINES = 8   # one panel of overlaid curves up to this many variants; small multiples beyond


def shown_variants(members: pd.DataFrame, limit: int = MAX_VARIANTS, metric: str = "final_val_acc",
                   control: str | None = None) -> tuple[list[str], str]:
    """The variants a per-variant figure draws, in the study's order, and a note for its title: all of
    them up to `limit`; beyond, the control (else the first variant) and the best by mean `metric`."""
    order = list(dict.fromkeys(members.variant))
    if len(order) <= limit:
        return order, ""
    keep = control if control in order else order[0]
    means = members.groupby("variant", sort=False)[metric].mean().reindex([v for v in order if v != keep])
    best = set(means.sort_values(ascending=False, kind="stable").index[:limit - 1])
    which = "the control" if keep == control else "the first"
    return [v for v in order if v == keep or v in best], \
        f"{which} + the {limit - 1} best of {len(order)} variants by {metric.replace('_', ' ')}"


def columns_for(data: StudyData, n: int, most: int = 6) -> int:
    """Columns of a small-multiples grid: for a full grid of axes, the product of the last axes that
    fits in `most` (rows are then the first axes' values, e.g. init x (activation, depth)); otherwise
    about square."""
    sizes = [data.members[f"axis.{a}"].nunique() for a in data.axes]
    if sizes and math.prod(sizes) == n:
        cols = 1
        for size in reversed(sizes):
            if cols * size > most:
                break
            cols *= size
        if cols > 1:
            return cols
    return min(most, max(1, math.ceil(math.sqrt(n))))


def _split(variant: str) -> tuple[str, list[list[str]]]:
    """`grid:lr=0.1,wd=0.01` -> ("grid", [["lr", "0.1"], ["wd", "0.01"]]); ("", []) when not key=value."""
    kind, rest = variant.split(":", 1) if ":" in variant.split("=", 1)[0] else ("", variant)
    parts = [p.split("=", 1) for p in rest.split(",")]
    return (kind, parts) if all(len(p) == 2 for p in parts) else ("", [])


def panel_titles(variants: list[str]) -> tuple[list[str], str]:
    """Titles for small multiples and what they show: where every variant sets the same keys
    (`init=he,activation=relu,depth=10`), only the values (`he, relu, 10`) and the keys once
    (`init, activation, depth`; `grid/random: lr, weight_decay` for a search); else the names."""
    split = [_split(v) for v in variants]
    keys = {tuple(k for k, _ in parts) for _, parts in split}
    if len(keys) != 1 or not next(iter(keys)):
        return list(variants), "variant"
    kinds = sorted({kind for kind, _ in split} - {""})
    titles = [(f"{kind}: " if kind else "") + ", ".join(v for _, v in parts) for kind, parts in split]
    return titles, ("/".join(kinds) + ": " if kinds else "") + ", ".join(next(iter(keys)))


def variant_axis(ax, order: list[str], control: str | None = None) -> None:
    """Variants down the y axis, first on top: their values where they share keys (the keys as the
    axis label), the control in bold; 100+ variants and long names stay readable."""
    titles, keys = panel_titles(order)
    ax.set_yticks(range(len(order)), titles, fontsize="small" if len(order) < 40 else "x-small")
    for label, variant in zip(ax.get_yticklabels(), order):
        label.set_fontweight("bold" if variant == control else "normal")
    ax.set_ylabel("" if keys == "variant" else keys, fontsize="small")
    ax.set_ylim(len(order) - 0.5, -0.5)
    ax.grid(axis="y", visible=False)


def small_multiples(n: int, cols: int, width: float = PAGE_WIDTH_IN, panel_height: float = 1.7,
                    margins: tuple[float, float, float, float] = (0.8, 0.15, 0.75, 0.75)) -> tuple:
    """n panels in a grid `cols` wide, laid out once by hand (left, right, top, bottom margins in
    inches): tight_layout and shared axes measure every panel's ticks at each draw, seconds for 20."""
    rows = math.ceil(n / cols)
    left, right, top, bottom = margins
    height = panel_height * rows + top + bottom
    fig = plt.figure(figsize=(width, height))
    fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height, bottom=bottom / height,
                        wspace=0.12, hspace=0.5)
    with plt.rc_context({"xtick.labelsize": "x-small", "ytick.labelsize": "x-small"}):   # ticks made small
        return fig, [fig.add_subplot(rows, cols, i + 1) for i in range(n)]


def same_scale(axes: list, cols: int, xlim: tuple[float, float], ylim: tuple[float, float], xticks, yticks) -> None:
    """One scale for every panel, tick labels on the outer ones only (what sharex/sharey would do,
    with fixed ticks: no locator runs at draw time)."""
    n = len(axes)
    for i, ax in enumerate(axes):
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_xticks(xticks)
        ax.set_yticks(yticks)
        # Inner panels: no labels (an empty formatter is cheaper than restyling every tick).
        if i % cols:
            ax.yaxis.set_major_formatter(NullFormatter())
        if i + cols < n:
            ax.xaxis.set_major_formatter(NullFormatter())
