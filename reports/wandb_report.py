"""A W&B report over the suite's W&B runs, built offline from the study manifests (wandb-workspaces).

It opens with the verdict overview (study, claim, verdict, effect), then a table of contents, then one
section per study: its question and claim, then a panel grid over the runs tagged with the study.
A study's panels are on metrics its runs really log (told by their summaries: epochs, diagnostics,
landscape paths, lr_find) and grouped by the study's own axes: by each axis when every run has a
label on it (a grid), else by variant (one at a time: the baseline has no label on any axis).

The W&B layout of a run (its step axes, metric families, config keys) is written down once, torch-free,
in ablations/wandb_layout.py: ablations/tracking.py logs what it says and this report reads it.

Building touches no network: `wandb_workspaces` looks up the entity (Report) and a run set's project id
(Runset._to_model) through the W&B API, so the report gets an explicit entity and the run sets leave
entity/project empty until `publish`, which fills them in and saves.  `publish` checks credentials and
that the server answers within a few seconds first, so an offline machine gets a clear error, not a hang.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ablations.wandb_layout import (CODE_VERSION_KEY, CONNECT_TIMEOUT_S, EPOCH_AXIS, STEP_AXIS, STUDIES_KEY,  # noqa: F401
                                    axis_name, base_url, connect_error, has_credentials)

if TYPE_CHECKING:
    import pandas as pd
    import wandb_workspaces.reports.v2 as wr

class PublishError(RuntimeError):
    """The report could not be saved to W&B (no credentials, server unreachable, or the API refused)."""


# --- the report ------------------------------------------------------------------------------------
def _logged(runs: pd.DataFrame, column: str) -> bool:
    """Whether any of these runs has a finite, positive `column` in its summary (epochs=0: none logged)."""
    return column in runs and bool(runs[column].apply(_positive).any())


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < float("inf")


def _epoch_panels(wr, study: str, label: str, group: Any) -> list:
    return [
        wr.LinePlot(title=f"{study}: val accuracy per epoch by {label}", x=wr.Metric(EPOCH_AXIS), y=["val/acc"],
                    title_x="epoch", title_y="val accuracy", groupby=group, groupby_aggfunc="mean",
                    groupby_rangefunc="stderr"),
        wr.LinePlot(title=f"{study}: train loss per epoch by {label}", x=wr.Metric(EPOCH_AXIS), y=["train/loss"],
                    title_x="epoch", title_y="train loss", log_y=True, groupby=group, groupby_aggfunc="mean",
                    groupby_rangefunc="stderr"),
        wr.BarPlot(title=f"{study}: final val and test accuracy by {label}",
                   metrics=[wr.SummaryMetric("final_val_acc"), wr.SummaryMetric("test_acc")], groupby=group,
                   groupby_aggfunc="mean", groupby_rangefunc="stderr", title_x="accuracy"),
    ]


def _diagnostics_panels(wr, study: str, label: str, group: Any) -> list:
    return [wr.LinePlot(title=f"{study}: update/weight ratio per layer by {label}", x=wr.Metric(STEP_AXIS),
                        metric_regex="diag/update_ratio/.*", title_x="optimizer step", title_y="lr |g| / |w|",
                        log_y=True, groupby=group, groupby_aggfunc="median")]


def _landscape_panels(wr, study: str, label: str, group: Any) -> list:
    return [
        wr.LinePlot(title=f"{study}: toy loss per step by {label}", x=wr.Metric(STEP_AXIS), y=["landscape/loss"],
                    title_x="optimizer step", title_y="loss", log_y=True, groupby=group, groupby_aggfunc="median",
                    groupby_rangefunc="minmax"),
        wr.LinePlot(title=f"{study}: paths (x, y) per run", x=wr.Metric("landscape/x"), y=["landscape/y"],
                    title_x="x (shallow)", title_y="y (steep)"),
    ]


def _lr_find_panels(wr, study: str, label: str, group: Any) -> list:
    return [wr.BarPlot(title=f"{study}: lr_find suggestion and best lr by {label}",
                       metrics=[wr.SummaryMetric("lr_find_suggestion"), wr.SummaryMetric("lr_find_best_lr")],
                       groupby=group, groupby_aggfunc="median", title_x="learning rate")]


# (summary column that is positive in every run logging the family, its panels).  They are written with
# the logged data: epochs by the runner, final_update_ratio by the diagnostics, steps_taken by the
# landscape procedure, lr_find_suggestion by the lr_find procedure.
PANEL_FAMILIES = (("epochs", _epoch_panels), ("final_update_ratio", _diagnostics_panels),
                  ("steps_taken", _landscape_panels), ("lr_find_suggestion", _lr_find_panels))


def _groupings(manifest: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, W&B config key) per row of panels: each axis every run has a label on, else the variant."""
    study, members = manifest["name"], manifest.get("runs", [])
    crossed = [a for a in manifest.get("axes", []) if members and all(a in m.get("axes", {}) for m in members)]
    if crossed and len(crossed) == len(manifest.get("axes", [])):
        return [(axis_name(a), f"{STUDIES_KEY}.{study}.axes.{axis_name(a)}") for a in crossed]
    return [("variant", f"{STUDIES_KEY}.{study}.variant")]


def study_section(manifest: Mapping[str, Any], runs: pd.DataFrame) -> list[Any]:
    """Heading, question and claim, and a panel grid over the W&B runs tagged with this study.
    `runs`: this study's rows of the runs table (reports.tables.runs_table)."""
    import wandb_workspaces.reports.v2 as wr   # here: it imports wandb (~1 s), which run_all need not pay
    from wandb_workspaces import expr

    study = manifest["name"]
    groupings = _groupings(manifest)
    runset = wr.Runset(name=study, filters=[expr.Tags().isin([study])], groupby=[f"config.{groupings[0][1]}"])
    families = [panels for column, panels in PANEL_FAMILIES if _logged(runs, column)]
    panels: list[Any] = []
    for label, key in groupings:
        panels += [p for family in families for p in family(wr, study, label, wr.Config(key))]
    panels = list({p.title: p for p in panels}.values())   # an ungrouped panel (the paths) once, not per axis
    if len(groupings) == 2 and _logged(runs, "final_val_acc"):
        panels.append(wr.ParallelCoordinatesPlot(
            title=f"{study}: {' x '.join(label for label, _ in groupings)}",
            columns=[wr.ParallelCoordinatesPlotColumn(metric=wr.Config(key)) for _, key in groupings]
            + [wr.ParallelCoordinatesPlotColumn(metric=wr.SummaryMetric("final_val_acc"))]))
    for i, panel in enumerate(panels):   # two panels a row, in the order above
        panel.layout = wr.Layout(x=12 * (i % 2), y=8 * (i // 2), w=12, h=8)
    return [wr.H1(study), wr.P(manifest.get("question", "").strip()), wr.P(f"Claim: {manifest.get('claim', '')}"),
            wr.PanelGrid(runsets=[runset], panels=panels)]


OVERVIEW_COLUMNS = ("study", "claim", "verdict", "effect")


def overview_block(overview: Sequence[Mapping[str, Any]]) -> Any:
    """The verdicts as one Markdown table: one row per study, columns OVERVIEW_COLUMNS."""
    import wandb_workspaces.reports.v2 as wr

    def cell(value: Any) -> str:
        return str(value if value is not None else "").replace("|", "\\|").replace("\n", " ")
    rows = [f"| {' | '.join(OVERVIEW_COLUMNS)} |", "|" + " --- |" * len(OVERVIEW_COLUMNS)]
    rows += [f"| {' | '.join(cell(row.get(c)) for c in OVERVIEW_COLUMNS)} |" for row in overview]
    return wr.MarkdownBlock(text="\n".join(rows))


def build_report(manifests: Sequence[Mapping[str, Any]], runs: pd.DataFrame,
                 overview: Sequence[Mapping[str, Any]] = (), project: str = "cs231n-ablations", entity: str = "",
                 title: str = "cs231n-ablations: CS231n lectures 6-7 ablations") -> wr.Report:
    """The report object, built offline.  `runs` is the runs table (reports.tables.runs_table: a `study`
    column and the summary columns); `overview` rows are dicts with the keys of OVERVIEW_COLUMNS."""
    import wandb_workspaces.reports.v2 as wr
    blocks: list[Any] = []
    if overview:
        blocks += [wr.H1("Verdicts"), overview_block(overview)]
    blocks.append(wr.TableOfContents())
    for manifest in manifests:
        mine = runs[runs["study"] == manifest["name"]] if "study" in runs else runs.iloc[0:0]
        blocks += study_section(manifest, mine)
    return wr.Report(project=project, entity=entity, title=title[:128], blocks=blocks,
                     description="The verdicts, then per study the metrics its runs log, grouped by its axes.")


def spec(report: wr.Report) -> dict[str, Any]:
    """The report's JSON spec (the model `save` would upload), computed without the network."""
    return json.loads(report._to_model().model_dump_json(by_alias=True, exclude_none=True))


def load_spec(data: Mapping[str, Any]) -> wr.Report:
    """The report object of a saved spec, to edit and save again."""
    import wandb_workspaces.reports.v2 as wr
    from wandb_workspaces.reports.v2 import internal
    return wr.Report._from_model(internal.ReportViewspec.model_validate(data))


def save_spec(report: wr.Report, path: str | Path) -> Path:
    """Write the spec (derived from the results, so rewritten whole rather than atomically)."""
    Path(path).write_text(json.dumps(spec(report), indent=2) + "\n")
    return Path(path)


def publish(report: wr.Report) -> str:
    """Save the report to W&B and return its URL; PublishError when offline or without credentials."""
    if os.environ.get("WANDB_MODE", "").lower() in ("offline", "dryrun", "disabled"):
        raise PublishError(f"WANDB_MODE={os.environ['WANDB_MODE']}: not publishing; unset it to publish the report")
    if not has_credentials():
        raise PublishError("no W&B credentials (WANDB_API_KEY or `wandb login`); the report spec is saved locally, "
                           "publish later with `python -m reports --publish`")
    if (why := connect_error(base_url(), CONNECT_TIMEOUT_S)) is not None:
        raise PublishError(f"W&B server {base_url()} unreachable ({why}); "
                           "the report spec is saved locally, publish later with `python -m reports --publish`")
    try:
        import wandb
        api = wandb.Api(timeout=30)
        report.entity = report.entity or os.environ.get("WANDB_ENTITY") or api.default_entity
        for block in report.blocks:
            for runset in getattr(block, "runsets", []):
                runset.entity, runset.project = report.entity, report.project
        report.save()
        return report.url
    except Exception as exc:   # the API's errors are many and version-dependent; name the cause
        raise PublishError(f"saving the W&B report failed: {type(exc).__name__}: {exc}") from exc
