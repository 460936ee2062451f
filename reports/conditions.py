"""Run conditions for the index: what the numbers were measured on (data, seeds, epochs, hardware, versions).

Read from the runs table (config.* columns, summary `device` and `versions.*`), never from the machine
that builds the report: a report rebuilt elsewhere still describes where the runs trained.
"""
from __future__ import annotations

import pandas as pd


def _text(value) -> str:
    """200.0 -> 200 (a training-set size read back as a float), other values as they are."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _values(series: pd.Series) -> str:
    values = sorted({_text(v) for v in series.dropna()}, key=lambda v: (len(v), v))
    return ", ".join(values) if values else "unknown"


def run_conditions(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """(what, value) rows: runs by status, dataset(s) and training-set size, seeds (and how many per
    variant in each study), epochs configured and trained, device(s), and each library's version(s)."""
    col = lambda name: runs[name] if name in runs else pd.Series(dtype=object)  # noqa: E731
    status = runs.status.value_counts()
    per_study = runs.groupby("study", sort=False).apply(
        lambda d: int(d.groupby("variant").seed.nunique().max()), include_groups=False)
    rows = [("runs", f"{len(runs)} ({', '.join(f'{n} {s}' for s, n in status.items())})"),
            ("dataset(s)", _values(col("config.data.name"))),
            ("training examples", _values(col("config.data.train_size").astype(object).fillna("all"))),
            ("seeds", f"{_values(runs.seed)}; per variant: "
                      + ", ".join(f"{study} {n}" for study, n in per_study.items())),
            ("epochs (configured)", _values(col("config.trainer.max_epochs"))),
            ("epochs (trained, min-max)", _span(col("epochs"))),
            ("device(s)", _values(col("device"))),
            ("precision", _values(col("config.trainer.precision")))]
    rows += [(f"{c[len('versions.'):]} version", _values(runs[c])) for c in runs.columns if c.startswith("versions.")]
    return rows


def _span(series: pd.Series) -> str:
    values = pd.to_numeric(series, errors="coerce").dropna()
    return "unknown" if values.empty else f"{int(values.min())}-{int(values.max())}"


def conditions_markdown(rows: list[tuple[str, str]]) -> list[str]:
    return ["| run condition | value |", "| --- | --- |"] + [f"| {k} | {v.replace('|', '/')} |" for k, v in rows]
