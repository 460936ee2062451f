"""The results folder is a contract (ablations/results.py): damaged files are named, never crash a
reader, and the run they belong to trains again; the report side never needs the training stack."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import run_all
from ablations import ledger, results
from ablations.results import ResultsError

ROOT = Path(__file__).resolve().parents[1]


def test_importing_the_report_loads_no_torch():
    code = "import sys, reports.build, reports.verdicts, ablations.results, ablations.rules; " \
           "print(sorted(m for m in ('torch', 'lightning', 'torchvision') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_building_a_report_loads_no_torch(grid, tmp_path):
    """The whole rebuild (tables, verdicts, figures, the W&B spec) runs on the results folder alone."""
    code = ("import sys; from reports.build import build; build(sys.argv[1], sys.argv[2], workers=1); "
            "print(sorted(m for m in ('torch', 'lightning', 'torchvision') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(grid), str(tmp_path / "report")], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]" and (tmp_path / "report" / "index.html").exists()
    # Every figure stays legible at the report's width (~1,100 px): none is drawn wider than 1,800 px.
    from PIL import Image
    widths = {p.name: Image.open(p).size[0] for p in (tmp_path / "report").glob("*.png")}
    assert len(widths) >= 8 and max(widths.values()) <= 1800, widths


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> Path:
    """A finished tiny grid whose runs hold every kind of file: predictions, diagnostics, metrics."""
    out = tmp_path_factory.mktemp("grid")
    assert run_all.main(["--study", "ensembles", "--epochs", "2", "--seeds", "2", "--results-dir", str(out),
                         "--wandb-mode", "disabled", "--set", "data.train_size=200",
                         "--set", "trainer.diagnostics_every=5"]) == 0
    return out


def _baseline_run(folder: Path) -> str:
    manifest = json.loads((folder / "studies" / "ensembles.json").read_text())
    return next(m["run_id"] for m in manifest["runs"] if m["variant"] == "baseline" and m["seed"] == 0)


def _cut_mid_row(path: Path) -> None:
    text = path.read_text()
    path.write_text(text[: text.rindex(",")])


def _shorter_valid_file(path: Path) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2]) + "\n")      # the header and one epoch: a valid CSV, too short


def _set_attempt(path: Path) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), "attempt": "abc"}))


DAMAGE = {   # file -> (how it is damaged, what the error says)
    "summary.json, not UTF-8": ("summary.json", lambda p: p.write_bytes(b"\xff\xfe" + p.read_bytes()), "unreadable"),
    "summary.json, a list": ("summary.json", lambda p: p.write_text("[]"), "expected a JSON object"),
    "summary.json, attempt 'abc'": ("summary.json", _set_attempt, "attempt must be an integer"),
    "config.json, random bytes": ("config.json", lambda p: p.write_bytes(os.urandom(300)), "unreadable"),
    "config.json, truncated": ("config.json", lambda p: p.write_text(p.read_text()[:40]), "unreadable"),
    "metrics.csv, cut mid-row": ("metrics.csv", _cut_mid_row, "fields"),
    "metrics.csv, shorter valid file": ("metrics.csv", _shorter_valid_file, "1 epoch rows, but summary.json says 2"),
    "diagnostics.csv, random bytes": ("diagnostics.csv", lambda p: p.write_bytes(os.urandom(300)), "diagnostics.csv"),
    "activations.json, random bytes": ("activations.json", lambda p: p.write_bytes(os.urandom(300)), "unreadable"),
    "predictions.npz, truncated": ("predictions.npz", lambda p: p.write_bytes(p.read_bytes()[:500]), "unreadable"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_file_is_named_and_its_run_counts_as_not_done(grid, tmp_path, case):
    name, damage, reason = DAMAGE[case]
    folder = tmp_path / "results"
    shutil.copytree(grid, folder)
    rid = _baseline_run(folder)
    damage(results.run_dir(folder, rid) / name)
    assert ledger.state(folder, rid, max_attempts=2) == "retry"          # the grid will train it again
    table, errors = results.read_runs(folder)
    assert [e.path.name for e in errors] == [name] and reason in str(errors[0])
    assert set(table.loc[table.run_id == rid, "status"]) == {"damaged"}
    assert (table.loc[table.run_id != rid, "status"] == "completed").all()
    from reports.build import build
    with pytest.warns(UserWarning, match="damaged"):
        index = (build(folder, workers=1) / "index.md").read_text()
    assert "Damaged results" in index and name in index


def test_a_damaged_manifest_is_reported_and_the_rest_builds(grid, tmp_path):
    folder = tmp_path / "results"
    shutil.copytree(grid, folder)
    shutil.copy(folder / "studies" / "ensembles.json", folder / "studies" / "copy.json")
    (folder / "studies" / "copy.json").write_text("[]")
    manifests, errors = results.read_manifests(folder)
    assert [m["name"] for m in manifests] == ["ensembles"] and "expected a JSON object" in str(errors[0])
    with pytest.raises(ResultsError, match="runs must be a list"):
        bad = folder / "studies" / "copy.json"
        bad.write_text(json.dumps({**json.loads((folder / "studies" / "ensembles.json").read_text()), "runs": 3}))
        results.read_manifest(bad)


@pytest.mark.slow
def test_a_rerun_retrains_exactly_the_damaged_runs(grid, tmp_path):
    folder = tmp_path / "results"
    shutil.copytree(grid, folder)
    rid = _baseline_run(folder)
    _shorter_valid_file(results.run_dir(folder, rid) / "metrics.csv")
    others = {p: p.stat().st_mtime_ns for p in (folder / "runs").glob("*/summary.json") if p.parent.name != rid}
    assert run_all.main(["--study", "ensembles", "--epochs", "2", "--seeds", "2", "--results-dir", str(folder),
                         "--wandb-mode", "disabled", "--set", "data.train_size=200",
                         "--set", "trainer.diagnostics_every=5"]) == 0
    assert results.check_run(folder, rid)["status"] == "completed"        # whole again
    assert {p: p.stat().st_mtime_ns for p in others} == others            # nothing else was retrained


def test_a_summary_the_readers_would_reject_is_never_written(tmp_path):
    with pytest.raises(ResultsError, match="status 'finished' is not one of"):
        results.write_summary(tmp_path, {"run_id": "r", "status": "finished", "seed": 0})
    with pytest.raises(ResultsError, match="metric final_val_acc must be a number"):
        results.write_summary(tmp_path, {"run_id": "r", "status": "completed", "seed": 0, "final_val_acc": "high"})
    assert not (tmp_path / "runs").exists()
    results.write_summary(tmp_path, {"run_id": "r", "status": "completed", "seed": 0, "final_val_acc": float("nan")})
    assert results.read_summary(tmp_path, "r")["final_val_acc"] is None      # NaN is stored as null, read as missing
