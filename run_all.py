"""Run every study of the suite (or some), then build the reports.

    python run_all.py                                   # every study on digits, 3 seeds
    python run_all.py --study activations --workers 2   # one study, two worker processes
    python run_all.py --dry-run                         # what would run, and what is done already
    python run_all.py --rerun-stale                     # also retrain results of another code version
    python run_all.py --list --json                     # studies and every registry's options
"""
from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ablations import ledger
from ablations.code_version import code_version
from ablations.__main__ import parse_sets
from ablations.executors import EXECUTORS, Job, default_workers
from ablations.grid import plan, write_manifests
from ablations.presets import PRESETS
from ablations.stages import next_stages
from ablations.studies import STUDIES
from ablations.study import EXPANSIONS
from ablations.tracking import MODES, Tracking
from ablations.transfer import SOURCES
from datamodules import AUGMENTATIONS, DATASETS, MIXES, PREPROCESSORS, load_dataset
from lit_modules import (ACTIVATIONS, INITIALIZERS, NETWORKS, NORMS, OPTIMIZERS, SCHEDULES, ConfigError)
from lit_modules import POOLS, TRANSFER_MODES
from reports import runs_table, study_summary
from reports.stats import ALPHA
from reports.verdicts import undecided_variants
from reports.build import build
from reports.overview import terminal
from reports.wandb_report import PublishError

REGISTRIES = {"datasets": DATASETS, "preprocessing": PREPROCESSORS, "augmentations": AUGMENTATIONS,
              "networks": NETWORKS, "activations": ACTIVATIONS, "initializers": INITIALIZERS, "norms": NORMS,
              "optimizers": OPTIMIZERS, "schedules": SCHEDULES, "expansion modes": EXPANSIONS,
              "executors": EXECUTORS, "wandb modes": MODES, "presets": PRESETS}
REGISTRIES.update({"transfer modes": TRANSFER_MODES, "transfer sources": SOURCES, "pools": POOLS, "mixes": MIXES})


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--study", action="append", default=[], help="a study to run (repeatable; default: all)")
    p.add_argument("--preset", default="digits", help=f"study sizes for a dataset: {', '.join(PRESETS.names())}")
    p.add_argument("--dataset", help="dataset for every run, over the preset's (default: the preset's)")
    p.add_argument("--seeds", type=int, help="seeds per variant (default: the preset's, else each study's own)")
    p.add_argument("--until-decided", action=argparse.BooleanOptionalAction, default=None,
                   help="add seeds in rounds to the variants of undecided comparisons, up to --max-seeds "
                        "(default: on for the digits preset unless --seeds is given)")
    p.add_argument("--max-seeds", type=int, default=10, help="seeds per variant at most, with --until-decided")
    p.add_argument("--epochs", type=int, help="epochs for every run")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="config override applied to every run (repeatable)")
    p.add_argument("--workers", type=int, default=default_workers(),
                   help="parallel worker processes (default: one per GPU, else one per core, up to 8)")
    p.add_argument("--devices", type=int, help="devices per run: > 1 trains each run with DDP")
    p.add_argument("--executor", default="local", help=f"one of: {', '.join(EXECUTORS.names())}")
    p.add_argument("--address", help="Ray cluster address (--executor ray)")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--max-attempts", type=int, default=2, help="tries per run before it counts as failed")
    p.add_argument("--wandb-mode", default="auto", help="auto (online with credentials, else offline), "
                                                          "online, offline or disabled")
    p.add_argument("--wandb-project", default="cs231n-ablations")
    p.add_argument("--dry-run", action="store_true", help="print the runs and their status; train nothing")
    p.add_argument("--rerun-stale", action="store_true",
                   help="also retrain finished results whose summary's code_version is not the current one")
    p.add_argument("--report-only", action="store_true", help="rebuild the reports from stored results")
    p.add_argument("--publish", action="store_true", help="also save the W&B report to W&B (needs credentials)")
    p.add_argument("--list", action="store_true", help="list studies and every registry's options")
    p.add_argument("--json", action="store_true", help="with --list: machine-readable output")
    return p.parse_args(argv)


def listing() -> dict[str, Any]:
    studies = {name: {"claim": s.claim, "mode": s.mode, "axes": list(s.axes), "trials": len(s.trials()),
                      "staged": s.then is not None}
               for name, s in ((n, STUDIES.get(n)) for n in STUDIES.names())}
    return {"studies": studies, **{k: r.names() for k, r in REGISTRIES.items()}}


def print_listing(as_json: bool) -> None:
    info = listing()
    if as_json:
        print(json.dumps(info, indent=2))
        return
    print("studies:")
    for name, s in info.pop("studies").items():
        print(f"  {name:<16} {s['mode']:<14} {s['trials']:>3} trials  {s['claim']}")
    for kind, names in info.items():
        print(f"{kind}: {', '.join(names)}")


def report(results_dir: Path, publish: bool = False, project: str = "cs231n-ablations") -> None:
    """Print the per-study table and write the report folder (CSV tables, figures, index)."""
    runs = runs_table(results_dir)
    if runs.empty:
        print(f"no runs in {results_dir}")
        return
    with __import__("pandas").option_context("display.width", 140, "display.max_rows", 500):
        print(study_summary(runs).round(4).to_string(index=False))
    out = build(results_dir, publish=publish, wandb_project=project)
    stored = json.loads((out / "verdicts.json").read_text())
    print(terminal(stored["studies"]))
    print(f"report: {out / 'index.html'}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        print_listing(args.json)
        return 0
    results = Path(args.results_dir)
    if args.report_only:
        try:
            report(results, args.publish, args.wandb_project)
        except PublishError as e:
            print(f"error: W&B report not published: {e}", file=sys.stderr)
            return 2
        return 0
    try:
        studies = [STUDIES.get(name) for name in (args.study or STUDIES.names())]
        EXECUTORS.check(args.executor)
        # One fallback file per grid: the first run that cannot reach W&B switches the rest to offline.
        tracking = Tracking(mode=args.wandb_mode, project=args.wandb_project,
                            fallback_file=str(results / "wandb" / f".offline-{uuid.uuid4().hex[:12]}"))
        overrides: dict[str, Any] = parse_sets(args.sets)
        if args.dataset:
            overrides["data.name"] = args.dataset
        if args.epochs is not None:
            overrides["trainer.max_epochs"] = args.epochs
        if args.devices is not None:
            overrides["trainer.devices"] = args.devices
        preset = PRESETS.get(args.preset)
        runs = plan(studies, overrides, args.seeds, preset)   # the whole grid validates before anything trains
        for data in {r.cfg.data.name: r.cfg.data for r in runs}.values():
            load_dataset(data.name, data.data_dir, data.download)   # missing data fails now, too
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    counts = {"failed": 0, "diverged": 0}
    seeds = args.seeds if args.seeds is not None else preset.seeds
    until = args.until_decided if args.until_decided is not None else preset.until_decided and args.seeds is None
    design = {"alpha": ALPHA, "looks": looks(seeds, args.max_seeds) if until and seeds else ([seeds] if seeds else [])}
    stages: list = studies
    every_stage: list = []
    while stages:   # stage 1 of every study, then the stages derived from their finished runs
        write_manifests(stages, runs, results, design)
        code = run_stage(runs, args, results, tracking, counts)
        if code is not None:
            return code
        every_stage += stages
        try:
            stages, waiting = next_stages(stages, runs, results)
            runs = plan(stages, overrides, args.seeds, preset) if stages else []   # each stage validates first
        except ConfigError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        for note in waiting:
            print(note, file=sys.stderr)
    if until and not args.dry_run:
        code = add_seeds_until_decided(every_stage, design, args, results, tracking, counts, overrides, preset)
        if code is not None:
            return code
    if args.dry_run:
        return 0
    try:
        report(results, args.publish, args.wandb_project)
    except PublishError as e:
        print(f"error: W&B report not published: {e}", file=sys.stderr)
        return 2
    return 1 if counts["failed"] else 0


def run_stage(runs: list, args: argparse.Namespace, results: Path, tracking: Tracking,
              counts: dict[str, int]) -> int | None:
    """Train the runs of one stage that the ledger does not have yet (with --dry-run: list them).
    Returns an exit code when the command must stop, else None."""
    version = code_version()
    states = {r.run_id: ledger.state(results, r.run_id, args.max_attempts, version) for r in runs}
    counts["failed"] += sum(s == "failed" for s in states.values())
    if args.dry_run:
        for r in runs:
            print(f"{states[r.run_id]:<8} {r.run_id}  {r.group}/{r.name} seed={r.cfg.seed}")
        print(f"{len(runs)} runs: " + ", ".join(f"{sum(s == k for s in states.values())} {k}"
                                                 for k in ("done", "stale", "pending", "retry", "failed")))
        return None

    train = ("pending", "retry", "stale") if args.rerun_stale else ("pending", "retry")
    todo = [r for r in runs if states[r.run_id] in train]
    jobs = [Job(r.run_id, r.cfg, r.group, r.name, tuple(r.tags), str(results), tracking, args.max_attempts,
                r.studies, version if args.rerun_stale else None) for r in todo]
    bar = tqdm(total=len(runs), initial=len(runs) - len(todo), unit="run", desc="grid", dynamic_ncols=True)

    def on_result(summary: dict[str, Any]) -> None:
        status = summary.get("status")
        counts["failed"] += status not in ledger.DONE
        counts["diverged"] += status == "diverged"
        if status not in ledger.DONE:
            bar.write(f"run {summary.get('run_id')} {status}: {summary.get('error', '')}")
        bar.set_postfix(failed=counts["failed"], diverged=counts["diverged"])
        bar.update()

    try:
        EXECUTORS.get(args.executor)(jobs, on_result, workers=args.workers, address=args.address)
    except ConfigError as e:  # e.g. --executor ray without ray installed: nothing has trained
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        bar.close()
    return None

def looks(first: int, last: int) -> list[int]:
    """The planned seed counts at which --until-decided evaluates: the first, the midpoint and the last.
    Alpha is split evenly over them (reports.verdicts.design_alpha), so the repeated looks keep the
    family's error rate at alpha whatever the rounds find."""
    return sorted({first, (first + last + 1) // 2, last}) if last > first else [first]


def add_seeds_until_decided(stages: list, design: dict[str, Any], args: argparse.Namespace, results: Path,
                            tracking: Tracking, counts: dict[str, int], overrides: dict[str, Any],
                            preset: Any) -> int | None:
    """Rounds of more seeds for the variants of undecided comparisons only, look by look; the verdicts
    are evaluated from the results folder each time, so a re-run repeats the same rounds and retrains
    nothing it has."""
    more: dict[str, dict[str, int]] = {}
    for n in design["looks"][1:]:
        table = runs_table(results)
        grow = {}
        for study in (s for s in stages if s.verdict is not None):
            members = table[table.study == study.name] if "study" in table else table
            variants = undecided_variants(study.verdict.to_dict(), members, results, design)
            if variants:
                grow[study.name] = {v: n for v in variants}
        if not grow:
            return None
        for name, variants in grow.items():
            more.setdefault(name, {}).update(variants)
        print(f"--until-decided: {sum(map(len, grow.values()))} variant(s) of {len(grow)} undecided "
              f"stud{'y' if len(grow) == 1 else 'ies'} get {n} seeds", file=sys.stderr)
        chosen = [s for s in stages if s.name in grow]
        try:
            runs = plan(chosen, overrides, args.seeds, preset, more)
        except ConfigError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        write_manifests(chosen, runs, results, design)
        code = run_stage(runs, args, results, tracking, counts)
        if code is not None:
            return code
    return None


if __name__ == "__main__":
    sys.exit(main())
