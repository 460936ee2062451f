"""Run every study of the suite (or some), then build the reports.

    python run_all.py                                   # every study on digits, 5 seeds (more where undecided)
    python run_all.py --study activations --workers 2   # one study, two worker processes
    python run_all.py --dry-run                         # what would run, and what is done already
    python run_all.py --list --json                     # studies and every registry's options
"""
from __future__ import annotations

import sys
from pathlib import Path


if __name__ == "__main__" and "--report-only" in sys.argv[1:]:
    # A rebuild reads stored results only: answered before the training stack is imported (~6 s)
    from reports.rebuild import report_only_command
    fast = report_only_command(sys.argv[1:])
    if fast is not None:
        sys.exit(fast)

# The training stack, for everything else.
import argparse  # noqa: E402
import os  # noqa: E402
import shlex  # noqa: E402
import uuid  # noqa: E402
from typing import Any  # noqa: E402

from tqdm import tqdm  # noqa: E402

from ablations import ledger  # noqa: E402
from ablations.__main__ import parse_sets  # noqa: E402
from ablations.code_version import code_version  # noqa: E402
from ablations.executors import EXECUTORS, Job, default_workers  # noqa: E402
from ablations.grid import plan, write_manifests  # noqa: E402
from ablations.interrupts import GridSignals  # noqa: E402
from ablations.listing import print_listing  # noqa: E402
from ablations.pool import STOP, RunInterrupted  # noqa: E402
from ablations.preflight import check_runs  # noqa: E402
from ablations.presets import PRESETS  # noqa: E402
from ablations.stages import next_stages  # noqa: E402
from ablations.storage import check_results_dir, disk_full  # noqa: E402
from ablations.studies import STUDIES  # noqa: E402
from ablations.tracking import Tracking  # noqa: E402
from datamodules import load_dataset  # noqa: E402
from lit_modules import ConfigError  # noqa: E402
from reports.rebuild import rebuild, report_only  # noqa: E402
from reports.stats import ALPHA  # noqa: E402
from reports.verdicts import undecided_variants, verdict_table  # noqa: E402
from reports.wandb_report import PublishError  # noqa: E402

def _count(least: int):
    """An argparse type: an integer of at least `least`, else argparse's usage error (exit 2)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
        return value
    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--study", action="append", default=[], help="a study to run (repeatable; default: all)")
    p.add_argument("--preset", default="digits", help=f"study sizes for a dataset: {', '.join(PRESETS.names())}")
    p.add_argument("--dataset", help="dataset for every run, over the preset's (default: the preset's)")
    p.add_argument("--seeds", type=_count(1), help="seeds per variant (default: the preset's, else each study's own)")
    p.add_argument("--until-decided", action=argparse.BooleanOptionalAction, default=None,
                   help="add seeds in rounds to the variants of undecided comparisons, up to --max-seeds "
                        "(default: on for the digits preset unless --seeds is given)")
    p.add_argument("--max-seeds", type=_count(1), default=10, help="seeds per variant at most, with --until-decided")
    p.add_argument("--epochs", type=_count(1), help="epochs for every run")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="config override applied to every run (repeatable)")
    p.add_argument("--workers", type=_count(1), default=default_workers(),
                   help="parallel worker processes (default: one per GPU, else one per core, up to 8)")
    p.add_argument("--devices", type=_count(1), help="devices per run: > 1 trains each run with DDP")
    p.add_argument("--executor", default="local", help=f"one of: {', '.join(EXECUTORS.names())}")
    p.add_argument("--address", help="Ray cluster address (--executor ray)")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--max-attempts", type=_count(1), default=2, help="tries per run before it counts as failed")
    p.add_argument("--wandb-mode", default="auto", help="auto (online with credentials, else offline), "
                                                          "online, offline or disabled")
    p.add_argument("--wandb-project", default="cs231n-ablations")
    p.add_argument("--dry-run", action="store_true", help="print the runs and their status; write nothing")
    p.add_argument("--rerun-stale", action="store_true",
                   help="also retrain finished results whose summary's code_version is not the current one")
    p.add_argument("--report-only", action="store_true", help="rebuild the reports from stored results")
    p.add_argument("--publish", action="store_true", help="also save the W&B report to W&B (needs credentials)")
    p.add_argument("--list", action="store_true", help="list studies and every registry's options")
    p.add_argument("--json", action="store_true", help="with --list: machine-readable output")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        print_listing(STUDIES, args.json)
        return 0
    resume = shlex.join(["python", "run_all.py", *(sys.argv[1:] if argv is None else argv)])
    STOP.clear()   # a fresh grid (tests call main more than once in one process)
    counts = {"finished": 0, "failed": 0, "diverged": 0, "interrupted": 0, "todo": 0, "no_space": ""}
    with GridSignals(resume):
        try:
            return _run(args, Path(args.results_dir), counts, resume)
        except RunInterrupted:
            return _stopped(counts, resume)
        except OSError as e:    # the grid's own files (manifests, report) on a full disk
            if not disk_full(e):
                raise
            counts["no_space"] = f"{type(e).__name__}: {e}"
            return _stopped(counts, resume)


def _stopped(counts: dict[str, Any], resume: str) -> int:
    """One line on why the grid stopped and how to go on; finished results are all on disk."""
    left = counts["todo"] - counts["finished"] - counts["interrupted"]
    done = f"{counts['finished']} run(s) ended, {counts['interrupted']} interrupted, {max(left, 0)} not started"
    if counts["no_space"]:
        print(f"error: the disk is full ({counts['no_space']}); the grid stopped: {done}, every finished "
              f"result kept. Free some space, then resume with: {resume}", file=sys.stderr)
        return 1
    print(f"interrupted: {done}; resume with: {resume}", file=sys.stderr)
    return 130


def _run(args: argparse.Namespace, results: Path, counts: dict[str, Any], resume: str) -> int:
    if args.report_only:
        return report_only(results, args.publish, args.wandb_project)
    try:
        check_results_dir(results, write=not args.dry_run)
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
        _check(runs, args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    seeds = args.seeds if args.seeds is not None else preset.seeds
    until = args.until_decided if args.until_decided is not None else preset.until_decided and args.seeds is None
    design = {"alpha": ALPHA, "looks": looks(seeds, args.max_seeds) if until and seeds else ([seeds] if seeds else [])}
    stages: list = studies
    every_stage: list = []
    while stages:   # stage 1 of every study, then the stages derived from their finished runs
        if not args.dry_run:
            write_manifests(stages, runs, results, design)
        code = run_stage(runs, args, results, tracking, counts)
        if code is not None:
            return code
        if STOP.is_set():
            return _stopped(counts, resume)
        every_stage += stages
        try:
            stages, waiting = next_stages(stages, runs, results)
            runs = plan(stages, overrides, args.seeds, preset) if stages else []   # each stage validates first
            _check(runs, args)
        except ConfigError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        for note in waiting:
            print(note, file=sys.stderr)
    if args.dry_run:
        return 0
    if until:
        code = add_seeds_until_decided(every_stage, design, args, results, tracking, counts, overrides, preset)
        if code is not None:
            return code
        if STOP.is_set():
            return _stopped(counts, resume)
    try:
        rebuild(results, publish=args.publish, wandb_project=args.wandb_project)
    except PublishError as e:
        print(f"error: W&B report not published: {e}", file=sys.stderr)
        return 2
    return 1 if counts["failed"] else 0


def _check(runs: list, args: argparse.Namespace) -> None:
    """What must hold before a stage trains: its data is here, and (on this machine's own workers)
    its device exists and its models fit in memory."""
    for data in {r.cfg.data.name: r.cfg.data for r in runs}.values():
        load_dataset(data.name, data.data_dir, data.download)   # missing data fails now, too
    if args.executor == "local":   # a cluster's workers have their own devices and memory
        check_runs(r.cfg for r in runs)


def run_stage(runs: list, args: argparse.Namespace, results: Path, tracking: Tracking,
              counts: dict[str, Any]) -> int | None:
    """Train the runs of one stage that the ledger does not have yet (with --dry-run: list them).
    A run that a live process elsewhere holds is waited for, not failed.  Returns an exit code when
    the command must stop, else None (check pool.STOP: an interrupt or a full disk)."""
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
    jobs = {r.run_id: Job(r.run_id, r.cfg, r.group, r.name, tuple(r.tags), str(results), tracking,
                          args.max_attempts, r.studies, version if args.rerun_stale else None)
            for r in runs if states[r.run_id] in train}
    counts["todo"] += len(jobs)
    bar = tqdm(total=len(runs), initial=len(runs) - len(jobs), unit="run", desc="grid", dynamic_ncols=True)
    held: list[dict[str, Any]] = []

    def on_result(summary: dict[str, Any]) -> None:
        status = summary.get("status")
        if status == "busy":
            held.append(summary)
            return
        if status == "no_space":
            counts["no_space"] = counts["no_space"] or summary.get("error", "no space left on device")
            STOP.set()
            return
        if status == ledger.INTERRUPTED:
            counts["interrupted"] += 1
            return
        counts["finished"] += 1
        counts["failed"] += status not in ledger.DONE
        counts["diverged"] += status == "diverged"
        if status not in ledger.DONE:
            bar.write(f"run {summary.get('run_id')} {status}: {summary.get('error', '')}")
        bar.set_postfix(failed=counts["failed"], diverged=counts["diverged"])
        bar.update()

    try:
        pending = list(jobs.values())
        while pending and not STOP.is_set():
            held.clear()
            EXECUTORS.get(args.executor)(pending, on_result, workers=args.workers, address=args.address)
            for summary in held:
                holder = summary.get("holder") or {}
                bar.write(f"run {summary['run_id']} is held by {ledger.describe(holder)} (heartbeat "
                          f"{holder.get('heartbeat_age_s', '?')} s ago): waiting for it; a lock without a "
                          f"heartbeat for {ledger.LOCK_EXPIRY_S:.0f} s is taken over")
            for summary in held:
                ledger.wait_released(ledger.run_dir(results, summary["run_id"]), STOP)
            pending = [jobs[summary["run_id"]] for summary in held]
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
                            tracking: Tracking, counts: dict[str, Any], overrides: dict[str, Any],
                            preset: Any) -> int | None:
    """Rounds of more seeds for the variants of undecided comparisons only, look by look; the verdicts
    are evaluated from the results folder each time, so a re-run repeats the same rounds and retrains
    nothing it has."""
    more: dict[str, dict[str, int]] = {}
    for n in design["looks"][1:]:
        table = verdict_table(results)   # with val_loss_auc, gap...: rules on them decide too
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
            _check(runs, args)
        except ConfigError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        write_manifests(chosen, runs, results, design)
        code = run_stage(runs, args, results, tracking, counts)
        if code is not None or STOP.is_set():
            return code
    return None


if __name__ == "__main__":
    code = main()
    if code == 130:   # interrupted: everything is recorded and the workers are gone; skip the seconds
        sys.stdout.flush()   # that tearing down torch's interpreter state takes
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
