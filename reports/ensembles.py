"""Model ensembles (lecture 7): average the softmax of several models, compare with a single model.

Two kinds, from the `predictions.npz` each finished run stores (ablations/predictions.py):
  independent  the runs of one variant that differ only by seed, averaged example by example,
               against the mean accuracy of those runs alone (the lecture: "about 2% better");
  snapshot     within one run of a cyclic schedule, the snapshots at the end of each cycle averaged,
               against the last snapshot alone (Huang et al.); averaged over the variant's runs.
The gain is tested with a paired t-test over the evaluated examples of the per-example difference
(ensemble correct minus single model correct; hundreds of examples, where the t-interval's coverage
holds: tests/test_stats.py): it measures the test-set noise of the gain, not the spread over seeds.  Missing or unreadable prediction files are reported and skipped.
"""
from __future__ import annotations

import math
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
import numpy as np
import pandas as pd

from ablations.results import Registry

from .figures import FIGURES
from .plotting import PAGE_WIDTH_IN, StudyData, panel_titles, percent_axis, shown_variants
from .stats import Interval, paired_t, t_interval
from .tables import TABLES
from .stats import UNDECIDED
from .verdicts import RULES, Check

SPLITS = ("val", "test")


def load_predictions(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of one run's predictions.npz, or None (with a warning) when missing or corrupt."""
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        warnings.warn(f"skipping run without predictions: {path} is missing")
        return None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        warnings.warn(f"skipping unreadable {path}: {e}")
        return None
    for split in SPLITS:
        probs, labels = arrays.get(f"{split}_probs"), arrays.get(f"{split}_labels")
        if probs is None or labels is None or probs.ndim != 2 or len(probs) != len(labels):
            warnings.warn(f"skipping unreadable {path}: no consistent {split}_probs / {split}_labels")
            return None
    return arrays


def ensemble_gain(probs: np.ndarray, labels: np.ndarray, single: np.ndarray | None = None):
    """probs (M, N, C) of M models on N examples -> (single acc, ensemble acc, per-example gain).

    The single model is the mean of the M models, or the model at index `single` (a snapshot
    ensemble is compared with its last snapshot).  The gain's mean is ensemble acc - single acc.
    """
    probs = np.asarray(probs, dtype=np.float32)   # float16 on disk: average in float32
    correct = probs.argmax(axis=2) == labels[None, :]
    alone = correct.mean(axis=0) if single is None else correct[single].astype(float)
    together = (probs.mean(axis=0).argmax(axis=1) == labels).astype(float)
    return float(alone.mean()), float(together.mean()), together - alone


def _same_labels(preds: list[dict[str, np.ndarray]], split: str) -> bool:
    first = preds[0][f"{split}_labels"]
    return all(np.array_equal(p[f"{split}_labels"], first) for p in preds[1:])


def _independent(preds: list[dict[str, np.ndarray]], split: str):
    labels = preds[0][f"{split}_labels"]
    return (*ensemble_gain(np.stack([p[f"{split}_probs"] for p in preds]), labels), len(preds))


def _snapshot(preds: list[dict[str, np.ndarray]], split: str):
    labels = preds[0][f"{split}_labels"]
    per_run = [ensemble_gain(p[f"snapshot_{split}_probs"], labels, single=-1) for p in preds]
    return (float(np.mean([r[0] for r in per_run])), float(np.mean([r[1] for r in per_run])),
            np.mean([r[2] for r in per_run], axis=0), len(preds[0]["snapshot_steps"]))


@dataclass(frozen=True)
class EnsembleKind:
    # Which of a variant's runs take part ([] when there is no ensemble of this kind).
    members: Callable[[list[dict[str, np.ndarray]]], list[dict[str, np.ndarray]]]
    # (predictions, split) -> (single acc, ensemble acc, per-example gain, models per ensemble)
    evaluate: Callable[[list[dict[str, np.ndarray]], str], tuple]


KINDS: Registry[EnsembleKind] = Registry("ensemble kind", {
    "independent": EnsembleKind(lambda found: found if len(found) >= 2 else [], _independent),
    "snapshot": EnsembleKind(lambda found: [p for p in found if len(p.get("snapshot_steps", ())) >= 2], _snapshot),
})


def ensemble_results(data: StudyData, variants=None) -> list[dict[str, Any]]:
    """One record per (variant, kind) with an ensemble: accuracies, per-example gains and intervals."""
    members = data.members[data.members.status == "completed"]
    # Only fit runs keep predictions, and say so in their summary (lr range tests, landscapes do not).
    members = members[members.predictions.notna()] if "predictions" in members else members.iloc[:0]
    if data.results_dir is None or members.empty:
        return []
    if variants is not None:
        members = members[members.variant.isin(variants)]
    runs_dir = Path(data.results_dir) / "runs"
    preds = {rid: load_predictions(runs_dir / rid / "predictions.npz") for rid in members.run_id}
    records = []
    for variant, part in members.groupby("variant", sort=False):
        available = [preds[r] for r in part.run_id if preds[r] is not None]
        for kind in KINDS.names():
            found = KINDS.get(kind).members(available)
            if not found:
                continue
            if not all(_same_labels(found, split) for split in SPLITS):
                warnings.warn(f"{data.study}/{variant}: runs were evaluated on different examples "
                              f"(labels differ); no {kind} ensemble")
                continue
            record: dict[str, Any] = {"variant": variant, "kind": kind, "n_runs": len(found)}
            for split in SPLITS:
                single, together, gain, n_models = KINDS.get(kind).evaluate(found, split)
                record.update({"n_models": n_models, f"{split}_single_acc": single,
                               f"{split}_ensemble_acc": together, f"{split}_gain": together - single,
                               f"{split}_gain_per_example": gain, f"{split}_interval": t_interval(gain)})
            records.append(record)
    return records


def _ci(interval: Interval) -> str:
    return "" if math.isnan(interval.low) else f"[{interval.low:+.4f}, {interval.high:+.4f}]"


def ensemble_table(data: StudyData) -> pd.DataFrame | None:
    """`<study>_ensembles.csv`: per variant and kind, single vs ensemble accuracy on val and test."""
    records = ensemble_results(data)
    if not records:
        return None
    rows = []
    for r in records:
        row = {k: r[k] for k in ("variant", "kind", "n_models", "n_runs")}
        for split in SPLITS:
            row.update({f"{split}_single_acc": r[f"{split}_single_acc"],
                        f"{split}_ensemble_acc": r[f"{split}_ensemble_acc"],
                        f"{split}_gain": r[f"{split}_gain"], f"{split}_gain_ci": _ci(r[f"{split}_interval"])})
        rows.append(row)
    return pd.DataFrame(rows)


def ensemble_figure(data: StudyData) -> plt.Figure | None:
    """Per variant and kind of ensemble, one row: test accuracy of the single model and of the ensemble
    (left), and the ensemble's gain with its 95% interval over the test examples (right).  Rows run down
    the page, so a search with dozens of variants stays as wide as the report."""
    order, note = shown_variants(data.members, control=data.control)
    records = ensemble_results(data, order)
    if not records:
        return None
    names, keys = panel_titles([r["variant"] for r in records])
    labels = [f"{name} ({r['kind']}, {r['n_models']} models)" for name, r in zip(names, records)]
    y = np.arange(len(records))
    fig, (left, right) = plt.subplots(1, 2, sharey=True, figsize=(PAGE_WIDTH_IN, 0.3 * len(records) + 1.9),
                                      gridspec_kw={"width_ratios": [1.2, 1]})
    colors = [data.colors.get(r["variant"], "black") for r in records]
    single = np.array([r["test_single_acc"] for r in records])
    together = np.array([r["test_ensemble_acc"] for r in records])
    left.hlines(y, single, together, color="0.6", lw=1.5)
    left.scatter(single, y, marker="o", facecolors="white", edgecolors=colors, s=36, zorder=3)
    left.scatter(together, y, marker="D", c=colors, s=36, zorder=3)
    left.set(xlabel="test accuracy (%)", title="test accuracy", ylabel="" if keys == "variant" else keys)
    percent_axis(left.xaxis, "test_acc")
    gains = [r["test_interval"] for r in records]
    means = np.array([g.mean for g in gains]) * 100
    right.hlines(y, [g.low * 100 for g in gains], [g.high * 100 for g in gains], colors=colors, lw=2.5)
    right.scatter(means, y, marker="D", c=colors, s=36, zorder=3)
    right.axvline(0, color="black", lw=0.8)
    n = len(records[0]["test_gain_per_example"])
    right.set(xlabel="gain (percentage points)", title=f"gain: 95% CI, paired t over {n} test images")
    left.set_yticks(y, labels, fontsize="small")
    left.set_ylim(len(records) - 0.5, -0.5)
    for ax in (left, right):
        ax.grid(axis="y", visible=False)
    handles = [Line2D([], [], ls="", marker="o", mfc="white", mec="grey",
                      label="single model (mean of the runs / last snapshot)"),
               Line2D([], [], ls="", marker="D", color="grey", label="ensemble (averaged softmax)")]
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2,
               fontsize="small", frameon=False)
    fig.suptitle(f"{data.study}: ensembles vs single models" + (f" ({note})" if note else ""), fontsize="medium")
    fig.tight_layout()
    return fig


@RULES.register("ensemble_gain")
def ensemble_gain_rule(rule: dict[str, Any], runs: pd.DataFrame, ctx) -> list:
    """The ensemble's gain over the single model, tested over the split's examples (paired t)."""
    study = runs.study.iloc[0] if len(runs) else ""
    data = StudyData(study, runs, pd.DataFrame(), {}, ctx.results_dir)
    kind, split = rule["kind"], rule["split"]
    label = f"{rule['variant']}: {kind} ensemble vs single model on {split}"
    found = [r for r in ensemble_results(data, [rule["variant"]]) if r["kind"] == kind]
    if not found:
        return [Check(UNDECIDED, f"{label}: no ensemble (predictions missing)")]
    r = found[0]
    pairs = [f"{r['n_models']} models: ensemble acc {r[f'{split}_ensemble_acc']:.4f} vs single "
             f"{r[f'{split}_single_acc']:.4f} (per-example differences over {len(r[f'{split}_gain_per_example'])} "
             f"{split} examples)"]
    return [paired_t(label, f"{split} accuracy", rule["delta"], r[f"{split}_gain_per_example"], pairs, ctx.level,
                     unit=f"{split} examples")]


TABLES.add("ensembles", ensemble_table)
FIGURES.add("ensembles", ensemble_figure)
