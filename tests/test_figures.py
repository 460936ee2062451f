"""The report's figures on small hand-built tables with known answers: the verdict's forest plot, the
comparison with the control, one colour per variant, small multiples, heatmaps centred at 0, the
numeric data-size axis, the lr range test's caption, landscapes, and figure widths."""
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import seaborn as sns
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.colors import to_rgba
from matplotlib.patches import Rectangle

from reports.build import FIGURES  # every figure module registered, as the report sees them
from reports.plotting import CONTROL_COLOR, OUTCOME_COLORS, StudyData, variant_colors
from reports.verdicts import evaluate

MAX_PX = 1800   # widest a figure may be at the report's dpi (it is shown at ~1,100 px)


def _px(fig: plt.Figure) -> tuple[float, float]:
    box = fig.get_tightbbox(fig.canvas.get_renderer())
    return box.width * fig.dpi, box.height * fig.dpi


def _runs(values: dict[str, list[float]], axes: dict[str, dict[str, str]] | None = None, study: str = "s",
          status: dict[tuple[str, int], str] | None = None) -> pd.DataFrame:
    """One row per variant and seed with final val accuracy `values[variant][seed]`."""
    rows = []
    for variant, accs in values.items():
        for seed, acc in enumerate(accs):
            rows.append({"study": study, "variant": variant, "seed": seed, "run_id": f"{variant}-{seed}",
                         "status": (status or {}).get((variant, seed), "completed"), "final_val_acc": acc,
                         **{f"axis.{k}": v for k, v in (axes or {}).get(variant, {}).items()}})
    return pd.DataFrame(rows)


def _history(runs: pd.DataFrame, epochs: int = 3) -> pd.DataFrame:
    rows = []
    for r in runs.itertuples():
        for e in range(1, epochs + 1):
            for metric, value in (("train/loss", 2.0 / e), ("val/loss", 2.1 / e), ("train/acc", r.final_val_acc * e / epochs),
                                  ("val/acc", r.final_val_acc * e / epochs)):
                rows.append({"run_id": r.run_id, "epoch": e, "metric": metric, "value": value})
    return pd.DataFrame(rows)


def _close(fig):
    w, _ = _px(fig)
    plt.close(fig)
    return w


# --- the verdict's forest plot ----------------------------------------------------------------------
def test_the_verdict_forest_has_one_row_per_comparison_and_shows_the_whole_band():
    control = [0.90, 0.91, 0.92, 0.93]
    runs = _runs({"c": control, "tiny": [c + d for c, d in zip(control, [0.001, 0.002, 0.0015, 0.001])],
                  "big": [c + d for c, d in zip(control, [0.05, 0.06, 0.055, 0.05])]})
    rule = {"rule": "better", "variant": "big", "than": ["c", "tiny"], "metric": "final_val_acc"}
    data = StudyData("s", runs, _history(runs), {"verdict": rule, "control": "c"})
    comparisons = evaluate(rule, data.members).comparisons
    fig = FIGURES.get("verdict")(data)
    panel = fig.axes[0]
    assert len(panel.get_yticklabels()) == len(comparisons) == 2
    low, high = panel.get_xlim()
    assert low <= -0.5 and high >= 0.5            # the +-0.005 smallest effect, in percentage points
    assert high >= max(max(c.diffs) for c in comparisons) * 100
    dots = [c for c in panel.collections if isinstance(c, PathCollection)]
    assert sum(len(c.get_offsets()) for c in dots) == 8          # every per-seed difference: 2 x 4 seeds
    for c, dots_of_row in zip(comparisons, dots):                 # coloured by the comparison's outcome
        assert to_rgba(dots_of_row.get_facecolor()[0], 1) == to_rgba(OUTCOME_COLORS[c.outcome])
    legend = " ".join(t.get_text() for t in fig.legends[0].get_texts())
    assert "95% interval (paired t)" in legend and "smallest effect of interest" in legend
    assert _close(fig) <= MAX_PX


def test_the_verdict_forest_gives_each_metric_its_own_panel_and_skips_studies_without_comparisons():
    runs = _runs({"a": [0.9, 0.91, 0.92], "b": [0.8, 0.82, 0.81]}).assign(val_loss=[0.3, 0.31, 0.29, 0.5, 0.52, 0.49])
    rule = {"rule": "all", "rules": [{"rule": "better", "variant": "a", "than": ["b"], "metric": "final_val_acc"},
                                     {"rule": "better", "variant": "a", "than": ["b"], "metric": "val_loss"}]}
    fig = FIGURES.get("verdict")(StudyData("s", runs, _history(runs), {"verdict": rule}))
    labels = [ax.get_xlabel() for ax in fig.axes if ax.get_xlabel()]
    assert len(labels) == 2 and "final val acc (percentage points" in labels[0] and "val loss (nats" in labels[1]
    plt.close(fig)
    checks_only = {"rule": "holds", "variant": "a", "metric": "final_val_acc", "op": ">", "value": 0.5}
    assert FIGURES.get("verdict")(StudyData("s", runs, _history(runs), {"verdict": checks_only})) is None
    assert FIGURES.get("verdict")(StudyData("s", runs, _history(runs), {})) is None


# --- every variant against the control --------------------------------------------------------------
def test_final_accuracy_draws_paired_differences_to_the_control_and_marks_diverged_seeds():
    runs = _runs({"c": [0.90, 0.92, 0.94], "up": [0.93, 0.95, 0.97], "gone": [0.91, math.nan, 0.93]},
                 status={("gone", 1): "diverged"})
    data = StudyData("s", runs, _history(runs), {"control": "c"})
    fig = FIGURES.get("final_acc")(data)
    left, right = fig.axes[:2]
    assert [t.get_text() for t in left.get_yticklabels()] == ["c", "up", "gone"]
    assert "vs the control (c)" in right.get_title()
    # up - c is +3 points on every seed: its dots sit at +3 (percentage points)
    dots = np.concatenate([c.get_offsets() for c in right.collections if isinstance(c, PathCollection)])
    assert np.isclose(dots[np.round(dots[:, 1]) == 1][:, 0], 3.0).sum() == 3
    low, high = right.get_xlim()
    assert low <= -0.5 and high >= 3.0                           # the band and every difference in view
    crosses = [c for c in right.collections if isinstance(c, PathCollection) and len(c.get_offsets()) == 1
               and np.isclose(c.get_offsets()[0, 0], low)]
    assert crosses, "the diverged seed (no value) is an x at the left edge"
    legend = " ".join(t.get_text() for t in fig.legends[0].get_texts())
    assert "diverged or stopped early" in legend and "smallest effect of interest" in legend
    assert _close(fig) <= MAX_PX


# --- colours ---------------------------------------------------------------------------------------
def _rgb(c) -> tuple:
    return tuple(np.round(to_rgba(c)[:3], 4))


def test_each_variant_keeps_one_colour_in_every_figure_of_its_study():
    order = ["c", "a", "b"]
    colors = variant_colors(order, "c")
    assert colors == variant_colors(order, "c") and colors["c"] == CONTROL_COLOR and len(set(colors.values())) == 3
    runs = _runs({"c": [0.90, 0.92], "a": [0.93, 0.95], "b": [0.80, 0.82]})
    data = StudyData("s", runs, _history(runs), {"control": "c"})
    curves, final = FIGURES.get("curves")(data), FIGURES.get("final_acc")(data)
    lines = {_rgb(c) for coll in curves.axes[1].collections if isinstance(coll, LineCollection) for c in coll.get_colors()}
    dots = {_rgb(c) for coll in final.axes[0].collections if isinstance(coll, PathCollection) for c in coll.get_facecolors()}
    assert lines == dots == {_rgb(c) for c in data.colors.values()}
    plt.close(curves)
    plt.close(final)


def _closest(colors) -> float:
    rgb = np.array([to_rgba(c)[:3] for c in colors])
    return min(np.linalg.norm(a - b) for i, a in enumerate(rgb) for b in rgb[i + 1:])


def test_beyond_twenty_variants_the_drawn_ones_get_distinct_colours_and_neighbours_differ():
    order = [f"v{i}" for i in range(41)]
    drawn = order[5:17]
    colors = variant_colors(order, "v0", drawn)
    assert colors == variant_colors(order, "v0", drawn) and colors["v0"] == CONTROL_COLOR
    assert {_rgb(colors[v]) for v in drawn} <= {_rgb(c) for c in sns.color_palette("tab20")}
    assert _closest([colors[v] for v in drawn]) >= _closest(sns.color_palette("tab20")) - 1e-9
    rest = [v for v in order if v not in drawn and v != "v0"]
    # any dozen neighbours in study order stay apart (evenly spaced hues put them 0.03 apart in RGB)
    assert min(_closest([colors[v] for v in rest[i:i + 12]]) for i in range(len(rest) - 11)) > 0.1


def test_diagnostics_of_a_large_study_draw_the_variants_its_other_figures_draw():
    from reports.diagnostics import MAX_VARIANTS as MOST, _variants
    values = {f"lr={k}": [0.5 + 0.01 * k, 0.51 + 0.01 * k] for k in range(30)}   # the best are the last
    runs = _runs(values)
    data = StudyData("s", runs, _history(runs), {"control": "lr=0"})
    table = pd.DataFrame({"variant": list(values), "depth": 2})
    picked = _variants(data, table)
    assert len(picked) == MOST and set(picked) <= set(data.shown) and "lr=29" in picked and "lr=1" not in picked
    assert len({_rgb(data.colors[v]) for v in picked}) == MOST


def test_learning_curves_become_small_multiples_beyond_eight_variants_in_the_study_colours():
    inits, depths = ["small", "xavier", "he"], ["10", "20", "30", "40"]
    values = {f"init={i},depth={d}": [0.5 + 0.1 * k, 0.55 + 0.1 * k] for k, i in enumerate(inits) for d in depths}
    axes = {v: dict(zip(["model.init", "model.depth"], [p.split("=")[1] for p in v.split(",")])) for v in values}
    runs = _runs(values, axes)
    control = "init=he,depth=10"
    data = StudyData("s", runs, _history(runs), {"control": control, "axes": ["model.init", "model.depth"]})
    fig = FIGURES.get("curves")(data)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == 12 and panels[0].get_title() == "small, 10"
    assert sorted({round(ax.get_position().x0, 3) for ax in panels}).__len__() == 4   # rows of init, columns of depth
    for ax in panels:   # the panel's own curves in its variant's colour (the grey line is the control's)
        variant = "init={},depth={}".format(*ax.get_title().split(" (")[0].split(", "))
        colors = {_rgb(c) for coll in ax.collections if isinstance(coll, LineCollection) for c in coll.get_colors()}
        assert _rgb(data.colors[variant]) in colors
    assert "init, depth" in fig._suptitle.get_text()
    assert _close(fig) <= MAX_PX


# --- heatmaps -------------------------------------------------------------------------------------
def test_the_heatmap_is_centred_at_zero_with_spread_and_diverged_marks_and_facets_a_third_axis():
    norms, lrs, depths = ["none", "batch"], ["0.01", "0.1", "1"], ["2", "4"]
    values, axes, status = {}, {}, {}
    for i, n in enumerate(norms):
        for j, lr in enumerate(lrs):
            for depth in depths:
                name = f"norm={n},lr={lr},depth={depth}"
                values[name] = [0.90 + 0.01 * i + 0.005 * j + 0.01 * (depth == "4") + s * 0.01 for s in range(3)]
                axes[name] = {"model.norm": n, "optim.lr": lr, "model.depth": depth}
    values["norm=none,lr=1,depth=2"] = [math.nan, math.nan, 0.6]          # a diverged run has no accuracy
    status.update({("norm=none,lr=1,depth=2", s): "diverged" for s in (0, 1)})
    status[("norm=batch,lr=1,depth=2", 0)] = "stopped_early"                 # ended early, with a value
    runs = _runs(values, axes, status=status)
    control = "norm=none,lr=0.01,depth=2"
    data = StudyData("s", runs, _history(runs), {"control": control, "axes": ["model.norm", "optim.lr", "model.depth"]})
    fig = FIGURES.get("heatmap")(data)
    maps = [ax for ax in fig.axes if ax.images]
    assert len(maps) == 2 and [ax.get_title() for ax in maps] == ["model.depth=2", "model.depth=4"]
    norm = maps[0].images[0].norm
    # the largest |mean difference|: the diverged cell's one paired seed, 0.6 - 0.92, in points
    assert norm.vmin == -norm.vmax and norm.vmax == pytest.approx(32.0)
    assert [t.get_text() for t in maps[0].get_xticklabels()] == lrs           # the axis with most values across
    texts = {t.get_text() for t in maps[0].texts}
    assert "control" in texts and "+1.0\n±0.0" in texts                       # batch, lr 0.01, depth 2: +1 point
    assert "-32.0\n2/3 div." in texts and any(t.endswith("1/3 div.") for t in texts)
    hatched = sorted(p.get_xy() for p in maps[0].patches if isinstance(p, Rectangle) and p.get_hatch())
    assert hatched == [(2 - 0.5, 0 - 0.5), (2 - 0.5, 1 - 0.5)]    # lr=1 (column 2): norm=none (row 0), batch (row 1)
    assert _close(fig) <= MAX_PX
    one_axis = _runs({"a": [0.9, 0.91]}, {"a": {"model.norm": "none"}})
    assert FIGURES.get("heatmap")(StudyData("s", one_axis, _history(one_axis), {})) is None


def test_a_heatmap_without_a_control_spans_its_own_values_not_zero_to_one():
    values = {f"a={a},b={b}": [0.97 + 0.005 * i + 0.002 * k] * 2 for i, a in enumerate("xy") for k, b in enumerate("pq")}
    axes = {v: {"a": v[2], "b": v[-1]} for v in values}
    runs = _runs(values, axes)
    fig = FIGURES.get("heatmap")(StudyData("s", runs, _history(runs), {}))
    norm = fig.axes[0].images[0].norm
    assert norm.vmin == pytest.approx(97.0) and norm.vmax == pytest.approx(97.7)
    plt.close(fig)


# --- transfer --------------------------------------------------------------------------------------
def _transfer_runs(recorded: bool) -> pd.DataFrame:
    rows = []
    for mode in ("scratch", "linear"):
        for label, asked, images in (("10", 10, 10), ("full", None, 646)):
            for seed in range(2):
                rows.append({"study": "transfer", "run_id": f"{mode}{label}{seed}", "variant": f"mode={mode},train_size={label}",
                             "seed": seed, "status": "completed", "axis.transfer.mode": mode, "axis.data.train_size": label,
                             "config.data.train_size": asked, "train_examples": images if recorded else math.nan,
                             "test_acc": 0.5 + 0.1 * seed + 0.2 * (label == "full")})
    return pd.DataFrame(rows)


def test_transfer_data_size_is_a_numeric_log_axis_with_full_at_its_real_size():
    fig = FIGURES.get("accuracy_by_data_size")(StudyData("transfer", _transfer_runs(True), pd.DataFrame()))
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and list(ax.get_xticks()) == [10, 646]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["10", "full\n(646)"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["scratch", "linear"]
    plt.close(fig)
    older = FIGURES.get("accuracy_by_data_size")(StudyData("transfer", _transfer_runs(False), pd.DataFrame()))
    assert list(older.axes[0].get_xticks()) == [10] and "not drawn: full" in older.axes[0].get_title()
    plt.close(older)
    other = _transfer_runs(True).rename(columns={"axis.transfer.mode": "axis.optim.lr"})
    assert FIGURES.get("accuracy_by_data_size")(StudyData("transfer", other, pd.DataFrame())) is None


# --- babysitting: lr range test, landscapes ---------------------------------------------------------
def _write(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


@pytest.mark.parametrize("suggestion, where", [(1e-4, "on the plateau"), (3e-2, "on the falling part")])
def test_the_lr_find_caption_says_how_the_rate_was_chosen_and_where_it_sits(tmp_path, suggestion, where):
    lr = np.logspace(-6, 0, 120)
    loss = np.where(lr < 1e-3, 2.3, 2.3 - 1.4 * np.clip(np.log10(lr / 1e-3) / 2.7, 0, 1))
    loss = np.where(lr > 0.5, 0.9 * (lr / 0.5) ** 6, loss)
    _write(tmp_path / "runs" / "r0" / "lr_find.csv", pd.DataFrame({"lr": lr, "loss": loss, "warmup": np.arange(120) < 10}))
    runs = pd.DataFrame([{"study": "b", "variant": "check=lr_find", "seed": 0, "run_id": "r0", "status": "completed",
                          "config.trainer.procedure": "lr_find", "lr_find_suggestion": suggestion,
                          "lr_find_best_lr": 0.5}])
    fig = FIGURES.get("lr_find")(StudyData("b", runs, pd.DataFrame(), {}, tmp_path))
    caption = " ".join(t.get_text() for t in fig.texts)
    assert "steeply per unit of lr" in caption and f"suggested {suggestion:.2g} ({where})" in caption
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "suggested lr (Lightning)" in legend and "lowest loss" in legend
    assert _close(fig) <= MAX_PX


def test_landscapes_draw_loss_per_step_next_to_one_path_panel_per_optimizer(tmp_path):
    rows = []
    x, y = np.meshgrid(np.linspace(-2, 2, 9), np.linspace(-1, 1, 5))
    surface = pd.DataFrame({"x": x.ravel(), "y": y.ravel(), "loss": (x ** 2 + y ** 2).ravel()})
    for function in ("taco", "saddle"):
        for k, optimizer in enumerate(("sgd", "momentum", "adam")):
            rid = f"{function}-{optimizer}"
            steps = np.arange(6)
            path = pd.DataFrame({"step": steps, "x": -2 * 0.5 ** steps, "y": 0.5 ** (steps + k), "loss": 4 * 0.25 ** steps})
            _write(tmp_path / "runs" / rid / "trajectory.csv", path)
            _write(tmp_path / "runs" / rid / "surface.csv", surface)
            rows.append({"study": "l", "variant": f"optimizer={optimizer},function={function}", "seed": 0, "run_id": rid,
                         "status": "completed", "config.trainer.procedure": "landscape",
                         "config.landscape.function": function, "config.optim.name": optimizer})
    fig = FIGURES.get("landscape")(StudyData("l", pd.DataFrame(rows), pd.DataFrame(), {}, tmp_path))
    loss_axes = [ax for ax in fig.axes if ax.get_ylabel() == "loss - lowest loss"]
    assert len(loss_axes) == 2 and all(ax.get_yscale() == "log" and len(ax.lines) == 3 for ax in loss_axes)
    paths = [ax for ax in fig.axes if ax.get_title() in ("sgd", "momentum", "adam")]
    assert len(paths) == 6 and all(len(ax.lines) == 2 for ax in paths)   # one path (and its start) per panel
    assert _close(fig) <= MAX_PX


# --- ensembles: as wide as the page however many variants ---------------------------------------------
def test_the_ensemble_figure_stays_within_the_page_for_many_variants(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 50)
    rows = []
    for v in range(30):
        for seed in range(2):
            rid = f"v{v}-{seed}"
            probs = {f"{split}_probs": rng.dirichlet(np.ones(3), 50).astype(np.float16) for split in ("val", "test")}
            (tmp_path / "runs" / rid).mkdir(parents=True)
            np.savez(tmp_path / "runs" / rid / "predictions.npz", val_labels=labels, test_labels=labels, **probs)
            rows.append({"study": "s", "variant": f"lr={v}", "seed": seed, "run_id": rid, "status": "completed",
                         "predictions": "predictions.npz", "final_val_acc": 0.5 + v / 100})
    fig = FIGURES.get("ensembles")(StudyData("s", pd.DataFrame(rows), pd.DataFrame(), {}, tmp_path))
    assert len(fig.axes[0].get_yticklabels()) == 20 and "best of 30" in fig._suptitle.get_text()
    assert _close(fig) <= MAX_PX
