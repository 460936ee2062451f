"""Every registry entry builds and takes a training step; schedules and inits match known values."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lit_modules import (ACTIVATIONS, INITIALIZERS, NETWORKS, NORMS, NORM_PLACEMENTS, OPTIMIZERS, SCHEDULES,
                         ModelConfig, OptimConfig, ScheduleConfig, build_network, build_optimizer, build_schedule)
from lit_modules.layers import Maxout
from lit_modules.optim import decay_split


def _step(model_cfg: ModelConfig, batch, optim_cfg: OptimConfig = OptimConfig(),
          steps: int = 1) -> tuple[float, float, nn.Module]:
    """Optimizer steps on a real batch: returns the loss before and after, and the network."""
    torch.manual_seed(0)
    x, y = batch
    net = build_network(model_cfg, tuple(x.shape[1:]), 10)
    opt = build_optimizer(optim_cfg, net)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        return loss

    with torch.no_grad():
        before = float(F.cross_entropy(net(x), y))
    for _ in range(steps):
        opt.step(closure)
    with torch.no_grad():
        after = float(F.cross_entropy(net(x), y))
    return before, after, net


@pytest.mark.parametrize("name", ACTIVATIONS.names())
@pytest.mark.parametrize("network", NETWORKS.names())
def test_every_activation_in_every_network_trains(name, network, digits_batch):
    before, after, _ = _step(ModelConfig(network=network, activation=name, channels=(8, 16)), digits_batch,
                             OptimConfig(name="adam", lr=1e-3), steps=5)
    assert math.isfinite(before) and after < before


@pytest.mark.parametrize("name", INITIALIZERS.names())
def test_every_initializer_builds_and_steps(name, digits_batch):
    before, after, net = _step(ModelConfig(init=name), digits_batch)
    assert math.isfinite(before) and math.isfinite(after)
    assert after != before  # some parameter moved (zeros init still moves the head bias)


@pytest.mark.parametrize("name", ["xavier_normal", "xavier_uniform", "kaiming_normal", "kaiming_uniform",
                                  "lecun_normal", "orthogonal", "torch_default"])
@pytest.mark.parametrize("network", NETWORKS.names())
def test_initial_loss_is_about_ln_c_with_standard_init(name, network, digits_batch):
    before, _, _ = _step(ModelConfig(network=network, init=name, channels=(8, 16)), digits_batch)
    assert abs(before - math.log(10)) < 0.1


def test_zero_init_cannot_break_symmetry(digits_batch):
    """All hidden units of a zero-initialized tanh net stay identical after training steps."""
    torch.manual_seed(0)
    x, y = digits_batch
    net = build_network(ModelConfig(init="zeros", activation="tanh"), (1, 8, 8), 10)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(5):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    hidden = net.body[1].weight
    assert torch.allclose(hidden, hidden[:1].expand_as(hidden))


@pytest.mark.parametrize("name", NORMS.names())
@pytest.mark.parametrize("position", NORM_PLACEMENTS.names())
@pytest.mark.parametrize("network", NETWORKS.names())
def test_every_norm_and_placement_trains(name, position, network, digits_batch):
    before, after, net = _step(ModelConfig(network=network, norm=name, norm_position=position, channels=(8, 16),
                                           activation="maxout"), digits_batch)
    assert after < before


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_every_optimizer_reduces_the_loss(name, digits_batch):
    lr = {"sgd": 0.1, "momentum": 0.1, "nesterov": 0.1, "lbfgs": 0.5}.get(name, 1e-3)
    before, after, _ = _step(ModelConfig(), digits_batch, OptimConfig(name=name, lr=lr))
    assert after < before


def test_weight_decay_skips_biases_and_norm_parameters():
    net = build_network(ModelConfig(norm="batch", activation="prelu"), (1, 8, 8), 10)
    opt = build_optimizer(OptimConfig(weight_decay=0.1), net)
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    for module in net.modules():
        for pname, p in module.named_parameters(recurse=False):
            is_weight_matrix = pname == "weight" and isinstance(module, (nn.Linear, nn.Conv2d))
            assert (id(p) in decayed) == is_weight_matrix, (module, pname)
    assert {id(p) for p in decay_split(net)[0]} == decayed


def test_maxout_multiplies_the_preceding_layer_by_k():
    net = build_network(ModelConfig(activation="maxout", width=32), (1, 8, 8), 10)
    linears = [m for m in net.body if isinstance(m, nn.Linear)]
    assert all(layer.out_features == 64 for layer in linears)
    assert linears[1].in_features == 32
    assert torch.equal(Maxout(2)(torch.tensor([[1.0, 3.0, -2.0, -5.0]])), torch.tensor([[3.0, -2.0]]))


KNOWN = {  # schedule -> {progress: multiplier}
    "constant": {0: 1, 0.5: 1, 1: 1},
    "step": {0: 1, 0.49: 1, 0.5: 0.1, 0.74: 0.1, 0.75: 0.01, 1: 0.01},
    "exponential": {0: 1, 0.5: 0.1, 1: 0.01},
    "inverse_time": {0: 1, 0.5: 1 / 5.5, 1: 0.1},
    "cosine": {0: 1, 0.25: 0.5 + 0.5 * math.cos(math.pi / 4), 0.5: 0.5, 1: 0},
    "cosine_restarts": {0: 1, 0.25: 0.5 + 0.5 * math.cos(math.pi / 4), 0.5: 0.5, 1: 0},   # 1 cycle = cosine
}


@pytest.mark.parametrize("name", SCHEDULES.names())
def test_every_schedule_matches_known_values(name):
    assert name in KNOWN, f"add known values for the new schedule {name!r}"
    schedule = build_schedule(ScheduleConfig(name=name))
    for p, expected in KNOWN[name].items():
        assert schedule(p) == pytest.approx(expected, abs=1e-12), (name, p)


@pytest.mark.parametrize("name", SCHEDULES.names())
def test_warmup_ramps_linearly_then_follows_the_schedule(name):
    plain = build_schedule(ScheduleConfig(name=name))
    warm = build_schedule(ScheduleConfig(name=name, warmup=0.2))
    assert warm(0.0) == 0.0
    assert warm(0.1) == pytest.approx(0.5 * plain(0.1))
    for p in (0.2, 0.6, 1.0):
        assert warm(p) == pytest.approx(plain(p))


def test_schedule_options_reach_the_schedule():
    assert build_schedule(ScheduleConfig(name="cosine", final=0.1))(1.0) == pytest.approx(0.1)
    assert build_schedule(ScheduleConfig(name="step", milestones=(0.3,), gamma=0.5))(0.3) == pytest.approx(0.5)
