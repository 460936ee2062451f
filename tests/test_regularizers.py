"""Regularizers of lecture 7: every entry builds and trains; each technique does what it says."""
import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from ablations import run_one
from datamodules import MIXES, DataConfig, ImageDataModule
from lit_modules import (NETWORKS, POOLS, ConfigError, ImageClassifier, ModelConfig, OptimConfig, ScheduleConfig,
                         build_network, build_pool)
from lit_modules.regularizers import DropConnect, PerSampleBranch, SkippedBranch, survival_probabilities
from reports.verdicts import add_convergence

POOLING_NETWORKS = [n for n in NETWORKS.names() if "pool" in getattr(NETWORKS.get(n), "options", ())]
TINY = {"data.train_size": 200, "trainer.max_epochs": 2, "data.batch_size": 32}


def _train_steps(cfg: ModelConfig, batch, steps: int = 10) -> tuple[float, float, nn.Module]:
    """Adam steps on a real batch; the loss is measured in eval mode before and after."""
    torch.manual_seed(0)
    x, y = batch
    net = build_network(cfg, tuple(x.shape[1:]), 10)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def eval_loss() -> float:
        net.eval()
        with torch.no_grad():
            loss = float(F.cross_entropy(net(x), y))
        net.train()
        return loss

    before = eval_loss()
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    return before, eval_loss(), net


@pytest.mark.parametrize("pool", POOLS.names())
@pytest.mark.parametrize("network", POOLING_NETWORKS)
def test_every_pool_in_every_pooling_network_trains(pool, network, digits_batch):
    before, after, _ = _train_steps(ModelConfig(network=network, pool=pool, channels=(8, 16)), digits_batch)
    assert math.isfinite(before) and after < before


@pytest.mark.parametrize("network", NETWORKS.names())
def test_drop_connect_trains_in_every_network(network, digits_batch):
    before, after, net = _train_steps(ModelConfig(network=network, drop_connect=0.3, channels=(8, 16)), digits_batch)
    assert after < before
    assert any(isinstance(m, DropConnect) for m in net.modules())


def test_stochastic_depth_trains_with_survival_linear_in_depth(digits_batch):
    before, after, net = _train_steps(ModelConfig(network="resnet", stochastic_depth=0.5, channels=(8, 16),
                                                  blocks_per_stage=2), digits_batch)
    assert after < before
    survival = [m.survival for m in net.modules() if isinstance(m, SkippedBranch)]
    # Huang et al.: p_l = 1 - l / L * (1 - p_L) for blocks l = 1..L, here p_L = 0.5 and L = 4.
    assert survival == pytest.approx([0.875, 0.75, 0.625, 0.5])
    assert survival_probabilities(0.4, 2) == pytest.approx([0.8, 0.6])


def test_drop_connect_is_identity_in_eval_and_drops_at_rate_p_in_training():
    torch.manual_seed(0)
    w = torch.randn(400, 500)
    drop = DropConnect(0.3)
    drop.eval()
    assert torch.equal(drop(w), w)
    drop.train()
    masked = drop(w)
    dropped = (masked == 0).float().mean()
    assert float(dropped) == pytest.approx(0.3, abs=0.01)
    kept = masked != 0
    assert torch.allclose(masked[kept], w[kept] / 0.7)          # inverted scaling keeps E[w] unchanged
    assert not torch.equal(drop(w), masked)                       # a fresh mask per forward


def test_drop_connect_network_matches_plain_network_in_eval_and_differs_in_training():
    x = torch.randn(16, 1, 8, 8)
    torch.manual_seed(1)
    plain = build_network(ModelConfig(), (1, 8, 8), 10)
    torch.manual_seed(1)
    dropped = build_network(ModelConfig(drop_connect=0.5), (1, 8, 8), 10)
    plain.eval(), dropped.eval()
    assert torch.allclose(plain(x), dropped(x))
    dropped.train()
    assert not torch.allclose(plain(x), dropped(x))
    assert not parametrize.is_parametrized(dropped.head)          # the classifier keeps whole weights


def _block(mode: str, survival: float) -> tuple[nn.Module, list[int]]:
    """A ResNet's last residual block (identity shortcut) with stochastic depth; the returned list
    collects one entry per convolution that runs in its branch."""
    torch.manual_seed(0)
    net = build_network(ModelConfig(network="resnet", channels=(8,), stochastic_depth=1 - survival,
                                    stochastic_depth_mode=mode), (1, 8, 8), 10)
    block = net.body[-3]
    calls: list[int] = []
    for conv in (m for m in block.branch.modules() if isinstance(m, nn.Conv2d)):
        conv.register_forward_hook(lambda *_: calls.append(1))
    return block, calls


def test_a_dropped_branch_runs_no_convolution_one_draw_per_block_and_batch():
    block, calls = _block("per_batch", 0.6)
    assert isinstance(block.branch, SkippedBranch) and isinstance(block.shortcut, nn.Identity)
    x = torch.randn(16, 8, 8, 8)
    torch.manual_seed(1)
    dropped = 0
    for _ in range(2000):
        before = len(calls)
        out = block(x)
        ran = len(calls) - before
        assert ran in (0, 2)                       # the whole branch or none of it, for the whole batch
        if ran == 0:
            dropped += 1
            assert torch.equal(out, block.act(x))  # only the shortcut passed
    assert dropped / 2000 == pytest.approx(0.4, abs=0.035)   # 1 - p_l, binomial sd 0.011


def test_stochastic_depth_scales_the_branch_by_its_survival_probability_at_test_time():
    block, calls = _block("per_batch", 0.6)
    block.eval()
    x = torch.randn(16, 8, 8, 8)
    with torch.no_grad():
        branch = nn.Sequential.forward(block.branch, x)   # the branch's layers, unscaled
        assert torch.allclose(block(x), block.act(0.6 * branch + x))
        assert torch.equal(block(x), block(x))          # deterministic in eval
    # Same seed, same draws: a run repeats exactly.
    block.train()
    draws = []
    for _ in range(2):
        torch.manual_seed(3)
        before = len(calls)
        block(x), block(x), block(x)
        draws.append(len(calls) - before)
    assert draws[0] == draws[1]


def test_per_sample_stochastic_depth_is_torchvisions_row_mode_and_computes_every_branch():
    block, calls = _block("per_sample", 0.75)
    assert isinstance(block.branch, PerSampleBranch)
    branch = block.branch
    x = torch.randn(8000, 8, 2, 2)
    torch.manual_seed(0)
    with torch.no_grad():
        full = nn.Sequential.forward(branch, x)
        out = branch(x).flatten(1)
    assert len(calls) == 4                             # every forward ran both convolutions
    kept = out.abs().amax(1) > 0
    assert float(kept.float().mean()) == pytest.approx(0.75, abs=0.015)     # per sample
    assert torch.allclose(out[kept], full.flatten(1)[kept] / 0.75, atol=1e-6)   # inverted scaling
    branch.eval()
    with torch.no_grad():
        assert torch.allclose(branch(x), full)         # identity at test time


@pytest.mark.slow
def test_a_resnet_with_stochastic_depth_learns_digits(tmp_path):
    """Huang et al.'s p_L = 0.5 on a 4-block ResNet: it still learns (chance is 0.1)."""
    summary = run_one({"data.train_size": 600, "trainer.max_epochs": 3, "data.batch_size": 50,
                       "model.network": "resnet", "model.channels": (16, 32), "model.blocks_per_stage": 2,
                       "model.norm": "batch", "optim.lr": 0.1, "model.stochastic_depth": 0.5,
                       "trainer.diagnostics_every": 0}, tmp_path)
    assert summary["status"] == "completed" and summary["final_val_acc"] > 0.45, summary


def test_fractional_pool_shrinks_by_one_over_root_two_randomly_in_training_fixed_in_eval():
    pool, h, w = build_pool("fractional", 8, 8)
    assert (h, w) == (6, 6)
    assert build_pool("max", 8, 8)[1:] == (4, 4) and build_pool("avg", 5, 5)[1:] == (2, 2)
    torch.manual_seed(0)
    x = torch.randn(4, 3, 8, 8)
    outs = [pool(x) for _ in range(5)]
    assert outs[0].shape == (4, 3, 6, 6)
    assert any(not torch.equal(outs[0], o) for o in outs[1:])     # random pooling regions per call
    pool.eval()
    assert torch.equal(pool(x), pool(x))
    net = build_network(ModelConfig(network="convnet", pool="fractional", channels=(4, 4)), (1, 8, 8), 10)
    assert net.head.in_features == 4 * 4 * 4                       # 8 -> 6 -> 4: the head sees the real size


def _module(optim: OptimConfig, model: ModelConfig = ModelConfig()) -> ImageClassifier:
    torch.manual_seed(0)
    return ImageClassifier(model, optim, ScheduleConfig(), (1, 8, 8), 10)


def test_l1_term_equals_the_hand_sum_over_weights_only():
    module = _module(OptimConfig(l1=1e-3, weight_decay=0.0), ModelConfig(norm="batch"))
    loss = torch.tensor(0.5)
    weights = [m.weight for m in module.net.modules() if isinstance(m, nn.Linear)]
    assert len(weights) == 3
    expected = 0.5 + 1e-3 * sum(float(w.detach().abs().sum()) for w in weights)
    assert float(module.objective(loss).detach()) == pytest.approx(expected, rel=1e-6)
    assert float(_module(OptimConfig(weight_decay=0.0)).objective(loss)) == 0.5
    # With L-BFGS the L2 term joins it in the loss.
    both = _module(OptimConfig(name="lbfgs", l1=1e-3, weight_decay=1e-2), ModelConfig(norm="batch"))
    l2 = 0.5 * 1e-2 * sum(float((w.detach() ** 2).sum()) for w in weights)
    assert float(both.objective(loss).detach()) == pytest.approx(expected + l2, rel=1e-6)


def test_l1_training_shrinks_the_weights_l1_norm(digits_batch):
    x, y = digits_batch
    norms = {}
    for l1 in (0.0, 1e-2):
        module = _module(OptimConfig(l1=l1, weight_decay=0.0))
        opt = torch.optim.SGD(module.net.parameters(), lr=0.05)
        for _ in range(50):
            opt.zero_grad()
            module.objective(F.cross_entropy(module(x), y)).backward()
            opt.step()
        norms[l1] = sum(float(m.weight.detach().abs().sum()) for m in module.net.modules() if isinstance(m, nn.Linear))
    assert norms[1e-2] < 0.8 * norms[0.0]


@pytest.mark.parametrize("mix", MIXES.names())
def test_every_mix_gives_soft_targets_on_training_batches_only(mix):
    dm = ImageDataModule(DataConfig(mix=mix, train_size=64, batch_size=32), seed=0)
    dm.prepare_data()
    dm.setup("fit")
    torch.manual_seed(0)
    (x, y), _ = next(iter(dm.train_dataloader()))
    assert x.shape == (32, 1, 8, 8)
    if MIXES.get(mix)(10, 1.0) is None:
        assert y.dtype == torch.int64 and y.dim() == 1
    else:
        assert y.shape == (32, 10) and torch.allclose(y.sum(1), torch.ones(32))
        assert (y > 0).sum(1).max() == 2 and float(y.max(1).values.min()) < 1.0   # two classes, mixed
    xv, yv = next(iter(dm.val_dataloader()))
    assert yv.dtype == torch.int64 and yv.dim() == 1


@pytest.mark.parametrize("mix", MIXES.names())
def test_every_mix_trains_and_counts_train_accuracy_by_the_dominant_class(mix, tmp_path):
    summary = run_one({**TINY, "data.mix": mix}, tmp_path)
    assert summary["status"] == "completed" and summary["final_val_acc"] > 0.5
    assert 0.0 < summary["train_acc"] <= 1.0 and 0.0 < summary["clean_train_acc"] <= 1.0


def test_mixup_soft_targets_feed_cross_entropy_and_accuracy():
    from lit_modules.module import _Mean
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    soft = torch.tensor([[0.7, 0.3, 0.0], [0.0, 0.6, 0.4]])
    m = _Mean()
    m.add(F.cross_entropy(logits, soft), logits, soft)
    assert m.compute("train")["train/acc"] == 0.5                   # dominant classes 0 and 1
    hand = -(soft * logits.log_softmax(1)).sum(1).mean()
    assert float(F.cross_entropy(logits, soft)) == pytest.approx(float(hand))


@pytest.mark.parametrize("changes, message", [
    ({"model.pool": "stochastic"}, "valid choices: max, avg, fractional"),
    ({"model.pool": "max"}, "networks that have it: convnet, resnet"),             # mlp has no pooling
    ({"model.network": "convnet", "model.stochastic_depth": 0.2}, "networks that have it: resnet"),
    ({"model.network": "resnet", "model.stochastic_depth": 1.0}, "stochastic_depth"),
    ({"model.network": "resnet", "model.stochastic_depth_mode": "row"}, "valid choices: per_batch, per_sample"),
    ({"model.drop_connect": 1.0}, "drop_connect"),
    ({"optim.l1": -1e-4}, "l1"),
    ({"data.mix": "mixout"}, "valid choices: none, mixup"),
])
def test_bad_regularizer_values_fail_before_training(tmp_path, changes, message):
    with pytest.raises(ConfigError, match=message):
        run_one(changes, tmp_path)
    assert not (tmp_path / "runs").exists()


def test_gap_is_clean_train_accuracy_minus_val_accuracy():
    runs = pd.DataFrame({"run_id": ["a", "b"], "study": "s", "status": "completed", "best_val_acc": [0.8, 0.9],
                         "final_val_acc": [0.8, 0.9], "train_acc": [0.7, 1.0], "clean_train_acc": [1.0, None]})
    history = pd.DataFrame({"run_id": ["a", "b"], "epoch": [1, 1], "metric": "val/acc", "value": [0.8, 0.9]})
    history = pd.concat([history, history.assign(metric="val/loss"), history.assign(metric="time_s")])
    gap = add_convergence(runs, history).gap
    assert list(gap) == pytest.approx([0.2, 0.1])                   # b has no clean accuracy: train_acc


def _four(values: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"variant": v, "seed": s, "final_val_acc": x, "status": "completed"}
                         for v, xs in values.items() for s, x in enumerate(xs)])


def test_interaction_rule_compares_the_gains_seed_by_seed():
    from ablations.study import Interaction
    from reports.verdicts import evaluate
    rule = Interaction("sgd,cos", "sgd,const", "adam,cos", "adam,const").to_dict()
    # SGD gains 0.08-0.12 from decay (0.098 on average), Adam 0.01: the difference of the gains is 0.088.
    runs = _four({"sgd,cos": [0.9, 0.8, 0.85, 0.88, 0.86], "sgd,const": [0.8, 0.72, 0.73, 0.77, 0.78],
                  "adam,cos": [0.91, 0.86, 0.9, 0.9, 0.9], "adam,const": [0.9, 0.85, 0.89, 0.89, 0.89]})
    verdict, why, (c,), _ = evaluate(rule, runs)
    assert verdict == "supported" and c.estimate == pytest.approx(0.088) and "n=5 seeds" in why
    swapped = Interaction("adam,cos", "adam,const", "sgd,cos", "sgd,const").to_dict()
    assert evaluate(swapped, runs)[0] == "contradicted"
    mixed = _four({"sgd,cos": [0.9, 0.7, 0.85], "sgd,const": [0.8, 0.75, 0.75],
                   "adam,cos": [0.9] * 3, "adam,const": [0.9] * 3})
    assert evaluate(rule, mixed)[0] == "undecided"
    diverged = runs.copy()
    diverged.loc[(diverged.variant == "sgd,cos") & (diverged.seed == 1), "final_val_acc"] = float("nan")
    assert "1 seeds left out" in evaluate(rule, diverged)[1]
    assert evaluate(rule, runs[runs.variant != "adam,cos"])[0] == "undecided"



def test_random_regularizers_repeat_exactly_for_the_same_seed(tmp_path):
    """Mixup, DropConnect, stochastic depth and fractional pooling all draw from torch's generator,
    which each run seeds: the same config and seed give the same numbers."""
    changes = {**TINY, "model.network": "resnet", "model.channels": (4, 8), "model.pool": "fractional",
               "model.stochastic_depth": 0.5, "model.drop_connect": 0.1, "data.mix": "mixup"}
    first = run_one(changes, tmp_path / "a")
    second = run_one(changes, tmp_path / "b")
    assert first["status"] == "completed"
    for key in ("train_loss", "final_val_acc", "clean_train_acc", "test_acc"):
        assert first[key] == second[key], key
    other = run_one({**changes, "seed": 1}, tmp_path / "c")
    assert other["train_loss"] != first["train_loss"]


def test_the_regularization_verdict_is_supported_when_regularizers_shrink_the_gap():
    """The study's own rule, on runs whose regularizers close the gap by 3-5 points on every seed: the
    claim holds, each effect is positive (favours the claim), and widening the gaps contradicts it.
    (Once the rule read "the baseline beats each regularizer on gap", which turned upside down when
    `gap` became lower-is-better.)"""
    from ablations.studies.regularization import CHECKED, STUDY
    from reports.verdicts import evaluate
    jitter = [0.0, 0.004, -0.003, 0.002, -0.001]
    gaps = {"baseline": [0.18 + j for j in jitter]}
    gaps |= {f"regularizer={r}": [0.18 - shrink + 0.5 * j for j in jitter]
             for r, shrink in zip(CHECKED, (0.03, 0.05, 0.04))}
    runs = pd.DataFrame([{"variant": v, "seed": s, "gap": g, "status": "completed"}
                         for v, values in gaps.items() for s, g in enumerate(values)])
    verdict = evaluate(STUDY.verdict.to_dict(), runs)
    assert verdict.outcome == "supported", verdict.text
    assert [c.label for c in verdict.comparisons] == [f"regularizer={r} vs baseline" for r in CHECKED]
    assert [c.estimate for c in verdict.comparisons] == pytest.approx([0.03, 0.05, 0.04], abs=0.002)
    wider = runs.assign(gap=lambda d: d.gap.where(d.variant == "baseline", 0.36 - d.gap))
    assert evaluate(STUDY.verdict.to_dict(), wider).outcome == "contradicted"
