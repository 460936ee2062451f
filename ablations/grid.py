"""Expand studies into one validated plan of unique runs, before anything trains.

Runs are content-addressed: a configuration shared by several studies (the baseline above all) is one
run that serves them all.  Each study's manifest (`<results>/studies/<name>.json`) records which run
is which (variant, seed) of that study; reports read it instead of parsing directory names.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from lit_modules import ConfigError
from .wandb_layout import axis_name

from .config import RunConfig
from .presets import Preset
from .runner import resolve, run_id
from .results import write_manifest
from .rules import check_variants
from .study import Study, Trial


@dataclass
class PlannedRun:
    run_id: str
    cfg: RunConfig
    trials: list[Trial] = field(default_factory=list)   # every (study, variant, seed) it serves

    @property
    def name(self) -> str:
        return self.trials[0].variant

    @property
    def group(self) -> str:
        """Every study the run serves, in plan order: a run shared by several belongs to no one of them."""
        return "+".join(dict.fromkeys(t.study for t in self.trials))

    @property
    def tags(self) -> list[str]:
        tags = {t.study for t in self.trials}
        tags |= {f"{axis_name(axis)}={label}" for t in self.trials for axis, label in t.axes.items()}
        return sorted(tags)

    @property
    def studies(self) -> dict[str, dict[str, Any]]:
        """{study: {"variant": ..., "axes": {axis: label}}}; a run that is two variants of one study
        (the baseline and `activation=relu`) has both names and both variants' labels."""
        out: dict[str, dict[str, Any]] = {}
        for t in self.trials:
            entry = out.setdefault(t.study, {"variant": [], "axes": {}})
            if t.variant not in entry["variant"]:
                entry["variant"].append(t.variant)
            entry["axes"].update({axis_name(axis): label for axis, label in t.axes.items()})
        return {study: {**e, "variant": " / ".join(e["variant"])} for study, e in out.items()}


def plan(studies: Sequence[Study], overrides: Mapping[str, Any] | None = None,
         seeds: int | None = None, preset: Preset | None = None,
         more: Mapping[str, Mapping[str, int]] | None = None) -> list[PlannedRun]:
    """Resolve every trial of every study; a bad one fails naming its study.  `more` raises the seed
    count of some variants per study ({study: {variant: seeds}}, from run_all --until-decided).

    Precedence, later wins: the preset's base, the study's own settings, the preset's settings for
    that study, the global `overrides` (the user's --set).  The verdict rule is checked against the
    variants and the metrics the resolved runs will produce, so a typo fails before anything trains.
    """
    runs: dict[str, PlannedRun] = {}
    preset = preset or Preset("none")
    for study in studies:
        sized = dict(preset.per_study.get(study.name, {}))
        try:
            trials = study.trials(seeds if seeds is not None else preset.seeds, (more or {}).get(study.name))
            if not trials:
                raise ConfigError("no trials to run (seeds must be at least 1)")
            varied = {k for t in trials for k in t.overrides if k not in study.base} & set(sized)
            if varied:
                raise ConfigError(f"the preset sets {', '.join(sorted(varied))}, which the study varies")
            if study.control is not None:
                check_variants([study.control], trials)
        except ConfigError as e:
            raise ConfigError(f"study {study.name!r}: {e}") from None
        procedure_of: dict[str, str] = {}
        for trial in trials:
            try:
                cfg = resolve({**preset.base, **trial.overrides, **sized, **(overrides or {}), "seed": trial.seed})
            except ConfigError as e:
                raise ConfigError(f"study {study.name!r}, variant {trial.variant!r}: {e}") from None
            procedure_of[trial.variant] = cfg.trainer.procedure
            rid = run_id(cfg)
            runs.setdefault(rid, PlannedRun(rid, cfg)).trials.append(trial)
        if study.verdict:
            try:
                study.verdict.check(trials, procedure_of)
            except ConfigError as e:
                raise ConfigError(f"study {study.name!r}: {e}") from None
    return list(runs.values())


def write_manifests(studies: Sequence[Study], runs: Sequence[PlannedRun], results_dir: str | Path,
                    design: Mapping[str, Any] | None = None) -> None:
    """One manifest per study.  `design` records how verdicts are tested: the planned looks of
    run_all --until-decided (seed counts) and alpha, which reports.verdicts splits over the looks."""
    for study in studies:
        # In the study's own trial order (a run shared with an earlier study keeps that study's place).
        pairs = sorted(((t, r.run_id) for r in runs for t in r.trials if t.study == study.name),
                       key=lambda p: (p[0].order, p[0].seed))
        members = [{"variant": t.variant, "seed": t.seed, "axes": dict(t.axes), "run_id": rid} for t, rid in pairs]
        write_manifest(results_dir, {
            "name": study.name, "question": study.question.strip(), "claim": study.claim,
            "mode": study.mode, "axes": list(study.axes), "runs": members,
            "verdict": study.verdict.to_dict() if study.verdict else None, "control": study.control_variant,
            "design": dict(design or {}), "tuned": list(study.tuned),
            "previous_stage": study.previous, "has_next_stage": study.then is not None,
        })
