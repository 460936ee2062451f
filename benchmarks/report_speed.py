"""How long does rebuilding the report take for 1,000 stored runs of 50 epochs each?  Target: <= 10 s.

    python benchmarks/report_speed.py                  # synthetic results in a temp dir, then time the build
    python benchmarks/report_speed.py --profile 25     # also print the 25 costliest functions (cProfile)
    python benchmarks/report_speed.py --keep DIR       # write the synthetic results to DIR and keep them

The results are synthetic but shaped like the suite's: study manifests, and per run config.json,
summary.json and metrics.csv (train/val loss and accuracy, lr, time_s per epoch) written the way the
runner writes them; 11 studies in all three expansion modes (one axis at a time, grids, a random
search with one seed), a few diverged and failed runs.  Only the rebuild is timed, not the generation.
"""
from __future__ import annotations

import argparse
import cProfile
import csv
import itertools
import json
import math
import pstats
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_S = 10.0
EPOCHS = 50
VERSIONS = {"python": "3.11.7", "torch": "2.5.1", "torchvision": "0.20.1", "lightning": "2.4.0"}
# (name, mode, axes as {axis key: labels}, seeds); 270 variants x 3 seeds + 190 samples x 1 seed = 1,000 runs
STUDIES = [
    ("optimizers", "one_at_a_time", {"optim.name": ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam",
                                                    "adamw", "lbfgs"]}, 3),
    ("activations", "one_at_a_time", {"model.activation": ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu",
                                                           "gelu", "silu", "mish", "softplus"]}, 3),
    ("initializers", "one_at_a_time", {"model.init": ["small", "large", "xavier_uniform", "xavier_normal",
                                                      "kaiming_uniform", "kaiming_normal", "orthogonal", "lecun",
                                                      "zeros"]}, 3),
    ("regularization", "one_at_a_time", {"model.dropout": [0.1, 0.2, 0.3, 0.5, 0.7],
                                         "optim.weight_decay": [1e-5, 1e-4, 1e-3, 1e-2, 3e-2, 0.1]}, 3),
    ("augmentations", "one_at_a_time", {"data.augment": ["flip", "crop", "jitter", "cutout", "mixup", "cutmix",
                                                         "randaugment"]}, 3),
    ("batchnorm_lr", "grid", {"model.norm": ["none", "batch", "layer"], "optim.lr": [0.003, 0.01, 0.02, 0.05, 0.1,
                                                                                     0.2, 0.4, 0.8]}, 3),
    ("init_activation", "grid", {"model.init": ["small", "xavier", "kaiming", "orthogonal", "lecun", "large"],
                                 "model.activation": ["sigmoid", "tanh", "relu", "elu", "gelu", "silu"]}, 3),
    ("width_depth", "grid", {"model.width": [16, 32, 64, 128, 256, 512], "model.depth": [1, 2, 3, 4, 5, 6, 8, 10]},
     3),
    ("dropout_wd", "grid", {"model.dropout": [0.0, 0.1, 0.2, 0.3, 0.5, 0.7],
                            "optim.weight_decay": [0, 1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2]}, 3),
    ("lr_batch", "grid", {"optim.lr": [0.003, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8],
                          "data.batch_size": [16, 32, 64, 128, 256, 512, 1024, 2048]}, 3),
    ("lr_wd_search", "random", {"optim.lr": (1e-3, 1.0), "optim.weight_decay": (1e-6, 1e-2)}, 1),
]
SAMPLES = 190


def _variants(mode: str, axes: dict, rng: random.Random) -> list[tuple[str, dict]]:
    short = {a: a.rsplit(".", 1)[-1] for a in axes}
    if mode == "one_at_a_time":
        return [("baseline", {})] + [(f"{short[a]}={v}", {a: str(v)}) for a, vs in axes.items() for v in vs]
    if mode == "grid":
        return [(",".join(f"{short[a]}={v}" for a, v in zip(axes, combo)), {a: str(v) for a, v in zip(axes, combo)})
                for combo in itertools.product(*axes.values())]
    out = []
    for _ in range(SAMPLES):
        labels = {a: f"{math.exp(rng.uniform(math.log(lo), math.log(hi))):.3g}" for a, (lo, hi) in axes.items()}
        out.append((",".join(f"{short[a]}={v}" for a, v in labels.items()), labels))
    return out


def _config(seed: int, labels: dict) -> dict:
    cfg = {"data": {"name": "digits", "data_dir": None, "download": True, "batch_size": 128, "eval_batch_size": 1024,
                    "val_fraction": 0.1, "train_size": None, "split_seed": 0, "preprocess": "standardize",
                    "augment": "none"},
           "model": {"network": "mlp", "depth": 2, "width": 128, "channels": [32, 64], "blocks_per_stage": 1,
                     "activation": "relu", "init": "kaiming_normal", "norm": "none", "norm_position": "before",
                     "dropout": 0.0, "head_init_scale": 0.1},
           "optim": {"name": "momentum", "lr": 0.05, "weight_decay": 5e-4, "momentum": 0.9},
           "schedule": {"name": "constant", "warmup": 0.0, "final": None, "milestones": [0.5, 0.75], "gamma": 0.1},
           "trainer": {"max_epochs": EPOCHS, "accelerator": "auto", "devices": 1, "precision": "32-true",
                       "early_stop_factor": 0.0, "progress_bar": False},
           "seed": seed}
    for key, label in labels.items():
        section, name = key.split(".")
        cfg[section][name] = label
    return cfg


def _run(run_dir: Path, run_id: str, seed: int, labels: dict, rng: random.Random, skill: float, speed: float) -> None:
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(_config(seed, labels), indent=2))
    fate = rng.random()
    status = "diverged" if fate < 0.02 else "failed" if fate < 0.025 else "completed"
    epochs = EPOCHS if status == "completed" else rng.randint(1, 5)
    rows, clock, init = [], 0.0, 2.30 + rng.gauss(0, 0.01)
    for e in range(1, epochs + 1):
        progress = 1 - math.exp(-speed * e)
        val_acc = min(1.0, 0.1 + (skill - 0.1) * progress + rng.gauss(0, 0.005))
        train_acc = min(1.0, val_acc + 0.03 * progress + abs(rng.gauss(0, 0.003)))
        val_loss = max(0.01, init * (1 - progress) + 0.08 + rng.gauss(0, 0.01))
        train_loss = max(0.001, val_loss * (1 - 0.5 * progress))
        clock += 0.05 + abs(rng.gauss(0, 0.005))
        rows.append({"epoch": e, "train/loss": train_loss, "train/acc": train_acc, "val/loss": val_loss,
                     "val/acc": val_acc, "lr": 0.05, "time_s": clock})
    if status == "diverged":
        rows[-1]["train/loss"] = float("nan")
    with open(run_dir / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    last = rows[-1]
    summary = {"run_id": run_id, "status": status, "seed": seed, "epochs": epochs, "initial_loss": init,
               "best_val_acc": max(r["val/acc"] for r in rows), "final_val_acc": last["val/acc"],
               "test_acc": last["val/acc"] + rng.gauss(0, 0.005), "test_loss": last["val/loss"] * 1.05,
               "train_acc": last["train/acc"], "train_loss": last["train/loss"], "val_loss": last["val/loss"],
               "wall_time_s": clock + 0.4, "versions": VERSIONS, "device": "cpu (2 threads) x1"}
    if status != "completed":
        summary.update({k: None for k in ("best_val_acc", "final_val_acc", "test_acc", "test_loss", "train_acc",
                                          "train_loss", "val_loss")})
    if status == "failed":
        summary.update(error="RuntimeError: synthetic", traceback="Traceback ...")
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))


def generate(results: Path, seed: int = 0) -> int:
    """Write the synthetic results folder; returns the number of runs."""
    rng = random.Random(seed)
    (results / "studies").mkdir(parents=True, exist_ok=True)
    n = 0
    for name, mode, axes, seeds in STUDIES:
        members = []
        for variant, labels in _variants(mode, axes, rng):
            skill, speed = rng.uniform(0.85, 0.99), rng.uniform(0.05, 0.6)
            for s in range(seeds):
                run_id = f"{rng.getrandbits(48):012x}"
                _run(results / "runs" / run_id, run_id, s, labels, rng, skill, speed)
                members.append({"variant": variant, "seed": s, "axes": labels, "run_id": run_id})
                n += 1
        verdict = None
        if mode == "one_at_a_time":
            verdict = {"rule": "better", "variant": members[-1]["variant"], "than": ["baseline"],
                       "metric": "final_val_acc", "higher_is_better": True}
        manifest = {"name": name, "question": f"Synthetic study {name}?", "claim": f"{name} matters.",
                    "mode": mode, "axes": list(axes), "runs": members, "verdict": verdict}
        (results / "studies" / f"{name}.json").write_text(json.dumps(manifest, indent=2))
    return n


def _cpu() -> float:
    """User + system seconds of this process and its finished children (the figure workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", type=int, default=0, metavar="N", help="print the N costliest functions")
    p.add_argument("--keep", type=Path, help="write the results here and keep them")
    p.add_argument("--workers", type=int, help="processes drawing figures (default: one per core)")
    args = p.parse_args(argv)
    from reports.build import build   # imported before timing: the import is paid once per process

    with tempfile.TemporaryDirectory() as tmp:
        results = args.keep or Path(tmp) / "results"
        if not (results / "studies").exists():
            n = generate(results)
        else:
            n = sum(len(json.loads(p.read_text())["runs"]) for p in (results / "studies").glob("*.json"))
        profiler = cProfile.Profile() if args.profile else None
        start, cpu_start = time.perf_counter(), _cpu()
        if profiler:
            profiler.enable()
        out = build(results, Path(tmp) / "report", workers=args.workers)
        if profiler:
            profiler.disable()
        elapsed, cpu = time.perf_counter() - start, _cpu() - cpu_start
        figures = len(list(out.glob("*.png")))
    print(f"report over {n} runs x {EPOCHS} epochs ({len(STUDIES)} studies, {figures} figures): {elapsed:.2f} s "
          f"= {elapsed / TARGET_S:.2f}x the {TARGET_S:.0f} s target; CPU time {cpu:.1f} s in all processes "
          f"(on an otherwise idle machine the wall time is about CPU time / cores used)")
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
