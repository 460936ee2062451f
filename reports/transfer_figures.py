"""The transfer study's figure: target test accuracy against target training-set size, one line per mode.

The lecture's table in one picture: where the pretrained lines sit above `scratch` (little data) and
where they meet or cross it (more data).  Every seed is a point under the mean and its 95% interval.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import seaborn as sns

from .figures import FIGURES, StudyData

MODE, SIZE = "transfer.mode", "data.train_size"


def accuracy_by_data_size(data: StudyData, metric: str = "test_acc") -> plt.Figure | None:
    if not {MODE, SIZE} <= set(data.axes):
        return None
    part = data.members.astype({f"axis.{MODE}": str, f"axis.{SIZE}": str})
    sizes = list(dict.fromkeys(part[f"axis.{SIZE}"]))   # the study's order: small to full
    modes = list(dict.fromkeys(part[f"axis.{MODE}"]))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    common = dict(x=f"axis.{SIZE}", y=metric, hue=f"axis.{MODE}", order=sizes, hue_order=modes, ax=ax)
    sns.stripplot(part, dodge=True, alpha=0.4, legend=False, **common)
    sns.pointplot(part, errorbar=("ci", 95), dodge=0.6, markers="_", **common)
    ax.set(xlabel="target training images", ylabel=metric.replace("_", " "),
           title=f"{data.study}: {metric.replace('_', ' ')} by target data size")
    ax.legend(title="mode", loc="lower right", fontsize="small")
    fig.tight_layout()
    return fig


FIGURES.add("accuracy_by_data_size", accuracy_by_data_size)
