"""Build the report folder from stored results: tidy CSVs, per-study statistics, figures, an index.

    python -m reports --results-dir results        # same as: python run_all.py --report-only
"""
from __future__ import annotations

import html
import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from . import babysitting_figures, diagnostics, ensembles, transfer_figures
from .figures import FIGURES, StudyData
from .search import edge_warnings  # also registers the search figures
from .stats import bootstrap_ci, paired_difference
from .tables import TABLES, history_table, runs_table
from .verdicts import add_convergence, evaluate

# Imported for the entries they register in TABLES, FIGURES and RULES.
REGISTERING = (ensembles, babysitting_figures, transfer_figures, diagnostics)


def study_stats(runs: pd.DataFrame, study: str) -> pd.DataFrame:
    """Per variant: n, mean and 95% bootstrap CI of final val and test accuracy, the train-val gap,
    and the paired per-seed difference against the baseline (the study's first variant)."""
    data = runs[runs.study == study]
    variants = list(dict.fromkeys(data.variant))
    by_seed = {v: dict(zip(data[data.variant == v].seed, data[data.variant == v].final_val_acc)) for v in variants}
    rows = []
    for v in variants:
        part = data[data.variant == v]
        val, test = bootstrap_ci(part.final_val_acc), bootstrap_ci(part.test_acc)
        diff = paired_difference(by_seed[v], by_seed[variants[0]])
        rows.append({"variant": v, "n": len(part), "val_acc": val.mean, "val_ci": _ci(val),
                     "test_acc": test.mean, "test_ci": _ci(test),
                     # add_convergence's gap (clean train accuracy - val) where present
                     "gap": float((part.gap if "gap" in part else part.train_acc - part.final_val_acc).mean()),
                     "vs_baseline": diff.mean, "vs_baseline_ci": _ci(diff),
                     "ci_excludes_0": diff.excludes_zero(),
                     "diverged": int((part.status == "diverged").sum()),
                     "failed": int((~part.status.isin(["completed", "diverged"])).sum())})
    return pd.DataFrame(rows)


def _manifest(results: Path, study: str) -> dict:
    return json.loads((results / "studies" / f"{study}.json").read_text())


def _ci(interval) -> str:
    return "" if math.isnan(interval.low) else f"[{interval.low:.3f}, {interval.high:.3f}]"


def _save(fig: plt.Figure, out: Path, name: str) -> str:
    for ext in ("png", "svg"):
        fig.savefig(out / f"{name}.{ext}", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return f"{name}.png"


def build(results_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    results = Path(results_dir)
    out = Path(out_dir) if out_dir else results / "report"
    out.mkdir(parents=True, exist_ok=True)
    runs = runs_table(results)
    if runs.empty:
        raise FileNotFoundError(f"no study manifests with runs under {results}; run `python run_all.py` first")
    history = history_table(results, runs.run_id)
    runs = add_convergence(runs, history)
    runs.to_csv(out / "runs.csv", index=False)
    history.to_csv(out / "history.csv", index=False)
    sections = []
    for study in dict.fromkeys(runs.study):
        part = runs[runs.study == study]
        stats = study_stats(runs, study)
        stats.to_csv(out / f"{study}_stats.csv", index=False)
        manifest = _manifest(results, study)
        manifest["warnings"] = edge_warnings(part, manifest.get("tuned", []))
        data = StudyData(study, runs, history, manifest, results)
        images = []
        for name in FIGURES.names():
            fig = FIGURES.get(name)(data)
            if fig is not None:
                images.append(_save(fig, out, f"{study}_{name}"))
        extra = []
        for name in TABLES.names():
            table = TABLES.get(name)(data)
            if table is not None:
                table.to_csv(out / f"{study}_{name}.csv", index=False)
                extra.append((name, table))
        sections.append((study, stats, images, manifest, evaluate(manifest.get("verdict"), part, results), extra))
    _write_index(out, runs, sections)
    return out


def _write_index(out: Path, runs: pd.DataFrame, sections) -> None:
    md = ["# cs231n-ablations report", "", f"{len(runs)} runs; "
          f"dataset(s): {', '.join(map(str, runs['config.data.name'].unique()))}; "
          f"devices: {', '.join(map(str, runs['device'].dropna().unique()))}", ""]
    page = ["<html><head><meta charset='utf-8'><title>cs231n-ablations report</title></head><body>",
            f"<h1>cs231n-ablations report</h1><p>{html.escape(md[2])}</p>"]
    for study, stats, images, manifest, (verdict, why), extra in sections:
        head = [f"## {study}", "", manifest.get("question", ""), "", f"**Claim:** {manifest.get('claim', '')}", "",
                f"**Verdict: {verdict}.** {why}", ""] + [f"**Warning:** {w}\n" for w in manifest["warnings"]]
        md += head
        page += [f"<h2>{html.escape(study)}</h2>", f"<pre>{html.escape(manifest.get('question', ''))}</pre>",
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
    try:
        import tabulate  # noqa: F401  (pandas.to_markdown needs it)
    except ImportError:
        return False
    return True
