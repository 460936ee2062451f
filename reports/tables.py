"""Tidy tables from the results on disk: only manifests and run files are read, never directory names.

runs:    one row per (study, variant, seed): status, every config key as a dotted column, summary metrics
history: long form (run_id, epoch, metric, value)
Missing, partial or corrupt files are reported and skipped.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd

from lit_modules import Registry

METRICS = ("initial_loss", "best_val_acc", "final_val_acc", "test_acc", "test_loss", "train_acc", "train_loss",
           "val_loss", "wall_time_s", "epochs", "clean_train_acc")


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        warnings.warn(f"skipping unreadable {path}: {e}")
        return None


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def runs_table(results_dir: str | Path) -> pd.DataFrame:
    results = Path(results_dir)
    rows = []
    for manifest_path in sorted((results / "studies").glob("*.json")):
        manifest = _read(manifest_path)
        if manifest is None:
            continue
        for member in manifest.get("runs", []):
            run = results / "runs" / member["run_id"]
            summary = _read(run / "summary.json") if (run / "summary.json").exists() else None
            config = _read(run / "config.json") if (run / "config.json").exists() else None
            row = {"study": manifest["name"], "variant": member["variant"], "seed": member["seed"],
                   "run_id": member["run_id"], "status": (summary or {}).get("status", "missing")}
            row.update({f"axis.{k}": v for k, v in member.get("axes", {}).items()})
            row.update(_flatten(config or {}, "config."))
            row.update({k: v for k, v in (summary or {}).items()
                        if k not in ("run_id", "status", "seed", "traceback", "versions")})
            rows.append(row)
    table = pd.DataFrame(rows)
    # Failed and diverged runs store null metrics: keep them as NaN floats, never as objects or zeros.
    for col in METRICS:
        if col in table:
            table[col] = pd.to_numeric(table[col], errors="coerce")
    return table


def history_table(results_dir: str | Path, run_ids) -> pd.DataFrame:
    frames = []
    for rid in sorted(set(run_ids)):
        path = Path(results_dir) / "runs" / rid / "metrics.csv"
        if not path.exists():
            continue
        try:
            wide = pd.read_csv(path)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
            warnings.warn(f"skipping unreadable {path}: {e}")
            continue
        long = wide.melt(id_vars="epoch", var_name="metric", value_name="value")
        frames.append(long.assign(run_id=rid)[["run_id", "epoch", "metric", "value"]])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["run_id", "epoch", "metric", "value"])


def study_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per study and variant: seeds, mean and std of final val and test accuracy, diverged/failed counts."""
    if runs.empty:
        return runs
    agg = runs.groupby(["study", "variant"], sort=False).agg(
        n=("seed", "size"), val_acc=("final_val_acc", "mean"), val_acc_std=("final_val_acc", "std"),
        test_acc=("test_acc", "mean"), diverged=("status", lambda s: int((s == "diverged").sum())),
        failed=("status", lambda s: int((s != "completed").sum() - (s == "diverged").sum())))
    return agg.reset_index()


# Extra per-study tables: a function of a reports.figures.StudyData returning a DataFrame, or None where
# it does not apply.  The report writes each as `<study>_<name>.csv` and shows it in the index.
TABLES: Registry = Registry("table")
