"""Staged studies and hyperparameter search: stage-2 derivation, equal budgets, best-so-far curves,
edge-of-range warnings, the best_of verdict, and a staged grid run end to end (with resume)."""
import json
import math
from pathlib import Path

import pandas as pd
import pytest

import run_all
from ablations.grid import plan
from ablations.studies import STUDIES, optimizers, search
from ablations.study import BestOf, LogUniform, Study
from lit_modules import OPTIMIZERS, ConfigError, ImageClassifier, Registry
from reports.search import best_so_far, edge_warnings
from reports.verdicts import evaluate

STAGED = ["--epochs", "1", "--wandb-mode", "disabled", "--set", "data.train_size=200"]
TINY = [*STAGED, "--seeds", "1"]


def test_grid_and_random_get_the_same_budget_over_the_same_box():
    study = Study("gvr", "c", {"optim.lr": LogUniform(1e-4, 1.0), "optim.weight_decay": LogUniform(1e-6, 1e-2)},
                  mode="grid_vs_random", samples=16, seeds=2)
    trials = study.trials()
    grid = [t for t in trials if t.axes["search"] == "grid"]
    rand = [t for t in trials if t.axes["search"] == "random"]
    assert len(grid) == len(rand) == 16 * 2                       # same budget, every seed
    lrs = sorted({t.overrides["optim.lr"] for t in grid})
    assert lrs == pytest.approx([1e-4, 10 ** (-8 / 3), 10 ** (-4 / 3), 1.0])   # log-spaced, ends included
    random_lrs = {t.overrides["optim.lr"] for t in rand}
    assert len(random_lrs) == 16 and all(1e-4 <= v <= 1.0 for v in random_lrs)   # 16 distinct rates vs 4
    assert [t.variant for t in trials] == [t.variant for t in study.trials()]    # seeded: same every time
    with pytest.raises(ConfigError, match="samples = points"):
        Study("bad", "c", study.axes, mode="grid_vs_random", samples=15).trials()


def test_every_optimizer_gets_the_same_sweep_on_one_seed_whatever_seeds_says():
    trials = optimizers.STUDY.trials(seeds=3)                     # --seeds 3 leaves the sweep's budget alone
    assert {t.seed for t in trials} == {0}
    rates = {}
    for t in trials:
        rates.setdefault(t.overrides["optim.name"], []).append(t.overrides["optim.lr"])
    assert "lbfgs" in rates and len(rates) == len(OPTIMIZERS.names())
    assert all(sorted(r) == sorted(rates["sgd"]) and len(r) == 6 for r in rates.values())


def test_optimizers_stage2_takes_each_optimizers_best_mean_rate():
    # stage 1 over two seeds: sgd is best at 0.1 on average (though seed 1 prefers 1.0), adam's 1.0 diverged
    rows = [("sgd", 0.01, 0, 0.80), ("sgd", 0.01, 1, 0.82), ("sgd", 0.1, 0, 0.95), ("sgd", 0.1, 1, 0.90),
            ("sgd", 1.0, 0, 0.70), ("sgd", 1.0, 1, 0.93), ("adam", 0.01, 0, 0.91), ("adam", 0.01, 1, 0.91),
            ("adam", 1.0, 0, math.nan), ("adam", 1.0, 1, math.nan), ("momentum", 0.1, 0, 0.9),
            ("momentum", 0.01, 0, 0.9), ("momentum", 0.01, 1, 0.9), ("momentum", 0.1, 1, 0.9)]
    table = pd.DataFrame(rows, columns=["optim.name", "optim.lr", "seed", "final_val_acc"])
    stage2 = optimizers.best_rates(table)
    assert stage2.name == "optimizers_best" and stage2.verdict.than == ("optimizer=sgd",)
    chosen = {label: dict(b) for label, b in stage2.axes["optimizer"].items()}
    assert chosen == {"sgd": {"optim.name": "sgd", "optim.lr": 0.1},
                      "adam": {"optim.name": "adam", "optim.lr": 0.01},
                      "momentum": {"optim.name": "momentum", "optim.lr": 0.01}}   # a tie goes to the smaller rate
    assert [t.variant for t in stage2.trials(1)] == ["optimizer=sgd", "optimizer=adam", "optimizer=momentum"]


def test_search_stage2_samples_narrowly_around_the_coarse_best():
    table = pd.DataFrame({"variant": ["a", "a", "b", "b", "c", "c"], "seed": [0, 1] * 3,
                          "optim.lr": [0.01, 0.01, 0.1, 0.1, 1.0, 1.0],
                          "optim.weight_decay": [1e-4, 1e-4, 1e-3, 1e-3, 1e-5, 1e-5],
                          "final_val_acc": [0.9, 0.9, 0.97, 0.95, math.nan, 0.99]})   # c diverged once
    fine = search.fine_stage(table)
    assert fine.axes["optim.lr"] == LogUniform(0.1 / 3, 0.1 * 3)
    assert fine.axes["optim.weight_decay"] == LogUniform(1e-4, 1e-2)
    lrs = [t.overrides["optim.lr"] for t in fine.trials(1)]
    assert len(lrs) == fine.samples and all(0.1 / 3 <= v <= 0.3 for v in lrs)


def test_best_so_far_is_a_running_max_that_skips_diverged_runs():
    assert best_so_far([0.5, 0.3, 0.7, 0.6, 0.9]) == [0.5, 0.5, 0.7, 0.7, 0.9]
    out = best_so_far([math.nan, 0.4, math.nan, 0.2])
    assert math.isnan(out[0]) and out[1:] == [0.4, 0.4, 0.4]


def _sweep(best_lr: float, name: str = "sgd") -> pd.DataFrame:
    lrs = [1e-3, 1e-2, 1e-1, 1.0]
    return pd.DataFrame({"config.optim.name": name, "config.optim.lr": lrs, "config.seed": 0,
                         "final_val_acc": [0.99 if lr == best_lr else 0.5 for lr in lrs]})


@pytest.mark.parametrize("best_lr, side", [(1e-3, "smallest"), (1.0, "largest"), (1e-2, None), (1e-1, None)])
def test_edge_warning_when_the_best_value_is_at_the_end_of_the_range(best_lr, side):
    warnings = edge_warnings(_sweep(best_lr), ["optim.lr"])
    if side is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and side in warnings[0] and "optim.lr" in warnings[0]


def test_edge_warnings_are_per_searched_group():
    runs = pd.concat([_sweep(1.0, "sgd"), _sweep(1e-2, "adam")], ignore_index=True)
    warnings = edge_warnings(runs, ["optim.lr"])
    assert len(warnings) == 1 and "name=sgd" in warnings[0] and "largest" in warnings[0]
    assert edge_warnings(runs, []) == []


def test_no_edge_warning_when_nothing_finished():
    failed = _sweep(1.0).assign(final_val_acc=math.nan)                    # every run failed
    assert edge_warnings(failed, ["optim.lr"]) == []
    unread = failed.assign(**{"config.optim.lr": math.nan})                # no config.json was read either
    assert edge_warnings(unread, ["optim.lr"]) == []


def _best_of_runs(random_test, grid_test):
    """Per seed, each group's trial with the best val accuracy (0.9) has the given test accuracy; the
    other trials have better test accuracy but worse val, so a rule judged on val-best-by-test fails."""
    rows = []
    for seed, (r, g) in enumerate(zip(random_test, grid_test)):
        for group, best in (("random", r), ("grid", g)):
            rows += [{"axis.search": group, "seed": seed, "final_val_acc": 0.9, "test_acc": best},
                     {"axis.search": group, "seed": seed, "final_val_acc": 0.5, "test_acc": 0.99},
                     {"axis.search": group, "seed": seed, "final_val_acc": math.nan, "test_acc": math.nan}]
    return pd.DataFrame(rows).assign(status="completed")


@pytest.mark.parametrize("random_best, grid_best, expected", [
    ([0.95, 0.96, 0.97, 0.95, 0.96], [0.93, 0.93, 0.95, 0.92, 0.94], "supported"),
    ([0.90, 0.91, 0.90, 0.92, 0.91], [0.95, 0.96, 0.97, 0.95, 0.96], "contradicted"),
    ([0.99, 0.90, 0.97], [0.95, 0.96, 0.93], "undecided"),
    ([0.950, 0.951, 0.950, 0.950, 0.951, 0.950], [0.950, 0.950, 0.951, 0.950, 0.951, 0.951], "no practical difference"),
    ([0.99], [0.5], "undecided"),                                  # one seed is no evidence
])
def test_best_of_verdict_is_judged_on_the_test_accuracy_of_what_val_picked(random_best, grid_best, expected):
    rule = BestOf("search", group="random", than="grid").to_dict()
    verdict, why, *_ = evaluate(rule, _best_of_runs(random_best, grid_best))
    assert verdict == expected and "search=random vs search=grid" in why and "test_acc of the trial" in why


def test_a_verdict_naming_an_unknown_search_group_fails_in_plan():
    study = Study("s", "c", {"optim.lr": LogUniform(1e-3, 1.0)}, mode="grid_vs_random", samples=2,
                  verdict=BestOf("search", group="random", than="grdi"))
    with pytest.raises(ConfigError, match="'s'.*grdi.*grid, random"):
        plan([study], seeds=1)


def _two_stage(then=None) -> Study:
    def best_lr(table: pd.DataFrame) -> Study:
        lr = float(table.sort_values("final_val_acc", ascending=False, kind="stable")["optim.lr"].iloc[0])
        return Study("tiny_best", "c", {"optim.lr": [lr]}, mode="grid", seeds=2, fixed_seeds=True)
    # fixed_seeds: each stage keeps its own seed count whatever the preset says
    return Study("tiny", "c", {"optim.lr": [1e-4, 0.1]}, mode="grid", seeds=1, fixed_seeds=True,
                 tuned=("optim.lr",), then=then or best_lr)


def _summaries(results: Path) -> dict:
    return {p.parent.name: p.stat().st_mtime_ns for p in results.glob("runs/*/summary.json")}


@pytest.mark.slow
def test_a_staged_study_runs_resumes_and_rederives_stage2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(run_all, "STUDIES", Registry("study", {"tiny": _two_stage()}))
    args = ["--study", "tiny", "--results-dir", str(tmp_path), *STAGED]   # each stage its own seeds
    original = ImageClassifier.training_step

    def slow_lr_crashes(self, batch, batch_idx):
        if self.optim_cfg.lr == 0.1:
            raise RuntimeError("boom")
        return original(self, batch, batch_idx)

    monkeypatch.setattr(ImageClassifier, "training_step", slow_lr_crashes)
    assert run_all.main(args) == 1                                # stage 1 incomplete: stage 2 waits
    assert "waits for 1 unfinished" in capsys.readouterr().err
    assert not (tmp_path / "studies" / "tiny_best.json").exists()
    monkeypatch.setattr(ImageClassifier, "training_step", original)
    assert run_all.main(args) == 0                                # retried, then stage 2 derived and trained
    stage2 = json.loads((tmp_path / "studies" / "tiny_best.json").read_text())
    assert [(m["variant"], m["seed"]) for m in stage2["runs"]] == [("lr=0.1", 0), ("lr=0.1", 1)]
    done = _summaries(tmp_path)
    assert len(done) == 2 + 1                                     # stage 2 seed 0 is stage 1's run: trained once
    assert run_all.main(args) == 0 and _summaries(tmp_path) == done   # a re-run trains nothing new
    assert json.loads((tmp_path / "studies" / "tiny_best.json").read_text()) == stage2
    capsys.readouterr()
    assert run_all.main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "tiny_best/lr=0.1" in out and "pending" not in out.replace("0 pending", "")
    assert "tiny" in (tmp_path / "report" / "index.md").read_text()


def test_a_bad_stage2_fails_before_it_trains(tmp_path, monkeypatch, capsys):
    bad = _two_stage(lambda table: Study("tiny_bad", "c", {"optim.learning_rate": [0.1]}, mode="grid"))
    monkeypatch.setattr(run_all, "STUDIES", Registry("study", {"tiny": bad}))
    assert run_all.main(["--study", "tiny", "--results-dir", str(tmp_path), *TINY]) == 2
    err = capsys.readouterr().err
    assert all(w in err for w in ("tiny_bad", "optim.learning_rate"))
    assert len(_summaries(tmp_path)) == 2                         # stage 1 trained and kept, stage 2 did not start


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in STUDIES.names() if STUDIES.get(n).then])
def test_staged_studies_run_tiny_end_to_end_and_a_rerun_trains_nothing(name, tmp_path):
    args = ["--study", name, "--results-dir", str(tmp_path), *TINY]
    assert run_all.main(args) == 0
    manifests = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "studies").glob("*.json")}
    assert len(manifests) == 2 and name in manifests                 # stage 1 and the stage it derived
    stage2 = next(m for n, m in manifests.items() if n != name)
    assert stage2["runs"] and all((tmp_path / "runs" / m["run_id"] / "summary.json").exists()
                                  for m in stage2["runs"])
    done = _summaries(tmp_path)
    assert run_all.main(args) == 0 and _summaries(tmp_path) == done
    assert json.loads((tmp_path / "studies" / f"{stage2['name']}.json").read_text()) == stage2
    # Each stage names the other; the report points the rule-less stage to the one with the verdict.
    assert stage2["previous_stage"] == name and manifests[name]["has_next_stage"]
    index = (tmp_path / "report" / "index.md").read_text()
    assert "Verdict: no rule" not in index and "Verdict: see another stage" in index


def test_search_figures_draw_only_where_they_apply():
    import matplotlib.pyplot as plt
    from reports.figures import FIGURES, StudyData

    runs = _best_of_runs([0.95, 0.96], [0.93, 0.96]).assign(study="s")
    runs["config.optim.lr"] = [1e-3, 1e-2, 1e-1] * (len(runs) // 3)   # one lr per trial of each group and seed
    history = pd.DataFrame(columns=["run_id", "epoch", "metric", "value"])
    searched = StudyData("s", runs, history, {"mode": "grid_vs_random", "tuned": ["optim.lr"]})
    plain = StudyData("s", runs, history, {"mode": "grid", "tuned": []})
    for name in ("best_so_far", "tuning"):
        fig = FIGURES.get(name)(searched)
        assert isinstance(fig, plt.Figure) and fig.axes[0].has_data()
        plt.close(fig)
        assert FIGURES.get(name)(plain) is None
