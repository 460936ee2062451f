"""How long does rebuilding the report take for 1,000 stored runs of 50 epochs each?  Target: <= 10 s.

    python benchmarks/report_speed.py                  # synthetic results in a temp dir, then time the build
    python benchmarks/report_speed.py --profile 25     # also print the 25 costliest functions (cProfile)
    python benchmarks/report_speed.py --keep DIR       # write the synthetic results to DIR and keep them
    python benchmarks/report_speed.py --compare integ  # also time the code of a git ref, build for build
    python benchmarks/report_speed.py --keep /tmp/digits   # a real grid's results (one summary rewritten)

The results are synthetic but shaped like the suite's: study manifests, and per run config.json,
summary.json and metrics.csv (train/val loss and accuracy, lr, time_s per epoch) written the way the
runner writes them, and what a digits fit run stores besides: diagnostics.csv (grad norm, update and
step ratios per linear layer, activation mean/std/dead fraction per hidden layer, every 25 steps),
activations.json (60-bin histograms per hidden layer at the first and last step) and predictions.npz
(float16 val/test softmax and labels, 144 and 359 examples); 11 studies in all three expansion modes
(one axis at a time, grids, a random search with one seed), a few diverged and failed runs.  Only the
rebuild is timed, not the generation.

Two builds are timed: from nothing (every figure drawn) and again after one study's runs changed (the
figure cache redraws that study only, reports/cache.py).
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

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
STEPS_PER_EPOCH, DIAGNOSTICS_EVERY, BINS = 11, 25, 60   # as digits runs: 1,437 training images / batch 128
VAL, TEST, CLASSES = 144, 359, 10


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
    depth = int(_config(seed, labels)["model"]["depth"])
    _diagnostics(run_dir, depth, epochs, rng)
    if status == "completed":
        _predictions(run_dir, rows[-1]["val/acc"], rng)
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
    summary.update({"clean_train_acc": last["train/acc"], "expected_initial_loss": math.log(CLASSES),
                    "initial_loss_suspect": False, "initial_act_std": 0.8 + rng.gauss(0, 0.05),
                    "final_dead_frac": abs(rng.gauss(0.02, 0.01)), "final_update_ratio": abs(rng.gauss(3e-3, 1e-3)),
                    "advice": "healthy: keep the settings"})
    if status == "completed":
        summary["predictions"] = "predictions.npz"
    if status != "completed":
        summary.update({k: None for k in ("best_val_acc", "final_val_acc", "test_acc", "test_loss", "train_acc",
                                          "train_loss", "val_loss")})
    if status == "failed":
        summary.update(error="RuntimeError: synthetic", traceback="Traceback ...")
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))


def _diagnostics(run_dir: Path, depth: int, epochs: int, rng: random.Random) -> None:
    """diagnostics.csv and activations.json as lit_modules/diagnostics.py writes them for an MLP."""
    linear = [(f"body.{3 * i + 1}", i + 1) for i in range(depth)] + [("head", depth + 1)]
    hidden = [(f"body.{3 * i + 3}", i + 1) for i in range(depth)]
    last = epochs * STEPS_PER_EPOCH
    steps = sorted(set(range(0, last + 1, DIAGNOSTICS_EVERY)) | {last})
    with open(run_dir / "diagnostics.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["step", "epoch", "layer", "depth", "metric", "value"])
        for step in steps:
            epoch = step / STEPS_PER_EPOCH
            for metric, scale in (("grad_norm", 0.5), ("update_ratio", 3e-3), ("step_ratio", 3e-3)):
                out.writerows([step, epoch, layer, d, metric, abs(rng.gauss(scale, scale / 3))] for layer, d in linear)
            for metric, mean in (("act_mean", 0.6), ("act_std", 0.9), ("dead_frac", 0.02)):
                out.writerows([step, epoch, layer, d, metric, abs(rng.gauss(mean, 0.05))] for layer, d in hidden)
    snapshots = []
    for step in (0, last):
        layers = []
        for layer, d in hidden:
            top = 2 + rng.random()
            edges = [top * k / BINS for k in range(BINS + 1)]
            counts = [int(5000 * math.exp(-3 * k / BINS)) for k in range(BINS)]
            layers.append({"layer": layer, "depth": d, "edges": edges, "counts": counts})
        snapshots.append({"step": step, "epoch": step / STEPS_PER_EPOCH, "layers": layers})
    (run_dir / "activations.json").write_text(json.dumps({"activation": "relu", "snapshots": snapshots}))


def _predictions(run_dir: Path, accuracy: float, rng: random.Random) -> None:
    """predictions.npz: float16 softmax over val and test, right with probability `accuracy`."""
    gen = np.random.default_rng(rng.getrandbits(32))
    arrays = {}
    for split, n in (("val", VAL), ("test", TEST)):
        labels = np.random.default_rng(n).integers(0, CLASSES, n)   # every run sees the same split
        guess = np.where(gen.random(n) < accuracy, labels, gen.integers(0, CLASSES, n))
        logits = gen.normal(0, 1, (n, CLASSES))
        logits[np.arange(n), guess] += 4
        probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        arrays.update({f"{split}_probs": probs.astype(np.float16), f"{split}_labels": labels})
    np.savez_compressed(run_dir / "predictions.npz", **arrays)


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


# Each build runs in its own process with its code on the path (this tree, or another git ref unpacked),
# so two versions are timed on the same results under the same load; the import is not timed.
TIMER = """
import json, resource, sys, time
def cpu():
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
from reports.build import build
workers = int(sys.argv[3]) or None
start, cpu_start = time.perf_counter(), cpu()
if sys.argv[4]:
    import cProfile, pstats
    profiler = cProfile.Profile()
    profiler.runcall(build, sys.argv[1], sys.argv[2], workers=workers)
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(int(sys.argv[4]))
else:
    build(sys.argv[1], sys.argv[2], workers=workers)
print(json.dumps({"wall": time.perf_counter() - start, "cpu": cpu() - cpu_start}))
"""
ROOT = Path(__file__).resolve().parents[1]


def time_build(code: Path, results: Path, out: Path, workers: int | None, profile: int = 0) -> dict:
    """Wall and CPU seconds (all processes) of one build by the code at `code`, and the figures it drew."""
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    env = {**os.environ, "PYTHONPATH": str(code), "WANDB_MODE": "disabled", "WANDB_SILENT": "true"}
    done = subprocess.run([sys.executable, "-c", TIMER, str(results), str(out), str(workers or 0),
                           str(profile or "")], cwd=code, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"build by {code} failed:\n{done.stderr[-3000:]}")
    if profile:
        print(done.stderr)
    timing = json.loads(done.stdout.strip().splitlines()[-1])
    drawn = [p for p in out.glob("*.png") if before.get(p.name) != p.stat().st_mtime_ns]
    return {**timing, "drawn": len(drawn), "figures": len(list(out.glob("*.png")))}


def change_one_study(results: Path) -> str:
    """Rewrite the summary of one run that belongs to exactly one study (a retrained run, as the cache
    sees it: new numbers, new file); returns the study's name."""
    manifests = [json.loads(p.read_text()) for p in sorted((results / "studies").glob("*.json"))]
    owners: dict[str, set] = {}
    for m in manifests:
        for member in m["runs"]:
            owners.setdefault(member["run_id"], set()).add(m["name"])
    for m in reversed(manifests):
        for member in m["runs"]:
            path = results / "runs" / member["run_id"] / "summary.json"
            if owners[member["run_id"]] == {m["name"]} and path.exists():
                summary = json.loads(path.read_text())
                summary["wall_time_s"] = (summary.get("wall_time_s") or 0) + 0.001
                path.write_text(json.dumps(summary, indent=2))
                return m["name"]
    raise SystemExit("no run belongs to exactly one study")


def unpack(ref: str, into: Path) -> Path:
    """The tree of git `ref` of this checkout, unpacked (to time the code before a change)."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", type=int, default=0, metavar="N", help="print the N costliest functions "
                   "of this tree's first build")
    p.add_argument("--keep", type=Path, help="write the results here and keep them (an existing results "
                   "folder, a real grid's, is used as it is; one of its run summaries is rewritten)")
    p.add_argument("--workers", type=int, help="processes drawing figures (default: one per core)")
    p.add_argument("--compare", metavar="REF", help="also time the code of this git ref, build for build")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        results = args.keep or Path(tmp) / "results"
        synthetic = not (results / "studies").exists()
        if synthetic:
            n = generate(results)
        else:
            n = sum(len(json.loads(p.read_text())["runs"]) for p in (results / "studies").glob("*.json"))
        codes = {"this tree": ROOT}
        if args.compare:
            codes[args.compare] = unpack(args.compare, Path(tmp) / "ref")
        timings = []
        for step in ("from nothing", "one study changed"):
            if step != "from nothing":
                study = change_one_study(results)
                step = f"{study} changed"
            for i, (name, code) in enumerate(codes.items()):   # same results, one version after the other
                out = Path(tmp) / f"report-{i}"   # each version's own folder: its figure cache lives there
                t = time_build(code, results, out, args.workers, args.profile if not timings else 0)
                timings.append((name, step, t))
    print(f"report over {n} {'synthetic' if synthetic else 'stored'} runs; target "
          f"{TARGET_S:.0f} s from nothing (wall time, this machine; CPU time is all processes together)")
    print(f"  {'code':<12} {'build':<28} {'wall s':>7} {'CPU s':>7} {'figures drawn':>14}")
    for name, step, t in timings:
        print(f"  {name:<12} {step:<28} {t['wall']:>7.2f} {t['cpu']:>7.1f} {t['drawn']:>7} of {t['figures']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
