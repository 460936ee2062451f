"""Build the report folder from stored results: tidy CSVs, per-study statistics, figures, an index.

    python -m reports --results-dir results        # same as: python run_all.py --report-only
"""
from __future__ import annotations

import math
import multiprocessing
import os
import signal
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ablations.results import DONE, manifest_path, read_manifest

from . import babysitting_figures, cache, convergence, diagnostics, ensembles, overview, transfer_figures
from .conditions import run_conditions
from .figures import FIGURES, StudyData
from .page import Section, write_index
from .search import edge_warnings  # also registers the search figures
from .stats import t_interval
from .display import display_frame, display_stats, duplicates, rule_names
from .tables import TABLES, runs_table
from .verdicts import evaluate, with_convergence

# Imported for the entries they register in TABLES, FIGURES and RULES.
REGISTERING = (ensembles, babysitting_figures, transfer_figures, diagnostics)


def study_stats(runs: pd.DataFrame, study: str, control: str | None = None) -> pd.DataFrame:
    """Per variant: n, mean and 95% Student-t CI of final val and test accuracy, the train-val gap in
    accuracy (`gap`) and in loss (`loss_gap`, val - train), and the paired per-seed difference in final
    val accuracy against the study's declared `control` (no such columns without one)."""
    data = runs[runs.study == study]
    # Plain arrays and a mask per variant: pandas' per-group objects cost ~2 ms a variant (a second for
    # a 1,000-run report), the arithmetic microseconds.
    variant = data.variant.to_numpy()
    seed, status = data.seed.to_numpy(), data.status.to_numpy()
    done = np.isin(status, list(DONE))
    val, test = data.final_val_acc.to_numpy(float), data.test_acc.to_numpy(float)
    # add_convergence's gap (clean train accuracy - val) where present
    gap = (data.gap if "gap" in data else data.train_acc - data.final_val_acc).to_numpy(float)
    loss_gap = (data.val_loss - data.train_loss).to_numpy(float)
    variants = list(dict.fromkeys(variant))
    masks = {v: variant == v for v in variants}
    by_seed = {v: dict(zip(seed[m & done], val[m & done])) for v, m in masks.items()}
    rows = []
    for v, m in masks.items():
        val_ci, test_ci = t_interval(val[m & done]), t_interval(test[m & done])
        row = {"variant": v, "n": int(m.sum()), "val_acc": val_ci.mean, "val_ci": _ci(val_ci),
               "val_low": val_ci.low, "val_high": val_ci.high, "test_acc": test_ci.mean, "test_ci": _ci(test_ci),
               "test_low": test_ci.low, "test_high": test_ci.high,
               "gap": float(np.nanmean(gap[m])) if np.isfinite(gap[m]).any() else math.nan,
               "loss_gap": float(np.nanmean(loss_gap[m])) if np.isfinite(loss_gap[m]).any() else math.nan}
        if control in by_seed:
            common = sorted(set(by_seed[v]) & set(by_seed[control]))
            diff = t_interval([by_seed[v][s] - by_seed[control][s] for s in common])
            row.update({"vs_control": diff.mean, "vs_control_ci": _ci(diff), "vs_control_low": diff.low,
                        "vs_control_high": diff.high, "vs_control_n": diff.n})
        row.update({"diverged": int((status[m] == "diverged").sum()),
                    "stopped_early": int((status[m] == "stopped_early").sum()),
                    "failed": int((~np.isin(status[m], list(DONE))).sum())})
        rows.append(row)
    return pd.DataFrame(rows)


def unfinished(runs: pd.DataFrame) -> str | None:
    """What the runs table holds ("3 failed, 1 interrupted", "no runs") when none of its runs finished,
    else None: there is nothing to report then."""
    if len(runs) and runs.status.isin(DONE).any():
        return None
    return ", ".join(f"{n} {s}" for s, n in runs.status.value_counts().items()) if len(runs) else "no runs"


def _manifest(results: Path, study: str) -> dict:
    return read_manifest(manifest_path(results, study))


def _ci(interval) -> str:
    return "" if math.isnan(interval.low) else f"[{interval.low:.3f}, {interval.high:.3f}]"


def _save(fig: plt.Figure, out: Path, name: str) -> str:
    # The tight box measured once for both files (bbox_inches="tight" draws the figure again per file);
    # SVG text as text, not paths: smaller files, and half the SVG time.
    box = fig.get_tightbbox(fig.canvas.get_renderer()).padded(0.1)
    for ext in ("png", "svg"):
        with plt.rc_context({"svg.fonttype": "none"}):
            fig.savefig(out / f"{name}.{ext}", dpi=110, bbox_inches=box,   # fast zlib: 1/10 of the PNG time
                        **({"pil_kwargs": {"compress_level": 1}} if ext == "png" else {}))
    plt.close(fig)
    return f"{name}.png"


_JOBS: list = []    # (StudyData, figure name, out) per figure; set before the worker processes fork
_FILES: dict = {}   # what the files process writes; set before it forks


def _draw(i: int) -> str | None:
    data, name, out = _JOBS[i]
    fig = FIGURES.get(name)(data)
    return None if fig is None else _save(fig, out, f"{data.study}_{name}")


def _default_signals() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _pool(processes: int, initializer=_default_signals):
    # close + join, never terminate(): terminate SIGTERMs workers that may hold the task queue's lock,
    # and a worker that inherited a SIGTERM handler (Lightning installs one while fitting) then waits
    # for that lock forever.  Workers also get the default handlers back.
    return multiprocessing.get_context("fork").Pool(processes, initializer=initializer)


def _forks(workers: int) -> bool:
    return workers > 1 and "fork" in multiprocessing.get_all_start_methods()


def _draw_all(jobs: list, workers: int) -> list:
    """Every figure, in worker processes forked from this one (they inherit the tables, nothing is
    pickled but the file names): drawing is most of a report's time and each figure is independent.
    Returns each job's image, or None where the figure does not apply."""
    _JOBS[:] = jobs
    try:
        if not _forks(workers) or len(jobs) < 4:
            return [_draw(i) for i in range(len(jobs))]
        # The studies with the most variants first, so no worker is left drawing a big one alone at the end.
        order = sorted(range(len(jobs)), key=lambda i: -jobs[i][0].members.variant.nunique())
        pool = _pool(min(workers, len(jobs)))
        try:
            drawn = dict(zip(order, pool.map(_draw, order, chunksize=1)))
        finally:
            pool.close()
            pool.join()
        return [drawn[i] for i in range(len(jobs))]
    finally:
        _JOBS.clear()


def _files_init() -> None:
    """The files process imports the W&B report library (3 s) while the main one computes the tables."""
    _default_signals()
    import wandb_workspaces.reports.v2  # noqa: F401


def _write_files(rows: list | None) -> None:
    """runs.csv, history.csv and, given the overview rows, the W&B report spec."""
    f = _FILES
    f["runs"].to_csv(f["out"] / "runs.csv", index=False)
    f["history"].to_csv(f["out"] / "history.csv", index=False)
    if rows is not None:
        _wandb_report(f["out"], f["manifests"], f["runs"], rows, f["project"])


def build(results_dir: str | Path, out_dir: str | Path | None = None, workers: int | None = None,
          publish: bool = False, wandb_project: str = "cs231n-ablations", runs: pd.DataFrame | None = None) -> Path:
    """Write the report folder; `workers` processes draw the figures (default: one per CPU core), only
    for the studies whose inputs changed since the last build into the same folder (reports/cache.py).
    `publish` also saves the W&B report to W&B (wandb_report.PublishError when it cannot).  `runs`: the
    runs table of `results_dir` where the caller has read it already (a second read costs seconds)."""
    results = Path(results_dir)
    out = Path(out_dir) if out_dir else results / "report"
    out.mkdir(parents=True, exist_ok=True)
    runs = runs_table(results) if runs is None else runs
    if (found := unfinished(runs)) is not None:
        raise FileNotFoundError(f"no finished run under {results} ({found}); run `python run_all.py` first")
    runs, history = with_convergence(results, runs)
    studies = list(dict.fromkeys(runs.study))
    manifests = {study: _manifest(results, study) for study in studies}
    data = {study: StudyData(study, runs, history, manifests[study], results) for study in studies}
    for d in data.values():   # members computed once here, before the workers fork, not per figure
        d.manifest["warnings"] = edge_warnings(d.members, d.manifest.get("tuned", []))
    code = cache.figure_code(_save, _draw)
    cached, keys = cache.load(out), {study: cache.study_key(data[study], code) for study in studies}
    kept = {study: cache.hit(out, cached.get(study), keys[study]) for study in studies}
    # The big CSVs and the W&B spec in a process of their own, started now, while this one computes the
    # tables and verdicts; then the figures of the studies whose inputs changed, in worker processes.
    _FILES.update(out=out, runs=runs, history=history, manifests=[manifests[s] for s in studies],
                  project=wandb_project)
    files = _pool(1, _files_init) if _forks(workers or os.cpu_count() or 1) else None
    try:
        sections = [_study_section(data[s], out, cached[s].get("tables") if kept[s] is not None else None)
                    for s in studies]
        rows = overview.overview_rows(sections, runs)
        overview.save(out, rows, runs, results)
        spec_rows = None if publish else rows   # published: built here, where the report object is kept
        written = files.apply_async(_write_files, (spec_rows,)) if files else _write_files(spec_rows)
        figures = [(data[s], name, out) for s in studies if kept[s] is None for name in FIGURES.names()]
        drawn = iter(_draw_all(figures, workers or os.cpu_count() or 1))
        if files:
            written.get()
    finally:
        if files:
            files.close()
            files.join()
        _FILES.clear()
    for section in sections:   # figures were queued study by study, in FIGURES order
        section.images = kept[section.study] if kept[section.study] is not None else \
            [img for img in (next(drawn) for _ in FIGURES.names()) if img]
    cache.save(out, cached, {s.study: {"key": keys[s.study], "images": s.images, "tables": [n for n, *_ in s.extra]}
                             for s in sections})
    lead = (f"{len(runs)} runs; dataset(s): {', '.join(map(str, runs['config.data.name'].dropna().unique()))}; "
            f"devices: {', '.join(map(str, runs['device'].dropna().unique())) if 'device' in runs else 'unknown'}")
    write_index(out, lead, rows, run_conditions(runs), runs.attrs["errors"], sections)
    if publish:
        from .wandb_report import publish as publish_report
        report = _wandb_report(out, [manifests[s] for s in studies], runs, rows, wandb_project)
        print(f"W&B report: {publish_report(report)}")
    return out


def _study_section(data: StudyData, out: Path, cached_tables: list[str] | None = None) -> Section:
    """Write one study's CSVs and evaluate its verdict.  `cached_tables`: the names of the extra tables
    whose CSVs the last build wrote from the same inputs (the figure cache's key): read back, not
    computed again (the ensembles table reads every run's predictions)."""
    study, runs, manifest = data.study, data.runs, data.manifest
    stats = study_stats(runs, study, manifest.get("control"))
    files = [f"{study}_stats.csv", f"{study}_time_to_acc.csv", f"{study}_gap.csv"]
    stats.to_csv(out / files[0], index=False)
    convergence.time_to_accuracy_table(runs, study).to_csv(out / files[1], index=False)
    convergence.gap_table(runs, study).to_csv(out / files[2], index=False)
    extra = []
    same = duplicates(data.members, list(stats.variant))
    rules = rule_names(manifest.get("verdict"))
    for name in TABLES.names():
        path = out / f"{study}_{name}.csv"
        if cached_tables is not None and (name not in cached_tables or path.exists()):
            table = pd.read_csv(path) if name in cached_tables else None
        else:
            table = TABLES.get(name)(data)
            if table is not None:
                table.to_csv(path, index=False)
        if table is not None:
            files.append(path.name)
            # open in the index where the study's verdict is about it (the ensembles rule), else folded
            extra.append((name, display_frame(table, same), any(r.startswith(name.rstrip("s")) for r in rules)))
    verdict = evaluate(manifest.get("verdict"), data.members, data.results_dir, manifest.get("design"))
    return Section(study, manifest, verdict, stats, display_stats(stats, data.members, manifest), extra, files)


def _wandb_report(out: Path, manifests: list[dict], runs: pd.DataFrame, rows: list, project: str):
    from . import wandb_report
    report = wandb_report.build_report(manifests, runs, overview=rows, project=project,
                                       entity=os.environ.get("WANDB_ENTITY", ""))
    wandb_report.save_spec(report, out / "wandb_report.json")
    return report
