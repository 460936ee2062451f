"""Rebuild the report from stored results and print what a grid prints at its end: the per-study table,
the verdict overview and where the report is.

`python run_all.py` calls it after a grid and for --report-only, `python -m reports` for its builds.
It imports nothing of the training stack, so a rebuild whose figures are cached takes seconds; run_all
dispatches --report-only here before it imports torch and Lightning (about 6 s on a 2-core machine).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from ablations.storage import check_results_dir
from lit_modules.registry import ConfigError

from .build import build, unfinished
from .overview import terminal
from .tables import runs_table, study_summary
from .wandb_report import PublishError


def rebuild(results_dir: str | Path, out_dir: str | Path | None = None, workers: int | None = None,
            publish: bool = False, wandb_project: str = "cs231n-ablations") -> Path | None:
    """Print the per-study table, write the report folder (reports.build.build) and print the verdict
    overview; None, with a line saying so, where no run has finished yet (a grid stopped early)."""
    runs = runs_table(results_dir)
    if (found := unfinished(runs)) is not None:
        print(f"no finished run in {results_dir} yet ({found}): nothing to report")
        return None
    with pd.option_context("display.width", 140, "display.max_rows", 500):
        print(study_summary(runs).round(4).to_string(index=False))
    out = build(results_dir, out_dir, workers=workers, publish=publish, wandb_project=wandb_project, runs=runs)
    print(terminal(json.loads((out / "verdicts.json").read_text())["studies"]))
    print(f"report: {out / 'index.html'}")
    return out


def report_only(results: Path, publish: bool = False, project: str = "cs231n-ablations") -> int:
    """--report-only: rebuild the report from stored results; the exit code (2: a bad results folder,
    or a report that could not be published)."""
    try:
        check_results_dir(results, write=False)
        rebuild(results, publish=publish, wandb_project=project)
    except (ConfigError, PublishError) as e:
        print(f"error: {'W&B report not published: ' if isinstance(e, PublishError) else ''}{e}", file=sys.stderr)
        return 2
    return 0


def report_only_command(argv: list[str]) -> int | None:
    """`python run_all.py --report-only [--results-dir D] [--publish] [--wandb-project P]`, answered
    before run_all imports the training stack; None for any other command line, which run_all then
    parses in full (the same behaviour, seconds slower)."""
    class Other(Exception):
        pass

    def other(message: str):
        raise Other(message)

    p = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    p.error = other   # a malformed command line gets run_all's own usage message
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--publish", action="store_true")
    p.add_argument("--wandb-project", default="cs231n-ablations")
    try:
        args, rest = p.parse_known_args(argv)
    except Other:
        return None
    return None if rest or not args.report_only else report_only(Path(args.results_dir), args.publish,
                                                                 args.wandb_project)
