"""Studies expand and validate; the grid trains each run once, resumes after a kill, survives failures."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import run_all
from ablations import ledger
from ablations.grid import plan
from ablations.studies import STUDIES
from ablations.study import Bundle, LogUniform, Study
from lit_modules import ConfigError, ImageClassifier

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--epochs", "1", "--seeds", "1", "--wandb-mode", "disabled"]


def test_every_study_file_is_in_the_explicit_list():
    files = {p.stem for p in (ROOT / "ablations" / "studies").glob("*.py")} - {"__init__"}
    assert files == set(STUDIES.names())


@pytest.mark.parametrize("name", STUDIES.names())
def test_every_study_expands_validates_and_runs_tiny(name, tmp_path):
    study = STUDIES.get(name)
    assert study.question.strip() and study.claim and "python run_all.py" in study.question
    runs = plan([study], {"trainer.max_epochs": 1, "data.train_size": 300}, seeds=1)
    assert runs and all(t.study == name for r in runs for t in r.trials)
    assert run_all.main(["--study", name, "--results-dir", str(tmp_path), *TINY,
                         "--set", "data.train_size=300"]) == 0
    manifest = json.loads((tmp_path / "studies" / f"{name}.json").read_text())
    assert {m["run_id"] for m in manifest["runs"]} == {r.run_id for r in runs}
    for member in manifest["runs"]:
        summary = json.loads((tmp_path / "runs" / member["run_id"] / "summary.json").read_text())
        assert summary["status"] in ledger.DONE


@pytest.mark.parametrize("name", STUDIES.names())
def test_every_comparative_study_names_its_control(name):
    """vs_control compares with the control the study declares, never with whatever variant came first:
    the baseline of a one-axis study, a named cell of a grid or a search."""
    study = STUDIES.get(name)
    if study.mode == "random":
        return
    trials = study.trials(seeds=1)
    assert study.control_variant in {t.variant for t in trials}
    assert study.mode == "one_at_a_time" or study.control is not None


@pytest.mark.parametrize("name", STUDIES.names())
def test_every_study_file_states_the_setting_it_scales_down(name):
    """Each study says which paper or lecture setting it scales down (cited with its year) and the
    scaled-down setting the presets use, beside its claim, rule, command and expected time."""
    doc = STUDIES.get(name).question
    for part in ("Claim", "Paper setting:", "Scaled down:", "Verdict:", "Run:", "Time:"):
        assert part in doc, f"{name}: no {part!r} in its docstring"
    setting = doc[doc.index("Paper setting:"):doc.index("Scaled down:")]
    assert re.search(r"\b(19|20)\d\d\b", setting) or "lecture" in setting, setting


def test_expansion_modes_count_and_label_their_variants():
    axes = {"model.activation": ["relu", "tanh", "sigmoid"], "optim.lr": [0.01, 0.1]}
    one = Study("s", "c", axes).trials(seeds=2)
    assert len(one) == (1 + 3 + 2) * 2 and one[0].variant == "baseline"
    assert {t.variant for t in one} >= {"activation=tanh", "lr=0.01"}
    grid = Study("s", "c", axes, mode="grid").trials(seeds=1)
    assert len(grid) == 6 and grid[0].overrides == {"model.activation": "relu", "optim.lr": 0.01}
    bundles = Study("s", "c", {"opt": {"adam": Bundle({"optim.name": "adam", "optim.lr": 1e-3})}}).trials(1)
    assert bundles[1].overrides == {"optim.name": "adam", "optim.lr": 1e-3} and bundles[1].variant == "opt=adam"


def test_random_search_is_seeded_and_log_uniform():
    study = Study("search", "c", {"optim.lr": LogUniform(1e-4, 1.0)}, mode="random", samples=400, seeds=1)
    lrs = [t.overrides["optim.lr"] for t in study.trials()]
    assert lrs == [t.overrides["optim.lr"] for t in study.trials()]          # same draws every time
    assert all(1e-4 <= lr <= 1.0 for lr in lrs)
    below_1e2 = sum(lr < 1e-2 for lr in lrs) / len(lrs)                      # half the decades -> ~half
    assert 0.4 < below_1e2 < 0.6


def test_a_bad_study_fails_naming_the_study_key_and_choices():
    bad = Study("broken", "c", {"model.activation": ["relu", "swishy"]})
    with pytest.raises(ConfigError) as err:
        plan([STUDIES.get("activations"), bad])
    assert all(w in str(err.value) for w in ("broken", "swishy", "model.activation", "tanh"))
    with pytest.raises(ConfigError, match="broken.*optim.learning_rate"):
        plan([Study("broken", "c", {"optim.learning_rate": [0.1]})])


def test_a_configuration_shared_by_studies_is_one_run():
    studies = [STUDIES.get("activations"), STUDIES.get("initializers")]
    runs = plan(studies, seeds=1)
    trials = sum(len(s.trials(1)) for s in studies)
    baseline = [r for r in runs if len(r.trials) > 1]
    assert len(runs) < trials and baseline
    assert {"activations", "initializers"} <= {t.study for r in baseline for t in r.trials}


def _summaries(results: Path) -> dict[str, tuple[str, float]]:
    return {p.parent.name: (json.loads(p.read_text())["status"], p.stat().st_mtime_ns)
            for p in results.glob("runs/*/summary.json")}


def test_rerun_skips_finished_runs_and_retries_failed_ones(tmp_path, monkeypatch):
    args = ["--study", "activations", "--results-dir", str(tmp_path), *TINY]
    original = ImageClassifier.training_step

    def tanh_crashes(self, batch, batch_idx):
        if self.model_cfg.activation == "tanh":
            raise RuntimeError("tanh exploded")
        return original(self, batch, batch_idx)

    monkeypatch.setattr(ImageClassifier, "training_step", tanh_crashes)
    assert run_all.main(args) == 1                      # a failed run makes the command fail...
    first = _summaries(tmp_path)
    assert sorted(s for s, _ in first.values()).count("failed") == 1
    assert len(first) == len(plan([STUDIES.get("activations")], seeds=1))   # ...but the grid went on
    monkeypatch.setattr(ImageClassifier, "training_step", original)
    assert run_all.main(args) == 0                      # the failed run is retried, the rest skipped
    second = _summaries(tmp_path)
    changed = [rid for rid in first if first[rid] != second[rid]]
    assert len(changed) == 1 and second[changed[0]][0] == "completed"
    retried = json.loads((tmp_path / "runs" / changed[0] / "summary.json").read_text())
    assert retried["attempt"] == 2
    assert run_all.main(args) == 0 and _summaries(tmp_path) == second      # nothing is written twice


def test_looks_of_the_sequential_design():
    assert run_all.looks(5, 10) == [5, 8, 10] and run_all.looks(2, 3) == [2, 3] and run_all.looks(5, 5) == [5]


@pytest.mark.slow
@pytest.mark.parametrize("metric", ["final_val_acc", "val_loss_auc"])   # in summary.json; derived by the report
def test_until_decided_trains_only_the_added_seeds_of_undecided_variants(tmp_path, monkeypatch, metric):
    """Seeds are added, look by look, to the two variants the rule compares (undecided at 2 seeds with a
    smallest effect too small to show equivalence); the third variant keeps 2; a re-run trains nothing.
    A rule on a metric derived from the learning curves gets its seeds too (once it saw no number on
    any run, so every seed tied and nothing was added)."""
    from ablations.rules import Better
    from lit_modules import Registry
    study = Study("tiny", "relu and leaky ReLU differ", {"model.activation": ["leaky_relu", "tanh"]},
                  question="python run_all.py --study tiny", base={"data.train_size": 200},
                  verdict=Better("baseline", ("activation=leaky_relu",), metric=metric, delta=1e-9))
    monkeypatch.setattr(run_all, "STUDIES", Registry("study", {"tiny": study}))
    # two epochs: an area under the val-loss curve needs two points
    args = ["--study", "tiny", "--results-dir", str(tmp_path), "--epochs", "2", "--wandb-mode", "disabled"]
    assert run_all.main([*args, "--seeds", "2"]) == 0
    before = _summaries(tmp_path)
    assert run_all.main([*args, "--seeds", "2", "--until-decided", "--max-seeds", "4"]) == 0
    after = _summaries(tmp_path)
    assert {rid: after[rid] for rid in before} == before                  # every finished seed reused
    manifest = json.loads((tmp_path / "studies" / "tiny.json").read_text())
    seeds = {v: sorted(m["seed"] for m in manifest["runs"] if m["variant"] == v)
             for v in ("baseline", "activation=leaky_relu", "activation=tanh")}
    n = len(seeds["baseline"])      # 3 or 4: the rounds stop at the look that decides
    assert n > 2 and seeds == {"baseline": list(range(n)), "activation=leaky_relu": list(range(n)),
                               "activation=tanh": [0, 1]}
    assert len(after) - len(before) == 2 * (n - 2)                          # the added seeds of two variants
    assert manifest["design"] == {"alpha": 0.05, "looks": [2, 3, 4]}
    assert run_all.main([*args, "--seeds", "2", "--until-decided", "--max-seeds", "4"]) == 0
    assert _summaries(tmp_path) == after                                    # a re-run repeats the rounds, trains nothing


def test_a_failed_run_is_not_retried_past_the_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(ImageClassifier, "training_step", lambda *a: (_ for _ in ()).throw(RuntimeError("x")))
    args = ["--study", "optimizers", "--results-dir", str(tmp_path), "--max-attempts", "1", *TINY]
    assert run_all.main(args) == 1
    before = _summaries(tmp_path)
    assert run_all.main(args) == 1 and _summaries(tmp_path) == before


@pytest.mark.slow
def test_a_grid_killed_with_sigkill_resumes_without_loss_or_repeats(tmp_path):
    cmd = [sys.executable, str(ROOT / "run_all.py"), "--study", "activations", "--study", "initializers",
           "--results-dir", str(tmp_path), "--epochs", "3", "--seeds", "1", "--wandb-mode", "disabled"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(list(tmp_path.glob("runs/*/summary.json"))) < 4 and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _summaries(tmp_path)
    assert 4 <= len(before)
    assert subprocess.run(cmd, cwd=tmp_path, capture_output=True).returncode == 0
    after = _summaries(tmp_path)
    runs = plan([STUDIES.get("activations"), STUDIES.get("initializers")], {"trainer.max_epochs": 3}, seeds=1)
    assert set(after) == {r.run_id for r in runs}                     # every run present exactly once
    assert all(after[rid] == before[rid] for rid in before)           # finished results untouched
    assert not list(tmp_path.glob("runs/*/.*.tmp")) and not list(tmp_path.glob("runs/*/.lock"))
    for p in tmp_path.glob("runs/*/*.json"):
        json.loads(p.read_text())                                     # no corrupt file


@pytest.mark.slow
def test_two_workers_train_the_same_runs_as_one(tmp_path):
    common = ["--study", "activations", *TINY]
    assert run_all.main([*common, "--results-dir", str(tmp_path / "one")]) == 0
    assert run_all.main([*common, "--results-dir", str(tmp_path / "two"), "--workers", "2"]) == 0
    one, two = _summaries(tmp_path / "one"), _summaries(tmp_path / "two")
    assert set(one) == set(two)
    for rid in one:
        a, b = (json.loads((tmp_path / d / "runs" / rid / "summary.json").read_text()) for d in ("one", "two"))
        assert a["status"] == b["status"]
        assert a["final_val_acc"] == pytest.approx(b["final_val_acc"], abs=0.02)


def test_list_dry_run_and_errors(tmp_path, capsys):
    assert run_all.main(["--list", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert set(info["studies"]) == set(STUDIES.names()) and "relu" in info["activations"]
    assert {"datasets", "optimizers", "schedules", "executors", "augmentations"} <= set(info)
    assert run_all.main(["--study", "activations", "--dry-run", "--results-dir", str(tmp_path), *TINY]) == 0
    out = capsys.readouterr().out
    assert "pending" in out and "activations/baseline" in out and not (tmp_path / "runs").exists()
    assert run_all.main(["--study", "nope", "--results-dir", str(tmp_path)]) == 2
    assert "activations" in capsys.readouterr().err


def test_a_run_that_kills_its_worker_fails_alone_and_the_grid_goes_on(tmp_path, monkeypatch):
    """The kernel's OOM killer takes a worker (and with it the process pool): the run it was training
    is retried alone, then fails with a clear error; every other run, started or not, completes."""
    from ablations import runner
    from ablations.executors import Job, run_local
    from ablations.tracking import Tracking
    train = runner.train

    def train_or_die(cfg, *args, **kwargs):
        if cfg.model.activation == "tanh":
            os.kill(os.getpid(), signal.SIGKILL)
        return train(cfg, *args, **kwargs)

    monkeypatch.setattr(runner, "train", train_or_die)   # the forked workers inherit it
    runs = plan([STUDIES.get("activations")], {"trainer.max_epochs": 1, "data.train_size": 300}, seeds=1)
    jobs = [Job(r.run_id, r.cfg, r.group, r.name, (), str(tmp_path), Tracking("disabled")) for r in runs]
    results = []
    run_local(jobs, results.append, workers=2)
    assert sorted(r["run_id"] for r in results) == sorted(j.run_id for j in jobs)   # each reported once
    killer = next(r.run_id for r in runs if r.cfg.model.activation == "tanh")
    outcome = {r["run_id"]: r for r in results}
    assert outcome[killer]["status"] == "failed" and "worker process died" in outcome[killer]["error"]
    assert json.loads((tmp_path / "runs" / killer / "summary.json").read_text())["attempt"] == 2
    assert all(r["status"] in ledger.DONE for rid, r in outcome.items() if rid != killer)
    assert not list(tmp_path.glob("runs/*/.lock"))


def test_a_worker_frees_each_run_before_the_next(tmp_path):
    """Runs leave reference cycles holding their data; a worker collects them before the next run."""
    import gc

    from ablations.executors import Job, execute
    from ablations.tracking import Tracking
    from datamodules.datamodule import ImageDataModule
    run = plan([STUDIES.get("activations")], {"trainer.max_epochs": 1, "data.train_size": 300}, seeds=1)[0]

    def alive() -> set[int]:   # other tests may legitimately hold modules: compare before and after
        return {id(o) for o in gc.get_objects() if isinstance(o, (ImageClassifier, ImageDataModule))}

    gc.collect()
    before = alive()
    job = Job(run.run_id, run.cfg, run.group, run.name, (), str(tmp_path), Tracking("disabled"))
    assert execute(job)["status"] == "completed"
    assert execute(job)["skipped"]          # the next call (done already: it trains nothing)
    left = alive() - before
    assert not left, f"{len(left)} module(s) of a finished run still in memory"


def test_a_retried_run_clears_the_temp_files_of_its_killed_attempt(tmp_path):
    from ablations import ledger
    from ablations.executors import Job, execute
    from ablations.tracking import Tracking
    run = plan([STUDIES.get("activations")], {"trainer.max_epochs": 1, "data.train_size": 300}, seeds=1)[0]
    directory = ledger.run_dir(tmp_path, run.run_id)
    directory.mkdir(parents=True)
    (directory / ".metrics.csv.k1ll3d.tmp").write_text("epoch,train/lo")     # a write cut by SIGKILL
    summary = execute(Job(run.run_id, run.cfg, run.group, run.name, (), str(tmp_path), Tracking("disabled")))
    assert summary["status"] == "completed" and not list(directory.glob(".*.tmp"))
