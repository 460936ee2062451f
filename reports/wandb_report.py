"""A W&B report over the suite's W&B runs, built offline from the study manifests (wandb-workspaces).

The runs are logged by ablations/tracking.py with group = study, name = variant, tags = every study the
run serves plus `axis=label`, and the flattened config (dotted keys such as `optim.lr`).  The report has
one section per study: its question and claim, then a panel grid over the runs tagged with the study,
with one row of panels per axis (val accuracy per epoch and final val accuracy, grouped by that axis'
config key) and, for two-axis studies, a parallel-coordinates panel.

Building touches no network: `wandb_workspaces` looks up the entity (Report) and a run set's project id
(Runset._to_model) through the W&B API, so the report gets an explicit entity and the run sets leave
entity/project empty until `publish`, which fills them in and saves.  `publish` checks credentials and
that the server answers within a few seconds first, so an offline machine gets a clear error, not a hang.
"""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence
from urllib.parse import urlparse

from ablations.tracking import _has_credentials

if TYPE_CHECKING:
    import wandb_workspaces.reports.v2 as wr

CONNECT_TIMEOUT_S = 5.0


class PublishError(RuntimeError):
    """The report could not be saved to W&B (no credentials, server unreachable, or the API refused)."""


def _group_key(axis: str, runs_config: set[str]) -> str | None:
    """The W&B config key an axis groups by: flat dotted keys are stored as `optim.lr` -> value, so
    the backend path is `optim.lr.value`.  Bundle axes (e.g. `optimizer`) are no config key: None."""
    return f"{axis}.value" if axis in runs_config else None


def study_section(manifest: dict[str, Any], config_keys: set[str]) -> list[Any]:
    """Heading, question and claim, and a panel grid over the W&B runs tagged with this study."""
    import wandb_workspaces.reports.v2 as wr   # here: it imports wandb (~1 s), which run_all need not pay
    from wandb_workspaces import expr

    study = manifest["name"]
    keys = [(axis, _group_key(axis, config_keys)) for axis in manifest.get("axes", [])]
    runset = wr.Runset(name=study, filters=[expr.Tags().isin([study])],
                       groupby=[f"config.{k}" for _, k in keys if k] or ["Name"])
    panels: list[Any] = []
    for row, (axis, key) in enumerate(keys or [("variant", None)]):
        group: Any = key or wr.Metric("Name")   # bundle axes: one group per variant (the W&B run name)
        layout = dict(y=row * 8, w=12, h=8)
        panels.append(wr.LinePlot(
            title=f"{study}: val accuracy per epoch by {axis}", x=wr.Metric("epoch"), y=["val/acc"],
            title_x="epoch", title_y="val accuracy", groupby=group, groupby_aggfunc="mean",
            groupby_rangefunc="stderr", layout=wr.Layout(x=0, **layout)))
        panels.append(wr.BarPlot(
            title=f"{study}: final val and train accuracy by {axis}",
            metrics=[wr.SummaryMetric("val/acc"), wr.SummaryMetric("train/acc")], groupby=group,
            groupby_aggfunc="mean", groupby_rangefunc="stderr", title_x="accuracy", layout=wr.Layout(x=12, **layout)))
    if len(keys) == 2 and all(k for _, k in keys):
        panels.append(_flat_parallel_coordinates()(
            title=f"{study}: {' x '.join(a for a, _ in keys)}",
            columns=[wr.ParallelCoordinatesPlotColumn(metric=wr.Config(a)) for a, _ in keys]
            + [wr.ParallelCoordinatesPlotColumn(metric=wr.SummaryMetric("val/acc"))],
            layout=wr.Layout(x=0, y=len(keys) * 8, w=24, h=8)))
    return [wr.H1(study), wr.P(manifest.get("question", "").strip()), wr.P(f"Claim: {manifest.get('claim', '')}"),
            wr.PanelGrid(runsets=[runset], panels=panels)]


def _flat_parallel_coordinates():
    """ParallelCoordinatesPlot whose config columns address flat dotted keys: wandb-workspaces writes
    Config("optim.lr") as `config:optim.value.lr` (a nested dict), but our runs log `optim.lr` as one key,
    which W&B stores as `optim.lr.value`."""
    import wandb_workspaces.reports.v2 as wr

    class FlatParallelCoordinatesPlot(wr.ParallelCoordinatesPlot):
        def _to_model(self):
            model = super()._to_model()
            for column, spec in zip(model.config.columns, self.columns):
                if isinstance(spec.metric, wr.Config):
                    column.accessor = f"config:{spec.metric.name}.value"
            return model
    return FlatParallelCoordinatesPlot


def build_report(manifests: Sequence[dict[str, Any]], config_keys: set[str], project: str = "cs231n-ablations",
                 entity: str = "", title: str = "cs231n-ablations: CS231n lectures 6-7 ablations") -> wr.Report:
    """The report object, built offline.  `config_keys` are the flattened config keys of the runs
    (the runs table's `config.*` columns without the prefix): axes that are config keys group by them."""
    import wandb_workspaces.reports.v2 as wr
    blocks: list[Any] = [wr.TableOfContents()]
    for manifest in manifests:
        blocks += study_section(manifest, config_keys)
    return wr.Report(project=project, entity=entity, title=title[:128], blocks=blocks,
                     description="Per study: val accuracy curves and final accuracy, grouped by each axis.")


def spec(report: wr.Report) -> dict[str, Any]:
    """The report's JSON spec (the model `save` would upload), computed without the network."""
    return json.loads(report._to_model().model_dump_json(by_alias=True, exclude_none=True))


def save_spec(report: wr.Report, path: str | Path) -> Path:
    from ablations.storage import write_json
    write_json(Path(path), spec(report))
    return Path(path)


def _reachable(url: str, timeout: float) -> bool:
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def publish(report: wr.Report) -> str:
    """Save the report to W&B and return its URL; PublishError when offline or without credentials."""
    if os.environ.get("WANDB_MODE", "").lower() in ("offline", "dryrun", "disabled"):
        raise PublishError(f"WANDB_MODE={os.environ['WANDB_MODE']}: not publishing; unset it to publish the report")
    if not _has_credentials():
        raise PublishError("no W&B credentials (WANDB_API_KEY or `wandb login`); the report spec is saved locally, "
                           "publish later with `python -m reports --publish`")
    base = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
    if not _reachable(base, CONNECT_TIMEOUT_S):
        raise PublishError(f"W&B server {base} unreachable within {CONNECT_TIMEOUT_S:.0f} s (offline?); "
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
