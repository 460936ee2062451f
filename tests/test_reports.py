"""A real small grid becomes a report with every table and figure; bad files are skipped, not fatal."""
import json
import math
import re

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
        assert stats.n.min() == 2 and {"val_ci", "gap", "loss_gap", "test_acc"} <= set(stats.columns)
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


def test_report_only_script_skips_the_training_stack(results, tmp_path):
    """`python run_all.py --report-only` answers before importing torch or Lightning (seconds of a
    rebuild); any other command line, or a malformed one, still goes through run_all's full parser."""
    import subprocess
    import sys
    from pathlib import Path
    script = ("import runpy, sys; sys.argv = ['run_all.py'] + sys.argv[1:]\n"
              "try:\n    runpy.run_path('run_all.py', run_name='__main__')\n"
              "except SystemExit as e:\n    code = e.code\n"
              "print('loaded:', sorted(m for m in ('torch', 'lightning') if m in sys.modules), 'exit:', code)")
    root = Path(run_all.__file__).parent

    def run(*args):
        done = subprocess.run([sys.executable, "-c", script, *args], cwd=root, capture_output=True, text=True,
                              timeout=300)
        return done.stdout.strip().splitlines()[-1], done.stdout + done.stderr

    last, out = run("--report-only", "--results-dir", str(results))
    assert last == "loaded: [] exit: 0" and "Verdicts (" in out and "report: " in out
    (tmp_path / "file").write_text("")
    last, out = run("--report-only", "--results-dir", str(tmp_path / "file"))
    assert last == "loaded: [] exit: 2" and "is a file, not a folder" in out
    # not the fast path's to answer: run_all's full parser rejects it with its usage line
    last, out = run("--report-only", "--results-dir", str(results), "--bogus")
    assert last == "loaded: ['lightning', 'torch'] exit: 2" and "unrecognized arguments: --bogus" in out


def test_corrupt_and_missing_files_are_reported_and_skipped(results, tmp_path):
    import shutil
    copy = tmp_path / "copy"
    shutil.copytree(results, copy)
    runs = sorted(copy.glob("runs/*"))
    (runs[0] / "summary.json").write_text("{not json")
    (runs[1] / "metrics.csv").write_text("epoch,train/loss\n1,")
    shutil.rmtree(runs[2])
    with pytest.warns(UserWarning, match="skipping damaged"):
        table = runs_table(copy)
    assert (table.status == "damaged").sum() == 2 and (table.status == "missing").sum() >= 1
    history_table(copy, table.run_id)
    assert (build(copy) / "index.html").exists()


def test_vs_control_uses_the_control_the_study_names(results):
    stats = pd.read_csv(results / "report" / "batchnorm_lr_stats.csv").set_index("variant")
    assert stats.loc["norm=none,lr=0.05", "vs_control"] == 0.0             # the control against itself
    assert "vs_control_ci" in stats and stats.vs_control_n.max() == 2
    first = stats.index[0]
    assert first != "norm=none,lr=0.05" and stats.loc[first, "vs_control"] != 0.0   # not "whatever came first"


def test_the_readme_table_is_generated_from_the_stored_report(results, tmp_path):
    import subprocess
    import sys
    from reports.overview import BEGIN, END, readme_table, write_readme
    stored = json.loads((results / "report" / "verdicts.json").read_text())
    table = readme_table(results)
    for row in stored["studies"]:
        assert f"`{row['study']}`" in table and f"**{row['verdict']}**" in table
    assert table.startswith(BEGIN) and table.endswith(END) and "Generated by `python -m reports --readme-table`" in table
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{BEGIN}\nold, typed by hand\n{END}\n\nmore text\n")
    write_readme(readme, table)
    assert readme.read_text() == f"# title\n\n{table}\n\nmore text\n"
    out = subprocess.run([sys.executable, "-m", "reports", "--results-dir", str(results), "--readme-table"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == table
    missing = subprocess.run([sys.executable, "-m", "reports", "--results-dir", str(tmp_path), "--readme-table"],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "no stored report" in missing.stderr and "Traceback" not in missing.stderr
    # a second, named block (another preset's results) is replaced alone
    from reports.overview import markers
    begin, end = markers("fashion_mnist-verdicts")
    readme.write_text(f"{table}\n\n{begin}\nold\n{end}\n")
    named = subprocess.run([sys.executable, "-m", "reports", "--results-dir", str(results), "--readme-table",
                            "--block", "fashion_mnist-verdicts", "--write-readme", str(readme)], capture_output=True)
    assert named.returncode == 0 and readme.read_text() == f"{table}\n\n{readme_table(results, 'fashion_mnist-verdicts')}\n"
    assert "--block fashion_mnist-verdicts" in begin


def test_the_overview_comes_first(results):
    md = (results / "report" / "index.md").read_text()
    assert md.index("## Verdicts") < md.index("## Run conditions") < md.index("## activations")
    assert "(#study-activations)" in md and "<a id='study-activations'></a>" in md


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
    # the report folder built by the fixture holds the same sections, after the verdict overview
    saved = json.loads((results / "report" / "wandb_report.json").read_text())["spec"]["blocks"]
    headings = [b["children"][0]["text"] for b in saved if b["type"] == "heading"]
    assert headings[0] == "Verdicts" and headings[-2:] == ["activations", "batchnorm_lr"]   # the overview first


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


def _section(md: str, study: str) -> str:
    """One study's part of index.md: from its anchor to the next study's."""
    return md.split(f"<a id='study-{study}'></a>", 1)[1].split("<a id='study-", 1)[0]


def test_index_html_leads_with_the_overview_and_shows_each_study_once(results):
    page = (results / "report" / "index.html").read_text()
    assert page.index('<table class="overview">') < page.index('id="contents"') < page.index('id="conditions"') \
        < page.index('id="study-activations"')
    assert "border=" not in page and "<pre>Does" not in page and "<style>" in page
    for study in ("activations", "batchnorm_lr"):
        assert f'href="#study-{study}"' in page and f'<section id="study-{study}">' in page
    manifest = json.loads((results / "studies" / "activations.json").read_text())
    section = page.split('<section id="study-activations">')[1].split("</section>")[0]
    question = manifest["question"].splitlines()[0]
    assert section.count(question) == 1 and section.count(manifest["claim"]) == 1
    assert "<details><summary>About this study</summary>" in section        # the rest of the docstring, folded
    verdict = section.split('class="verdict"')[1].split("</div>")[0]
    assert verdict.count("<li>") == 2 and verdict.count("paired t-test") == 2   # one comparison per line


def _markdown_tables(text: str) -> list[list[str]]:
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables


def test_index_md_is_markdown_with_readable_tables(results):
    md = (results / "report" / "index.md").read_text()
    blocks = re.findall(r"```(\w*)\n(.*?)```", md, re.S)      # code blocks: only the studies' notes
    assert blocks and all(lang == "text" and "|" not in body for lang, body in blocks)
    tables = _markdown_tables(md)
    assert len(tables) >= 5
    for table in tables:   # every row has the header's cells (escaped pipes aside) and a --- row
        cells = [len(re.split(r"(?<!\\)\|", row)) for row in table]
        assert len(set(cells)) == 1 and set(table[1].replace("|", "").split()) <= {"---", "---:"}, table[:2]
    body = "\n".join(row for table in tables for row in table)
    assert not re.search(r"-0\.0+(?!\d)|e[+-]\d\d|\d\.\d{5,}", body), re.findall(r".{20}(?:-0\.0+(?!\d)|e[+-]\d\d).{5}", body)
    activations = _section(md, "activations")
    header = next(t for t in _markdown_tables(activations) if "seeds" in t[0])
    assert header[0].startswith("| activation | seeds | val acc, % [95% CI]")
    rows = [r.split("|")[1].strip() for r in header[2:]]
    assert rows[0] == "relu" and rows.count("relu") == 1 and len(rows) == 10   # baseline = relu, shown once
    assert "control, = activation=relu" in header[2] and re.search(r"\| \d{1,3}\.\d \[", header[3])
    grid = next(t for t in _markdown_tables(_section(md, "batchnorm_lr")) if "seeds" in t[0])
    assert grid[0].startswith("| norm | lr | seeds |") and "norm=" not in "\n".join(grid[2:])
    diverged = grid[0].split("|").index(" diverged ")
    assert sum(int(r.split("|")[diverged]) for r in grid[2:]) == \
        int((pd.read_csv(results / "report" / "runs.csv").query("study == 'batchnorm_lr'").status == "diverged").sum())


def test_numbers_are_shown_without_float_dust():
    from reports.display import interval, number, percent
    assert [number(-3.7e-17), number(-0.0), number(0.0), number(5.0), number(0.000123), number(2.5e-6)] == \
        ["0", "0", "0", "5", "0.000123", "2.5e-06"]
    assert [percent(0.93421), percent(-0.00001, signed=True), percent(0.012, signed=True)] == ["93.4", "0.0", "+1.2"]
    assert interval(3.5, 4.37, False, True) == "[+3.50, +4.37]" and interval(math.nan, 1, True) == ""


def test_a_table_without_numbers_is_left_out():
    from reports.display import display_stats
    members = pd.DataFrame({"variant": ["a", "b"], "seed": [0, 0], "run_id": ["r1", "r2"], "status": ["completed"] * 2,
                            "axis.optim": ["a", "b"]})
    nan = math.nan
    stats = pd.DataFrame({"variant": ["a", "b"], "n": [1, 1], "val_acc": [nan] * 2, "val_low": [nan] * 2,
                          "val_high": [nan] * 2, "test_acc": [nan] * 2, "test_low": [nan] * 2, "test_high": [nan] * 2,
                          "gap": [nan] * 2, "diverged": [0, 0], "failed": [0, 0]})
    assert display_stats(stats, members, {"axes": ["optim"], "control": None}) is None
    stats["val_acc"] = [0.5, 0.6]
    table = display_stats(stats, members, {"axes": ["optim"], "control": None})
    assert table.columns == ["optim", "seeds", "val acc, % [95% CI]", "diverged", "failed", "note"]
    acc, seeds = table.columns.index("val acc, % [95% CI]"), table.columns.index("seeds")
    assert [r[acc] for r in table.rows] == ["50.0", "60.0"] and "num" in table.classes[0][seeds].split()


def test_the_terminal_overview_is_one_readable_block(results):
    from reports.overview import terminal
    rows = json.loads((results / "report" / "verdicts.json").read_text())["studies"]
    text = terminal(rows, width=100)
    assert text.startswith("Verdicts (") and all(len(line) <= 100 for line in text.splitlines())
    for row in rows:
        assert f"  {row['study']:<18} {row['verdict']:<24}" in text and f"n = {row['n']}" in text


def test_a_rebuild_redraws_only_the_study_that_changed(results, tmp_path):
    import shutil
    copy = tmp_path / "results"
    shutil.copytree(results, copy)   # copy2 keeps the files' times: the copied cache still holds
    report = copy / "report"
    stamps = lambda: {p.name: p.stat().st_mtime_ns for p in report.glob("*.png")}  # noqa: E731
    before = stamps()
    build(copy, workers=1)
    assert stamps() == before                                             # nothing changed, nothing drawn
    manifest = json.loads((copy / "studies" / "batchnorm_lr.json").read_text())
    rid = next(m["run_id"] for m in manifest["runs"] if m["variant"] == "norm=batch,lr=0.8")
    path = copy / "runs" / rid / "summary.json"
    summary = json.loads(path.read_text())
    path.write_text(json.dumps({**summary, "final_val_acc": 0.5}))        # as if retrained
    build(copy, workers=1)
    after = stamps()
    redrawn = {name for name in after if after[name] != before.get(name)}
    assert redrawn and {name.split("_")[0] for name in redrawn} == {"batchnorm"}
    assert all(after[n] == t for n, t in before.items() if n.startswith("activations_"))
