"""Grid throughput with 1 and 2 local worker processes on the same grid, measured in one run.

Each measurement trains the same fresh grid (the activations study, 1 seed) into its own temporary
results folder with W&B off, from the start of `run_all.main` to its return (worker start-up
included).  The order alternates between repeats so slow drifts of the machine favour neither.

    python benchmarks/grid_scaling.py            # target on the 2-core machine: 2 workers >= 1.8x
"""
from __future__ import annotations

import argparse
import tempfile
import time

import run_all


def grid_seconds(workers: int, epochs: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        code = run_all.main(["--study", "activations", "--seeds", "1", "--epochs", str(epochs),
                             "--wandb-mode", "disabled", "--workers", str(workers), "--results-dir", tmp])
        elapsed = time.perf_counter() - start
    assert code == 0
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    times = {1: [], 2: []}
    for r in range(args.repeats):
        for workers in ((1, 2) if r % 2 == 0 else (2, 1)):
            times[workers].append(grid_seconds(workers, args.epochs))
    one, two = min(times[1]), min(times[2])
    print(f"\nactivations study, 11 runs x {args.epochs} epochs, best of {args.repeats}:")
    print(f"1 worker : {one:6.1f} s")
    print(f"2 workers: {two:6.1f} s   speed-up {one / two:.2f}x")


if __name__ == "__main__":
    main()
