"""W&B on a real (tiny) grid: every run read back from its offline files, the W&B report spec checked
against what those runs really logged, and a grid without network that goes offline once.  Nothing
here reaches the network: runs are offline, or online against a closed port on 127.0.0.1."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from wandb_records import FAKE_KEY, all_runs, closed_port

import run_all
from reports.tables import runs_table
from reports.wandb_report import build_report, load_spec, spec, study_section

ROOT = Path(__file__).resolve().parent.parent
STUDIES = ("batchnorm_lr", "babysitting", "landscapes")   # fit + lr_find + overfit + landscape; shared baseline
GRID = ["--seeds", "1", "--epochs", "1", "--workers", "2", "--set", "landscape.steps=10"]


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    results = tmp_path_factory.mktemp("wandb_grid")
    args = [a for s in STUDIES for a in ("--study", s)] + GRID + ["--wandb-mode", "offline"]
    assert run_all.main(args + ["--results-dir", str(results)]) in (0, 1)
    manifests = {s: json.loads((results / "studies" / f"{s}.json").read_text()) for s in STUDIES}
    return {"results": results, "manifests": manifests, "runs": runs_table(results), "wandb": all_runs(results)}


def _members(grid):
    """(study, member, summary.json) for every run of every study."""
    for study, manifest in grid["manifests"].items():
        for member in manifest["runs"]:
            summary = json.loads((grid["results"] / "runs" / member["run_id"] / "summary.json").read_text())
            yield study, member, summary


@pytest.mark.slow
def test_every_run_is_one_wandb_run_with_its_seed_studies_status_and_code_version(grid):
    for study, member, summary in _members(grid):
        wb = grid["wandb"][member["run_id"]]
        run = wb["run"]
        assert run.display_name.endswith(f" seed={member['seed']}")
        assert study in run.tags and study in run.run_group.split("+")
        assert member["variant"] in wb["config"]["studies"][study]["variant"].split(" / ")
        assert wb["summary"]["status"] == summary["status"]
        assert wb["summary"]["code_version"] == wb["config"]["code_version"] == summary["code_version"]
        assert (summary["status"] in run.tags) == (summary["status"] != "completed")
        assert wb["exit_code"] == (0 if summary["status"] in ("completed", "diverged") else 1)


@pytest.mark.slow
def test_a_run_shared_by_studies_carries_every_study(grid):
    shared = {m["run_id"] for s, m, _ in _members(grid) if s == "babysitting"} & \
        {m["run_id"] for s, m, _ in _members(grid) if s == "batchnorm_lr"}
    (rid,) = shared   # the baseline is also batchnorm_lr's norm=none,lr=0.05
    wb = grid["wandb"][rid]
    assert {"babysitting", "batchnorm_lr"} <= set(wb["run"].tags)
    assert wb["run"].run_group == "batchnorm_lr+babysitting"   # both, in plan order
    assert wb["config"]["studies"]["babysitting"]["variant"] == "baseline"   # no axis label: the baseline
    assert not wb["config"]["studies"]["babysitting"].get("axes")
    assert wb["config"]["studies"]["batchnorm_lr"] == {"variant": "norm=none,lr=0.05",
                                                       "axes": {"norm": "none", "lr": "0.05"}}


def _logged(wb: dict, metric: str, regex: bool = False) -> bool:
    keys = set(wb["summary"]) | {k for row in wb["history"] for k in row}
    return any(re.fullmatch(metric, k) for k in keys) if regex else metric in keys


def _config(wb: dict, path: str):
    value = wb["config"]
    for part in path.split("."):
        value = value[part]
    return value


def _references(panel) -> tuple[list[str], list[str], str | None]:
    """(metric names, config paths, metric regex) a panel object reads."""
    import wandb_workspaces.reports.v2 as wr

    items = [getattr(panel, "x", None), *getattr(panel, "y", []), *getattr(panel, "metrics", []),
             *(c.metric for c in getattr(panel, "columns", [])), getattr(panel, "groupby", None)]
    metrics = [i if isinstance(i, str) else i.name for i in items if isinstance(i, (str, wr.Metric, wr.SummaryMetric))]
    configs = [i.name for i in items if isinstance(i, wr.Config)]
    return metrics, configs, getattr(panel, "metric_regex", None)


@pytest.mark.slow
def test_report_panels_read_metrics_the_studys_runs_really_log(grid):
    for study, manifest in grid["manifests"].items():
        runs = grid["runs"][grid["runs"].study == study]
        mine = [grid["wandb"][rid] for rid in dict.fromkeys(m["run_id"] for m in manifest["runs"])]
        (grid_block,) = [b for b in study_section(manifest, runs) if hasattr(b, "panels")]
        assert grid_block.panels
        for panel in grid_block.panels:
            metrics, configs, regex = _references(panel)
            for metric in metrics:
                assert any(_logged(wb, metric) for wb in mine), (study, panel.title, metric)
            if regex:
                assert any(_logged(wb, regex, regex=True) for wb in mine), (study, panel.title, regex)
            for path in configs:   # every run of the study has the key the panel groups by
                assert all(_config(wb, path) is not None for wb in mine), (study, panel.title, path)


@pytest.mark.slow
def test_report_groups_each_study_by_its_own_axes(grid):
    groups = {}
    for study, manifest in grid["manifests"].items():
        (block,) = [b for b in study_section(manifest, grid["runs"][grid["runs"].study == study])
                    if hasattr(b, "panels")]
        groups[study] = {p.groupby.name for p in block.panels if getattr(p, "groupby", None) is not None}
    assert groups == {"batchnorm_lr": {"studies.batchnorm_lr.axes.norm", "studies.batchnorm_lr.axes.lr"},
                      "landscapes": {"studies.landscapes.axes.optimizer", "studies.landscapes.axes.function"},
                      "babysitting": {"studies.babysitting.variant"}}   # one at a time: by variant
    # Grouped by optimizer, the landscapes panels separate all 8 optimizers (not merged by a shared lr).
    labels = {grid["wandb"][m["run_id"]]["config"]["studies"]["landscapes"]["axes"]["optimizer"]
              for m in grid["manifests"]["landscapes"]["runs"]}
    assert len(labels) == 8


OVERVIEW = [{"study": "batchnorm_lr", "claim": "BN tolerates higher rates", "verdict": "supported",
             "effect": "+0.031 [+0.012, +0.050], n=3"},
            {"study": "landscapes", "claim": "momentum | overshoots", "verdict": "inconclusive", "effect": ""}]


@pytest.mark.slow
def test_report_opens_with_the_verdicts_and_survives_a_load_edit_save(grid):
    report = build_report(list(grid["manifests"].values()), grid["runs"], overview=OVERVIEW)
    saved = spec(report)
    blocks = saved["spec"]["blocks"]
    kinds = [b["type"] for b in blocks if b["type"] != "paragraph" or b.get("children", [{}])[0].get("text")]
    assert kinds[:3] == ["heading", "markdown-block", "table-of-contents"]
    table = blocks[[b["type"] for b in blocks].index("markdown-block")]["content"]
    assert table.splitlines()[0] == "| study | claim | verdict | effect |"
    assert "| batchnorm_lr | BN tolerates higher rates | supported | +0.031 [+0.012, +0.050], n=3 |" in table
    assert "momentum \\| overshoots" in table   # a | in a cell stays inside it
    # Load the spec, edit the title, save it: nothing else changes.
    loaded = load_spec(saved)
    loaded.title = "edited"
    again = spec(loaded)
    assert again["displayName"] == "edited"
    assert {**again, "displayName": None} == {**saved, "displayName": None}


def test_the_report_module_imports_no_torch():
    """reports/wandb_report.py on its own (without the reports package) pulls in neither torch nor the
    training stack: only the torch-free W&B layout it shares with ablations/tracking.py."""
    code = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('wr', sys.argv[1]); "
            "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'lightning', 'ablations', "
            "'lit_modules')))")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT / "reports" / "wandb_report.py")],
                         capture_output=True, text=True, timeout=120, check=True, cwd=ROOT).stdout
    assert out.strip() == "['ablations', 'ablations.wandb_layout']"


# --- no network -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def offline_grid(tmp_path_factory):
    """`python run_all.py` with an API key and a W&B server that refuses connections, 2 workers."""
    results = tmp_path_factory.mktemp("no_network")
    env = {k: v for k, v in os.environ.items() if k != "WANDB_MODE"}
    env.update(WANDB_API_KEY=FAKE_KEY, WANDB_BASE_URL=f"http://127.0.0.1:{closed_port()}", WANDB_SILENT="true")
    start = time.monotonic()
    done = subprocess.run([sys.executable, "run_all.py", "--study", "landscapes", *GRID, "--results-dir",
                           str(results)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return {"results": results, "done": done, "seconds": time.monotonic() - start}


@pytest.mark.slow
def test_no_network_sends_the_whole_grid_offline_once_and_keeps_every_run(offline_grid):
    done, results = offline_grid["done"], offline_grid["results"]
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("logs offline") == 1, done.stderr[-3000:]   # said once, by one worker
    assert "wandb sync" in done.stderr
    manifest = json.loads((results / "studies" / "landscapes.json").read_text())
    wandb = all_runs(results)
    assert {m["run_id"] for m in manifest["runs"]} <= set(wandb)   # every run kept for `wandb sync`
    assert all(wandb[m["run_id"]]["exit_code"] == 0 for m in manifest["runs"])
    assert offline_grid["seconds"] < 300   # 24 runs; W&B's own timeout would cost 20 s each
    leaks = [p for p in results.rglob("*") if p.is_file() and FAKE_KEY.encode() in p.read_bytes()]
    assert leaks == []


@pytest.mark.slow
def test_rerun_stale_retrains_exactly_the_results_of_another_code_version(offline_grid, capsys):
    results = offline_grid["results"]
    manifest = json.loads((results / "studies" / "landscapes.json").read_text())
    rids = [m["run_id"] for m in manifest["runs"]]
    old = results / "runs" / rids[3] / "summary.json"
    summary = json.loads(old.read_text())
    old.write_text(json.dumps({**summary, "code_version": "git:0000000"}))
    stamps = {rid: (results / "runs" / rid / "summary.json").stat().st_mtime_ns for rid in rids}
    args = ["--study", "landscapes", *GRID, "--results-dir", str(results), "--wandb-mode", "disabled"]

    assert run_all.main(args + ["--dry-run"]) == 0
    assert "24 runs: 23 done, 1 stale, 0 pending" in capsys.readouterr().out
    assert run_all.main(args) == 0   # without the flag a stale result is kept
    assert json.loads(old.read_text())["code_version"] == "git:0000000"
    assert run_all.main(args + ["--rerun-stale"]) == 0
    retrained = json.loads(old.read_text())
    assert retrained["code_version"] == summary["code_version"] and retrained["attempt"] == 1
    assert retrained["distance"] == pytest.approx(summary["distance"])   # same config, same numbers
    changed = [rid for rid in rids if (results / "runs" / rid / "summary.json").stat().st_mtime_ns != stamps[rid]]
    assert changed == [rids[3]]
