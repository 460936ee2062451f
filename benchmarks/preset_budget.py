"""How long a preset's `python run_all.py --preset NAME` should take, from its plan and measured shapes.

The grid is planned as run_all plans it (`ablations.grid.plan`, the preset's seeds, every study and
the second stage of the staged ones, derived here from a stand-in stage-1 table: which rate or box
stage 2 picks changes its values, not its number of runs or their shapes).  Runs that cost the same
per epoch (same network, data sizes, batch, augmentation, procedure ...; the learning rate, init,
seed or schedule do not change the cost) form one shape; each shape is trained once here for two
epochs, single-threaded as each of run_all's workers on a 2-core machine is, and timed per epoch
(the second epoch, training and validation) plus its fixed cost (data set-up, test, files).
Runs that are not epochs of a fit (lr_find, overfit, landscape) are timed whole.  A transfer source
is trained once, as the grid trains it, and counted once.

The estimate is   sum over runs (fixed + epochs x seconds per epoch) / workers + report allowance,
in CPU seconds of this process: on a loaded machine the wall clock is stretched by the other jobs,
the CPU time is what an idle core would take (both are printed, with the load average).  It assumes
every run goes the full length (a run that diverges or stops early ends sooner) and perfect packing
of runs onto workers, and it excludes --until-decided rounds.

    python benchmarks/preset_budget.py --preset fashion_mnist          # every study, about 10 min
    python benchmarks/preset_budget.py --preset fashion_mnist --study activations --study transfer
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # this checkout's code, not an installed copy

import lightning as L
import pandas as pd
import torch

from ablations.grid import PlannedRun, plan
from ablations.presets import PRESETS
from ablations.runner import train
from ablations.studies import STUDIES
from ablations.study import Study
from ablations.transfer import pretrained_weights
from datamodules import load_dataset
from lit_modules import override
from lit_modules.config_tools import flat_dict

# Config keys that change what a run computes but not how long it takes.
COST_NEUTRAL = ("seed", "optim.lr", "optim.weight_decay", "optim.momentum", "model.init", "model.head_init_scale",
                "schedule.", "data.label_noise", "data.split_seed", "transfer.source_seed", "trainer.max_epochs",
                "trainer.early_stop_factor", "averaging.decay", "averaging.start", "data.mix_alpha")


def stage_two(study: Study, runs: list[PlannedRun]) -> Study | None:
    """The study's next stage from a stand-in table of its planned stage-1 trials (every score equal)."""
    if study.then is None:
        return None
    rows = [{**flat_dict(r.cfg), "variant": t.variant, "seed": t.seed, "final_val_acc": 0.5}
            for r in runs for t in r.trials if t.study == study.name]
    return study.then(pd.DataFrame(rows))


def planned(preset_name: str, names: list[str], seeds: int | None) -> list[tuple[str, PlannedRun]]:
    """(study or stage, run) for every run the preset trains, each run once (under its first study)."""
    preset = PRESETS.get(preset_name)
    out: dict[str, tuple[str, PlannedRun]] = {}
    for name in names:
        study = STUDIES.get(name)
        stages = [study]
        first = plan([study], seeds=seeds, preset=preset)
        follow = stage_two(study, first)
        if follow is not None:
            stages.append(follow)
        for stage in stages:
            for run in plan([stage], seeds=seeds, preset=preset):
                out.setdefault(run.run_id, (stage.name, run))
    return list(out.values())


def shape(run: PlannedRun) -> tuple:
    """The run's config less what does not change its cost; a run that is not a fit keeps its epochs
    (it is timed whole)."""
    fit = run.cfg.trainer.procedure == "fit"
    neutral = [n for n in COST_NEUTRAL if fit or n != "trainer.max_epochs"]
    return tuple(sorted((k, str(v)) for k, v in flat_dict(run.cfg).items()
                        if not any(k == n or (n.endswith(".") and k.startswith(n)) for n in neutral)))


class EpochClock(L.Callback):
    """CPU and wall clock at the start of every training epoch and at the end of the fit."""

    def __init__(self):
        self.marks: list[tuple[float, float]] = []

    def on_train_epoch_start(self, trainer, module) -> None:
        self.marks.append((time.process_time(), time.perf_counter()))

    def on_fit_end(self, trainer, module) -> None:
        self.marks.append((time.process_time(), time.perf_counter()))


def measure(run: PlannedRun, results: str) -> dict[str, Any]:
    """Seconds per epoch and fixed seconds of one shape (CPU and wall), plus any source it trained."""
    cfg = run.cfg
    fit = cfg.trainer.procedure == "fit"
    if fit:
        cfg = override(cfg, {"trainer.max_epochs": 2, "trainer.early_stop_factor": 0.0})
    # A transfer source is trained by the first run that needs it and cached, as in the grid: timed
    # apart (zero when there is none or it is cached already), so it is counted once.
    c0, w0 = time.process_time(), time.perf_counter()
    pretrained_weights(cfg, results)
    source = {"source_cpu": time.process_time() - c0, "source_wall": time.perf_counter() - w0}
    clock = EpochClock()
    c0, w0 = time.process_time(), time.perf_counter()
    summary = train(cfg, results, callbacks=[clock] if fit else [])
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    marks = clock.marks
    if fit and len(marks) == 3:                 # start of epoch 1, start of epoch 2, end of fit
        epoch_cpu, epoch_wall = marks[2][0] - marks[1][0], marks[2][1] - marks[1][1]
        return {"epoch_cpu": epoch_cpu, "epoch_wall": epoch_wall, "fixed_cpu": cpu - 2 * epoch_cpu,
                "fixed_wall": wall - 2 * epoch_wall, "status": summary["status"], **source}
    # Not a fit, or it ended before its second epoch (diverged): timed whole, charged per run.
    return {"epoch_cpu": 0.0, "epoch_wall": 0.0, "fixed_cpu": cpu, "fixed_wall": wall,
            "status": summary["status"], **source}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="fashion_mnist")
    parser.add_argument("--study", action="append", default=[], help="only these studies (default: all)")
    parser.add_argument("--seeds", type=int, help="as run_all --seeds (default: the preset's)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--overhead-s", type=float, default=0.3,
                        help="per-run cost of the grid around a run: ledger, W&B offline "
                             "(benchmarks/run_overhead.py)")
    parser.add_argument("--report-s", type=float, default=180.0,
                        help="allowance for start-up and the report (tables, figures, W&B offline)")
    parser.add_argument("--verbose", action="store_true", help="print every shape's timing")
    args = parser.parse_args()
    torch.set_num_threads(1)          # what each of run_all's workers gets on a 2-core machine
    names = args.study or STUDIES.names()
    runs = planned(args.preset, names, args.seeds)
    for data in {r.cfg.data.name: r.cfg.data for _, r in runs}.values():
        load_dataset(data.name, data.data_dir, data.download)   # decoded once per worker in the grid too
    shapes: dict[tuple, list[tuple[str, PlannedRun]]] = defaultdict(list)
    for study, run in runs:
        shapes[shape(run)].append((study, run))
    load = os.getloadavg()[0]
    print(f"{len(runs)} runs in {len(shapes)} shapes; measuring each (load average {load:.1f}) ...", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as results:
        for members in shapes.values():
            t = measure(members[0][1], results)
            if args.verbose:
                r = members[0][1]
                print(f"  {members[0][0]:<16} {r.name[:40]:<40} x{len(members):>3}: {t['epoch_cpu']:.2f} s/epoch "
                      f"+ {t['fixed_cpu']:.2f} s CPU ({t['epoch_wall']:.2f} + {t['fixed_wall']:.2f} s wall) "
                      f"{t['status']}", flush=True)
            for i, (study, run) in enumerate(members):
                epochs = run.cfg.trainer.max_epochs if t["epoch_cpu"] else 0
                source = (t["source_cpu"], t["source_wall"]) if i == 0 else (0.0, 0.0)
                rows.append({"study": study, "epochs": run.cfg.trainer.max_epochs,
                             "cpu": t["fixed_cpu"] + epochs * t["epoch_cpu"] + args.overhead_s + source[0],
                             "wall": t["fixed_wall"] + epochs * t["epoch_wall"] + args.overhead_s + source[1]})
    table = pd.DataFrame(rows).groupby("study", sort=False).agg(
        runs=("epochs", "size"), epochs=("epochs", "sum"), cpu_s=("cpu", "sum"), wall_s=("wall", "sum"))
    table.loc["total"] = table.sum()
    print(table.round(0).astype(int).to_string())
    for kind, col in (("CPU (idle machine)", "cpu_s"), ("wall at this load", "wall_s")):
        minutes = (table.loc["total", col] / args.workers + args.report_s) / 60
        print(f"estimate from {kind}: {minutes:.1f} min with {args.workers} workers "
              f"(+ {args.report_s:.0f} s allowance for start-up and the report)")
    print(f"load average {load:.1f} -> {os.getloadavg()[0]:.1f} during the measurement")


if __name__ == "__main__":
    main()
