"""Run procedures (lr_find, overfit, landscape) on real data and known setups; their verdict rules and figures."""
import json
import math

import lightning as L
import pandas as pd
import pytest
import torch

import run_all
from ablations import resolve, run_one
from ablations.landscape import FUNCTIONS, TACO_CURVATURE, trajectory, trajectory_metrics
from ablations.procedures import HEALTHY, LR_FIND, OVERFITTING, UNDERFITTING, gap_advice
from ablations.rules import AllOf, Holds, LrRange
from ablations.study import Better
from ablations.studies.landscapes import LRS
from datamodules import ImageDataModule
from lit_modules import OPTIMIZERS, OptimConfig
from reports.verdicts import evaluate


# --- lr_find -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lr_find_run(tmp_path_factory):
    """The range test on digits, with every optimizer step's learning rate recorded as it is used."""
    results = tmp_path_factory.mktemp("results")
    used = []
    original = torch.optim.SGD.step

    def spy(self, *args, **kwargs):
        used.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.optim.SGD, "step", spy)
        summary = run_one({"trainer.procedure": "lr_find", "data.steps_per_call": 8}, results)
    curve = pd.read_csv(results / "runs" / summary["run_id"] / "lr_find.csv")
    return results, summary, curve, used


def test_lr_find_changes_the_lr_at_every_optimizer_step(lr_find_run):
    _, summary, curve, used = lr_find_run
    assert summary["status"] == "completed", summary.get("traceback")
    assert len(used) == len(curve) >= 100                       # one recorded point per optimizer step
    assert curve.lr.tolist() == pytest.approx(used)             # the lr recorded is the lr the step used
    ratios = [b / a for a, b in zip(used, used[1:])]            # exponential: a constant factor each step
    expected = (LR_FIND["max_lr"] / LR_FIND["min_lr"]) ** (1 / LR_FIND["num_training"])
    assert used[0] == pytest.approx(LR_FIND["min_lr"]) and all(r > 1 for r in ratios)
    # (Lightning's _ExponentialLR skips one factor at its first step: lr_1 = lr_0 * q^2.)
    assert ratios[1:] == pytest.approx([expected] * (len(ratios) - 1))


def test_lr_find_curve_explodes_and_suggests_a_rate_inside_the_range(lr_find_run):
    results, summary, curve, _ = lr_find_run
    losses = curve.loss[~curve.warmup]
    assert losses.iloc[-1] > 2 * losses.min()                   # the highest lr blows the loss up
    assert losses.iloc[:20].max() - losses.iloc[:20].min() < 0.1 * losses.iloc[0]   # tiny lrs: flat
    assert curve.lr.min() < summary["lr_find_suggestion"] < curve.lr.max()
    assert summary["lr_find_blowup"] > 2 and summary["lr_find_low_change"] < 0.1
    run_dir = results / "runs" / summary["run_id"]
    assert not list(run_dir.glob("*.ckpt")) and not (run_dir / "metrics.csv").exists()


def test_procedures_fix_the_settings_they_need_in_the_stored_config():
    assert resolve({"trainer.procedure": "lr_find", "data.steps_per_call": 8}).data.steps_per_call == 1
    cfg = resolve({"trainer.procedure": "overfit", "model.dropout": 0.5, "optim.weight_decay": 0.1,
                   "data.augment": "flip"})
    assert (cfg.model.dropout, cfg.optim.weight_decay, cfg.data.augment) == (0.0, 0.0, "none")
    assert resolve({"model.dropout": 0.5}).model.dropout == 0.5   # fit keeps what it is given


# --- overfit -------------------------------------------------------------------------------------------
def test_overfit_drives_the_loss_on_one_batch_to_zero(tmp_path):
    summary = run_one({"trainer.procedure": "overfit", "trainer.max_epochs": 40}, tmp_path)
    assert summary["status"] == "completed" and summary["epochs"] == 40
    assert summary["train_loss"] < 0.1 and summary["train_acc"] == 1.0
    assert summary["initial_loss"] > 2.0                        # it started from chance


def test_overfit_batches_sees_the_same_batch_every_epoch():
    dm = ImageDataModule(resolve({}).data)
    dm.trainer = L.Trainer(overfit_batches=1, logger=False, enable_progress_bar=False, accelerator="cpu")
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert torch.equal(*[next(iter(loader))[0][1] for _ in range(2)])       # epoch 1 and 2: same batch
    dm.trainer = L.Trainer(logger=False, enable_progress_bar=False, accelerator="cpu")
    loader = dm.train_dataloader()
    assert not torch.equal(*[next(iter(loader))[0][1] for _ in range(2)])   # a fit reshuffles


# --- gap advice ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("train, val, advice", [
    (1.0, 0.85, OVERFITTING),          # gap 0.15
    (0.62, 0.60, UNDERFITTING),        # no gap, low accuracy
    (0.99, 0.97, HEALTHY),
    (0.95, 0.92, HEALTHY),             # gap 0.03 at good accuracy
    (float("nan"), 0.9, "no advice (no accuracy)"),
])
def test_gap_advice_on_known_inputs(train, val, advice):
    assert gap_advice(train, val) == advice


def test_a_fit_run_records_its_advice(tmp_path):
    summary = run_one({"data.train_size": 100, "trainer.max_epochs": 15}, tmp_path)
    assert summary["advice"] == OVERFITTING and summary["train_acc"] - summary["final_val_acc"] > 0.08


# --- landscapes ----------------------------------------------------------------------------------------
def test_sgd_on_the_quadratic_matches_the_closed_form():
    lr, k = 0.45, 12
    rows = trajectory(OptimConfig("sgd", lr=lr, weight_decay=0.0), "taco", k)
    (x0, y0), (hx, hy) = FUNCTIONS.get("taco").start, TACO_CURVATURE
    assert rows[-1]["x"] == pytest.approx((1 - lr * hx) ** k * x0, rel=1e-9)
    assert rows[-1]["y"] == pytest.approx((1 - lr * hy) ** k * y0, rel=1e-9)
    metrics = trajectory_metrics(rows, "taco")
    assert metrics["steep_flips"] == k and metrics["overshoot"] == 0.0   # y flips sign every step


def test_momentum_escapes_the_saddle_faster_than_sgd():
    sgd = trajectory(OptimConfig("sgd", lr=0.45, weight_decay=0.0), "saddle", 80)
    momentum = trajectory(OptimConfig("momentum", lr=0.2, momentum=0.9, weight_decay=0.0), "saddle", 80)
    # Near the ridge y grows by 1 + lr * 0.1 per SGD step (curvature -0.1 across it).
    y0 = FUNCTIONS.get("saddle").start[1]
    assert sgd[5]["y"] == pytest.approx(y0 * 1.045 ** 5, rel=1e-3)
    sgd_m, momentum_m = trajectory_metrics(sgd, "saddle"), trajectory_metrics(momentum, "saddle")
    assert math.isnan(sgd_m["escape_step"]) and momentum_m["escape_step"] < 80
    assert momentum_m["distance"] < 0.05 < sgd_m["distance"]


def test_the_landscapes_study_draws_every_optimizer():
    assert set(LRS) == set(OPTIMIZERS.names())


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_every_optimizer_descends_the_taco_with_its_study_lr(name):
    rows = trajectory(OptimConfig(name, lr=LRS[name], weight_decay=0.0), "taco", 80)
    assert len(rows) == 81 and rows[-1]["loss"] < 0.05 * rows[0]["loss"]


def test_noisy_gradients_are_seeded():
    cfg = OptimConfig("sgd", lr=0.45, weight_decay=0.0)
    a, b, c = (trajectory(cfg, "noisy", 30, seed) for seed in (0, 0, 1))
    assert a == b and a != c
    assert a != trajectory(cfg, "taco", 30, 0)


def test_trajectory_metrics_on_a_known_path():
    rows = [{"step": i, "x": x, "y": y, "loss": 0.0}
            for i, (x, y) in enumerate([(-4, 0.001), (-1, -0.1), (1, 0.2), (0.5, 0.3), (0, 0.32)])]
    m = trajectory_metrics(rows, "saddle")
    assert m["overshoot"] == pytest.approx(0.25) and m["steep_flips"] == 2 and m["escape_step"] == 2
    assert m["distance"] == pytest.approx(0.32 - 0.1 ** 0.5) and m["shallow_progress"] == 1.0


# --- verdict rules ---------------------------------------------------------------------------------------
def _runs(rows, metric="metric"):
    return pd.DataFrame([{**dict(zip(("variant", "seed", metric), r)), "status": "completed"} for r in rows])


def test_holds_rule_on_known_inputs():
    rule = Holds("a", "metric", "<", 0.05).to_dict()
    assert evaluate(rule, _runs([("a", 0, 0.01), ("a", 1, 0.02)]))[0] == "supported"
    assert evaluate(rule, _runs([("a", 0, 0.01), ("a", 1, 0.2)]))[0] == "contradicted"
    assert evaluate(rule, _runs([("a", 0, 0.01), ("a", 1, float("nan"))]))[0] == "undecided"
    assert evaluate(rule, _runs([("b", 0, 0.01)]))[0] == "undecided"
    assert "a check on each run, not a test" in evaluate(rule, _runs([("a", 0, 0.01)]))[1]
    assert evaluate(Holds("a", "metric", "==", "x").to_dict(), _runs([("a", 0, "x")]))[0] == "supported"
    with pytest.raises(ValueError, match="op"):
        Holds("a", "metric", "~", 1)


def test_lr_range_and_all_of_rules_on_known_inputs():
    def runs(low, blowup):
        return pd.DataFrame({"variant": "f", "seed": [0, 1], "lr_find_low_change": low, "lr_find_blowup": blowup,
                             "status": "completed"})

    rule = LrRange("f", flat=0.1, blowup=2.0).to_dict()
    assert evaluate(rule, runs([0.01, 0.05], [4.0, 30.0]))[0] == "supported"
    assert evaluate(rule, runs([0.01, 0.5], [4.0, 30.0]))[0] == "contradicted"       # not flat
    assert evaluate(rule, runs([0.01, 0.05], [1.1, 30.0]))[0] == "contradicted"      # never explodes
    both = _runs([("a", 0, 0.01), ("b", 0, 1.0)])
    ok, bad = Holds("a", "metric", "<", 0.05), Holds("b", "metric", "<", 0.05)
    assert evaluate(AllOf((ok,)).to_dict(), both)[0] == "supported"
    assert evaluate(AllOf((ok, bad)).to_dict(), both)[0] == "contradicted"
    assert AllOf((ok, bad)).variants() == ["a", "b"]


def test_better_calls_two_missing_values_a_tie_and_needs_enough_seeds():
    """A saddle never escaped has no escape step: that run loses to one that escaped, by an exact sign
    test; two seeds that agree are no evidence, six are."""
    nan = float("nan")
    rule = Better("a", ("b",), metric="escape_step").to_dict()
    assert evaluate(rule, _runs([("a", 0, nan), ("b", 0, nan)], "escape_step"))[0] == "undecided"
    never = _runs([("a", s, 5.0 + s) for s in range(6)] + [("b", s, nan) for s in range(6)], "escape_step")
    assert evaluate(rule, never)[0] == "supported"                                 # b never got there
    assert evaluate(rule, never[never.seed < 2])[0] == "undecided"


# --- the studies end to end, tiny -------------------------------------------------------------------------
@pytest.mark.slow
def test_babysitting_and_landscapes_run_and_draw_their_figures(tmp_path):
    assert run_all.main(["--study", "babysitting", "--study", "landscapes", "--results-dir", str(tmp_path),
                         "--epochs", "2", "--seeds", "2", "--wandb-mode", "disabled",
                         "--set", "data.train_size=300"]) == 0
    report = tmp_path / "report"
    for name in ("babysitting_lr_find", "babysitting_overfit", "landscapes_landscape"):
        assert (report / f"{name}.png").exists()
    assert not (report / "landscapes_final_acc.png").exists()     # no accuracy to plot
    manifest = json.loads((tmp_path / "studies" / "landscapes.json").read_text())
    assert manifest["verdict"]["rule"] == "all" and len(manifest["runs"]) == 8 * 3 * 2
    for member in manifest["runs"]:
        run_dir = tmp_path / "runs" / member["run_id"]
        assert (run_dir / "trajectory.csv").exists() and (run_dir / "surface.csv").exists()
    landscapes = (report / "index.md").read_text().split("## landscapes")[1]
    assert "**Verdict: supported.**" in landscapes               # trajectories do not depend on epochs
