"""The verdict overview: one row per study with a rule (claim, verdict, the deciding effect with its
interval and n), stored as `report/verdicts.json` and rendered for the index, the terminal and the
README, whose table is generated from a stored report, never typed:

    python -m reports --results-dir results --readme-table              # print the Markdown table
    python -m reports --results-dir results --readme-table --write-readme README.md
"""
from __future__ import annotations

import datetime
import json
import math
import textwrap
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from ablations.results import write_json

from .stats import CONTRADICTED, NO_DIFFERENCE, SUPPORTED, UNDECIDED, Comparison
from .display import decimals, interval, is_fraction, number, percent

def markers(block: str = "verdicts") -> tuple[str, str]:
    """The comments around a generated README block; `block` names it (one per preset's results)."""
    flag = "" if block == "verdicts" else f" --block {block}"
    return f"<!-- {block}:begin (generated: python -m reports --readme-table{flag}) -->", f"<!-- {block}:end -->"


BEGIN, END = markers()


def _signed(c: Comparison, value: float) -> str:
    """A difference in the comparison's metric: accuracy in percentage points, the rest to the decimals
    that give its interval 3 significant digits."""
    if is_fraction(c.metric):
        return f"{percent(value, signed=True)} points"
    return number(value, True, decimals([value, c.interval.low, c.interval.high]))


def effect(c: Comparison) -> str:
    """The estimate with its interval (positive favours the claim), or what an exact or sign test found."""
    if c.test == "exact":
        return (f"{_signed(c, c.estimate)} (exact: the runs do not vary with the seed)" if math.isfinite(c.estimate)
                else f"only one side has a {c.metric} (exact)")
    if c.test == "sign test":
        return f"{sum(d > 0 for d in c.diffs)} of {c.n} {c.unit} better (sign test, p={c.p:.2g})"
    level = "" if abs(c.interval.level - 0.95) < 1e-9 else f" ({c.interval.level * 100:.3g}% CI)"
    places = decimals([c.estimate, c.interval.low, c.interval.high])
    ci = interval(c.interval.low, c.interval.high, is_fraction(c.metric), True, places) or c.interval.text(3)
    return f"{_signed(c, c.estimate)} {ci}{level}"


def comparison_view(c: Comparison, family: int) -> dict[str, Any]:
    """One comparison as the index shows it: outcome, what is compared, effect, the test, the seeds."""
    delta = _signed(c, c.delta).lstrip("+")
    if c.test == "paired t":
        test = f"paired t-test over n={c.n} {c.unit}, p={c.p:.2g}; inside ±{delta}: p={c.p_equivalence:.2g}"
    elif c.test == "sign test":
        test = f"exact sign test over n={c.n} {c.unit} (some runs have no {c.metric})"
    else:
        test = f"n={c.n} {c.unit}, compared with the smallest effect ±{delta} (no test needed)"
    if family > 1 and c.test != "exact":
        test += f"; Holm over {family} comparisons: p={c.p_adjusted:.2g}"
    if c.seeds_needed:
        test += f"; about {c.seeds_needed} seeds would decide it"
    return {"outcome": c.outcome, "label": c.label, "metric": c.metric, "effect": effect(c), "test": test,
            "pairs": list(c.pairs)}


def checks(verdict) -> list[tuple[str, str, str]]:
    """The parts of a verdict checked run by run: (outcome, what was checked, the per-seed values)."""
    return [(c.outcome, c.text, c.seeds) for c in verdict.checks]


def headline(comparisons: Sequence[Comparison], outcome: str, checked: Sequence[tuple] = ()) -> tuple[str, str]:
    """(effect text, n) of the comparison that decides the study's verdict: the first whose outcome is
    the verdict's (a contradicted part for a contradicted claim, an undecided one for undecided...);
    for a verdict of checks alone (babysitting), the deciding check."""
    if not comparisons:
        c = next((c for c in checked if c[0] == outcome), checked[0] if checked else None)
        more = f" (+{len(checked) - 1} more check{'s' * (len(checked) > 2)})" if len(checked) > 1 else ""
        # per-seed values: a check on each run; none: nothing was there to check (no run has the metric)
        return (f"{c[1]}{' (a check on each run)' * bool(c[2])}{more}", "") if c else ("", "")
    c = next((c for c in comparisons if c.outcome == outcome), comparisons[0])
    more = f" (+{len(comparisons) - 1} more comparison{'s' * (len(comparisons) > 2)})" if len(comparisons) > 1 else ""
    return f"{c.label}: {c.metric} {effect(c)}{more}", f"{c.n} {c.unit}"


def overview_rows(sections: Sequence[tuple], runs: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per study section that carries a rule (reports.page.Section)."""
    rows = []
    for section in sections:
        study, manifest, verdict = section.study, section.manifest, section.verdict
        if verdict.outcome == "no rule":
            continue
        effect, n = headline(verdict.comparisons, verdict.outcome, checks(verdict))
        members = runs[runs.study == study]
        rows.append({"study": study, "claim": manifest.get("claim", ""), "verdict": verdict.outcome,
                     "effect": effect, "n": n, "runs": int(len(members)), "anchor": f"study-{study}"})
    return rows


def save(out: Path, rows: list[dict[str, Any]], runs: pd.DataFrame, results_dir: Path) -> None:
    """report/verdicts.json: the overview and where it came from (the code versions of the runs)."""
    versions = sorted(runs["code_version"].dropna().astype(str).unique()) if "code_version" in runs else []
    datasets = sorted(runs["config.data.name"].dropna().astype(str).unique()) if "config.data.name" in runs else []
    write_json(out / "verdicts.json", {
        "results_dir": str(results_dir), "generated": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "code_versions": versions, "datasets": datasets, "runs": int(len(runs)), "studies": rows})


def counts(rows: Sequence[dict[str, Any]]) -> str:
    found = [(o, sum(r["verdict"] == o for r in rows)) for o in (SUPPORTED, CONTRADICTED, NO_DIFFERENCE, UNDECIDED)]
    return ", ".join(f"{k} {o}" for o, k in found if k)


def markdown(rows: Sequence[dict[str, Any]], page: str | None = "") -> list[str]:
    """The overview as a Markdown table; each study links to its section of `page` ("" for this
    document), or to nothing when `page` is None."""
    cell = lambda text: str(text).replace("|", "\\|")  # noqa: E731
    name = lambda r: f"`{r['study']}`" if page is None else f"[`{r['study']}`]({page}#{r['anchor']})"  # noqa: E731
    lines = ["| study | claim | verdict | deciding effect, > 0 favours the claim [95% CI unless stated] | n | runs |",
             "| --- | --- | --- | --- | --- | ---: |"]
    lines += [f"| {name(r)} | {cell(r['claim'])} | **{r['verdict']}** | {cell(r['effect'])} | "
              f"{r['n']} | {r['runs']} |" for r in rows]
    return lines


def terminal(rows: Sequence[dict[str, Any]], width: int = 120) -> str:
    """The overview as the last thing a grid prints: a line per study, its effect wrapped beneath it."""
    lines = [f"Verdicts ({counts(rows)}; positive effects favour the claim, [95% CI] unless stated):"]
    for r in rows:
        lines += textwrap.wrap(r["claim"], width, initial_indent=f"  {r['study']:<18} {r['verdict']:<24} ",
                               subsequent_indent=" " * 46)
        effect = f"{r['effect']}, n = {r['n']}" if r["n"] else r["effect"]
        lines += textwrap.wrap(effect, width, initial_indent=" " * 6, subsequent_indent=" " * 8)
    return "\n".join(lines)


def readme_table(results_dir: str | Path, block: str = "verdicts") -> str:
    """The README's verdict table, from a stored report (report/verdicts.json), with its provenance."""
    path = Path(results_dir) / "report" / "verdicts.json"
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise FileNotFoundError(f"no stored report at {path} ({e}); run `python run_all.py` or "
                                f"`python -m reports --results-dir {results_dir}` first") from None
    rows = stored["studies"]
    source = (f"Generated by `python -m reports --readme-table` from the report of {stored['runs']} runs in "
              f"`{stored['results_dir']}` ({', '.join(stored['datasets']) or 'unknown data'}; code version "
              f"{', '.join(stored['code_versions']) or 'not recorded'}; built {stored['generated']}): "
              f"{counts(rows)}.")
    # links into the report where it lies beside the README (a relative results folder); none to elsewhere
    page = None if Path(results_dir).is_absolute() else f"{Path(results_dir).as_posix()}/report/index.html"
    table = markdown(rows, page)
    begin, end = markers(block)
    return "\n".join([begin, source, "", *table, end])


def write_readme(readme: str | Path, table: str, block: str = "verdicts") -> None:
    """Replace the generated block between the markers of `readme` (they must be there)."""
    path = Path(readme)
    text = path.read_text()
    begin, end = markers(block)
    if begin not in text or end not in text:
        raise ValueError(f"{path} has no generated verdict block ({begin} ... {end})")
    head, rest = text.split(begin, 1)
    path.write_text(head + table + rest.split(end, 1)[1])
