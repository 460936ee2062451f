"""Grid throughput with 1 and 2 local worker processes on the same grid, measured in one run.

The grid is the activations and initializers studies (3 seeds, 20 epochs: 61 runs), trained from
scratch into a fresh temporary results folder each time with W&B off.  The clock covers the
executor alone, worker start-up included (planning and the report are the same for both).  The
order alternates between repeats so slow drifts of the machine favour neither.

    python benchmarks/grid_scaling.py            # target on the 2-core machine: 2 workers >= 1.8x
"""
from __future__ import annotations

import argparse
import tempfile
import time

from ablations import ledger
from ablations.executors import EXECUTORS, Job
from ablations.grid import plan
from ablations.studies import STUDIES
from ablations.tracking import Tracking


def grid_seconds(workers: int, runs) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [Job(r.run_id, r.cfg, r.group, r.name, tuple(r.tags), tmp, Tracking(mode="disabled")) for r in runs]
        statuses = []
        start = time.perf_counter()
        EXECUTORS.get("local")(jobs, lambda s: statuses.append(s["status"]), workers=workers)
        elapsed = time.perf_counter() - start
    assert len(statuses) == len(jobs) and all(s in ledger.DONE for s in statuses), statuses
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    runs = plan([STUDIES.get("activations"), STUDIES.get("initializers")], {"trainer.max_epochs": args.epochs},
                seeds=args.seeds)
    times = {1: [], 2: []}
    for r in range(args.repeats):
        for workers in ((1, 2) if r % 2 == 0 else (2, 1)):
            times[workers].append(grid_seconds(workers, runs))
    one, two = min(times[1]), min(times[2])
    print(f"activations + initializers: {len(runs)} runs x {args.epochs} epochs, best of {args.repeats}")
    print(f"1 worker : {one:6.1f} s")
    print(f"2 workers: {two:6.1f} s   speed-up {one / two:.2f}x")


if __name__ == "__main__":
    main()
