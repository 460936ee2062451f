"""Build the report folder from stored results: tidy CSVs, per-study statistics, figures, an index.

    python -m reports --results-dir results        # same as: python run_all.py --report-only
"""
from __future__ import annotations

import html
import json
import math
import multiprocessing
import os
import signal
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ablations.results import DONE, manifest_path, read_manifest

from . import babysitting_figures, convergence, diagnostics, ensembles, overview, transfer_figures
from .conditions import conditions_markdown, run_conditions
from .figures import FIGURES, StudyData
from .search import edge_warnings  # also registers the search figures
from .stats import t_interval
from .tables import TABLES, history_table, runs_table
from .verdicts import add_convergence, evaluate

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
               "test_acc": test_ci.mean, "test_ci": _ci(test_ci),
               "gap": float(np.nanmean(gap[m])) if np.isfinite(gap[m]).any() else math.nan,
               "loss_gap": float(np.nanmean(loss_gap[m])) if np.isfinite(loss_gap[m]).any() else math.nan}
        if control in by_seed:
            common = sorted(set(by_seed[v]) & set(by_seed[control]))
            diff = t_interval([by_seed[v][s] - by_seed[control][s] for s in common])
            row.update({"vs_control": diff.mean, "vs_control_ci": _ci(diff), "vs_control_n": diff.n})
        row.update({"diverged": int((status[m] == "diverged").sum()),
                    "stopped_early": int((status[m] == "stopped_early").sum()),
                    "failed": int((~np.isin(status[m], list(DONE))).sum())})
        rows.append(row)
    return pd.DataFrame(rows)


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


_JOBS: list = []   # (StudyData, figure name, out) per figure; set before the worker processes fork


def _draw(i: int) -> str | None:
    data, name, out = _JOBS[i]
    fig = FIGURES.get(name)(data)
    return None if fig is None else _save(fig, out, f"{data.study}_{name}")


def _default_signals() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _draw_all(jobs: list, workers: int, meanwhile):
    """Every figure, in worker processes forked from this one (they inherit the tables, nothing is
    pickled but the file names): drawing is most of a report's time and each figure is independent.
    `meanwhile()` runs here while they draw.  Returns (image per job or None, what meanwhile returned)."""
    _JOBS[:] = jobs
    try:
        if workers <= 1 or len(jobs) < 4 or "fork" not in multiprocessing.get_all_start_methods():
            return [_draw(i) for i in range(len(jobs))], meanwhile()
        # The studies with the most variants first, so no worker is left drawing a big one alone at the end.
        order = sorted(range(len(jobs)), key=lambda i: -jobs[i][0].members.variant.nunique())
        # close + join, not the context manager's terminate(): terminate SIGTERMs workers that may hold
        # the task queue's lock, and a worker that inherited a SIGTERM handler (Lightning installs one
        # while fitting) then waits for that lock forever.  Workers also get the default handler back.
        pool = multiprocessing.get_context("fork").Pool(min(workers, len(jobs)), initializer=_default_signals)
        try:
            pending = pool.map_async(_draw, order, chunksize=1)
            other = meanwhile()
            drawn = dict(zip(order, pending.get()))
        finally:
            pool.close()
            pool.join()
        return [drawn[i] for i in range(len(jobs))], other
    finally:
        _JOBS.clear()


def build(results_dir: str | Path, out_dir: str | Path | None = None, workers: int | None = None,
          publish: bool = False, wandb_project: str = "cs231n-ablations") -> Path:
    """Write the report folder; `workers` processes draw the figures (default: one per CPU core).
    `publish` also saves the W&B report to W&B (wandb_report.PublishError when it cannot)."""
    results = Path(results_dir)
    out = Path(out_dir) if out_dir else results / "report"
    out.mkdir(parents=True, exist_ok=True)
    runs = runs_table(results)
    if runs.empty or not runs.status.isin(DONE).any():
        found = ", ".join(f"{n} {s}" for s, n in runs.status.value_counts().items()) if len(runs) else "no runs"
        raise FileNotFoundError(f"no finished run under {results} ({found}); run `python run_all.py` first")
    errors = runs.attrs.get("errors", [])
    history = history_table(results, runs.run_id[runs.status != "damaged"])
    runs = add_convergence(runs, history)
    runs.attrs["errors"] = errors
    studies = list(dict.fromkeys(runs.study))
    manifests = {study: _manifest(results, study) for study in studies}
    data = {study: StudyData(study, runs, history, manifests[study], results) for study in studies}
    for d in data.values():   # members computed once here, before the workers fork, not per figure
        d.manifest["warnings"] = edge_warnings(d.members, d.manifest.get("tuned", []))
    jobs = [(data[study], name, out) for study in studies for name in FIGURES.names()]

    def tables_and_spec():
        """Everything but the figures; runs in this process while the workers draw."""
        runs.to_csv(out / "runs.csv", index=False)
        history.to_csv(out / "history.csv", index=False)
        sections = [_study_section(data[study], out) for study in studies]
        rows = overview.overview_rows(sections, runs)
        overview.save(out, rows, runs, results)
        return sections, rows, _wandb_report(out, [manifests[s] for s in studies], runs, rows, wandb_project)

    drawn, (sections, rows, report) = _draw_all(jobs, workers or os.cpu_count() or 1, tables_and_spec)
    images = iter(drawn)
    for section in sections:   # jobs were queued study by study, in FIGURES order
        section[2].extend(img for img in (next(images) for _ in FIGURES.names()) if img)
    _write_index(out, runs, sections, rows)
    if publish:
        from .wandb_report import publish as publish_report
        print(f"W&B report: {publish_report(report)}")
    return out


def _study_section(data: StudyData, out: Path) -> tuple:
    """Write one study's CSVs; returns (study, stats, images to fill, manifest, verdict, extra tables)."""
    study, runs = data.study, data.runs
    stats = study_stats(runs, study, data.manifest.get("control"))
    stats.to_csv(out / f"{study}_stats.csv", index=False)
    convergence.time_to_accuracy_table(runs, study).to_csv(out / f"{study}_time_to_acc.csv", index=False)
    convergence.gap_table(runs, study).to_csv(out / f"{study}_gap.csv", index=False)
    extra = []
    for name in TABLES.names():
        table = TABLES.get(name)(data)
        if table is not None:
            table.to_csv(out / f"{study}_{name}.csv", index=False)
            extra.append((name, table))
    verdict = evaluate(data.manifest.get("verdict"), data.members, data.results_dir, data.manifest.get("design"))
    return study, stats, [], data.manifest, verdict, extra


def _wandb_report(out: Path, manifests: list[dict], runs: pd.DataFrame, rows: list, project: str):
    from . import wandb_report
    report = wandb_report.build_report(manifests, runs, overview=rows, project=project,
                                       entity=os.environ.get("WANDB_ENTITY", ""))
    wandb_report.save_spec(report, out / "wandb_report.json")
    return report


def _write_index(out: Path, runs: pd.DataFrame, sections, rows: list) -> None:
    md = ["# cs231n-ablations report", "", f"{len(runs)} runs; "
          f"dataset(s): {', '.join(map(str, runs['config.data.name'].unique()))}; "
          f"devices: {', '.join(map(str, runs['device'].dropna().unique()))}", ""]
    page = ["<html><head><meta charset='utf-8'><title>cs231n-ablations report</title></head><body>",
            f"<h1>cs231n-ablations report</h1><p>{html.escape(md[2])}</p>"]
    md += ["## Verdicts", "", overview.counts(rows), ""] + overview.markdown(rows) + [""]
    page += ["<h2>Verdicts</h2>", f"<p>{html.escape(overview.counts(rows))}</p>",
             pd.DataFrame(rows).drop(columns="anchor").to_html(index=False) if rows else ""]
    conditions = run_conditions(runs)
    md += ["## Run conditions", ""] + conditions_markdown(conditions) + [""]
    page += ["<h2>Run conditions</h2><table>"] + [f"<tr><th align='left'>{html.escape(k)}</th>"
                                                  f"<td>{html.escape(v)}</td></tr>" for k, v in conditions]
    page += ["</table>"]
    errors = runs.attrs.get("errors", [])
    if errors:   # damaged files: named here, their runs left out above, retrained by the next grid run
        md += ["## Damaged results", ""] + [f"- `{e.path}`: {e.reason}" for e in errors] + [""]
        page += ["<h2>Damaged results</h2><ul>"] + [f"<li><code>{html.escape(str(e.path))}</code>: "
                                                    f"{html.escape(e.reason)}</li>" for e in errors] + ["</ul>"]
    for study, stats, images, manifest, (verdict, why, *_), extra in sections:
        if verdict == "no rule" and (manifest.get("has_next_stage") or manifest.get("previous_stage")):
            # A staged study states its claim once: the verdict sits with the stage that holds the rule.
            other = manifest.get("previous_stage") or "the next stage"
            verdict, why = "see another stage", f"this stage's verdict is given in the section of {other}"
        head = [f"<a id='study-{study}'></a>", "", f"## {study}", "", manifest.get("question", ""), "", f"**Claim:** {manifest.get('claim', '')}", "",
                f"**Verdict: {verdict}.** {why}", ""] + [f"**Warning:** {w}\n" for w in manifest["warnings"]]
        md += head
        page += [f"<h2 id='study-{html.escape(study)}'>{html.escape(study)}</h2>", f"<pre>{html.escape(manifest.get('question', ''))}</pre>",
                 f"<p><b>Claim:</b> {html.escape(manifest.get('claim', ''))}</p>",
                 f"<p><b>Verdict: {html.escape(verdict)}.</b> {html.escape(why)}</p>"]
        page += [f"<p><b>Warning:</b> {html.escape(w)}</p>" for w in manifest["warnings"]]
        md += ["", stats.to_markdown(index=False, floatfmt=".4f") if _has_tabulate() else
               stats.to_string(index=False), ""] + [f"![{img}]({img})" for img in images] + [""]
        page += [stats.to_html(index=False, float_format="%.4f")]
        for name, table in extra:
            md += [f"**{name}** (`{study}_{name}.csv`)", "", table.to_markdown(index=False, floatfmt=".4f")
                   if _has_tabulate() else table.to_string(index=False), ""]
            page += [f"<h3>{html.escape(name)}</h3>", table.to_html(index=False, float_format="%.4f")]
        page += [f"<p><img src='{img}' style='max-width:100%'></p>" for img in images]
    (out / "index.md").write_text("\n".join(md) + "\n")
    (out / "index.html").write_text("\n".join(page + ["</body></html>"]) + "\n")


def _has_tabulate() -> bool:
    import importlib.util
    return importlib.util.find_spec("tabulate") is not None   # pandas.to_markdown needs it
