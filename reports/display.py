"""What the index shows of a table: the CSVs keep every digit, the page shows what a reader needs.

Accuracies in percent to one decimal (a digits val split has 144 examples: 0.1 points is below one
example), differences in percentage points with their sign, other numbers with one count of decimals
per column or interval (3 significant digits of the largest), float dust (-3.7e-17, -0.0) as 0.
Tables are plain Table values (text and CSS classes per cell) that reports/page.py renders as HTML
(through the Jinja template) and as Markdown.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ablations.results import DONE, METRICS


# --- numbers --------------------------------------------------------------------------------------------
def metric_name(name: str) -> str:
    """The registry's name of a metric as a rule may label it: `test accuracy` (ensembles) is test_acc."""
    return name.replace(" accuracy", "_acc")


def is_fraction(metric: str) -> bool:
    """Accuracies and other fractions are shown in percent, differences in percentage points (table
    columns outside METRICS, such as val_acc or ensemble gains: by their words)."""
    name = metric_name(metric)
    return METRICS.get(name).unit == "fraction" if name in METRICS else "acc" in name or "gain" in name


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(value)


def _clean(value: float, places: int) -> float:
    value = round(float(value), places)
    return 0.0 if value == 0 else value    # -0.0 -> 0.0


def percent(value: Any, signed: bool = False) -> str:
    if not _finite(value):
        return ""
    value = _clean(100 * value, 1)
    return f"{value:{'+' if signed and value else ''}.1f}"   # no sign on a zero


def decimals(values: Any) -> int | None:
    """Decimals that give the largest of `values` 3 significant digits (one count for a whole column or
    interval, so its numbers line up); 0 for integers; None where fixed notation would not do."""
    finite = [abs(float(v)) for v in values if _finite(v) and abs(float(v)) > 1e-10]
    if not finite or all(v.is_integer() for v in finite):
        return 0
    top = math.floor(math.log10(max(finite)))
    return None if top < -4 or top > 8 else max(0, 2 - top)


def number(value: Any, signed: bool = False, places: int | None | str = "auto") -> str:
    """A number to `places` decimals (default: 3 significant digits); exponent form only outside
    1e-4..1e9; float dust and -0.0 as 0; infinities as inf (a saddle never escaped)."""
    if not _finite(value):
        return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    places = decimals([value]) if places == "auto" else places
    if places is None:
        return f"{float(value):{'+' if signed else ''}.3g}"
    value = _clean(value, places)
    sign = "+" if signed and value else ""
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


def _with_ci(mean: Any, low: Any, high: Any, fraction: bool, signed: bool = False) -> str:
    shown = percent(mean, signed) if fraction else number(mean, signed)
    return f"{shown} {interval(low, high, fraction, signed)}".strip()


# --- rules ----------------------------------------------------------------------------------------------
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


# --- tables ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[list[str]]
    classes: list[list[str]]    # CSS classes per cell: num (right-aligned), control, warn
    numeric: list[bool]         # per column: right-aligned


def _table(cells: dict[str, list[str]], numeric: set[str], row_class: list[str], warn: set[str]) -> Table:
    columns = list(cells)
    rows = [list(r) for r in zip(*cells.values())] if columns else []
    classes = [[" ".join(filter(None, ("num" if c in numeric else "", row_class[i],
                                       "warn" if c in warn and row[j] not in ("", "0") else "")))
                for j, c in enumerate(columns)] for i, row in enumerate(rows)]
    return Table(columns, rows, classes, [c in numeric for c in columns])


def duplicates(members: pd.DataFrame, order: list[str]) -> dict[str, str]:
    """{variant: the earlier variant in `order` with exactly the same runs}: a one-axis study's baseline
    and its `activation=relu` are one set of runs, shown once."""
    runs_of = {v: frozenset(ids) for v, ids in members.groupby("variant", sort=False).run_id}
    first: dict[frozenset, str] = {}
    same = {}
    for v in order:
        runs = runs_of.get(v)
        if runs and runs in first:
            same[v] = first[runs]
        elif runs:
            first[runs] = v
    return same


def _axis_values(members: pd.DataFrame, axis: str, shown: list[str]) -> list[str]:
    """Each variant's label on the axis; a variant not varied on it (the baseline) shows its config
    value, or `(baseline)` where the axis is no config key (a bundle such as `optimizer`)."""
    found = {}
    for column in (f"config.{axis}", f"axis.{axis}"):   # the axis label wins over the config value
        if column in members:
            part = members[["variant", column]].dropna().drop_duplicates("variant")
            found.update(zip(part.variant, part[column].astype(str)))
    return [found.get(v, "(baseline)") for v in shown]


def display_stats(stats: pd.DataFrame, members: pd.DataFrame, manifest: dict) -> Table | None:
    """The study's stats table as the index shows it: one column per axis, the control first and
    marked, variants that are the same runs as another (the baseline and `activation=relu`) folded
    into it, the verdict's own metrics, diverged and failed counts.  None where the table would hold
    no number (landscapes have no accuracy)."""
    control = manifest.get("control")
    order = [control] * (control in set(stats.variant)) + [v for v in stats.variant if v != control]
    if manifest.get("mode") == "random":   # trials have no order of their own: best first
        best = stats.set_index("variant").val_acc.sort_values(ascending=False, kind="stable").index
        order = order[:1] + [v for v in best if v != control] if control else list(best)
    same = duplicates(members, order)
    shown = [v for v in order if v not in same]
    s = stats.set_index("variant").loc[shown]
    cells: dict[str, list[str]] = {}
    for axis in manifest.get("axes", []):
        name = axis.rsplit(".", 1)[-1]
        cells[axis if name in cells else name] = _axis_values(members, axis, shown)
    axes = list(cells)
    cells["seeds"] = [str(int(n)) for n in s.n]
    cells["val acc, % [95% CI]"] = [_with_ci(*r, True) for r in zip(s.val_acc, s.val_low, s.val_high)]
    cells["test acc, % [95% CI]"] = [_with_ci(*r, True) for r in zip(s.test_acc, s.test_low, s.test_high)]
    if "vs_control" in s:
        cells["val vs control, points [95% CI]"] = [
            "control" if v == control else _with_ci(m, lo, hi, True, signed=True)
            for v, m, lo, hi in zip(shown, s.vs_control, s.vs_control_low, s.vs_control_high)]
    done = members[members.status.isin(DONE)]
    for metric in rule_metrics(manifest.get("verdict")):
        if metric in members and metric in METRICS and metric not in ("final_val_acc", "test_acc"):
            # a saddle never escaped is +inf, and so is the mean of its variant: shown as inf, not dropped
            means = pd.to_numeric(done[metric], errors="coerce").groupby(done.variant).mean()
            fraction = is_fraction(metric)
            cells[f"{metric}{', %' if fraction else ''} (mean)"] = column([means.get(v, math.nan) for v in shown],
                                                                            fraction)
    cells["train-val gap, points"] = [percent(g, signed=True) for g in s.gap]
    measured = [c for c in cells if c not in axes and c != "seeds"]
    if not any(x not in ("", "control") for c in measured for x in cells[c]):
        return None
    # columns with no value left out (a vs-control column that only says "control": no val accuracy)
    cells = {c: v for c, v in cells.items() if c in axes or any(x not in ("", "control") for x in v)}
    cells["diverged"] = [str(int(x)) for x in s.diverged]
    if "stopped_early" in s and s.stopped_early.any():   # only searches stop runs early (an opt-in)
        cells["stopped early"] = [str(int(x)) for x in s.stopped_early]
    cells["failed"] = [str(int(x)) for x in s.failed]
    notes = {v: [f"= {d}" for d, kept in same.items() if kept == v] for v in shown}
    cells["note"] = [", ".join((["control"] if v == control else []) + notes[v]) for v in shown]
    numeric = {c for c in cells if c not in axes and c != "note"}
    return _table(cells, numeric, ["control" if v == control else "" for v in shown], {"diverged", "failed"})


def display_frame(table: pd.DataFrame, hide: Any = ()) -> Table:
    """Any other study table (ensembles...) formatted like display_stats: fractions in percent, their
    `_ci` text columns re-read and shown in percent too, headers with spaces; rows of the variants in
    `hide` (duplicates of another) left out."""
    if "variant" in table:
        table = table[~table.variant.isin(list(hide))]
    cells, numeric = {}, set()
    for c in table.columns:
        col, fraction, head = table[c], is_fraction(c), _header(c, pd.api.types.is_float_dtype(table[c]))
        if c.endswith("_ci"):
            pairs = [re.findall(r"[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?", v) if isinstance(v, str) else [] for v in col]
            cells[head] = [interval(float(p[0]), float(p[1]), is_fraction(c[:-3]), True) if len(p) == 2 else ""
                           for p in pairs]
        elif pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            cells[head] = column(col, fraction, signed="gain" in c or "diff" in c)
        else:
            cells[head] = ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in col]
        if c.endswith("_ci") or pd.api.types.is_numeric_dtype(col):
            numeric.add(head)
    return _table(cells, numeric, [""] * len(table), set())


def _header(c: str, is_float: bool) -> str:
    """`val_gain_ci` -> `val gain [95% CI]`; fractions say their unit (percent, or points of a gain)."""
    if c.endswith("_ci"):
        return c[:-3].replace("_", " ") + " [95% CI]"
    unit = (", points" if "gain" in c or "diff" in c else ", %") if is_fraction(c) and is_float else ""
    return c.replace("_", " ") + unit


def markdown_table(table: Table) -> list[str]:
    def cell(text: Any) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(cell(c) for c in table.columns) + " |",
             "| " + " | ".join("---:" if r else "---" for r in table.numeric) + " |"]
    return lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.rows]
