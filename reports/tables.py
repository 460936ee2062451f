"""Tidy tables from the results on disk: only manifests and run files are read, never directory names.

runs:    one row per (study, variant, seed): status, every config key as a dotted column, summary metrics
history: long form (run_id, epoch, metric, value)
Missing, partial or corrupt files are reported and skipped.
"""
from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ablations.results import DONE, METRICS, Registry, read_runs, run_dir


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
    """Per study and variant: seeds, mean and std of final val and test accuracy, diverged/failed counts."""
    if runs.empty:
        return runs
    agg = runs.groupby(["study", "variant"], sort=False).agg(
        n=("seed", "size"), val_acc=("final_val_acc", "mean"), val_acc_std=("final_val_acc", "std"),
        test_acc=("test_acc", "mean"), diverged=("status", lambda s: int((s == "diverged").sum())),
        failed=("status", lambda s: int((~s.isin(DONE)).sum())))
    return agg.reset_index()


# Extra per-study tables: a function of a reports.figures.StudyData returning a DataFrame, or None where
# it does not apply.  The report writes each as `<study>_<name>.csv` and shows it in the index.
TABLES: Registry = Registry("table")


# --- what the index shows of a table -------------------------------------------------------------------
# The CSVs keep every digit; the index shows accuracies in percent (one decimal: a digits val split has
# ~180 examples, so 0.1 points is below one example), differences in percentage points, other numbers
# to 3 significant digits, and float dust (-3.7e-17, -0.0) as 0.
def is_fraction(metric: str) -> bool:
    """Accuracies and other fractions are shown in percent (names outside METRICS: by their words)."""
    return METRICS.get(metric).unit == "fraction" if metric in METRICS else "acc" in metric or "gain" in metric


def _clean(value: float, decimals: int) -> float:
    value = round(float(value), decimals)
    return 0.0 if value == 0 else value    # -0.0 -> 0.0


def percent(value: Any, signed: bool = False) -> str:
    if not _finite(value):
        return ""
    value = _clean(100 * value, 1)
    return f"{value:{'+' if signed and value else ''}.1f}"   # no sign on a zero


def decimals(values: Any) -> int | None:
    """Decimals that give the largest of `values` 3 significant digits (one count for a whole column or
    interval, so its numbers line up); None for numbers too small or large for fixed notation."""
    finite = [abs(float(v)) for v in values if _finite(v) and abs(float(v)) > 1e-10]
    if not finite or all(v.is_integer() for v in finite):
        return 0
    top = math.floor(math.log10(max(finite)))
    return None if top < -4 or top > 8 else max(0, 2 - top)


def number(value: Any, signed: bool = False, places: int | None | str = "auto") -> str:
    """A number to `places` decimals (default: 3 significant digits); exponent form only outside
    1e-4..1e9; float dust (-3.7e-17) and -0.0 as 0."""
    if not _finite(value):
        return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    places = decimals([value]) if places == "auto" else places
    sign = "+" if signed else ""
    if places is None:
        return f"{float(value):{sign}.3g}"
    value = _clean(value, places)
    sign = sign if value else ""
    return f"{value:{sign},.{places}f}" if abs(value) >= 1e4 else f"{value:{sign}.{places}f}"


def column(values: Any, fraction: bool = False, signed: bool = False) -> list[str]:
    """A column of numbers with one count of decimals (fractions in percent, one decimal)."""
    if fraction:
        return [percent(v, signed) for v in values]
    values = list(values)
    places = decimals(values)
    return [number(v, signed, places) for v in values]


def interval(low: Any, high: Any, fraction: bool, signed: bool = False, places: int | None | str = "auto") -> str:
    if not (_finite(low) and _finite(high)):
        return ""
    if fraction:
        return f"[{percent(low, signed)}, {percent(high, signed)}]"
    places = decimals([low, high]) if places == "auto" else places
    return f"[{number(low, signed, places)}, {number(high, signed, places)}]"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(value)


def _with_ci(mean: Any, low: Any, high: Any, fraction: bool, signed: bool = False) -> str:
    shown = percent(mean, signed) if fraction else number(mean, signed)
    ci = interval(low, high, fraction, signed)
    return f"{shown} {ci}".strip()


def rule_metrics(rule: Any) -> list[str]:
    """The metrics a verdict rule reads (nested rules included), in order."""
    if isinstance(rule, dict):
        found = [rule[k] for k in ("metric", "select") if isinstance(rule.get(k), str)]
        return list(dict.fromkeys(found + [m for r in rule.get("rules", []) for m in rule_metrics(r)]))
    return []


def rule_names(rule: Any) -> list[str]:
    """The kinds of a verdict rule and its nested rules (`better`, `ensemble_gain`...)."""
    if isinstance(rule, dict):
        return [str(rule.get("rule"))] + [n for r in rule.get("rules", []) for n in rule_names(r)]
    return []


def display_stats(stats: pd.DataFrame, members: pd.DataFrame, manifest: dict) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The study's stats table as the index shows it: one column per axis, the control first and
    marked, variants that are the same runs as another (the baseline and `activation=relu`) folded
    into it, the verdict's own metrics, diverged and failed counts.  Returns (cells as text, CSS
    classes per cell), or None where the table would hold no number (landscapes have no accuracy)."""
    control = manifest.get("control")
    order = [control] * (control in set(stats.variant)) + [v for v in stats.variant if v != control]
    if manifest.get("mode") == "random":   # trials have no order of their own: best first
        best = stats.set_index("variant").val_acc.sort_values(ascending=False, kind="stable").index
        order = order[:1] + [v for v in best if v != control] if control else list(best)
    same = duplicates(members, order)
    shown = [v for v in order if v not in same]
    notes = {v: [f"= {d}" for d, kept in same.items() if kept == v] for v in shown}
    by_variant = stats.set_index("variant").loc[shown]
    first = members.drop_duplicates("variant").set_index("variant")
    cells: dict[str, list[str]] = {}
    for axis in manifest.get("axes", []):
        name = axis.rsplit(".", 1)[-1]
        cells[axis if name in cells else name] = [_axis_value(first, v, axis) for v in shown]
    axes, s = list(cells), by_variant
    cells["seeds"] = [str(int(n)) for n in s.n]
    cells["val acc, % [95% CI]"] = [_with_ci(*r, True) for r in zip(s.val_acc, s.val_low, s.val_high)]
    cells["test acc, % [95% CI]"] = [_with_ci(*r, True) for r in zip(s.test_acc, s.test_low, s.test_high)]
    if "vs_control" in s:
        cells[f"val vs {control}, points [95% CI]"] = [
            "control" if v == control else _with_ci(m, lo, hi, True, signed=True)
            for v, m, lo, hi in zip(shown, s.vs_control, s.vs_control_low, s.vs_control_high)]
    done = members[members.status.isin(DONE)]
    for metric in rule_metrics(manifest.get("verdict")):
        if metric in members and metric not in ("final_val_acc", "test_acc"):
            means, fraction = done.groupby("variant")[metric].mean(), is_fraction(metric)
            cells[f"{metric}{', %' if fraction else ''} (mean)"] = column([means.get(v, math.nan) for v in shown],
                                                                            fraction)
    cells["train-val gap, points"] = [percent(g, signed=True) for g in s.gap]
    if not any(x not in ("", "control") for c in cells if c not in axes + ["seeds"] for x in cells[c]):
        return None
    cells["diverged"] = [str(int(x)) for x in s.diverged]
    cells["failed"] = [str(int(x)) for x in s.failed]
    cells["note"] = [", ".join((["control"] if v == control else []) + notes.get(v, [])) for v in shown]
    table = pd.DataFrame(cells)
    table = table[[c for c in table if (table[c] != "").any() or c in ("diverged", "failed")]]
    classes = pd.DataFrame("", index=table.index, columns=table.columns)
    for c in table.columns[len(axes):]:
        if c != "note":
            classes[c] = "num"
    classes.loc[[v == control for v in shown]] += " control"
    for c in ("diverged", "failed"):
        classes.loc[table[c] != "0", c] += " warn"
    return table, classes


def duplicates(members: pd.DataFrame, order: list[str]) -> dict[str, str]:
    """{variant: the earlier variant in `order` with exactly the same runs}: a one-axis study's baseline
    and its `activation=relu` are one set of runs, shown once."""
    runs_of = {v: frozenset(part.run_id) for v, part in members.groupby("variant", sort=False)}
    first: dict[frozenset, str] = {}
    same = {}
    for v in order:
        runs = runs_of.get(v)
        if runs and runs in first:
            same[v] = first[runs]
        elif runs:
            first[runs] = v
    return same


def _axis_value(first: pd.DataFrame, variant: str, axis: str) -> str:
    """The variant's label on the axis; a run not varied on it (the baseline) shows its config value."""
    row = first.loc[variant]
    for column in (f"axis.{axis}", f"config.{axis}"):
        value = row.get(column)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            return str(value)
    return "(baseline)"


def display_frame(table: pd.DataFrame, hide: Any = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Any other study table (ensembles...) formatted like display_stats: fractions in percent, their
    `_ci` text columns re-read and shown in percent too, headers with spaces; rows of the variants in
    `hide` (duplicates of another) left out."""
    if "variant" in table:
        table = table[~table.variant.isin(list(hide))].reset_index(drop=True)
    cells, classes = {}, {}
    for c in table.columns:
        col, fraction = table[c], is_fraction(c)
        if c.endswith("_ci"):
            pairs = col.astype(str).str.findall(r"[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?")
            base_fraction = is_fraction(c[:-3])
            cells[c] = [interval(float(p[0]), float(p[1]), base_fraction, True) if len(p) == 2 else "" for p in pairs]
        elif pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            cells[c] = column(col, fraction, signed="gain" in c or "diff" in c)
        else:
            cells[c] = ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in col]
        numeric = pd.api.types.is_numeric_dtype(col) or c.endswith("_ci")
        classes[c] = "num" if numeric else ""
    header = {c: _header(c, pd.api.types.is_float_dtype(table[c])) for c in table.columns}
    frame = pd.DataFrame(cells).rename(columns=header)
    return frame, pd.DataFrame({header[c]: [v] * len(frame) for c, v in classes.items()})


def _header(c: str, is_float: bool) -> str:
    """`val_gain_ci` -> `val gain [95% CI]`; fractions say their unit (percent, or points of a gain)."""
    if c.endswith("_ci"):
        return c[:-3].replace("_", " ") + " [95% CI]"
    unit = (", points" if "gain" in c or "diff" in c else ", %") if is_fraction(c) and is_float else ""
    return c.replace("_", " ") + unit
