"""The report's two documents, index.html and index.md, rendered from one view of each study.

HTML: the Jinja template `index.html.j2` next to this file, with `report.css` inlined (the page stands
alone, and a browser test checks it: tests/test_browser.py); its tables are reports.display.Table
values rendered by a macro of the template (pandas' Styler took 60 ms a table, a tenth of a rebuild).
Markdown: plain GitHub tables (display.markdown_table; no `to_string` in a code block, no tabulate).
Both open with the verdict overview and a table of contents; each study then shows its question once,
the claim once, the verdict one comparison per line, its table and its figures.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from .display import Table, markdown_table
from .overview import checks, comparison_view, counts, markdown as overview_markdown
from .verdicts import Verdict

HERE = Path(__file__).parent


@dataclass
class Section:
    """One study of the report: what build.py computed for it, and its figures once drawn."""
    study: str
    manifest: dict
    verdict: Verdict
    stats: pd.DataFrame                                   # the full stats table (also <study>_stats.csv)
    table: Table | None                                   # what the index shows of it
    extra: list[tuple[str, Table, bool]] = field(default_factory=list)   # name, table, shown open
    files: list[str] = field(default_factory=list)        # the CSVs written for it
    images: list[str] = field(default_factory=list)


def outcome_and_why(section: Section) -> tuple[str, str]:
    verdict, manifest = section.verdict, section.manifest
    if verdict.outcome == "no rule" and (manifest.get("has_next_stage") or manifest.get("previous_stage")):
        # A staged study states its claim once: the verdict sits with the stage that holds the rule.
        other = manifest.get("previous_stage") or "the next stage"
        return "see another stage", f"this stage's verdict is given in the section of {other}"
    if verdict.outcome == "no rule":
        return "no rule", "this study describes; it tests no claim"
    return verdict.outcome, ""


def view(section: Section) -> dict[str, Any]:
    """Everything both documents show of a study, as plain values."""
    question = section.manifest.get("question", "").strip()
    first, _, notes = question.partition("\n")
    outcome, why = outcome_and_why(section)
    family = len(section.verdict.comparisons)
    return {"study": section.study, "anchor": f"study-{section.study}", "question": first.strip(),
            "notes": notes.strip(), "claim": section.manifest.get("claim", ""), "outcome": outcome, "why": why,
            "comparisons": [comparison_view(c, family) for c in section.verdict.comparisons],
            "checks": checks(section.verdict), "warnings": section.manifest.get("warnings", []),
            "files": section.files, "images": section.images}


# --- documents ------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _template():
    import jinja2
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE), autoescape=True, trim_blocks=False)
    env.filters["css"] = lambda outcome: re.sub(r"[^a-z]+", "-", str(outcome).lower()).strip("-")
    return env.get_template("index.html.j2")


def write_index(out: Path, lead: str, rows: Sequence[dict], conditions: list[tuple[str, str]],
                errors: Sequence, sections: Sequence[Section]) -> None:
    views = [{**view(s), "table": s.table, "extra": s.extra} for s in sections]
    damaged = [(str(e.path), e.reason) for e in errors]
    page = _template().render(css=(HERE / "report.css").read_text(), lead=lead, counts=counts(rows) or "no verdicts",
                              overview=rows, sections=views, conditions=conditions, errors=damaged)
    (out / "index.html").write_text(page)
    (out / "index.md").write_text("\n".join(_markdown(lead, rows, conditions, damaged, sections, views)) + "\n")


def _markdown(lead: str, rows, conditions, damaged, sections: Sequence[Section], views: list[dict]) -> list[str]:
    md = ["# cs231n-ablations report", "", lead, "", "## Verdicts", "", f"{counts(rows) or 'no verdicts'}.", ""]
    md += overview_markdown(rows) + ["", "## Contents", ""]
    md += [f"- [{v['study']}](#{v['anchor']}): {v['outcome']}" for v in views] + ["", "## Run conditions", ""]
    md += markdown_table(Table(["run condition", "value"], [list(c) for c in conditions], [], [False, False])) + [""]
    if damaged:   # named here, their runs left out above, retrained by the next grid run
        md += ["## Damaged results", ""] + [f"- `{path}`: {reason}" for path, reason in damaged] + [""]
    for v, s in zip(views, sections):
        md += [f"<a id='{v['anchor']}'></a>", "", f"## {v['study']}", "", f"**{v['question']}**", ""]
        if v["notes"]:
            md += ["<details><summary>About this study</summary>", "", "```text", v["notes"], "```", "", "</details>", ""]
        md += [f"**Claim:** {v['claim']}", "", f"**Verdict: {v['outcome']}.** {v['why']}".rstrip(), ""]
        md += [f"- **{c['outcome']}**: {c['label']}: `{c['metric']}` {c['effect']} ({c['test']}); per seed: "
               f"{', '.join(c['pairs'])}" for c in v["comparisons"]]
        md += [f"- **{outcome}**: {text}" + (f"; per seed: {seeds}" if seeds else "") for outcome, text, seeds in v["checks"]]
        md += [""] + [f"**Warning:** {w}\n" for w in v["warnings"]]
        if s.table:
            md += markdown_table(s.table) + [""]
        for name, table, _ in s.extra:
            md += [f"**{name}** ([{s.study}_{name}.csv]({s.study}_{name}.csv))", ""] + markdown_table(table) + [""]
        md += [f"![{img}]({img})" for img in v["images"]] + ["", "Data: " + ", ".join(f"[{f}]({f})" for f in v["files"]), ""]
    return md
