"""The registry of per-study figures the report draws, in the order the report shows them.

A FIGURES entry takes a StudyData and returns a figure, or None where it does not apply (a heatmap
needs two axes); adding a figure to every report is one registered function.  The figures every
study gets are registered here, first: the verdict's forest plot, the learning curves, the final
accuracy against the control, the heatmap of a grid.  Family modules (convergence, diagnostics,
babysitting_figures, transfer_figures, search, ensembles) register theirs when imported, after these.
Every figure reads the tidy tables and run files only: the report never loads the training stack.
"""
from __future__ import annotations

from typing import Callable

import matplotlib.pyplot as plt

from ablations.results import Registry

from .curves import learning_curves
from .forest import final_accuracy, verdict_forest
from .heatmaps import heatmap
from .plotting import StudyData, mean_ci, shown_variants  # noqa: F401  (what the report and tests import from here)

FIGURES: Registry[Callable[[StudyData], "plt.Figure | None"]] = Registry("figure")


def _has_acc(d: StudyData) -> bool:
    """Studies whose runs have no accuracy (lr range tests, optimizer landscapes) get no accuracy figures."""
    return "final_val_acc" in d.members and d.members.final_val_acc.notna().any()


FIGURES.add("verdict", verdict_forest)
FIGURES.add("curves", learning_curves)
FIGURES.add("final_acc", lambda d: final_accuracy(d.runs, d.study, control=d.control, colors=d.colors)
            if _has_acc(d) else None)
FIGURES.add("heatmap", heatmap)
