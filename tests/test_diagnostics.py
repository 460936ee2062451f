"""Babysitting diagnostics (lit_modules/diagnostics.py) on cases with known answers, in real runs, in reports."""
import json
import math

import pandas as pd
import pytest
import torch
from lightning.pytorch.loggers import Logger
from torch import nn

from ablations import ledger, resolve, train
from ablations.grid import plan, write_manifests
from ablations.rules import AllOf
from ablations.study import Better, Study
from lit_modules import ACTIVATIONS, ImageClassifier
from lit_modules.registry import ConfigError
from lit_modules.diagnostics import activation_outputs, activation_stats, update_ratios
from reports.build import build
from reports.verdicts import evaluate

TINY = {"trainer.max_epochs": 1, "data.train_size": 200}


def _files(results, summary):
    run_dir = results / "runs" / summary["run_id"]
    return pd.read_csv(run_dir / "diagnostics.csv"), json.loads((run_dir / "activations.json").read_text())


# --- activation registry data ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ACTIVATIONS.names())
def test_every_activation_predicate_marks_its_flat_regime(name):
    spec = ACTIVATIONS.get(name)
    act = spec.make()
    x = torch.linspace(-50, 50, 2 * spec.width_factor * 101).reshape(2, -1)   # maxout pairs neighbours
    y = act(x)
    out = lambda v: act(torch.full((1, 2 * spec.width_factor), float(v)))  # noqa: E731
    if spec.dead is not None:
        assert spec.dead(y).shape == y.shape and spec.dead(y).dtype == torch.bool
        assert spec.dead(out(-10)).all() and not spec.dead(out(1)).any()
    if spec.saturated is not None:
        assert spec.saturated(y).shape == y.shape and spec.saturated(y).dtype == torch.bool
        assert spec.saturated(out(-50)).all() or spec.saturated(out(50)).all()
        assert not spec.saturated(out(0)).any()


def test_all_negative_preactivations_leave_every_relu_dead(digits_batch):
    x = digits_batch[0].flatten(1)
    layer = nn.Linear(64, 32)
    net = nn.Sequential(layer, nn.ReLU(), nn.Linear(32, 32), nn.ReLU())
    relu = ACTIVATIONS.get("relu")
    with torch.no_grad():
        layer.bias.fill_(-1e3)                  # every pre-activation of layer 1 is negative
    (_, first), (_, second) = activation_outputs(net, nn.ReLU, x)
    assert activation_stats(relu, first)["dead_frac"] == 1.0
    assert activation_stats(relu, first)["act_std"] == 0.0
    with torch.no_grad():
        layer.bias.fill_(1e3)                   # every pre-activation positive: no unit is dead
    (_, first), _ = activation_outputs(net, nn.ReLU, x)
    assert activation_stats(relu, first)["dead_frac"] == 0.0


def test_one_live_example_keeps_a_unit_alive():
    relu = ACTIVATIONS.get("relu")
    y = torch.zeros(10, 4, 3, 3)                # conv outputs: a unit is a channel
    y[7, 2, 1, 1] = 0.5
    assert activation_stats(relu, y)["dead_frac"] == pytest.approx(0.75)


def test_tanh_with_huge_weights_saturates_and_xavier_does_not(digits_batch):
    x = digits_batch[0].flatten(1)
    tanh = ACTIVATIONS.get("tanh")
    layers = [nn.Linear(64, 64) for _ in range(3)]
    net = nn.Sequential(*[m for layer in layers for m in (layer, nn.Tanh())])
    for std, low, high in [(100.0, 0.97, 1.0), (None, 0.0, 0.05)]:
        for layer in layers:
            nn.init.zeros_(layer.bias)
            nn.init.normal_(layer.weight, 0, std) if std else nn.init.xavier_normal_(layer.weight)
        for _, y in activation_outputs(net, nn.Tanh, x):
            assert low <= float(activation_stats(tanh, y)["saturated_frac"]) <= high


def test_probe_leaves_batchnorm_statistics_and_rng_untouched(digits_batch):
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5))
    before = [b.clone() for b in net.buffers()]
    state = torch.get_rng_state()
    outputs = activation_outputs(net, nn.ReLU, digits_batch[0])
    assert len(outputs) == 1 and outputs[0][1].shape == (256, 16)
    assert all(torch.equal(a, b) for a, b in zip(before, net.buffers()))
    assert torch.equal(state, torch.get_rng_state())


# --- update / weight ratio ---------------------------------------------------------------------------
def test_update_ratio_is_lr_times_grad_norm_over_weight_norm():
    w = nn.Parameter(torch.ones(4, 4))          # |w| = 4
    w.grad = torch.full((4, 4), 0.5)            # |g| = 2
    v = nn.Parameter(torch.zeros(3, 2))         # |w| = 0: no ratio
    v.grad = torch.ones(3, 2)
    out = update_ratios([("w", w), ("v", v)], {id(w): 0.1, id(v): 0.2})
    assert out["grad_norm"] == pytest.approx([2.0, math.sqrt(6)])
    assert out["update_ratio"][0] == pytest.approx(0.1 * 2 / 4) and math.isnan(out["update_ratio"][1])
    # For plain SGD it is exactly the size of the step the optimizer takes, relative to the weights.
    before = w.detach().clone()
    torch.optim.SGD([w], lr=0.1).step()
    assert (w.detach() - before).norm() / before.norm() == pytest.approx(out["update_ratio"][0])


def test_the_step_taken_matches_the_formula_for_plain_sgd_only(tmp_path):
    """step_ratio is measured (|w_after - w_before| / |w_before|); plain SGD steps exactly lr * g."""
    def ratios(optim):
        summary = train(resolve({**TINY, "trainer.max_epochs": 3, "trainer.diagnostics_every": 2, **optim}), tmp_path)
        rows, _ = _files(tmp_path, summary)
        wide = rows[rows.metric.isin(["update_ratio", "step_ratio"])].pivot_table(
            index=["step", "depth"], columns="metric", values="value")
        return wide[wide.index.get_level_values("step") > 0]
    plain = ratios({"optim.name": "sgd", "optim.weight_decay": 0.0})
    assert len(plain) == 2 * 3 and plain.step_ratio.to_numpy() == pytest.approx(plain.update_ratio.to_numpy(), rel=1e-3)
    momentum = ratios({"optim.name": "momentum", "optim.weight_decay": 0.0})
    assert not momentum.step_ratio.to_numpy() == pytest.approx(momentum.update_ratio.to_numpy(), rel=0.05)


# --- real runs ---------------------------------------------------------------------------------------
class _Collect(Logger):
    """A logger that keeps what it is given (as W&B would receive it)."""
    name, version = "collect", "0"

    def __init__(self):
        super().__init__()
        self.metrics: dict[str, float] = {}

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def log_metrics(self, metrics, step=None) -> None:
        self.metrics.update(metrics)


def test_a_run_stores_and_logs_its_diagnostics(tmp_path):
    cfg = resolve({**TINY, "trainer.max_epochs": 2, "trainer.diagnostics_every": 3, "model.depth": 3})
    logger = _Collect()
    summary = train(cfg, tmp_path, loggers=[logger])
    rows, hist = _files(tmp_path, summary)
    assert list(rows.columns) == ["step", "epoch", "layer", "depth", "metric", "value"]
    steps = 2 * math.ceil(200 / cfg.data.batch_size)
    grads = rows[rows.metric == "grad_norm"]
    assert sorted(set(grads.step)) == list(range(0, steps, 3))
    assert set(grads.depth) == {1, 2, 3, 4} and (grads.value > 0).all()               # 3 hidden + head
    acts = rows[rows.metric == "act_std"]
    assert sorted(set(acts.step)) == [*range(0, steps, 3), steps] and set(acts.depth) == {1, 2, 3}
    assert {"update_ratio", "step_ratio", "act_mean", "dead_frac"} <= set(rows.metric) and "saturated_frac" not in set(rows.metric)
    assert rows.epoch.max() == pytest.approx(2.0)
    assert [s["step"] for s in hist["snapshots"]] == [0, steps]
    for layer in hist["snapshots"][0]["layers"]:
        assert sum(layer["counts"]) == 128 * cfg.model.width and len(layer["edges"]) == len(layer["counts"]) + 1
    assert "diag/update_ratio/head" in logger.metrics and "diag/dead_frac/body.3" in logger.metrics
    assert summary["expected_initial_loss"] == pytest.approx(math.log(10))
    assert summary["initial_loss_suspect"] is False and 0 <= summary["final_dead_frac"] <= 1


def test_diagnostics_never_change_the_numbers(tmp_path):
    changes = {**TINY, "trainer.max_epochs": 2, "model.norm": "batch", "model.dropout": 0.3}
    a = train(resolve({**changes, "trainer.diagnostics_every": 1}), tmp_path / "a")
    b = train(resolve({**changes, "trainer.diagnostics_every": 0}), tmp_path / "b")
    assert a["run_id"] == b["run_id"] and "expected_initial_loss" not in b
    metrics = lambda d: pd.read_csv(d / "runs" / a["run_id"] / "metrics.csv").drop(columns="time_s")  # noqa: E731
    pd.testing.assert_frame_equal(metrics(tmp_path / "a"), metrics(tmp_path / "b"))
    assert a["test_acc"] == b["test_acc"] and not (tmp_path / "b" / "runs" / a["run_id"] / "diagnostics.csv").exists()


def test_an_overconfident_head_flags_the_initial_loss(tmp_path):
    summary = train(resolve({**TINY, "model.head_init_scale": 30.0}), tmp_path)
    assert summary["initial_loss"] > 2 * math.log(10) and summary["initial_loss_suspect"] is True


def test_gradients_shrink_by_depth_in_a_deep_sigmoid_net(tmp_path):
    """Backprop through a sigmoid multiplies by sigma' <= 1/4 per layer (Xavier keeps |W| ~ 1): from the
    second layer on, each layer's gradient is several times smaller than the next one's."""
    summary = train(resolve({**TINY, "model.activation": "sigmoid", "model.init": "xavier_normal",
                             "model.depth": 6, "model.width": 32}), tmp_path)
    rows, _ = _files(tmp_path, summary)
    norms = rows[(rows.step == 0) & (rows.metric == "grad_norm")].sort_values("depth").value.tolist()
    assert len(norms) == 7 and all(n > 0 for n in norms)
    assert all(deeper > 2 * shallower for shallower, deeper in zip(norms[1:], norms[2:]))


def test_zero_init_leaves_every_hidden_gradient_zero(tmp_path):
    summary = train(resolve({**TINY, "model.activation": "tanh", "model.init": "zeros", "model.depth": 3}), tmp_path)
    rows, _ = _files(tmp_path, summary)
    start = rows[rows.step == 0].set_index(["metric", "depth"]).value
    assert all(start["grad_norm", d] == 0 for d in (1, 2, 3)) and summary["initial_act_std"] == 0.0


# --- reports -----------------------------------------------------------------------------------------
def test_report_draws_the_diagnostics_and_judges_claims_on_them(tmp_path):
    studies = [
        Study("tiny_init", "c", mode="grid", seeds=2, axes={"model.init": {"small": "small_normal",
              "xavier": "xavier_normal", "large": "large_normal"}, "model.activation": ["tanh"]},
              base={"model.depth": 4, "model.width": 32},
              verdict=AllOf((Better("init=large,activation=tanh", ("init=xavier,activation=tanh",),
                                    metric="initial_saturated_frac", higher_is_better=True),
                             Better("init=xavier,activation=tanh", ("init=small,activation=tanh",),
                                    metric="initial_act_std", higher_is_better=True)))),
        Study("no_diag", "c", axes={"model.init": ["zeros"]}, seeds=1, base={"trainer.diagnostics_every": 0}),
    ]
    runs = plan(studies, TINY)
    write_manifests(studies, runs, tmp_path)
    for r in runs:
        assert train(r.cfg, tmp_path)["status"] in ledger.DONE
    report = build(tmp_path)
    for name in ("activation_hist", "update_ratio", "dead_units"):
        assert (report / f"tiny_init_{name}.png").exists() and not (report / f"no_diag_{name}.png").exists()
    table = pd.read_csv(report / "runs.csv")
    assert {"initial_act_std", "initial_saturated_frac", "initial_loss_suspect"} <= set(table.columns)
    tiny = table[table.study == "tiny_init"]
    assert evaluate(studies[0].verdict.to_dict(), tiny)[0] == "supported"
    flipped = AllOf((Better("init=small,activation=tanh", ("init=xavier,activation=tanh",), metric="initial_act_std",
                             higher_is_better=True),))
    assert evaluate(flipped.to_dict(), tiny)[0] == "contradicted"
    missing = Better("init=small,activation=tanh", ("init=xavier,activation=tanh",), metric="no_such_metric")
    with pytest.raises(ConfigError, match="unknown metric 'no_such_metric'"):   # refused, not "inconclusive"
        evaluate(missing.to_dict(), tiny)


def test_a_crashed_run_keeps_the_diagnostics_it_measured(tmp_path, monkeypatch):
    original = ImageClassifier.training_step

    def crash_in_second_epoch(self, batch, batch_idx):
        if self.current_epoch == 1:
            raise RuntimeError("boom")
        return original(self, batch, batch_idx)

    monkeypatch.setattr(ImageClassifier, "training_step", crash_in_second_epoch)
    summary = train(resolve({**TINY, "trainer.max_epochs": 3, "trainer.diagnostics_every": 1}), tmp_path)
    assert summary["status"] == "failed"
    rows, hist = _files(tmp_path, summary)
    assert sorted(set(rows.step)) == [0, 1] and hist["snapshots"][0]["step"] == 0
