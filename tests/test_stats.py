"""Known-answer tests for the report statistics."""
import math

import numpy as np
import pytest

from reports.stats import area_under_curve, bootstrap_ci, paired_difference, time_to_threshold, verdict


def test_bootstrap_ci_brackets_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(1)
    small, large = rng.normal(0.9, 0.02, 5), rng.normal(0.9, 0.02, 500)
    a, b = bootstrap_ci(small), bootstrap_ci(large)
    assert a.low <= a.mean <= a.high and a.mean == pytest.approx(small.mean())
    assert (b.high - b.low) < (a.high - a.low)
    # For 500 normal draws the percentile interval is close to mean +- 1.96 * sd / sqrt(n).
    assert b.high - b.low == pytest.approx(2 * 1.96 * large.std() / math.sqrt(500), rel=0.15)


def test_bootstrap_ci_handles_constant_single_and_missing_values():
    assert bootstrap_ci([0.5, 0.5, 0.5]).low == bootstrap_ci([0.5, 0.5, 0.5]).high == 0.5
    one = bootstrap_ci([0.7, float("nan")])
    assert (one.mean, one.n) == (0.7, 1) and not one.excludes_zero()
    assert math.isnan(bootstrap_ci([]).mean) and bootstrap_ci([]).n == 0


def test_pairing_removes_the_shared_seed_spread():
    baseline = {0: 0.80, 1: 0.90, 2: 0.70, 3: 0.85}
    variant = {s: v + 0.01 for s, v in baseline.items()}        # always exactly 1 point better
    diff = paired_difference(variant, baseline)
    assert diff.mean == pytest.approx(0.01) and diff.low == pytest.approx(0.01) and diff.excludes_zero()
    unpaired = bootstrap_ci(list(variant.values()))
    assert unpaired.low < bootstrap_ci(list(baseline.values())).high   # unpaired intervals overlap


def test_time_to_threshold_and_area():
    assert time_to_threshold([1, 2, 3, 4], [0.5, 0.8, 0.95, 0.97], 0.9) == 3
    assert math.isnan(time_to_threshold([1, 2], [0.5, 0.6], 0.9))
    assert area_under_curve([1, 2, 3], [2.0, 1.0, 0.0]) == pytest.approx(2.0)
    assert math.isnan(area_under_curve([1, 2], [1.0, float("nan")]))


def test_verdict_rule():
    assert verdict(paired_difference({0: 1.0, 1: 1.1}, {0: 0.5, 1: 0.6})) == "supported"
    assert verdict(paired_difference({0: 0.5, 1: 0.6}, {0: 1.0, 1: 1.1})) == "contradicted"
    assert verdict(paired_difference({0: 0.5, 1: 0.7}, {0: 0.6, 1: 0.6})) == "inconclusive at this scale"
    assert verdict(paired_difference({0: 0.5, 1: 0.6}, {0: 1.0, 1: 1.1}), expect_positive=False) == "supported"


def _runs(a, b):
    import pandas as pd
    rows = [{"variant": "a", "seed": s, "final_val_acc": v} for s, v in enumerate(a)]
    rows += [{"variant": "b", "seed": s, "final_val_acc": v} for s, v in enumerate(b)]
    return pd.DataFrame(rows)


def test_better_rule_verdicts():
    from reports.verdicts import evaluate
    rule = {"rule": "better", "variant": "a", "than": ["b"], "metric": "final_val_acc", "higher_is_better": True}
    assert evaluate(rule, _runs([0.9, 0.8, 0.95], [0.7, 0.6, 0.8]))[0] == "supported"
    assert evaluate(rule, _runs([0.7, 0.6, 0.8], [0.9, 0.8, 0.95]))[0] == "contradicted"
    assert evaluate(rule, _runs([0.9, 0.6, 0.8], [0.7, 0.8, 0.8]))[0] == "inconclusive at this scale"
    assert evaluate({**rule, "higher_is_better": False}, _runs([0.7, 0.6, 0.8], [0.9, 0.8, 0.95]))[0] == "supported"
    # A diverged run (NaN) loses to a finished one.
    assert evaluate(rule, _runs([0.5, 0.5, 0.5], [float("nan")] * 3))[0] == "supported"
    verdict, why = evaluate(rule, _runs([0.9, 0.8, 0.95], [0.7, 0.6, 0.8]))
    assert "+0.1833" in why and "3 seeds" in why


def test_a_verdict_naming_an_unknown_variant_fails_at_plan_time():
    from ablations.grid import plan
    from ablations.study import Better, Study
    from lit_modules import ConfigError
    study = Study("s", "c", {"model.activation": ["relu", "tanh"]}, verdict=Better("activation=gelu", ("baseline",)))
    with pytest.raises(ConfigError, match="activation=gelu.*activation=tanh"):
        plan([study], seeds=1)


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
