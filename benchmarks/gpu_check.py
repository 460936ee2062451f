"""The suite's GPU path, checked and measured in one run; benchmarks/gpu_check.sh is the command.

    benchmarks/gpu_check.sh [FASHION_MNIST_DIR]    # one GPU, under 8 minutes; one table; exit 1 on a failure
    python benchmarks/gpu_check.py --plan          # what it would run and measure; needs no GPU

1. the tests marked `gpu` (tests/test_gpu.py), through pytest; a skip counts as a failure here
2. training throughput, the suite against the hand-written loop of benchmarks/throughput.py on the same
   device, model, data, batch size, optimizer and schedule, validation off in both:
   - the default MLP on Fashion-MNIST (files from FASHION_MNIST_DIR)
   - the cifar preset's ResNet on CIFAR-shaped synthetic tensors (random pixels and labels: a speed
     number only, never an accuracy)
   both without augmentation, which the hand loop does not do (benchmarks/augment_speed.py measures it)
3. packing: the digits `activations` study trained by 1, 2, 4 and 8 workers sharing one GPU, through
   benchmarks/grid_scaling.py: runs per minute, and the GPU memory each worker adds (peak device
   memory in use while the grid trains, less what was in use before, divided by the workers; one
   worker trains in this process, whose CUDA context was already counted in "before")
Targets (issue 14): the suite >= 0.9x the hand loop on the ResNet; 4 workers >= 2.5x one worker's runs
per minute.  A missed target is a failure.  Without CUDA the script stops at once with status 2.
"""
from __future__ import annotations

import argparse
import datetime
import functools
import os
import subprocess
import sys
import threading
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # a script in a checkout measures that checkout's code, not an installed copy

from ablations import resolve  # noqa: E402 (after the path)
from ablations.grid import plan  # noqa: E402
from ablations.presets import PRESETS  # noqa: E402
from ablations.studies import STUDIES  # noqa: E402
from datamodules import DataUnavailableError, ImageDataModule, load_dataset  # noqa: E402
from datamodules.datasets import RawData  # noqa: E402
from grid_scaling import grid_seconds  # noqa: E402
from throughput import EPOCHS, compare  # noqa: E402

SYNTHETIC_TRAIN, SYNTHETIC_TEST = 20_000, 1_000
RESNET = {**PRESETS.get("cifar10").base, "data.augment": "none", "trainer.max_epochs": 2}
MLP = {"data.name": "fashion_mnist", "trainer.max_epochs": EPOCHS["fashion_mnist"]}
WORKERS = (1, 2, 4, 8)
TARGETS = {"resnet": 0.9, "packing": 2.5}


@functools.cache
def _synthetic() -> RawData:
    g = torch.Generator().manual_seed(0)
    return RawData(torch.rand(SYNTHETIC_TRAIN, 3, 32, 32, generator=g),
                   torch.randint(0, 10, (SYNTHETIC_TRAIN,), generator=g),
                   torch.rand(SYNTHETIC_TEST, 3, 32, 32, generator=g),
                   torch.randint(0, 10, (SYNTHETIC_TEST,), generator=g))


class SyntheticCifar(ImageDataModule):
    """CIFAR-shaped random tensors through the suite's own data path (split, preprocessing, loader)."""

    def _load(self) -> RawData:
        return _synthetic()


class DeviceMemory(threading.Thread):
    """Peak memory in use on GPU 0 (all processes: torch.cuda.mem_get_info) while the block runs."""

    def __enter__(self) -> "DeviceMemory":
        super().__init__(daemon=True)
        torch.cuda.empty_cache()
        self.before = self.peak = self._used()
        self.stop = threading.Event()
        self.start()
        return self

    @staticmethod
    def _used() -> int:
        free, total = torch.cuda.mem_get_info(0)
        return total - free

    def run(self) -> None:
        while not self.stop.wait(0.05):
            self.peak = max(self.peak, self._used())

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.join()


def configs(data_dir: str) -> dict:
    """The two throughput configs, resolved (bad values fail here, before anything trains)."""
    gpu = {"trainer.accelerator": "gpu", "trainer.diagnostics_every": 0}
    return {"mlp": resolve({**MLP, **gpu, "data.data_dir": data_dir}), "resnet": resolve({**RESNET, **gpu})}


def packing_runs(seeds: int) -> list:
    return plan([STUDIES.get("activations")], {"trainer.accelerator": "gpu"}, seeds=seeds)


def run_tests() -> tuple[str, bool]:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "tests"],
                          cwd=ROOT, capture_output=True, text=True)
    print(proc.stdout[-6000:], proc.stderr[-2000:], sep="\n", flush=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    last = lines[-1].strip("= ") if lines else f"pytest exited with {proc.returncode}"
    return last, proc.returncode == 0 and "skipped" not in last and "passed" in last


def throughput_rows(cfgs: dict) -> list[tuple[str, str, str, bool]]:
    rows = []
    for name, cfg in cfgs.items():
        dm = (SyntheticCifar if name == "resnet" else ImageDataModule)(cfg.data, seed=cfg.seed)
        dm.prepare_data()
        dm.setup("fit")
        rate = compare(cfg, dm, repeats=3, device="cuda")
        ratio = rate["suite"] / rate["hand"]
        label = ("ResNet (cifar preset), CIFAR-shaped synthetic tensors" if name == "resnet"
                 else "default MLP, Fashion-MNIST")
        target = TARGETS.get(name)
        rows.append((f"samples/s, {label}, batch {cfg.data.batch_size}",
                     f"suite {rate['suite']:,.0f} vs hand {rate['hand']:,.0f} = {ratio:.2f}x",
                     f">= {target}x" if target else "-", target is None or ratio >= target))
    return rows


def packing_rows(seeds: int) -> list[tuple[str, str, str, bool]]:
    runs, rates, rows = packing_runs(seeds), {}, []
    for workers in WORKERS:
        with DeviceMemory() as memory:
            seconds = grid_seconds(workers, runs)
        rates[workers] = len(runs) / seconds * 60
        per_worker = (memory.peak - memory.before) / workers / 2**20
        rows.append((f"digits activations, {len(runs)} runs, {workers} worker(s) on one GPU",
                     f"{rates[workers]:.1f} runs/min, {per_worker:,.0f} MiB GPU memory per worker", "-", True))
    speedup = rates[4] / rates[1]
    rows.append(("packing: 4 workers vs 1", f"{speedup:.2f}x runs/min", f">= {TARGETS['packing']}x",
                 speedup >= TARGETS["packing"]))
    return rows


def guarded(name: str, measure, *args) -> list[tuple[str, str, str, bool]]:
    """A measurement that raises becomes a failed row; the others still run."""
    try:
        return measure(*args)
    except Exception as exc:  # noqa: BLE001 (any failure is reported in the table)
        return [(name, f"error: {type(exc).__name__}: {exc}", "-", False)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"),
                        help="folder with Fashion-MNIST's four idx .gz files (default: $FASHION_MNIST_DIR, "
                             "else Debian's dataset-fashion-mnist)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds of the activations study for packing")
    parser.add_argument("--plan", action="store_true", help="print what would run; train nothing, need no GPU")
    args = parser.parse_args(argv)

    cfgs, runs = configs(args.data_dir), packing_runs(args.seeds)
    if args.plan:
        print("1. python -m pytest -m gpu tests")
        for name, cfg in cfgs.items():
            print(f"2. throughput {name}: {cfg.model.network} {cfg.data.name}{' (synthetic)' * (name == 'resnet')} "
                  f"batch {cfg.data.batch_size}, {cfg.trainer.max_epochs} epochs, target "
                  f"{TARGETS.get(name, '-')}")
        print(f"3. packing: {len(runs)} runs of the activations study with {', '.join(map(str, WORKERS))} workers; "
              f"target 4 vs 1 workers {TARGETS['packing']}x")
        return 0
    if not torch.cuda.is_available():
        print("gpu_check needs a CUDA GPU: torch.cuda.is_available() is False", file=sys.stderr)
        return 2
    try:   # the data, before anything trains: the device machine has no network
        load_dataset("fashion_mnist", args.data_dir, download=False)
    except DataUnavailableError as e:
        print(f"gpu_check: {e}", file=sys.stderr)
        return 2

    tests, tests_ok = run_tests()
    rows = [("pytest -m gpu (tests/test_gpu.py)", tests, "all pass, none skipped", tests_ok)]
    rows += guarded("throughput", throughput_rows, cfgs)
    rows += guarded("packing", packing_rows, args.seeds)

    print(f"\nGPU check {datetime.date.today().isoformat()}: {torch.cuda.get_device_name(0)}, torch {torch.__version__}"
          f" (CIFAR-shaped inputs are synthetic: a speed number, not an accuracy)")
    width = max(len(r[0]) for r in rows)
    print(f"{'check':<{width}}  {'result':<58}  {'target':<22}  ok")
    for check, result, target, ok in rows:
        print(f"{check:<{width}}  {result:<58}  {target:<22}  {'ok' if ok else 'FAIL'}")
    return 0 if all(r[3] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
