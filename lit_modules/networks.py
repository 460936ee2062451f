"""Network registry: mlp, VGG-style convnet and a small ResNet, all assembled from the layer registries.

A network entry returns (body, feature_dim); `build_network` adds the classifier head and initializes
every layer, so activation, initializer, norm and dropout are axes no network has to know about.
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from .layers import ACTIVATIONS, build_activation, build_norm, init_layer
from .registry import Registry
from .regularizers import STOCHASTIC_DEPTH_MODES, add_drop_connect, build_pool, survival_probabilities

# Where the norm goes relative to the nonlinearity.  Entries take (make_norm, act, width, factor):
# before the activation the norm sees all `factor * width` pre-activations (maxout), after it `width`.
NORM_PLACEMENTS: Registry[Callable[..., list[nn.Module]]] = Registry("norm placement", {
    "before": lambda make_norm, act, width, factor: [make_norm(width * factor), act],
    "after": lambda make_norm, act, width, factor: [act, make_norm(width)],
})


def _unit(cfg, make_layer: Callable[[int], nn.Module], width: int, spatial: bool) -> list[nn.Module]:
    """layer -> norm/act in the configured order; the layer widens by the activation's factor (maxout)."""
    factor = ACTIVATIONS.get(cfg.activation).width_factor
    place = NORM_PLACEMENTS.get(cfg.norm_position)
    return [make_layer(width * factor),
            *place(lambda c: build_norm(cfg.norm, c, spatial), build_activation(cfg.activation), width, factor)]


def _dropout(cfg) -> list[nn.Module]:
    return [nn.Dropout(cfg.dropout)] if cfg.dropout > 0 else []


NETWORKS: Registry[Callable] = Registry("network")


@NETWORKS.register("mlp")
def mlp(cfg, in_shape: tuple[int, int, int]) -> tuple[nn.Module, int]:
    layers: list[nn.Module] = [nn.Flatten()]
    features = in_shape[0] * in_shape[1] * in_shape[2]
    for _ in range(cfg.depth):
        layers += _unit(cfg, lambda out, f=features: nn.Linear(f, out), cfg.width, spatial=False)
        layers += _dropout(cfg)
        features = cfg.width
    return nn.Sequential(*layers), features


def _conv(cin: int, stride: int = 1) -> Callable[[int], nn.Module]:
    return lambda cout: nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


@NETWORKS.register("convnet")
def convnet(cfg, in_shape: tuple[int, int, int]) -> tuple[nn.Module, int]:
    """VGG-style: stages of 3x3 convs, each stage ending in a 2x2 max-pool, then a flattened head."""
    layers: list[nn.Module] = []
    cin, h, w = in_shape
    for cout in cfg.channels:
        for _ in range(cfg.blocks_per_stage):
            layers += _unit(cfg, _conv(cin), cout, spatial=True)
            cin = cout
        if min(h, w) >= 2:  # tiny inputs (8x8 digits) run out of resolution before they run out of stages
            pool, h, w = build_pool(cfg.pool or "max", h, w)   # model.pool, else the VGG default
            layers.append(pool)
        layers += _dropout(cfg)
    layers.append(nn.Flatten())
    return nn.Sequential(*layers), cin * h * w


convnet.options = frozenset({"pool"})   # config options only some networks have (ModelConfig checks)


class ResidualBlock(nn.Module):
    """conv-norm-act-conv-norm plus a shortcut (1x1 conv where the shape changes), then act.

    With `survival` < 1 the branch is stochastic depth of the configured mode (regularizers.py):
    Huang et al.'s by default, where a dropped branch returns None and only the shortcut runs.
    """

    def __init__(self, cfg, cin: int, cout: int, stride: int, survival: float = 1.0):
        super().__init__()
        layers = [*_unit(cfg, _conv(cin, stride), cout, spatial=True),
                  nn.Conv2d(cout, cout, 3, padding=1), build_norm(cfg.norm, cout, True)]
        # Only wrapped when asked for, so the default block costs nothing extra per step.
        self.branch = (nn.Sequential(*layers) if survival >= 1.0
                       else STOCHASTIC_DEPTH_MODES.get(cfg.stochastic_depth_mode)(survival, *layers))
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Conv2d(cin, cout, 1, stride)
        # Maxout needs k inputs per output, which the residual sum cannot give: its stream stays
        # linear after the sum, as the identity path of a pre-activation ResNet does.
        spec = ACTIVATIONS.get(cfg.activation)
        self.act = spec.make() if spec.width_factor == 1 else nn.Identity()

    def forward(self, x):
        out, skip = self.branch(x), self.shortcut(x)
        return self.act(skip if out is None else out + skip)


@NETWORKS.register("resnet")
def resnet(cfg, in_shape: tuple[int, int, int]) -> tuple[nn.Module, int]:
    """Stages downsample with a stride-2 first conv, or with `model.pool` between stages when set;
    `model.stochastic_depth` is the drop rate of the last block, 1 - p_L (linear rule, see regularizers.py)."""
    layers: list[nn.Module] = _unit(cfg, _conv(in_shape[0]), cfg.channels[0], spatial=True)
    cin, (h, w) = cfg.channels[0], in_shape[1:]
    survival = iter(survival_probabilities(cfg.stochastic_depth, len(cfg.channels) * cfg.blocks_per_stage))
    for stage, cout in enumerate(cfg.channels):
        if stage > 0 and cfg.pool is not None and min(h, w) >= 2:
            pool, h, w = build_pool(cfg.pool, h, w)
            layers.append(pool)
        for block in range(cfg.blocks_per_stage):
            stride = 2 if stage > 0 and block == 0 and cfg.pool is None else 1
            layers.append(ResidualBlock(cfg, cin, cout, stride, next(survival)))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), *_dropout(cfg)]
    return nn.Sequential(*layers), cin


resnet.options = frozenset({"pool", "stochastic_depth"})


class Classifier(nn.Module):
    def __init__(self, body: nn.Module, features: int, num_classes: int):
        super().__init__()
        self.body = body
        self.head = nn.Linear(features, num_classes)

    def forward(self, x):
        return self.head(self.body(x))


def build_network(cfg, in_shape: tuple[int, int, int], num_classes: int) -> Classifier:
    """cfg: lit_modules.config.ModelConfig.  Hidden layers get the activation's gain, the head gain 1."""
    body, features = NETWORKS.get(cfg.network)(cfg, tuple(in_shape))
    net = Classifier(body, features, num_classes)
    gain = ACTIVATIONS.get(cfg.activation).gain
    for layer in net.body.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            init_layer(layer, cfg.init, gain)
    init_layer(net.head, cfg.init, 1.0)
    net.head.weight.data.mul_(cfg.head_init_scale)
    if cfg.drop_connect > 0:  # hidden layers only: the head's weights stay whole, as in Wan et al.
        add_drop_connect(net.body, cfg.drop_connect)
    return net
