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
        for kind in ("curves", "final_acc"):
            assert (report / f"{study}_{kind}.png").exists() and (report / f"{study}_{kind}.svg").exists()
        stats = pd.read_csv(report / f"{study}_stats.csv")
        assert stats.n.min() == 2 and {"val_ci", "vs_baseline", "gap"} <= set(stats.columns)
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
