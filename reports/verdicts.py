"""Verdict rules, stored as data in each study's manifest (ablations.rules) and evaluated here from the
runs table alone.

Every comparison is paired by seed (same initialization and data order) and tested with reports.stats:
a paired t-test on the per-seed differences (an exact sign test where a run has no number), Holm over
the comparisons of one rule, and four outcomes against the rule's smallest effect of interest:
supported, contradicted, no practical difference, undecided (with the seeds that would decide it).
When a study adds seeds in rounds (run_all --until-decided), alpha is split evenly over the planned
looks recorded in its manifest, so the repeated looks keep the error rate at alpha.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, NamedTuple, Sequence

import pandas as pd

from ablations.results import DONE, Registry, direction, smallest_effect

from . import stats
from .stats import Comparison, combine, decide, describe, exact, paired_t, sign_test
from .tables import history_table, runs_table


@dataclass(frozen=True)
class Check:
    """A part of a claim checked on each run (Holds), not tested: no interval, no Holm."""
    outcome: str
    text: str            # what was checked, and on how many seeds it held
    seeds: str = ""      # the per-seed values

    def describe(self) -> str:
        seeds = f" ({self.seeds}; a check on each run, not a test)" if self.seeds else ""
        return f"[{self.outcome}] {self.text}{seeds}"


@dataclass(frozen=True)
class Context:
    level: float            # the interval level of one look: 1 - alpha / looks
    results_dir: Any = None  # for rules that read run files (reports/ensembles.py)


class Verdict(NamedTuple):
    outcome: str
    text: str
    comparisons: tuple = ()   # the decided Comparisons (for the overview and the forest plot)
    checks: tuple = ()        # the Checks, run by run (babysitting's)


Part = Comparison | Check
RULES: Registry[Callable[[dict[str, Any], pd.DataFrame, Context], list[Part]]] = Registry("verdict rule")


def design_alpha(design: dict[str, Any] | None) -> float:
    """Alpha for one look: the design's alpha split evenly over its planned looks (Bonferroni over looks,
    valid whatever the dependence between them)."""
    design = design or {}
    return float(design.get("alpha", stats.ALPHA)) / max(1, len(design.get("looks", [])) or 1)


def evaluate(rule: dict[str, Any] | None, runs: pd.DataFrame, results_dir=None,
             design: dict[str, Any] | None = None) -> Verdict:
    if not rule:
        return Verdict("no rule", "")
    alpha = design_alpha(design)
    parts = RULES.get(rule["rule"])(rule, runs, Context(1 - alpha, results_dir))
    comparisons = decide([p for p in parts if isinstance(p, Comparison)], alpha)
    decided = iter(comparisons)
    parts = [next(decided) if isinstance(p, Comparison) else p for p in parts]
    m = len(comparisons)
    lines = [describe(p, m) if isinstance(p, Comparison) else p.describe() for p in parts]
    return Verdict(combine([p.outcome for p in parts]), "; ".join(lines), tuple(comparisons),
                   tuple(p for p in parts if isinstance(p, Check)))


# --- per-seed values ----------------------------------------------------------------------------------
NO_NUMBER = None   # a finished run without the metric (diverged, never reached): worst in its comparison


def per_seed(runs: pd.DataFrame, variant: str, metric: str) -> dict[int, float | None]:
    """seed -> the metric of `variant`'s finished runs; NO_NUMBER where a finished run has none (NaN,
    +-inf); unfinished runs (failed, missing, damaged) are left out, never counted as results."""
    part = runs[(runs.variant == variant) & runs.status.isin(DONE)]
    if metric not in part:
        return {int(s): NO_NUMBER for s in part.seed}
    return {int(s): (float(v) if _is_number(v) else NO_NUMBER) for s, v in zip(part.seed, part[metric])}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _fmt(v: float | None) -> str:
    return "none" if v is None else f"{v:.4g}"


def compare(label: str, metric: str, delta: float, sign: float, mine: dict[int, float | None],
            theirs: dict[int, float | None], level: float) -> Comparison:
    """The paired comparison of two per-seed dicts (positive favours `mine` after `sign`): a t-test on
    the differences, or an exact sign test when some pair lacks a number (it loses to one that has)."""
    seeds = sorted(set(mine) & set(theirs))
    pairs = [f"s{s} {_fmt(mine[s])} vs {_fmt(theirs[s])}" for s in seeds]
    if len(seeds) >= 2 and len({mine[s] for s in seeds}) == 1 and len({theirs[s] for s in seeds}) == 1:
        a, b = mine[seeds[0]], theirs[seeds[0]]
        d = 0.0 if a is None and b is None else math.inf if b is None else -math.inf if a is None else sign * (a - b)
        return exact(label, metric, delta, d, len(seeds), pairs[:1] + [f"... (all {len(seeds)} seeds the same)"])
    if all(mine[s] is not None and theirs[s] is not None for s in seeds):
        return paired_t(label, metric, delta, [sign * (mine[s] - theirs[s]) for s in seeds], pairs, level)
    signs = []
    for s in seeds:
        a, b = mine[s], theirs[s]
        signs.append(0 if a is None and b is None else 1 if b is None else -1 if a is None
                     else int(math.copysign(1, sign * (a - b))) if a != b else 0)
    return sign_test(label, metric, delta, signs, pairs, level)


def absent(label: str, runs: pd.DataFrame, *metrics: str) -> list[Part]:
    """A comparison on a metric that no run in the table has (older results, or a derived metric the
    caller did not add: verdict_table): undecided, and said so.  Read seed by seed it would be "no number
    on either side" on every seed, an exact tie, and so "no practical difference"."""
    missing = [m for m in metrics if m not in runs]
    return [Check(stats.UNDECIDED, f"{label}: no run has {', '.join(missing)}")] if missing else []


# --- the rules ------------------------------------------------------------------------------------------
@RULES.register("better")
def better(rule: dict[str, Any], runs: pd.DataFrame, ctx: Context) -> list[Part]:
    metric = rule["metric"]
    sign = 1.0 if direction(metric, rule.get("higher_is_better")) else -1.0   # an unknown name: ConfigError
    delta = smallest_effect(metric, rule.get("delta"))
    if missing := absent(f"{rule['variant']} vs {', '.join(rule['than'])}", runs, metric):
        return missing
    mine = per_seed(runs, rule["variant"], metric)
    return [replace(compare(f"{rule['variant']} vs {other}", metric, delta, sign, mine,
                            per_seed(runs, other, metric), ctx.level), variants=(rule["variant"], other))
            for other in rule["than"]]


@RULES.register("best_of")
def best_of(rule: dict[str, Any], runs: pd.DataFrame, ctx: Context) -> list[Part]:
    """Per seed: the trial that `select` (val) picks in each group, compared on `metric` (test)."""
    metric, select, column = rule["metric"], rule["select"], f"axis.{rule['axis']}"
    sign = 1.0 if direction(metric, rule.get("higher_is_better")) else -1.0
    pick_sign = 1.0 if direction(select, None) else -1.0
    if missing := absent(f"{rule['axis']}={rule['group']} vs {rule['axis']}={rule['than']}", runs, metric, select):
        return missing
    chosen = {}
    for label in (rule["group"], rule["than"]):
        part = runs[(runs[column] == label) & runs.status.isin(DONE)] if column in runs else runs.iloc[:0]
        part = part[part[select].map(_is_number)] if select in part else part.iloc[:0]
        # The trial val picks, per seed (ties: the earlier trial); its held-out metric is the result.
        best = part.assign(_score=pick_sign * part[select].astype(float)).sort_values(
            ["seed", "_score"], ascending=[True, False], kind="stable").drop_duplicates("seed")
        chosen[label] = {int(s): (float(v) if _is_number(v) else NO_NUMBER)
                         for s, v in zip(best.seed, best[metric] if metric in best else [None] * len(best))}
    label = f"{rule['axis']}={rule['group']} vs {rule['axis']}={rule['than']} ({metric} of the trial {select} picks)"
    searched = tuple(runs.loc[runs[column].isin([rule["group"], rule["than"]]), "variant"].unique()) \
        if column in runs and "variant" in runs else ()
    return [replace(compare(label, metric, smallest_effect(metric, rule.get("delta")), sign,
                            chosen[rule["group"]], chosen[rule["than"]], ctx.level), variants=searched)]


@RULES.register("interaction")
def interaction(rule: dict[str, Any], runs: pd.DataFrame, ctx: Context) -> list[Part]:
    """(variant - control) - (other_variant - other_control) per seed, over seeds where all four runs
    have the metric (the others are counted in the label)."""
    metric = rule["metric"]
    names = [rule[k] for k in ("variant", "control", "other_variant", "other_control")]
    sign = 1.0 if direction(metric, rule.get("higher_is_better")) else -1.0
    if missing := absent(f"({names[0]} - {names[1]}) - ({names[2]} - {names[3]})", runs, metric):
        return missing
    a, b, c, d = (per_seed(runs, n, metric) for n in names)
    seeds = sorted(set(a) & set(b) & set(c) & set(d))
    usable = [s for s in seeds if None not in (a[s], b[s], c[s], d[s])]
    label = f"({names[0]} - {names[1]}) - ({names[2]} - {names[3]})"
    if len(usable) < len(seeds):
        label += f" [{len(seeds) - len(usable)} seeds left out: a run without {metric}]"
    pairs = [f"s{s} ({a[s]:.4g} - {b[s]:.4g}) - ({c[s]:.4g} - {d[s]:.4g})" for s in usable]
    diffs = [sign * ((a[s] - b[s]) - (c[s] - d[s])) for s in usable]
    return [replace(paired_t(label, metric, smallest_effect(metric, rule.get("delta")), diffs, pairs, ctx.level),
                    variants=tuple(names))]


_OPS: dict[str, Callable[[Any, Any], bool]] = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
                                               ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
                                               "==": lambda a, b: a == b}


@RULES.register("holds")
def holds(rule: dict[str, Any], runs: pd.DataFrame, ctx: Context | None = None) -> list[Part]:
    """Supported when every finished seed satisfies `metric op value`; contradicted when one does not;
    undecided while a seed lacks the metric.  A check on each run, reported as such (no test)."""
    part = runs[(runs.variant == rule["variant"]) & runs.status.isin(DONE)]
    where = f"{rule['variant']}: {rule['metric']} {rule['op']} {rule['value']}"
    if part.empty or rule["metric"] not in part:
        return [Check(stats.UNDECIDED, f"{where}: no finished run has {rule['metric']}")]
    values = list(part[rule["metric"]])
    ok = [None if (v is None or (isinstance(v, float) and math.isnan(v))) else bool(_OPS[rule["op"]](v, rule["value"]))
          for v in values]
    shown = ", ".join(f"s{s} {v:.4g}" if isinstance(v, float) else f"s{s} {v}" for s, v in zip(part.seed, values))
    text = f"{where} on {sum(o is True for o in ok)}/{len(ok)} seeds"
    if any(o is False for o in ok):
        return [Check(stats.CONTRADICTED, text, shown)]
    return [Check(stats.SUPPORTED if all(ok) else stats.UNDECIDED, text, shown)]


@RULES.register("lr_range")
def lr_range(rule: dict[str, Any], runs: pd.DataFrame, ctx: Context) -> list[Part]:
    """The lecture's picture of the range test: flat loss at tiny lrs, an explosion at huge ones."""
    return [*holds({"variant": rule["variant"], "metric": "lr_find_low_change", "op": "<", "value": rule["flat"]}, runs),
            *holds({"variant": rule["variant"], "metric": "lr_find_blowup", "op": ">", "value": rule["blowup"]}, runs)]


@RULES.register("all")
def all_of(rule: dict[str, Any], runs: pd.DataFrame, ctx: Context) -> list[Part]:
    """The parts of every sub-rule, as one family (Holm runs over all of its comparisons)."""
    return [part for r in rule["rules"] for part in RULES.get(r["rule"])(r, runs, ctx)]


def with_convergence(results_dir, runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(`runs` of a results folder with the metrics derived from the learning curves, the history they
    came from): the tables verdicts and figures read.  The reader's errors stay on the runs table."""
    history = history_table(results_dir, runs.run_id[runs.status != "damaged"])
    out = add_convergence(runs, history)
    out.attrs["errors"] = runs.attrs.get("errors", [])
    return out, history


def verdict_table(results_dir) -> pd.DataFrame:
    """The runs table of a results folder as verdicts read it: with the metrics the report derives from
    the learning curves (val_loss_auc, gap, epochs_to_*, ...), which no summary.json holds.  A rule on
    one of them, evaluated on the bare runs table, sees no number on any run: every seed ties."""
    runs = runs_table(results_dir)
    return runs if runs.empty or "status" not in runs else with_convergence(results_dir, runs)[0]


def undecided_variants(rule: dict[str, Any] | None, runs: pd.DataFrame, results_dir=None,
                       design: dict[str, Any] | None = None) -> set[str]:
    """The variants of the comparisons that more seeds could decide (run_all --until-decided); `runs`
    as verdict_table gives them (with the derived metrics)."""
    if not rule:
        return set()
    return {v for c in evaluate(rule, runs, results_dir, design).comparisons
            if c.outcome == stats.UNDECIDED and c.unit == "seeds" and c.test != "exact" for v in c.variants}


def outcome_counts(verdicts: Sequence[str]) -> dict[str, int]:
    return {o: sum(v == o for v in verdicts) for o in stats.OUTCOMES}


def add_convergence(runs: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Per run: area under the val-loss curve, and epochs and seconds to 90/95/99% of its study's best
    val accuracy (NaN when never reached), and the train-val gap `gap`.  Vectorized over all runs at
    once (a loop over runs cost ~3 s for 1,000 runs); the same numbers as stats.area_under_curve and
    stats.time_to_threshold."""
    out = runs.copy()
    needed = ["val/loss", "val/acc", "time_s"]
    curves = history[history.metric.isin(needed)]
    wide = curves.pivot_table(index=["run_id", "epoch"], columns="metric", values="value", dropna=False)
    wide = wide.reindex(columns=needed).reset_index().sort_values(["run_id", "epoch"], kind="stable")
    # dropna=False keeps all-NaN metric columns but also crosses every run with every epoch seen in
    # any run: drop the (run, epoch) pairs that do not exist, or shorter runs would look unfinished.
    wide = wide.dropna(how="all", subset=needed)
    # One row per (study row, epoch): a run serving two studies is measured against each study's best.
    done = runs.loc[runs.status == "completed", ["study", "run_id"]].reset_index(names="row")
    best = runs.groupby("study").best_val_acc.max()
    rows = done.merge(wide, on="run_id")
    by_row = rows.groupby("row", sort=False)
    area = (rows["val/loss"] + by_row["val/loss"].shift()) / 2 * by_row["epoch"].diff()
    auc = area.groupby(rows.row).sum()
    bad = rows["val/loss"].isna().groupby(rows.row).any() | (by_row.size() < 2)
    out["val_loss_auc"] = auc.mask(bad).reindex(runs.index)
    for f in (90, 95, 99):
        target = rows.study.map(best) * (f / 100)
        first = rows[rows["val/acc"] >= target].groupby("row").first()
        out[f"epochs_to_{f}"] = first.epoch.astype(float).reindex(runs.index)
        out[f"seconds_to_{f}"] = first.time_s.reindex(runs.index)
    # The generalization gap of the final model: accuracy on the clean training set (eval mode, no
    # augmentation or mixing) minus final val accuracy; runs stored without it fall back to the
    # training-mode accuracy, which regularizers that add noise in training push down.
    nan = pd.Series(math.nan, index=out.index)
    train = out.get("clean_train_acc", nan).fillna(out.get("train_acc", nan))
    out["gap"] = train - out.get("final_val_acc", nan)
    return out


