"""A real small grid becomes a report with every table and figure; bad files are skipped, not fatal."""
import pandas as pd
import pytest

import run_all
from reports import history_table, runs_table
from reports.build import build


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    assert run_all.main(["--study", "activations", "--study", "batchnorm_lr", "--results-dir", str(out),
                         "--epochs", "3", "--seeds", "2", "--wandb-mode", "disabled"]) == 0
    return out


def test_report_has_every_table_and_figure(results):
    report = results / "report"
    for name in ("runs.csv", "history.csv", "index.md", "index.html"):
        assert (report / name).stat().st_size > 0
    for study in ("activations", "batchnorm_lr"):
        for kind in ("curves", "final_acc", "time_to_acc", "gap"):
            assert (report / f"{study}_{kind}.png").exists() and (report / f"{study}_{kind}.svg").exists()
        stats = pd.read_csv(report / f"{study}_stats.csv")
        assert stats.n.min() == 2 and {"val_ci", "vs_baseline", "gap", "loss_gap", "test_acc"} <= set(stats.columns)
        assert stats.test_acc.dropna().between(0, 1).all() and stats.loss_gap.notna().any()
        times = pd.read_csv(report / f"{study}_time_to_acc.csv")
        assert {"epochs_to_90", "seconds_to_95", "reached_99"} <= set(times.columns) and times.reached_90.sum() > 0
        assert set(pd.read_csv(report / f"{study}_gap.csv").variant) == set(stats.variant)
        assert f"## {study}" in (report / "index.md").read_text()
    assert (report / "batchnorm_lr_heatmap.png").exists() and not (report / "activations_heatmap.png").exists()
    runs = pd.read_csv(report / "runs.csv")
    assert len(runs) == (11 + 8) * 2 and {"config.optim.lr", "final_val_acc", "axis.model.norm"} <= set(runs.columns)
    history = pd.read_csv(report / "history.csv")
    assert list(history.columns) == ["run_id", "epoch", "metric", "value"] and history.epoch.max() == 3


def test_report_only_rebuilds_without_training(results):
    before = {p: p.stat().st_mtime_ns for p in results.glob("runs/*/summary.json")}
    assert run_all.main(["--report-only", "--results-dir", str(results)]) == 0
    assert {p: p.stat().st_mtime_ns for p in results.glob("runs/*/summary.json")} == before


def test_corrupt_and_missing_files_are_reported_and_skipped(results, tmp_path):
    import shutil
    copy = tmp_path / "copy"
    shutil.copytree(results, copy)
    runs = sorted(copy.glob("runs/*"))
    (runs[0] / "summary.json").write_text("{not json")
    (runs[1] / "metrics.csv").write_text("epoch,train/loss\n1,")
    shutil.rmtree(runs[2])
    with pytest.warns(UserWarning, match="skipping unreadable"):
        table = runs_table(copy)
    assert (table.status == "missing").sum() >= 2
    history_table(copy, table.run_id)
    assert (build(copy) / "index.html").exists()


def test_index_lists_the_run_conditions(results):
    index = (results / "report" / "index.md").read_text()
    assert "## Run conditions" in index
    for line in ("| dataset(s) | digits |", "| seeds | 0, 1; per variant: activations 2, batchnorm_lr 2 |",
                 "| epochs (configured) | 3 |", "| device(s) | cpu", "| torch version | ", "| lightning version | "):
        assert line in index, line
    assert "<h2>Run conditions</h2>" in (results / "report" / "index.html").read_text()


def _no_network(monkeypatch):
    """Any socket connection or W&B API object fails the test: the report must build offline."""
    import socket

    import wandb_workspaces.reports.v2.interface as interface

    def refuse(*args, **kwargs):
        raise AssertionError(f"network touched: {args[1:]}")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(interface, "_get_api", refuse)


def test_wandb_report_spec_is_built_offline_with_a_section_per_study(results, tmp_path, monkeypatch):
    import json

    from reports.wandb_report import build_report, save_spec
    _no_network(monkeypatch)
    manifests = [json.loads((results / "studies" / f"{s}.json").read_text()) for s in ("activations", "batchnorm_lr")]
    report = build_report(manifests, runs_table(results))
    spec = json.loads(save_spec(report, tmp_path / "wandb_report.json").read_text())
    blocks = spec["spec"]["blocks"]
    assert [b["children"][0]["text"] for b in blocks if b["type"] == "heading"] == ["activations", "batchnorm_lr"]
    grids = [b["metadata"] for b in blocks if b["type"] == "panel-grid"]
    assert len(grids) == 2
    for grid, study in zip(grids, ("activations", "batchnorm_lr")):
        runset = grid["runSets"][0]
        assert runset["filters"]["filters"][0]["value"] == [study]   # the runs W&B tagged with the study
    # batchnorm_lr: a row of panels per axis, grouped by the axis label the runs log under `studies`
    assert [g["name"] for g in grids[1]["runSets"][0]["grouping"]] == ["studies.value.batchnorm_lr.axes.norm"]
    panels = grids[1]["panelBankSectionConfig"]["panels"]
    assert {p["config"]["groupBy"] for p in panels if p["viewType"] == "Run History Line Plot"} == \
        {"studies.value.batchnorm_lr.axes.norm", "studies.value.batchnorm_lr.axes.lr"}
    assert any(p["viewType"] == "Parallel Coordinates Plot" for p in panels)
    # the report folder built by the fixture holds the same spec
    saved = json.loads((results / "report" / "wandb_report.json").read_text())["spec"]["blocks"]
    assert [b["children"][0]["text"] for b in saved if b["type"] == "heading"] == ["activations", "batchnorm_lr"]


def test_publish_without_credentials_or_network_fails_clearly(results, tmp_path, monkeypatch, capsys):
    import time

    from reports.wandb_report import PublishError, build_report, publish
    for var in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    assert run_all.main(["--report-only", "--publish", "--results-dir", str(results)]) == 2
    assert "no W&B credentials" in capsys.readouterr().err
    assert (results / "report" / "wandb_report.json").exists()          # the local spec is still written
    # With a key but no server (a closed local port), it fails at once instead of hanging.
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    start = time.perf_counter()
    with pytest.raises(PublishError, match="unreachable"):
        publish(build_report([], runs_table(results)))
    assert time.perf_counter() - start < 10
