"""The transfer study's figure: target test accuracy against target training-set size, one line per mode.

The lecture's table in one picture: where the pretrained lines sit above `scratch` (little data) and
where they meet or cross it (more data).  The size axis is numeric and logarithmic: each run's own
number of training images (summary `train_examples`; else its config's data.train_size), so that
"full" sits where the full training set really is.  Every seed is a dot, the mean over seeds a line
with its 95% Student-t interval.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FixedLocator, NullLocator

from .figures import FIGURES
from .plotting import StudyData, mean_ci, percent_axis, value_colors

MODE, SIZE = "transfer.mode", "data.train_size"


def train_images(members: pd.DataFrame) -> pd.Series:
    """Images each run trained on: the count it recorded, else the size its config asked for (NaN
    for a "full" run stored before runs recorded their count)."""
    asked = pd.to_numeric(members.get(f"config.{SIZE}", pd.Series(np.nan, members.index)), errors="coerce")
    recorded = pd.to_numeric(members.get("train_examples", pd.Series(np.nan, members.index)), errors="coerce")
    return recorded.fillna(asked)


def accuracy_by_data_size(data: StudyData, metric: str = "test_acc") -> plt.Figure | None:
    if not {MODE, SIZE} <= set(data.axes):
        return None
    part = data.members.assign(mode=data.members[f"axis.{MODE}"].astype(str),
                               size_label=data.members[f"axis.{SIZE}"].astype(str), images=train_images(data.members))
    unknown = sorted(set(part.size_label[part.images.isna()]))
    part = part[part.images.notna()]
    if part.empty:
        return None
    modes = list(dict.fromkeys(data.members[f"axis.{MODE}"].astype(str)))
    colors = value_colors(modes)
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    dodge = {m: 1.0 + 0.04 * (i - (len(modes) - 1) / 2) for i, m in enumerate(modes)}   # x factor per mode
    rng = np.random.default_rng(0)
    for mode in modes:
        rows = part[part["mode"] == mode]
        x = rows.images * dodge[mode]
        ax.scatter(x * np.exp(rng.uniform(-0.02, 0.02, len(rows))), rows[metric], s=14, alpha=0.45,
                   color=colors[mode], linewidths=0)
        ci = mean_ci(rows.assign(x=x), ["x"], column=metric).sort_index()
        ax.errorbar(ci.index, ci["mean"], yerr=[ci["mean"] - ci["low"], ci["high"] - ci["mean"]], color=colors[mode],
                    marker="o", ms=5, capsize=3, lw=1.6, label=mode)
    # One tick per size the study used, labelled with its name and number of images.
    ticks = part.groupby("size_label", sort=False).images.median()
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(list(ticks)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{n:g}" if label == f"{n:g}" else f"{label}\n({n:g})" for label, n in ticks.items()])
    percent_axis(ax.yaxis, metric)
    ax.set_ylim(top=min(ax.get_ylim()[1], 1.01))   # a t-interval over 2-3 seeds can pass 100%; accuracy cannot
    name = metric.replace("_", " ")
    ax.set(xlabel="target training images (log scale)", ylabel=f"{name} (%)",
           title=f"{data.study}: {name} by target data size")
    if unknown:
        ax.set_title(f"{ax.get_title()}\n(not drawn: {', '.join(unknown)}, stored without its number of images)",
                     fontsize="small")
    ax.legend(title="mode (mean, 95% CI; dots: seeds)", loc="lower right", fontsize="small", title_fontsize="small")
    fig.tight_layout()
    return fig


FIGURES.add("accuracy_by_data_size", accuracy_by_data_size)
