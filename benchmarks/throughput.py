"""Training throughput of the suite against a minimal hand-written PyTorch loop.

Both train the same network (same init), on the same preprocessed tensors, with the same batch size,
optimizer, learning-rate schedule and thread count, in one process; the two are interleaved so that machine noise hits both
alike.  The suite's number includes everything `trainer.fit` does (hooks, schedule, metrics,
divergence checks) except validation, which the hand loop does not do either.

    python benchmarks/throughput.py                 # digits and fashion_mnist, mlp and convnet
    python benchmarks/throughput.py --repeats 5 --datasets fashion_mnist
    python benchmarks/throughput.py --stochastic-depth   # ResNet epoch time with and without it

Target: suite >= 0.9x the hand-written loop on Fashion-MNIST.  Stochastic depth (Huang et al.: a dropped
branch is not computed) should save about the fraction of branch work it drops; per-sample mode saves nothing.
"""
from __future__ import annotations

import argparse
import tempfile
import time

import lightning as L
import torch
import torch.nn.functional as F

from ablations import resolve
from ablations.runner import make_trainer
from datamodules import ImageDataModule
from lit_modules import ImageClassifier, build_network, build_optimizer, build_schedule

NETWORKS = {  # the default MLP and a small CNN (warmup keeps its first steps from diverging)
    "mlp": {},
    "convnet": {"model.network": "convnet", "model.channels": (16, 32), "schedule.warmup": 0.1},
}
# The presets' epoch counts (ablations/presets.py): a fit's fixed start-up is amortized as in real runs.
EPOCHS = {"digits": 20, "fashion_mnist": 5}


def _synchronize(device: torch.device) -> None:
    """CUDA runs asynchronously: the clock stops when the device has finished, not when it was asked."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def suite(cfg, dm: ImageDataModule) -> float:
    """Seconds for trainer.fit over cfg.trainer.max_epochs epochs, validation off, on the config's
    accelerator (the datamodule's tensors move there with the first fit)."""
    L.seed_everything(cfg.seed, verbose=False)
    module = ImageClassifier(cfg.model, cfg.optim, cfg.schedule, dm.in_shape, dm.num_classes)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(cfg, tmp, limit_val_batches=0)
        start = time.perf_counter()
        trainer.fit(module, datamodule=dm)
        _synchronize(trainer.strategy.root_device)
        elapsed = time.perf_counter() - start
    assert not module.diverged and len(module.history) == cfg.trainer.max_epochs
    return elapsed


def hand_loop(cfg, dm: ImageDataModule, device: str = "cpu") -> float:
    """What one would write by hand: preprocess once, shuffle, set the scheduled lr, step.

    It gathers its batches from the very tensor the suite uses: two 188 MB copies of Fashion-MNIST
    can differ by 20% in gather speed (page and TLB luck), which would swamp what is measured.  (On a
    GPU, once the suite has trained, that tensor already sits on the device and `.to` returns it.)
    """
    device = torch.device(device)
    torch.manual_seed(cfg.seed)
    net = build_network(cfg.model, dm.in_shape, dm.num_classes).to(device)
    opt = build_optimizer(cfg.optim, net)
    schedule = build_schedule(cfg.schedule)
    x, y = dm.ready("train").to(device), dm.y_train.to(device)
    bs, n = cfg.data.batch_size, len(y)
    total, step = cfg.trainer.max_epochs * -(-n // bs), 0
    _synchronize(device)
    start = time.perf_counter()
    for _ in range(cfg.trainer.max_epochs):
        order = torch.randperm(n, device=device)
        for i in range(0, n, bs):
            for group in opt.param_groups:
                group["lr"] = cfg.optim.lr * schedule(step / total)
            idx = order[i:i + bs]
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
    _synchronize(device)
    return time.perf_counter() - start


def compare(cfg, dm: ImageDataModule, repeats: int, device: str = "cpu") -> dict[str, float]:
    """Samples per second of the suite and of the hand loop, best of `repeats` interleaved runs each.
    `device` is the hand loop's; the suite's is cfg.trainer.accelerator (the same one, by the caller)."""
    suite(cfg, dm)              # warm-up: first-call allocations, kernel selection, data on the device
    hand_loop(cfg, dm, device)
    times = {"suite": [], "hand": []}
    for r in range(repeats):
        # Alternate which goes first, so slow drifts of the machine favour neither.
        for name in (("suite", "hand") if r % 2 == 0 else ("hand", "suite")):
            times[name].append(suite(cfg, dm) if name == "suite" else hand_loop(cfg, dm, device))
    samples = cfg.trainer.max_epochs * len(dm.y_train)
    # Noise on a shared machine only ever adds time, so the best of N is the estimate (as timeit
    # does); medians here swing by 20% between otherwise identical runs.
    return {k: samples / min(v) for k, v in times.items()}


# A 9-block ResNet: with p_L = 0.5 the branches survive 72% of the time on average (1 - 0.5 * 10/18).
SD_NETWORK = {"model.network": "resnet", "model.channels": (16, 32, 64), "model.blocks_per_stage": 3,
              "model.norm": "batch", "data.train_size": 2000, "trainer.max_epochs": 1}
SD_MODES = {"none": {}, "per_batch": {"model.stochastic_depth": 0.5},
            "per_sample": {"model.stochastic_depth": 0.5, "model.stochastic_depth_mode": "per_sample"}}


def stochastic_depth_times(dataset: str, repeats: int) -> None:
    """Seconds per training epoch of the same ResNet without and with stochastic depth (each mode),
    interleaved; best of `repeats`."""
    times: dict[str, list[float]] = {mode: [] for mode in SD_MODES}
    dm = None
    for r in range(repeats):
        for mode in (list(SD_MODES) if r % 2 == 0 else list(SD_MODES)[::-1]):
            cfg = resolve({"data.name": dataset, "trainer.accelerator": "cpu", **SD_NETWORK, **SD_MODES[mode]})
            if dm is None:
                dm = ImageDataModule(cfg.data, seed=cfg.seed)
                dm.prepare_data()
                dm.setup("fit")
            times[mode].append(suite(cfg, dm) / cfg.trainer.max_epochs)
    base = min(times["none"])
    print(f"{dataset}: resnet {SD_NETWORK['model.channels']} x {SD_NETWORK['model.blocks_per_stage']} blocks, "
          f"{len(dm.y_train)} images, p_L = 0.5; best of {repeats} interleaved")
    print(f"{'stochastic depth':<18}{'s / epoch':>10}{'vs none':>9}")
    for mode, ts in times.items():
        print(f"{mode:<18}{min(ts):>10.2f}{min(ts) / base:>8.2f}x", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(EPOCHS))
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch threads for both loops (a grid worker here gets cores / workers)")
    parser.add_argument("--stochastic-depth", action="store_true",
                        help="instead: epoch time of a ResNet without and with stochastic depth (Fashion-MNIST)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.stochastic_depth:
        dataset = "fashion_mnist" if args.datasets == list(EPOCHS) else args.datasets[0]
        stochastic_depth_times(dataset, args.repeats)
        return

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, best of {args.repeats} interleaved runs")
    print(f"{'dataset':<14}{'network':<9}{'epochs':>6}{'suite samples/s':>17}{'hand samples/s':>16}{'ratio':>7}")
    for dataset in args.datasets:
        for network in args.networks:
            cfg = resolve({"data.name": dataset, "trainer.max_epochs": EPOCHS.get(dataset, 1),
                           "trainer.accelerator": "cpu", **NETWORKS[network]})
            dm = ImageDataModule(cfg.data, seed=cfg.seed)
            dm.prepare_data()
            dm.setup("fit")
            rate = compare(cfg, dm, args.repeats)
            ratio = rate["suite"] / rate["hand"]
            print(f"{dataset:<14}{network:<9}{cfg.trainer.max_epochs:>6}{rate['suite']:>17,.0f}"
                  f"{rate['hand']:>16,.0f}{ratio:>6.2f}x", flush=True)


if __name__ == "__main__":
    main()
