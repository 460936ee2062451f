"""Tidy tables from the results on disk: only manifests and run files are read, never directory names.

runs:    one row per (study, variant, seed): status, every config key as a dotted column, summary metrics
history: long form (run_id, epoch, metric, value)
Missing, partial or corrupt files are reported and skipped.
"""
from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ablations.results import DONE, Registry, read_runs, run_dir


def runs_table(results_dir: str | Path) -> pd.DataFrame:
    """The runs table of ablations.results.read_runs; damaged files are warned about (once each) and
    kept in `table.attrs["errors"]` for the report's list of damaged runs."""
    table, errors = read_runs(results_dir)
    for e in errors:
        warnings.warn(f"skipping damaged {e.path}: {e.reason}")
    table.attrs["errors"] = errors
    return table


def history_table(results_dir: str | Path, run_ids) -> pd.DataFrame:
    # The csv module, and one DataFrame per distinct header: a pandas read_csv and melt per file cost
    # ~15 ms each, 15 s for a 1,000-run report (benchmarks/report_speed.py).
    groups: dict[tuple[str, ...], tuple[list[str], list[list[str]]]] = {}
    for rid in sorted(set(run_ids)):
        path = run_dir(results_dir, rid) / "metrics.csv"
        if not path.exists():
            continue
        try:
            with open(path, newline="") as f:
                header, *rows = list(csv.reader(f))
        except (OSError, UnicodeDecodeError, csv.Error, ValueError) as e:
            warnings.warn(f"skipping unreadable {path}: {e}")
            continue
        if "epoch" not in header:
            warnings.warn(f"skipping unreadable {path}: no epoch column")
            continue
        ids, values = groups.setdefault(tuple(header), ([], []))
        width = len(header)
        for row in rows:   # a row cut short by a crash: the missing values are NaN, as read_csv makes them
            ids.append(rid)
            values.append((row + ["nan"] * width)[:width])
    frames = []
    for header, (ids, values) in groups.items():
        if not values:
            continue
        try:    # numpy parses the numeric strings at C speed; anything odd goes through pandas
            wide = pd.DataFrame(np.array(values, dtype=float), columns=list(header))
        except ValueError:
            wide = pd.DataFrame(values, columns=list(header)).apply(pd.to_numeric, errors="coerce")
        wide.insert(0, "run_id", ids)
        frames.append(wide.melt(id_vars=["run_id", "epoch"], var_name="metric", value_name="value"))
    if not frames:
        return pd.DataFrame(columns=["run_id", "epoch", "metric", "value"])
    # Per run, metric by metric and epoch by epoch: the order the per-file melt gave.
    long = pd.concat(frames, ignore_index=True).sort_values("run_id", kind="stable", ignore_index=True)
    long["epoch"] = long["epoch"].astype("int64") if long["epoch"].notna().all() else long["epoch"]
    return long[["run_id", "epoch", "metric", "value"]]


def study_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per study and variant: seeds, mean and std of final val and test accuracy, and counts of
    diverged, stopped_early and failed runs."""
    if runs.empty:
        return runs
    agg = runs.groupby(["study", "variant"], sort=False).agg(
        n=("seed", "size"), val_acc=("final_val_acc", "mean"), val_acc_std=("final_val_acc", "std"),
        test_acc=("test_acc", "mean"), diverged=("status", lambda s: int((s == "diverged").sum())),
        stopped_early=("status", lambda s: int((s == "stopped_early").sum())),
        failed=("status", lambda s: int((~s.isin(DONE)).sum())))
    return agg.reset_index()


# Extra per-study tables: a function of a reports.figures.StudyData returning a DataFrame, or None where
# it does not apply.  The report writes each as `<study>_<name>.csv` and shows it in the index.
TABLES: Registry = Registry("table")
