"""Multi-stage studies: the next stage is derived from the finished runs of the previous one.

A study with `then` (see ablations.study) runs in stages: run_all plans and trains stage 1, reads its
runs back from the results folder (`stage_table`), and calls `then(table)` for the next stage's Study,
which is validated and trained like any other.  The table is built only from what is stored (configs
and summaries), so a re-run derives the same next stage and the ledger skips its finished runs.  A
stage with unfinished runs (failed, busy) derives nothing yet: its next stage waits for a re-run.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Sequence

import pandas as pd

from lit_modules import ConfigError
from lit_modules.config_tools import flat_dict

from . import results
from .grid import PlannedRun
from .study import Study

def stage_table(study: Study, runs: Sequence[PlannedRun], results_dir: str | Path) -> pd.DataFrame:
    """One row per trial of `study` in trial order: variant, seed, run_id, status, `axis.<name>` labels,
    the resolved config as dotted columns ("optim.lr") and the summary metrics (NaN where missing), read
    through the results contract like the report's runs table.  A damaged run reads as unfinished."""
    rows, errors = [], []
    for run in runs:
        for t in run.trials:
            if t.study != study.name:
                continue
            member = {"variant": t.variant, "seed": t.seed, "axes": dict(t.axes), "run_id": run.run_id}
            row = results.run_row(results_dir, study.name, member, errors)
            row.update({k: (list(v) if isinstance(v, tuple) else v) for k, v in flat_dict(run.cfg).items()})
            row["order"] = t.order
            rows.append(row)
    table = pd.DataFrame(rows)
    for name in results.METRICS.names():
        table[name] = pd.to_numeric(table[name], errors="coerce") if name in table else math.nan
    # Test metrics stay out: choosing the next stage on them would leak the test set.
    table = table.drop(columns=[c for c in table if c.startswith("test_") or c.startswith("config.")])
    return table.sort_values(["order", "seed"], kind="stable").reset_index(drop=True)


def next_stages(stages: Sequence[Study], runs: Sequence[PlannedRun],
                results_dir: str | Path) -> tuple[list[Study], list[str]]:
    """The follow-up stages whose previous stage is fully done, and a note for each one that waits."""
    derived, waiting = [], []
    for study in stages:
        if study.then is None:
            continue
        table = stage_table(study, runs, results_dir)
        unfinished = int((~table.status.isin(results.DONE)).sum())
        if unfinished:
            waiting.append(f"study {study.name!r}: next stage waits for {unfinished} unfinished run(s); re-run")
            continue
        try:
            follow = study.then(table)
        except ConfigError as e:
            raise ConfigError(f"study {study.name!r}, next stage: {e}") from None
        if not isinstance(follow, Study) or follow.name == study.name:
            raise ConfigError(f"study {study.name!r}: `then` must return a Study with a new name, got {follow!r}")
        derived.append(dataclasses.replace(follow, previous=study.name))
    return derived, waiting
