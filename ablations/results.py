"""The results folder is a contract, and this module owns it: layout, statuses, metric names, the
schema of summary.json and of the study manifests, and the one reader that the stage planner, the
ledger and the report all go through.

    <results>/studies/<study>.json            manifest: which run is which (variant, seed) of a study
    <results>/runs/<run_id>/config.json       the resolved config
                            metrics.csv       one row per finished epoch
                            summary.json      written last: status, attempt, code version, metrics

It imports only the standard library, pandas and the torch-free Registry, so a report rebuilds
anywhere without the training stack.  Damaged files never crash a reader: each becomes a
ResultsError (path, reason), the run counts as not done, and the grid trains it again.
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from lit_modules.registry import ConfigError, Registry

from .storage import write_json

# --- statuses -------------------------------------------------------------------------------------
# completed: trained and tested; diverged: the loss became non-finite (a result, not an error);
# stopped_early: a study's opt-in early stop ended it (search stages); failed: an error, retried;
# interrupted: Ctrl-C or SIGTERM ended it, retried without charging an attempt.
STATUSES = ("completed", "diverged", "stopped_early", "failed", "interrupted")
DONE = frozenset({"completed", "diverged", "stopped_early"})


class ResultsError(Exception):
    """A results file that does not follow the contract: unreadable, damaged, or inconsistent."""

    def __init__(self, path: Path | str, reason: str):
        super().__init__(path, reason)   # both in args: copies and pickles rebuild it
        self.path, self.reason = Path(path), reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


# --- layout ---------------------------------------------------------------------------------------
def run_dir(results: str | Path, run_id: str) -> Path:
    return Path(results) / "runs" / run_id


def manifest_path(results: str | Path, study: str) -> Path:
    return Path(results) / "studies" / f"{study}.json"


# --- metrics --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Metric:
    """A number a run (or the report, `derived`) produces.  `smallest_effect` is the smallest difference
    that matters for verdicts unless a rule sets its own; `procedures` are those whose runs have it."""
    higher_is_better: bool | None
    unit: str
    smallest_effect: float = math.nan
    procedures: tuple[str, ...] = ("fit", "overfit")
    derived: bool = False      # computed by the report from metrics.csv, not stored in summary.json


_ACC = dict(higher_is_better=True, unit="fraction", smallest_effect=0.005)   # half a point of accuracy
_LOSS = dict(higher_is_better=False, unit="nats", smallest_effect=0.01)
_LANDSCAPE = ("landscape",)
METRICS: Registry[Metric] = Registry("metric", {
    "initial_loss": Metric(None, "nats"),
    "best_val_acc": Metric(**_ACC),
    "final_val_acc": Metric(**_ACC),
    "test_acc": Metric(**_ACC),
    "train_acc": Metric(**_ACC),
    "clean_train_acc": Metric(**_ACC),
    "test_loss": Metric(**_LOSS),
    "train_loss": Metric(**_LOSS),
    "val_loss": Metric(**_LOSS),
    "wall_time_s": Metric(False, "seconds", 0.5),
    "epochs": Metric(None, "epochs"),
    "train_examples": Metric(None, "images", procedures=("fit", "overfit", "lr_find")),
    "diverged_step": Metric(None, "steps"),
    "stopped_early_epoch": Metric(None, "epochs"),
    # Under data.label_noise: on the corrupted training examples, the share of corrupted labels the net
    # reproduces (memorization) and of true labels it recovers.
    "memorized_frac": Metric(False, "fraction", 0.01),
    "corrupted_true_acc": Metric(**_ACC),
    "corrupted_n": Metric(None, "examples"),
    # Babysitting diagnostics (lit_modules/diagnostics.py), on fit runs with diagnostics on.
    "expected_initial_loss": Metric(None, "nats"),
    "initial_act_std": Metric(None, "std", 0.01),
    "initial_saturated_frac": Metric(None, "fraction", 0.01),
    "final_saturated_frac": Metric(None, "fraction", 0.01),
    "final_dead_frac": Metric(False, "fraction", 0.01),
    "final_update_ratio": Metric(None, "ratio"),
    # Derived by the report from the learning curves (reports/verdicts.py add_convergence).
    "val_loss_auc": Metric(False, "nats x epochs", 0.05, derived=True),
    **{f"epochs_to_{f}": Metric(False, "epochs", 1.0, derived=True) for f in (90, 95, 99)},
    **{f"seconds_to_{f}": Metric(False, "seconds", 0.5, derived=True) for f in (90, 95, 99)},
    "gap": Metric(False, "fraction", 0.01, derived=True),
    # Procedure-specific (ablations/procedures.py, ablations/landscape.py).
    "lr_find_suggestion": Metric(None, "lr", procedures=("lr_find",)),
    "lr_find_points": Metric(None, "count", procedures=("lr_find",)),
    "lr_find_low_change": Metric(False, "fraction", procedures=("lr_find",)),
    "lr_find_blowup": Metric(True, "ratio", procedures=("lr_find",)),
    "lr_find_best_lr": Metric(None, "lr", procedures=("lr_find",)),
    "final_loss": Metric(False, "loss", 1e-3, procedures=_LANDSCAPE),
    "tail_loss": Metric(False, "loss", 1e-3, procedures=_LANDSCAPE),
    "distance": Metric(False, "distance", 1e-3, procedures=_LANDSCAPE),
    "shallow_progress": Metric(True, "fraction", 0.01, procedures=_LANDSCAPE),
    "overshoot": Metric(None, "fraction", 0.01, procedures=_LANDSCAPE),
    "steep_flips": Metric(None, "count", 1.0, procedures=_LANDSCAPE),
    # Censored: a run that never leaves the saddle has no escape step (+inf, never a number).
    "escape_step": Metric(False, "steps", 1.0, procedures=_LANDSCAPE),
    "steps_taken": Metric(None, "steps", procedures=_LANDSCAPE),
})
# Text and flags in summary.json that are not metrics.
LABELS = {"advice": str, "initial_loss_suspect": bool, "predictions": str, "error": str, "traceback": str,
          "device": str, "code_version": str, "versions": dict}


def check_metric(name: str, procedure: str) -> Metric:
    """The metric, if runs of `procedure` produce it; else a ConfigError naming what they produce."""
    metric = METRICS.get(name)
    if procedure not in metric.procedures:
        have = [n for n in METRICS.names() if procedure in METRICS.get(n).procedures]
        raise ConfigError(f"metric {name!r} is not produced by {procedure!r} runs; they produce: {', '.join(have)}")
    return metric


def direction(metric: str, higher_is_better: bool | None) -> bool:
    """A rule's own direction, else the metric's."""
    return METRICS.get(metric).higher_is_better if higher_is_better is None else higher_is_better


def smallest_effect(metric: str, delta: float | None) -> float:
    """A rule's own smallest effect of interest, else the metric's default."""
    return METRICS.get(metric).smallest_effect if delta is None else delta


# --- summary.json -----------------------------------------------------------------------------------
def _number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def validate_summary(obj: Any, path: Path | str) -> dict[str, Any]:
    """The summary as a dict, or ResultsError saying what breaks the schema."""
    if not isinstance(obj, dict):
        raise ResultsError(path, f"expected a JSON object, got {type(obj).__name__}")
    if obj.get("status") not in STATUSES:
        raise ResultsError(path, f"status {obj.get('status')!r} is not one of {', '.join(STATUSES)}")
    for key, low in (("seed", 0), ("attempt", 0)):   # attempt 0: interrupted before any attempt counted
        value = obj.get(key, low)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ResultsError(path, f"{key} must be an integer >= {low}, got {value!r}")
    if not isinstance(obj.get("run_id"), str):
        raise ResultsError(path, f"run_id must be a string, got {obj.get('run_id')!r}")
    for key, value in obj.items():
        if key in METRICS and not _number(value):
            raise ResultsError(path, f"metric {key} must be a number or null, got {value!r}")
        if key in LABELS and value is not None and not isinstance(value, LABELS[key]):
            raise ResultsError(path, f"{key} must be a {LABELS[key].__name__}, got {value!r}")
    return obj


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ResultsError(path, f"unreadable: {type(e).__name__}: {e}") from None


def read_summary(results: str | Path, run_id: str) -> dict[str, Any] | None:
    """The run's validated summary, None when it has none yet; ResultsError when it is damaged."""
    path = run_dir(results, run_id) / "summary.json"
    try:
        summary = validate_summary(_load_json(path), path)
    except FileNotFoundError:
        return None
    if summary["run_id"] != run_id:
        raise ResultsError(path, f"run_id {summary['run_id']!r} does not match its folder {run_id!r}")
    return summary


def write_summary(results: str | Path, summary: Mapping[str, Any]) -> None:
    """Validate, then write atomically: a summary the readers would reject is never written."""
    path = run_dir(results, summary["run_id"]) / "summary.json"
    write_json(path, validate_summary(json.loads(json.dumps(dict(summary), default=str)), path))


def read_config(results: str | Path, run_id: str) -> dict[str, Any]:
    path = run_dir(results, run_id) / "config.json"
    config = _load_json(path)
    if not isinstance(config, dict) or not all(isinstance(v, dict) for k, v in config.items() if k != "seed"):
        raise ResultsError(path, "expected an object of config sections")
    return config


def _csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a CSV whose every row has the header's width; ResultsError otherwise."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            header, *rows = list(csv.reader(f))
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, csv.Error, ValueError) as e:   # ValueError: empty file
        raise ResultsError(path, f"unreadable: {e}") from None
    bad = next((i for i, row in enumerate(rows, 1) if len(row) != len(header)), None)
    if bad is not None:
        raise ResultsError(path, f"row {bad} has {len(rows[bad - 1])} of {len(header)} fields (cut short?)")
    return header, rows


def read_metrics(results: str | Path, run_id: str, summary: Mapping[str, Any] | None = None) -> list[dict]:
    """metrics.csv as rows of floats.  Cut mid-row, non-numeric, or disagreeing with the summary's epoch
    count (a shorter file swapped in): ResultsError."""
    path = run_dir(results, run_id) / "metrics.csv"
    header, rows = _csv_rows(path)
    try:
        if "epoch" not in header:
            raise ValueError("no epoch column")
        table = [{k: float(v) for k, v in zip(header, row)} for row in rows]
    except ValueError as e:
        raise ResultsError(path, f"unreadable: {e}") from None
    epochs = (summary or {}).get("epochs")
    if epochs is not None and summary.get("status") in DONE and len(table) != epochs:
        raise ResultsError(path, f"{len(table)} epoch rows, but summary.json says {epochs} epochs")
    return table


def _check_csv(path: Path) -> None:
    _csv_rows(path)


def _check_json(path: Path) -> None:
    if not isinstance(_load_json(path), dict):
        raise ResultsError(path, "expected a JSON object")


def _check_npz(path: Path) -> None:
    import zipfile   # an .npz is a zip of .npy arrays: a cut or overwritten one fails its CRCs here
    try:
        with zipfile.ZipFile(path) as z:
            broken = z.testzip()
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as e:
        raise ResultsError(path, f"unreadable: {e}") from None
    if broken is not None:
        raise ResultsError(path, f"member {broken} is damaged")


# Extra files a run may hold, each checked when present (the report reads them: figures, ensembles).
RUN_FILES = {"diagnostics.csv": _check_csv, "activations.json": _check_json, "predictions.npz": _check_npz,
             "lr_find.csv": _check_csv, "trajectory.csv": _check_csv}


def check_run(results: str | Path, run_id: str) -> dict[str, Any] | None:
    """A finished run's summary after checking every file the report reads; None while unfinished.
    Raises ResultsError for the first damaged file (the ledger then retrains the run)."""
    summary = read_summary(results, run_id)
    if summary is None or summary["status"] not in DONE:
        return summary
    folder = run_dir(results, run_id)
    read_config(results, run_id)
    if (folder / "metrics.csv").exists() or summary.get("epochs"):
        read_metrics(results, run_id, summary)
    if summary.get("predictions") and not (folder / summary["predictions"]).exists():
        raise ResultsError(folder / summary["predictions"], "summary.json names it, but it is missing")
    for name, check in RUN_FILES.items():
        if (folder / name).exists():
            check(folder / name)
    return summary


# --- manifests --------------------------------------------------------------------------------------
MANIFEST_KEYS = {"name": str, "runs": list}     # required; the rest may be absent (older manifests)
MANIFEST_OPTIONAL = {"question": str, "claim": str, "mode": str, "axes": list, "tuned": list, "previous_stage": str,
                     "has_next_stage": bool, "control": (str, type(None)), "design": dict}


def read_manifest(path: Path) -> dict[str, Any]:
    manifest = _load_json(path)
    if not isinstance(manifest, dict):
        raise ResultsError(path, f"expected a JSON object, got {type(manifest).__name__}")
    for key, kind in MANIFEST_KEYS.items():
        if not isinstance(manifest.get(key), kind):
            raise ResultsError(path, f"{key} must be a {kind.__name__}, got {manifest.get(key)!r}")
    for key, kind in MANIFEST_OPTIONAL.items():
        if key in manifest and not isinstance(manifest[key], kind):
            raise ResultsError(path, f"{key} has the wrong type: {manifest[key]!r}")
    for member in manifest["runs"]:
        if not (isinstance(member, dict) and isinstance(member.get("run_id"), str)
                and isinstance(member.get("variant"), str) and isinstance(member.get("seed"), int)):
            raise ResultsError(path, f"bad run entry {member!r}")
    if manifest.get("verdict") is not None and not isinstance(manifest["verdict"], dict):
        raise ResultsError(path, f"verdict must be a rule object or null, got {manifest['verdict']!r}")
    return manifest


def write_manifest(results: str | Path, manifest: Mapping[str, Any]) -> None:
    path = manifest_path(results, manifest["name"])
    write_json(path, manifest)


def read_manifests(results: str | Path) -> tuple[list[dict[str, Any]], list[ResultsError]]:
    manifests, errors = [], []
    for path in sorted((Path(results) / "studies").glob("*.json")):
        try:
            manifests.append(read_manifest(path))
        except ResultsError as e:
            errors.append(e)
    return manifests, errors


# --- the one reader ---------------------------------------------------------------------------------
def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def run_row(results: str | Path, study: str, member: Mapping[str, Any],
            errors: list[ResultsError]) -> dict[str, Any]:
    """One row of the runs table: study, variant, seed, run_id, status, `axis.<name>` labels, the config
    as `config.<dotted key>` columns, summary fields and metrics.  A damaged run reads as status
    `damaged`, with its error appended to `errors`."""
    rid = member["run_id"]
    row = {"study": study, "variant": member["variant"], "seed": member["seed"], "run_id": rid,
           "status": "missing"}
    row.update({f"axis.{k}": v for k, v in member.get("axes", {}).items()})
    try:
        summary = check_run(results, rid)
        config = read_config(results, rid) if summary is not None else None
    except FileNotFoundError:
        summary = config = None
    except ResultsError as e:
        errors.append(e)
        row["status"] = "damaged"
        return row
    row.update(flatten(config or {}, "config."))
    if summary is not None:
        row["status"] = summary["status"]
        row.update(flatten({k: v for k, v in summary.items() if k not in ("run_id", "status", "seed", "traceback")}))
    return row


def read_runs(results: str | Path) -> tuple[pd.DataFrame, list[ResultsError]]:
    """Every study's runs as one tidy table (one row per study, variant and seed), and what was damaged."""
    manifests, errors = read_manifests(results)
    rows = [run_row(results, m["name"], member, errors) for m in manifests for member in m["runs"]]
    table = pd.DataFrame(rows)
    for name in METRICS.names():   # failed and diverged runs store null metrics: NaN floats, never objects
        if name in table:
            table[name] = pd.to_numeric(table[name], errors="coerce")
    return table, errors
