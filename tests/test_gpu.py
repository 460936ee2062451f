"""The GPU path: each test runs on CPU (a normal test, here and in CI) and on CUDA (marked `gpu`,
skipped with the reason where there is no GPU; benchmarks/gpu_check.sh runs them on one).

What a GPU adds to each check is the device; the rest (learning, the divergence step, bf16, retries)
is the same claim, so one body serves both and the CPU half keeps the GPU half's logic exercised.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import lightning as L
import pytest
import torch

from ablations import resolve, train
from ablations.executors import Job, run_local
from ablations.grid import plan
from ablations.studies import STUDIES
from ablations.tracking import Tracking

ROOT = Path(__file__).resolve().parents[1]
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu, id="cuda")]
QUIET = {"trainer.diagnostics_every": 0}
# The same config on CPU and GPU need not agree to the bit (the float sums run in another order),
# but a different summation order must change the result no more than a different seed does: the
# accuracies may differ by at most what the seeds of this config span among themselves on CPU,
# which test_seeds_span_less_than_the_cpu_gpu_tolerance bounds by this same number.
TOLERANCE = 0.03
REFERENCE = {**QUIET, "trainer.max_epochs": 10}


class WhereTensors(L.Callback):
    """The device of every tensor a run computes with: the weights, the stored splits, each batch."""

    def __init__(self):
        self.seen: dict[str, set[str]] = {}

    def _note(self, what: str, tensor: torch.Tensor) -> None:
        self.seen.setdefault(what, set()).add(tensor.device.type)

    def on_train_start(self, trainer, module) -> None:
        for p in module.parameters():
            self._note("weights", p)
        dm = trainer.datamodule
        for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
            self._note(name, getattr(dm, name))

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self._note("train batch", batch.loader.x)   # a StepGroup: its steps slice this tensor
        self._note("train indices", batch.indices[0])

    def on_test_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0) -> None:
        self._note("test batch", batch[0])


class StepCount(L.Callback):
    def on_fit_end(self, trainer, module) -> None:
        self.steps = trainer.global_step


def _run(device: str, changes: dict, results: Path, callbacks=()) -> dict:
    return train(resolve({**changes, "trainer.accelerator": device}), results, callbacks=list(callbacks))


@pytest.mark.parametrize("device", DEVICES)
def test_a_run_trains_and_tests_with_its_tensors_on_the_device(device, tmp_path):
    where = WhereTensors()
    summary = _run(device, {**QUIET, "trainer.max_epochs": 5}, tmp_path, [where])
    assert summary["status"] == "completed", summary.get("traceback")
    assert summary["device"].startswith(device) and summary["test_acc"] >= 0.9
    assert set(where.seen) >= {"weights", "x_train", "x_test", "train batch", "train indices", "test batch"}
    assert all(kinds == {device} for kinds in where.seen.values()), where.seen


@pytest.mark.gpu
def test_the_same_config_gives_the_same_accuracy_on_cpu_and_gpu(tmp_path):
    cpu, gpu = (_run(d, REFERENCE, tmp_path / d) for d in ("cpu", "cuda"))
    assert cpu["run_id"] == gpu["run_id"] and cpu["status"] == gpu["status"] == "completed"
    for metric in ("final_val_acc", "test_acc"):
        assert abs(cpu[metric] - gpu[metric]) <= TOLERANCE, (metric, cpu[metric], gpu[metric])


@pytest.mark.slow
def test_seeds_span_less_than_the_cpu_gpu_tolerance(tmp_path):
    """The CPU side of the comparison above: its config learns and its seeds agree within TOLERANCE,
    so a CPU-GPU gap beyond it is not noise of the kind a seed brings."""
    runs = [_run("cpu", {**REFERENCE, "seed": s}, tmp_path) for s in range(3)]
    assert all(r["status"] == "completed" and r["test_acc"] >= 0.9 for r in runs)
    for metric in ("final_val_acc", "test_acc"):
        values = [r[metric] for r in runs]
        assert max(values) - min(values) <= TOLERANCE, (metric, values)


@pytest.mark.parametrize("device", DEVICES)
def test_a_non_finite_loss_ends_the_run_at_the_same_step_on_every_device(device, tmp_path):
    """The reference checks after every step (steps_per_call=1) on CPU; the device run checks once per
    default group of steps: same status, same first bad step, and it stops within that group."""
    nan = {**QUIET, "optim.lr": 1e6, "trainer.max_epochs": 3}
    reference = _run("cpu", {**nan, "data.steps_per_call": 1}, tmp_path / "reference")
    count = StepCount()
    got = _run(device, nan, tmp_path / device, [count])
    assert reference["status"] == got["status"] == "diverged"
    assert got["diverged_step"] == reference["diverged_step"] <= 5
    group = resolve({}).data.steps_per_call
    assert got["diverged_step"] <= count.steps < got["diverged_step"] + group


@pytest.mark.parametrize("device", DEVICES)
def test_bf16_mixed_trains(device, tmp_path):
    """Lightning's bf16-mixed autocasts the layers (checked on the first Linear's output) and the run
    still learns digits."""
    dtypes = set()

    class Watch(L.Callback):
        def on_train_start(self, trainer, module) -> None:
            first = next(m for m in module.net.modules() if isinstance(m, torch.nn.Linear))
            first.register_forward_hook(lambda mod, inputs, out: dtypes.add(out.dtype))

    summary = _run(device, {**QUIET, "trainer.max_epochs": 5, "trainer.precision": "bf16-mixed"}, tmp_path,
                   [Watch()])
    assert summary["status"] == "completed", summary.get("traceback")
    assert torch.bfloat16 in dtypes and summary["final_val_acc"] >= 0.9


class LockWatcher(threading.Thread):
    """Polls the runs' lock files (they hold the training worker's pid) while a grid trains; with
    `kill`, SIGKILLs the first worker found in the middle of a run (its run has a finished epoch)."""

    def __init__(self, results: Path, kill: bool = False):
        super().__init__(daemon=True)
        self.results, self.kill = results, kill
        self.pids: set[int] = set()
        self.killed: str | None = None   # run id whose worker was killed
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for lock in self.results.glob("runs/*/.lock"):
                try:
                    pid = int(json.loads(lock.read_text())["pid"])
                except (OSError, ValueError, KeyError):
                    continue   # gone, or being written
                self.pids.add(pid)
                if self.kill and self.killed is None and (lock.parent / "metrics.csv").exists():
                    os.kill(pid, signal.SIGKILL)
                    self.killed = lock.parent.name
            time.sleep(0.02)


def _grid(device: str, results: Path, workers: int, seeds: int, epochs: int, kill: bool = False):
    runs = plan([STUDIES.get("activations")], {**QUIET, "trainer.max_epochs": epochs,
                                               "trainer.accelerator": device}, seeds=seeds)
    jobs = [Job(r.run_id, r.cfg, r.group, r.name, (), str(results), Tracking("disabled")) for r in runs]
    watcher, outcomes = LockWatcher(results, kill), []
    watcher.start()
    try:
        run_local(jobs, outcomes.append, workers=workers)
    finally:
        watcher.done.set()
        watcher.join()
    summaries = {r.run_id: json.loads((results / "runs" / r.run_id / "summary.json").read_text()) for r in runs}
    return runs, outcomes, summaries, watcher


@pytest.mark.gpu
def test_a_grid_with_four_workers_on_one_gpu_trains_every_run_once_on_the_gpu(tmp_path):
    runs, outcomes, summaries, watcher = _grid("cuda", tmp_path, workers=4, seeds=2, epochs=5)
    assert sorted(o["run_id"] for o in outcomes) == sorted(r.run_id for r in runs)   # each reported once
    assert all(s["status"] == "completed" and s["attempt"] == 1 for s in summaries.values())
    assert all(s["device"].startswith("cuda") for s in summaries.values())
    assert len(watcher.pids) == 4 and os.getpid() not in watcher.pids   # four workers trained them


@pytest.mark.slow
@pytest.mark.parametrize("device", DEVICES)
def test_a_worker_killed_mid_run_is_retried(device, tmp_path):
    runs, outcomes, summaries, watcher = _grid(device, tmp_path, workers=2, seeds=1, epochs=10, kill=True)
    assert watcher.killed is not None, "no worker was caught mid-run"
    assert sorted(o["run_id"] for o in outcomes) == sorted(r.run_id for r in runs)
    killed = summaries[watcher.killed]
    assert killed["status"] == "completed" and killed["attempt"] == 2   # its failed attempt, then the retry
    assert all(s["status"] == "completed" and s["device"].startswith(device) for s in summaries.values())
    assert not list(tmp_path.glob("runs/*/.lock"))


# --- benchmarks/gpu_check.sh: what can be checked without a GPU (nothing that fakes its numbers) ---
def _script(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})


def test_gpu_check_stops_at_once_with_a_clear_message_without_cuda():
    # An empty CUDA_VISIBLE_DEVICES hides any GPU, so this holds on a GPU machine too.
    out = _script("bash", "benchmarks/gpu_check.sh", CUDA_VISIBLE_DEVICES="")
    assert out.returncode == 2 and "needs a CUDA GPU" in out.stderr and "--plan" in out.stderr
    assert not out.stdout   # nothing ran: no test, no measurement


def test_gpu_check_plans_its_runs_without_a_gpu():
    out = _script(sys.executable, "benchmarks/gpu_check.py", "--plan", CUDA_VISIBLE_DEVICES="")
    assert out.returncode == 0, out.stderr
    packing = len(plan([STUDIES.get("activations")], {}, seeds=2))
    assert "pytest -m gpu" in out.stdout and "resnet cifar10 (synthetic) batch 256" in out.stdout
    assert "mlp fashion_mnist batch 128" in out.stdout
    assert f"{packing} runs of the activations study with 1, 2, 4, 8 workers" in out.stdout
