"""Throughput of our batched augmentations against kornia.augmentation on CPU.

Both sides draw per-sample parameters for a whole batch.  Measurements are interleaved (ours, kornia,
ours, kornia, ...) within one run so that CPU frequency changes and background load hit both sides
alike; each figure is the median over repeats.

    python benchmarks/augment_speed.py [--batch 512] [--repeats 9] [--threads N]
"""
from __future__ import annotations

import argparse
import statistics
import time

import kornia.augmentation as K
import torch

from datamodules import build_augmentation

SHAPES = {"fashion_mnist (1,28,28)": (1, 28, 28), "cifar (3,32,32)": (3, 32, 32)}


def kornia_equivalents(h: int, w: int) -> dict[str, torch.nn.Module]:
    """kornia modules configured like our entries of the same name."""
    return {
        "flip": K.RandomHorizontalFlip(p=0.5),
        "crop": K.RandomCrop((h, w), padding=max(1, h // 8), p=1.0),
        "scale": K.RandomResizedCrop((h, w), scale=(0.35, 1.0), ratio=(3 / 4, 4 / 3)),
        "color_jitter": K.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, p=1.0),
        # A square of a quarter of the area is our H//2 x W//2 cutout.
        "cutout": K.RandomErasing(scale=(0.25, 0.25), ratio=(1.0, 1.0), value=0.0, p=1.0),
    }


def seconds_per_call(fn, x: torch.Tensor, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn(x)
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--calls", type=int, default=5, help="calls per timed repeat")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    print(f"batch {args.batch}, CPU, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"median of {args.repeats} repeats x {args.calls} calls")
    print(f"{'shape':<24}{'augmentation':<14}{'ours img/s':>12}{'kornia img/s':>14}{'ours/kornia':>13}")
    g = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for label, shape in SHAPES.items():
            x = torch.rand(args.batch, *shape, generator=g)
            for name, theirs in kornia_equivalents(*shape[1:]).items():
                ours = build_augmentation(name)
                ours_fn = lambda t: ours(t, g)  # noqa: E731
                ours_fn(x), theirs(x)            # warm-up (allocator, kernel selection)
                times = {"ours": [], "kornia": []}
                for _ in range(args.repeats):
                    times["ours"].append(seconds_per_call(ours_fn, x, args.calls))
                    times["kornia"].append(seconds_per_call(theirs, x, args.calls))
                ours_rate = args.batch / statistics.median(times["ours"])
                kornia_rate = args.batch / statistics.median(times["kornia"])
                print(f"{label:<24}{name:<14}{ours_rate:>12,.0f}{kornia_rate:>14,.0f}"
                      f"{ours_rate / kornia_rate:>12.1f}x")


if __name__ == "__main__":
    main()
