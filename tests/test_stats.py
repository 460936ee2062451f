"""Known-answer and coverage tests for the report statistics (reports/stats.py, reports/verdicts.py)."""
import math

import numpy as np
import pandas as pd
import pytest

from reports.stats import (CONTRADICTED, NO_DIFFERENCE, SUPPORTED, UNDECIDED, area_under_curve, combine, decide,
                           holm, paired_t, seeds_needed, sign_test, t_interval, time_to_threshold)
from reports.verdicts import design_alpha, evaluate

# Per-seed values the suite meets: accuracies (skewed, bounded, discrete on a few hundred val images),
# differences of them (heavier tails), and the textbook normal.
DISTRIBUTIONS = {
    "normal": (lambda rng, n: rng.normal(0.9, 0.02, n), 0.9),
    "skewed accuracy, beta(40, 10)": (lambda rng, n: rng.beta(40, 10, n), 0.8),
    "accuracy on 360 images": (lambda rng, n: rng.binomial(360, 0.93, n) / 360, 0.93),
    "heavy-tailed difference, t(5)": (lambda rng, n: 0.01 + 0.02 * rng.standard_t(5, n), 0.01),
}


@pytest.mark.parametrize("n", [3, 5, 10])
@pytest.mark.parametrize("name", list(DISTRIBUTIONS))
def test_the_95_percent_interval_covers_the_truth_95_percent_of_the_time(name, n):
    """2,000 simulated studies of n seeds: the printed 95% interval holds the true mean in 93-97% of
    them (the percentile bootstrap it replaced covered ~75% at n = 3)."""
    draw, truth = DISTRIBUTIONS[name]
    rng = np.random.default_rng(n)
    hits = []
    for _ in range(2000):
        ci = t_interval(draw(rng, n))
        hits.append(ci.low <= truth <= ci.high)
    assert 0.93 <= np.mean(hits) <= 0.97


@pytest.mark.parametrize("n", [3, 5, 10])
def test_the_paired_interval_covers_the_true_difference(n):
    """Paired seeds share a large per-seed effect (init, data order); the paired t-interval on the
    differences covers the true difference at its level, at the level of one look too."""
    rng = np.random.default_rng(100 + n)
    for level in (0.95, 1 - 0.05 / 3):
        hits = []
        for _ in range(2000):
            shared = rng.normal(0.9, 0.05, n)
            a, b = shared + 0.01 + rng.normal(0, 0.01, n), shared + rng.normal(0, 0.01, n)
            ci = paired_t("a vs b", "acc", 0.005, a - b, [], level).interval
            hits.append(ci.low <= 0.01 <= ci.high)
        assert level - 0.02 <= np.mean(hits) <= min(1.0, level + 0.02)


def test_the_example_level_interval_of_an_ensemble_gain_covers():
    """Ensemble gains are tested over a split's examples (per-example differences in {-1, 0, 1})."""
    rng = np.random.default_rng(7)
    probs, truth = np.array([0.03, 0.90, 0.07]), 0.04
    hits = []
    for _ in range(2000):
        ci = t_interval(rng.choice([-1, 0, 1], size=360, p=probs))
        hits.append(ci.low <= truth <= ci.high)
    assert 0.93 <= np.mean(hits) <= 0.97


def test_intervals_are_not_made_up_from_too_few_or_identical_values():
    assert math.isnan(t_interval([0.958, 0.958, 0.958]).low)          # a tie has no spread to show
    assert t_interval([0.958, 0.958, 0.958]).text() == "n/a (all 3 equal)"
    one = t_interval([0.7, float("nan")])
    assert (one.mean, one.n) == (0.7, 1) and not one.excludes_zero() and math.isnan(one.high)
    assert math.isnan(t_interval([]).mean) and t_interval([]).n == 0
    ci = t_interval([1.0, 2.0, 3.0])                # mean 2, sd 1: t(0.975, 2) = 4.3027
    assert ci.high - 2.0 == pytest.approx(4.3027 / math.sqrt(3), rel=1e-4)


def test_four_outcomes_against_the_smallest_effect():
    def outcome(diffs, delta=0.005):
        return decide([paired_t("a vs b", "acc", delta, diffs, [])])[0].outcome
    assert outcome([0.02, 0.03, 0.025, 0.022, 0.028]) == SUPPORTED
    assert outcome([-0.02, -0.03, -0.025, -0.022, -0.028]) == CONTRADICTED
    # tiny differences, tight: the interval lies inside +-delta
    assert outcome([0.001, -0.001, 0.0005, 0.0, -0.0005, 0.001, -0.001, 0.0002, -0.0002, 0.0]) == NO_DIFFERENCE
    assert outcome([0.02, -0.03, 0.01]) == UNDECIDED
    # the same tiny differences do not show equivalence against a smaller delta
    assert outcome([0.001, -0.001, 0.0005, 0.0, -0.0005, 0.001, -0.001, 0.0002, -0.0002, 0.0], 0.0001) == UNDECIDED


def test_equivalence_is_the_interval_inside_the_band():
    """p_equivalence < 0.05 exactly when the 95% interval lies inside +-delta."""
    rng = np.random.default_rng(3)
    for _ in range(200):
        diffs = rng.normal(rng.uniform(-0.01, 0.01), rng.uniform(0.001, 0.01), 5)
        c = paired_t("a vs b", "acc", 0.01, diffs, [])
        inside = -0.01 < c.interval.low and c.interval.high < 0.01
        assert (c.p_equivalence < 0.05) == inside


def test_holm_known_answer():
    # Holm: sorted p 0.01, 0.02, 0.04 times 3, 2, 1 -> 0.03, 0.04, 0.04 (monotone), back in input order.
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    # Two comparisons significant alone (p 0.018, 0.026, 0.026) are not after Holm
    family = [paired_t(f"c{i}", "acc", 0.005, d, []) for i, d in enumerate([[0.02, 0.032, 0.025], [0.02, 0.035, 0.025], [0.02, 0.035, 0.025]])]
    assert all(c.p < 0.05 for c in family)
    assert [c.outcome for c in decide(family)] == [UNDECIDED] * 3   # 3 x 0.018 = 0.054
    assert decide(family[:1])[0].outcome == SUPPORTED


def test_power_calculation_known_answers():
    """Seeds a paired t-test needs for 80% power at alpha 0.05: the textbook 10 for a standardized
    effect of 1 and 34 for 0.5; an equivalence claim needs more spread-free seeds the nearer the band."""
    a = 0.5 ** 0.5                      # [m - a, m + a] has mean m and sd 1
    assert seeds_needed(paired_t("a", "acc", 0.1, [1 - a, 1 + a], []), 0.05) == 10
    assert seeds_needed(paired_t("a", "acc", 0.05, [0.5 - a, 0.5 + a], []), 0.05) == 34
    wide, narrow = (seeds_needed(paired_t("a", "acc", d, [-a, a], []), 0.05) for d in (2.0, 1.0))
    assert 2 <= wide < narrow
    undecided = decide([paired_t("a", "acc", 0.005, [0.02, -0.01, 0.015], [])])[0]
    assert undecided.outcome == UNDECIDED and undecided.seeds_needed > 3


def test_agreeing_seeds_are_no_significance():
    """A diverged run has no number: its comparison is an exact sign test, and 3 of 3 wins is p = 0.25."""
    c = decide([sign_test("a vs b", "acc", 0.005, [1, 1, 1], [])])[0]
    assert c.p == pytest.approx(0.25) and c.outcome == UNDECIDED and c.seeds_needed == 6
    assert decide([sign_test("a vs b", "acc", 0.005, [1] * 6, [])])[0].outcome == SUPPORTED   # p = 1/32
    assert decide([sign_test("a vs b", "acc", 0.005, [-1] * 6, [])])[0].outcome == CONTRADICTED


def test_combining_the_parts_of_a_claim():
    assert combine([SUPPORTED, SUPPORTED]) == SUPPORTED
    assert combine([SUPPORTED, CONTRADICTED, NO_DIFFERENCE]) == CONTRADICTED
    assert combine([SUPPORTED, NO_DIFFERENCE, UNDECIDED]) == NO_DIFFERENCE
    assert combine([SUPPORTED, UNDECIDED]) == UNDECIDED


def test_time_to_threshold_and_area():
    assert time_to_threshold([1, 2, 3, 4], [0.5, 0.8, 0.95, 0.97], 0.9) == 3
    assert math.isnan(time_to_threshold([1, 2], [0.5, 0.6], 0.9))
    assert area_under_curve([1, 2, 3], [2.0, 1.0, 0.0]) == pytest.approx(2.0)
    assert math.isnan(area_under_curve([1, 2], [1.0, float("nan")]))


def _runs(a, b, status="completed"):
    rows = [{"variant": "a", "seed": s, "final_val_acc": v, "status": status} for s, v in enumerate(a)]
    rows += [{"variant": "b", "seed": s, "final_val_acc": v, "status": "completed"} for s, v in enumerate(b)]
    return pd.DataFrame(rows)


RULE = {"rule": "better", "variant": "a", "than": ["b"], "metric": "final_val_acc", "higher_is_better": None,
        "delta": None}


def test_better_rule_verdicts_show_values_interval_test_and_n():
    a, b = [0.90, 0.80, 0.95, 0.85, 0.92], [0.70, 0.62, 0.80, 0.64, 0.75]
    verdict, why, comparisons, _ = evaluate(RULE, _runs(a, b))
    assert verdict == SUPPORTED and comparisons[0].n == 5
    assert "s0 0.9 vs 0.7" in why and "paired t-test over n=5 seeds" in why and "95% CI" in why
    assert evaluate(RULE, _runs(b, a))[0] == CONTRADICTED
    assert evaluate(RULE, _runs([0.9, 0.6, 0.8], [0.7, 0.8, 0.8]))[0] == UNDECIDED
    assert evaluate({**RULE, "higher_is_better": False}, _runs(b, a))[0] == SUPPORTED
    assert evaluate({**RULE, "delta": 0.5}, _runs([0.9, 0.91, 0.9, 0.9], [0.9, 0.9, 0.91, 0.9]))[0] == NO_DIFFERENCE


def test_a_diverged_run_loses_but_three_seeds_decide_nothing():
    nan = float("nan")
    verdict, why, *_ = evaluate(RULE, _runs([0.5, 0.6, 0.55], [nan] * 3))
    assert verdict == UNDECIDED and "sign test" in why and "p=0.25" in why and "+1.0000" not in why
    assert evaluate(RULE, _runs([0.5, 0.6, 0.55, 0.5, 0.6, 0.55], [nan] * 6))[0] == SUPPORTED
    # an unfinished (failed) run is no result at all: its seeds are left out, not counted as losses
    assert evaluate(RULE, _runs([nan] * 6, [0.5] * 6, status="failed"))[2][0].n == 0



@pytest.mark.parametrize("rule", [
    {**RULE, "metric": "val_loss_auc"},
    {"rule": "best_of", "axis": "search", "group": "random", "than": "grid", "metric": "test_acc",
     "select": "final_val_acc", "higher_is_better": None, "delta": None},
    {"rule": "interaction", "variant": "a", "control": "b", "other_variant": "a", "other_control": "b",
     "metric": "gap", "higher_is_better": None, "delta": None}], ids=["better", "best_of", "interaction"])
def test_a_rule_on_a_metric_no_run_has_is_undecided_and_says_so(rule):
    """Not "no practical difference": seed by seed, "no number on either side" would tie on every seed.
    (run_all's --until-decided once evaluated val_loss_auc rules on a table without it.)"""
    from reports.overview import headline, checks
    verdict = evaluate(rule, _runs([0.9, 0.8, 0.85], [0.7, 0.6, 0.65]).assign(**{"axis.search": "grid"}))
    assert verdict.outcome == UNDECIDED and verdict.comparisons == ()
    assert f"no run has {rule['metric']}" in verdict.text
    effect, _ = headline(verdict.comparisons, verdict.outcome, checks(verdict))
    assert "no run has" in effect and "a check on each run" not in effect

def test_runs_that_do_not_vary_with_the_seed_are_compared_exactly():
    """A deterministic toy problem gives the same value on every seed: no test is needed (nor possible),
    the difference is exact and the smallest effect decides."""
    same = lambda a, b, n=3: _runs([a] * n, [b] * n)  # noqa: E731
    verdict, why, (c,), _ = evaluate(RULE, same(0.9, 0.8))
    assert verdict == SUPPORTED and c.test == "exact" and "exact comparison" in why
    assert evaluate(RULE, same(0.8, 0.9))[0] == CONTRADICTED
    assert evaluate(RULE, same(0.801, 0.8))[0] == NO_DIFFERENCE            # 0.001 < 0.005
    verdict, why, *_ = evaluate(RULE, same(0.5, float("nan")))              # b has no number on any seed
    assert verdict == SUPPORTED and "only the first has a final_val_acc" in why and "inf" not in why
    assert evaluate(RULE, same(0.9, 0.8, n=1))[0] == UNDECIDED            # one seed shows nothing


def test_repeated_looks_split_alpha():
    assert design_alpha(None) == 0.05 and design_alpha({"alpha": 0.05, "looks": [5, 7, 10]}) == pytest.approx(0.05 / 3)
    a, b = [0.90, 0.80, 0.95], [0.75, 0.72, 0.80]                   # p = 0.032: decided with one look only
    assert evaluate(RULE, _runs(a, b))[0] == SUPPORTED
    verdict, why, *_ = evaluate(RULE, _runs(a, b), design={"alpha": 0.05, "looks": [3, 5, 10]})
    assert verdict == UNDECIDED and "98.33% CI" in why


def test_a_verdict_naming_an_unknown_variant_fails_at_plan_time():
    from ablations.grid import plan
    from ablations.study import Better, Study
    from lit_modules import ConfigError
    study = Study("s", "c", {"model.activation": ["relu", "tanh"]}, verdict=Better("activation=gelu", ("baseline",)))
    with pytest.raises(ConfigError, match="activation=gelu.*activation=tanh"):
        plan([study], seeds=1)


def test_a_misspelt_or_unproduced_metric_fails_at_plan_time():
    from ablations.grid import plan
    from ablations.study import Better, Bundle, Study
    from lit_modules import ConfigError
    typo = Study("s", "c", {"model.activation": ["relu", "tanh"]},
                 verdict=Better("activation=tanh", ("baseline",), metric="val_los_auc"))
    with pytest.raises(ConfigError, match="unknown metric 'val_los_auc'; valid choices: .*val_loss_auc"):
        plan([typo], seeds=1)
    # a landscape run has no validation accuracy: naming it fails before anything trains
    toy = Study("t", "c", {"opt": {"sgd": Bundle({"optim.name": "sgd"}), "adam": Bundle({"optim.name": "adam"})}},
                base={"trainer.procedure": "landscape"}, verdict=Better("opt=adam", ("opt=sgd",)))
    with pytest.raises(ConfigError, match="'final_val_acc' is not produced by 'landscape' runs.*escape_step"):
        plan([toy], seeds=1)
    # a metric without a direction needs the rule to say which way is better
    loose = Study("s", "c", {"model.activation": ["relu", "tanh"]},
                  verdict=Better("activation=tanh", ("baseline",), metric="initial_act_std"))
    with pytest.raises(ConfigError, match="no better direction"):
        plan([loose], seeds=1)


def test_rules_round_trip_through_their_one_serialization():
    from ablations.rules import AllOf, BestOf, Better, EnsembleGain, Holds, Interaction, LrRange, from_dict
    rules = [Better("a", ("b", "c"), metric="test_acc", delta=0.01), BestOf("search", "random", "grid"),
             Interaction("a", "b", "c", "d"), EnsembleGain("baseline"), Holds("a", "train_loss", "<", 0.05),
             LrRange("f"), AllOf((Better("a", ("b",)), Holds("a", "advice", "==", "x")))]
    for rule in rules:
        assert from_dict(rule.to_dict()) == rule and from_dict(rule.to_dict()).to_dict() == rule.to_dict()


def _curves(spec):
    """runs and history tables for study "s" from {run_id: (variant, seed, val_acc list, time_s list)}."""
    import pandas as pd
    runs, hist = [], []
    for rid, (variant, seed, acc, secs) in spec.items():
        runs.append({"study": "s", "variant": variant, "seed": seed, "run_id": rid, "status": "completed",
                     "best_val_acc": max(acc)})
        for e, (a, t) in enumerate(zip(acc, secs), start=1):
            hist += [{"run_id": rid, "epoch": e, "metric": "val/acc", "value": a},
                     {"run_id": rid, "epoch": e, "metric": "val/loss", "value": 1.0 / e},
                     {"run_id": rid, "epoch": e, "metric": "time_s", "value": t}]
    return pd.DataFrame(runs), pd.DataFrame(hist)


def test_time_to_accuracy_table_known_answer():
    from reports.convergence import time_to_accuracy_table
    from reports.verdicts import add_convergence
    runs, history = _curves({"r1": ("fast", 0, [0.5, 0.9, 1.0], [1, 2, 3]),
                             "r2": ("fast", 1, [0.92, 0.96, 0.99], [5, 6, 7]),
                             "r3": ("slow", 0, [0.1, 0.2, 0.91], [10, 20, 30])})
    runs = add_convergence(runs, history)          # the study's best val accuracy is 1.0
    assert list(runs.epochs_to_90) == [2, 1, 3] and list(runs.seconds_to_90) == [2, 5, 30]
    assert runs.val_loss_auc.iloc[0] == pytest.approx(area_under_curve([1, 2, 3], [1, 0.5, 1 / 3]))
    table = time_to_accuracy_table(runs, "s").set_index("variant")
    assert table.loc["fast", "epochs_to_90"] == 1.5 and table.loc["fast", "seconds_to_90"] == 3.5
    assert table.loc["fast", "reached_99"] == 2 and table.loc["fast", "epochs_to_99"] == 3.0   # 0.99 >= 0.99
    assert table.loc["slow", "reached_95"] == 0 and math.isnan(table.loc["slow", "seconds_to_95"])
    assert list(table.n) == [2, 1]


def test_runs_of_different_lengths_each_get_their_own_area():
    """A shorter run is not unfinished: its area covers its own epochs (regression: a pivot over all
    runs once gave every run the longest run's epochs, as NaN, and no area)."""
    from reports.verdicts import add_convergence
    runs, history = _curves({"short": ("a", 0, [0.5, 0.9], [1, 2]),
                             "long": ("b", 0, [0.5, 0.9, 0.95, 1.0], [1, 2, 3, 4])})
    runs = add_convergence(runs, history)
    assert runs.val_loss_auc.iloc[0] == pytest.approx(area_under_curve([1, 2], [1, 0.5]))
    assert runs.val_loss_auc.iloc[1] == pytest.approx(area_under_curve([1, 2, 3, 4], [1, 1 / 2, 1 / 3, 1 / 4]))


def test_gap_table_known_answer():
    import pandas as pd
    from reports.convergence import gap_table
    runs = pd.DataFrame({"study": "s", "variant": ["a", "a", "b"], "seed": [0, 1, 0],
                         "train_acc": [1.0, 0.9, 0.8], "final_val_acc": [0.9, 0.9, 0.85],
                         "train_loss": [0.1, 0.2, 0.5], "val_loss": [0.4, 0.3, 0.4]})
    table = gap_table(runs, "s").set_index("variant")
    assert table.loc["a", "acc_gap"] == pytest.approx(0.05) and table.loc["a", "loss_gap"] == pytest.approx(0.2)
    assert table.loc["a", "acc_gap_std"] == pytest.approx(math.sqrt(0.005))
    assert table.loc["b", "acc_gap"] == pytest.approx(-0.05) and table.loc["b", "loss_gap"] == pytest.approx(-0.1)


def test_mean_ci_is_the_student_t_interval():
    import pandas as pd
    from reports.figures import mean_ci
    data = pd.DataFrame({"g": ["a"] * 3 + ["b"], "value": [1.0, 2.0, 3.0, 5.0]})
    ci = mean_ci(data, ["g"])
    # mean 2, sd 1, n 3: t(0.975, 2) = 4.3027 -> half-width 4.3027 / sqrt(3)
    assert ci.loc["a", "mean"] == 2.0 and ci.loc["a", "high"] - 2.0 == pytest.approx(4.3027 / math.sqrt(3), rel=1e-4)
    assert ci.loc["b", "low"] == ci.loc["b", "high"] == 5.0 and ci.loc["b", "n"] == 1
    se = mean_ci(data, ["g"], level=None)          # +- one standard error: sd / sqrt(n)
    assert se.loc["a", "low"] == pytest.approx(2 - 1 / math.sqrt(3)) and se.loc["b", "high"] == 5.0


def test_figures_of_a_large_study_show_the_first_and_the_best_variants():
    import pandas as pd
    from reports.figures import final_accuracy, shown_variants
    # 30 variants, accuracy rising with the index except the first (the baseline), which is the worst.
    names = [f"v{i}" for i in range(30)]
    runs = pd.DataFrame({"study": "s", "variant": [n for n in names for _ in range(2)], "seed": [0, 1] * 30,
                         "final_val_acc": [0.1 if i == 0 else 0.5 + i / 100 for i in range(30) for _ in range(2)]})
    order, note = shown_variants(runs, limit=5)
    assert order == ["v0", "v26", "v27", "v28", "v29"]          # study order kept; baseline kept although worst
    assert note == "the first + the 4 best of 30 variants by final val acc"
    assert shown_variants(runs, limit=30) == (names, "")        # small studies: everything, no note
    fig = final_accuracy(runs, "s")                              # the default limit (20) applies
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[0] == "v0" and labels[1:] == names[11:] and "best of 30" in fig._suptitle.get_text()
