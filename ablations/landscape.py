"""Optimizers on 2-D toy functions (lecture 7): the pictures behind "SGD is slow and jittery".

Each toy function is an entry of FUNCTIONS: the function, a start point, its minima, the noise added to
its gradients (seeded by the run seed) and, for a saddle, how far off the ridge counts as escaped.
`trajectory` runs one optimizer of lit_modules.optim.OPTIMIZERS on it through the same
`build_optimizer` factory as the image runs (L-BFGS with a closure, like the module does), and
`trajectory_metrics` turns the path into numbers that verdict rules compare.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from lit_modules import OPTIMIZERS, Registry, build_optimizer
from lit_modules.config_tools import check_choice, check_range, validate_fields


@dataclass(frozen=True)
class ToyFunction:
    f: Callable[[torch.Tensor], torch.Tensor]   # p = (x, y) -> scalar; x is the shallow/ridge axis
    start: tuple[float, float]
    minima: tuple[tuple[float, float], ...]
    noise: float = 0.0                          # std of Gaussian noise added to every gradient
    escape: float | None = None                 # |y| beyond which a path has left the saddle
    box: tuple[float, float, float, float] = (-6.0, 6.0, -1.5, 1.5)   # x0, x1, y0, y1 of the figure


# "Taco shell": curvature 0.05 along x, 4.0 along y (condition number 80).  With lr 0.45 plain SGD
# multiplies y by 1 - 1.8 = -0.8 each step (it zig-zags across the valley) and x by 0.98 (it crawls).
TACO_CURVATURE = (0.05, 4.0)


def _taco(p: torch.Tensor) -> torch.Tensor:
    return 0.5 * (TACO_CURVATURE[0] * p[0] ** 2 + TACO_CURVATURE[1] * p[1] ** 2)


def _saddle(p: torch.Tensor) -> torch.Tensor:
    # A saddle at the origin between minima at y = +-sqrt(0.1), bounded below: curvature -0.1 across
    # the ridge, so plain SGD at lr 0.45 grows y by only 4.5% a step (about 115 steps to escape).
    return 0.5 * p[0] ** 2 + 0.25 * p[1] ** 4 - 0.05 * p[1] ** 2


FUNCTIONS: Registry[ToyFunction] = Registry("toy function", {
    "taco": ToyFunction(_taco, start=(-5.0, 1.0), minima=((0.0, 0.0),)),
    # The start is almost on the ridge: the gradient across it (y) is 1000x smaller than along it.
    "saddle": ToyFunction(_saddle, start=(-2.0, 1e-3), minima=((0.0, 0.1 ** 0.5), (0.0, -(0.1 ** 0.5))),
                          escape=0.15, box=(-2.5, 2.5, -0.6, 0.6)),
    # Mini-batch gradients are noisy: the taco's gradient plus N(0, 0.5^2) per coordinate.
    "noisy": ToyFunction(_taco, start=(-5.0, 1.0), minima=((0.0, 0.0),), noise=0.5),
})


@dataclass(frozen=True)
class LandscapeConfig:
    """Used by runs with trainer.procedure=landscape: which toy function, and how many optimizer steps."""
    function: str = "taco"
    steps: int = 80

    def __post_init__(self):
        validate_fields(self)
        check_choice("function", self.function, FUNCTIONS)
        check_range("steps", self.steps, 1)


class _Point(nn.Module):
    """The two coordinates as one parameter: a vector, so build_optimizer puts it in the no-decay group."""

    def __init__(self, start: tuple[float, float]):
        super().__init__()
        self.p = nn.Parameter(torch.tensor(start, dtype=torch.float64))


def trajectory(optim_cfg, function: str, steps: int, seed: int = 0) -> list[dict[str, float]]:
    """Rows (step, x, y, loss) from the start point through `steps` optimizer steps; loss is noise-free."""
    toy = FUNCTIONS.get(function)
    point = _Point(toy.start)
    optimizer = build_optimizer(optim_cfg, point)
    full_batch = OPTIMIZERS.get(optim_cfg.name).full_batch
    noise = torch.Generator().manual_seed(seed)

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = toy.f(point.p)
        loss.backward()
        if toy.noise:
            point.p.grad += toy.noise * torch.randn(2, generator=noise, dtype=point.p.dtype)
        return loss

    rows = [_row(0, point.p, toy)]
    for step in range(1, steps + 1):
        if full_batch:
            optimizer.step(closure)
        else:
            closure()
            optimizer.step()
        rows.append(_row(step, point.p, toy))
        if not math.isfinite(rows[-1]["loss"]):
            break
    return rows


def log_trajectory(loggers, rows: list[dict[str, float]]) -> None:
    """Every point of the path and its loss to the run's Lightning loggers, at its optimizer step
    (W&B: landscape/x, landscape/y, landscape/loss against optimizer_step)."""
    for row in rows:
        for logger in loggers:
            logger.log_metrics({f"landscape/{k}": row[k] for k in ("x", "y", "loss")}, step=int(row["step"]))


def _row(step: int, p: torch.Tensor, toy: ToyFunction) -> dict[str, float]:
    with torch.no_grad():
        return {"step": step, "x": float(p[0]), "y": float(p[1]), "loss": float(toy.f(p))}


def trajectory_metrics(rows: list[dict[str, float]], function: str) -> dict[str, float]:
    """What the claims talk about, from the path alone.

    distance:         from the last point to the nearest minimum
    shallow_progress: fraction of the start's x-distance to the minimum covered at the end
    overshoot:        how far x went past the minimum, relative to where it started (0 = never)
    steep_flips:      sign changes of y, the steep coordinate (zig-zag across the valley)
    escape_step:      first step with |y| >= the function's escape threshold (NaN: never, or n/a)
    tail_loss:        mean noise-free loss over the last quarter of the steps (where noise keeps it)
    """
    toy = FUNCTIONS.get(function)
    xs = [r["x"] for r in rows]
    ys = [r["y"] for r in rows]
    x_min = toy.minima[0][0]
    x0 = xs[0] - x_min
    last = (xs[-1], ys[-1])
    distance = min(math.dist(last, m) for m in toy.minima)
    side = math.copysign(1.0, x0)
    overshoot = max(0.0, max(-side * (x - x_min) for x in xs)) / abs(x0)
    flips = sum(1 for a, b in zip(ys, ys[1:]) if a * b < 0)
    escape = next((r["step"] for r in rows if toy.escape is not None and abs(r["y"]) >= toy.escape), math.nan)
    tail = [r["loss"] for r in rows[-max(1, len(rows) // 4):]]
    return {"final_loss": rows[-1]["loss"], "tail_loss": sum(tail) / len(tail), "distance": distance,
            "shallow_progress": 1.0 - abs(xs[-1] - x_min) / abs(x0), "overshoot": overshoot,
            "steep_flips": float(flips), "escape_step": float(escape), "steps_taken": float(rows[-1]["step"])}


def surface(function: str, n: int = 41) -> list[dict[str, float]]:
    """The noise-free function on an n x n grid over its figure box, for the report's contour plot."""
    toy = FUNCTIONS.get(function)
    x0, x1, y0, y1 = toy.box
    xs, ys = torch.linspace(x0, x1, n, dtype=torch.float64), torch.linspace(y0, y1, n, dtype=torch.float64)
    gx, gy = torch.meshgrid(xs, ys, indexing="ij")
    values = toy.f(torch.stack([gx, gy]))
    return [{"x": float(a), "y": float(b), "loss": float(v)}
            for a, b, v in zip(gx.flatten(), gy.flatten(), values.flatten())]

