"""Ensembles: known-answer averaging, cyclic schedule values, EMA/SWA arithmetic, stored predictions,
bad prediction files skipped with a warning, and the ensembles study end to end on a tiny grid."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ablations import resolve, run_one
from ablations.grid import plan, write_manifests
from ablations.runner import train
from ablations.studies import STUDIES
from lit_modules import (AVERAGING, AveragingConfig, ConfigError, ImageClassifier, ModelConfig, OptimConfig,
                         ScheduleConfig, build_optimizer, build_schedule)
from lit_modules.averaging import WeightAveraging
from reports.ensembles import ensemble_gain, ensemble_table, load_predictions
from reports.figures import StudyData
from reports.tables import runs_table
from reports.stats import OUTCOMES
from reports.verdicts import evaluate


# --- averaging the softmax ------------------------------------------------------------------------
def test_averaged_softmax_gives_the_known_ensemble_accuracy():
    labels = np.array([0, 1, 0, 1])
    probs = np.array([
        [[0.9, 0.1], [0.6, 0.4], [0.8, 0.2], [0.4, 0.6]],   # right on 0, 2, 3 (3/4)
        [[0.4, 0.6], [0.2, 0.8], [0.7, 0.3], [0.7, 0.3]],   # right on 1, 2 (2/4)
        [[0.8, 0.2], [0.45, 0.55], [0.4, 0.6], [0.8, 0.2]],  # right on 0, 1 (2/4)
    ], dtype=np.float16)
    # Means: [0.7, 0.3] right, [0.417, 0.583] right, [0.633, 0.367] right, [0.633, 0.367] wrong -> 3/4.
    single, together, gain = ensemble_gain(probs, labels)
    assert single == pytest.approx(7 / 12) and together == pytest.approx(0.75)
    assert gain.mean() == pytest.approx(0.75 - 7 / 12) and gain.shape == (4,)
    last, together, _ = ensemble_gain(probs, labels, single=-1)   # snapshot ensemble vs last snapshot
    assert last == pytest.approx(0.5) and together == pytest.approx(0.75)


# --- cyclic schedule ------------------------------------------------------------------------------
def test_cosine_restarts_matches_known_values():
    s = build_schedule(ScheduleConfig(name="cosine_restarts", cycles=3))
    known = {0: 1, 1 / 6: 0.5, 1 / 3 - 1e-9: 0, 1 / 3: 1, 0.5: 0.5, 2 / 3: 1, 5 / 6: 0.5, 1: 0}
    for p, expected in known.items():
        assert s(p) == pytest.approx(expected, abs=1e-6), p
    floor = build_schedule(ScheduleConfig(name="cosine_restarts", cycles=2, final=0.1))
    assert floor(0.5 - 1e-12) == pytest.approx(0.1) and floor(0.25) == pytest.approx(0.55) and floor(1) == 0.1


def test_bad_cycles_and_averaging_fail_naming_the_choices():
    with pytest.raises(ConfigError, match="cosine_restarts"):
        ScheduleConfig(name="constant", cycles=4)
    with pytest.raises(ConfigError, match="cycles"):
        ScheduleConfig(name="cosine_restarts", cycles=0)
    with pytest.raises(ConfigError, match="ema, none, swa|none, ema, swa"):
        resolve({"averaging.name": "polyak"})
    with pytest.raises(ConfigError, match="decay"):
        AveragingConfig(name="ema", decay=1.0)


# --- weight averaging -----------------------------------------------------------------------------
def _sgd_steps(digits_batch, name, **cfg):
    """A tiny classifier averaged by the real callback as SGD takes 4 steps; returns the module, the
    weights after each step and whether evaluation had an average to use after each step."""
    torch.manual_seed(0)
    x, y = digits_batch
    module = ImageClassifier(ModelConfig(width=16, depth=1), OptimConfig("sgd", lr=0.5), ScheduleConfig(),
                             (1, 8, 8), 10)
    optimizer = build_optimizer(OptimConfig("sgd", lr=0.5), module.net)
    averaging = WeightAveraging(AVERAGING.get(name), AveragingConfig(name, **cfg))
    averaging.attach(module, optimizer, total_steps=4)
    seen, has_average = [], []
    for i in range(4):
        optimizer.zero_grad()
        F.cross_entropy(module.net(x[i * 64:(i + 1) * 64]), y[i * 64:(i + 1) * 64]).backward()
        optimizer.step()
        seen.append([p.detach().clone() for p in module.net.parameters()])
        has_average.append(module.averaged is not None)
    return module, seen, has_average


def test_ema_weights_equal_the_hand_computed_average(digits_batch):
    module, seen, has_average = _sgd_steps(digits_batch, "ema", decay=0.9)
    assert all(has_average)
    # First update copies the weights; each later one keeps 0.9 of the average.
    expected = seen[0]
    for step in seen[1:]:
        expected = [0.9 * e + 0.1 * w for e, w in zip(expected, step)]
    for avg, e, last in zip(module.averaged.module.parameters(), expected, seen[-1]):
        torch.testing.assert_close(avg, e)
        assert not torch.allclose(avg, last)
    module.eval()   # evaluation goes through the average, training through the raw weights
    x = digits_batch[0][:8]
    torch.testing.assert_close(module(x), module.averaged(x))
    module.train()
    torch.testing.assert_close(module(x), module.net(x))


def test_swa_averages_equally_after_its_start(digits_batch):
    module, seen, has_average = _sgd_steps(digits_batch, "swa", start=0.5)   # steps 3 and 4 of 4
    assert has_average == [False, False, True, True]   # before `start` evaluation uses the raw weights
    for avg, w3, w4 in zip(module.averaged.module.parameters(), seen[2], seen[3]):
        torch.testing.assert_close(avg, (w3 + w4) / 2)


# --- stored predictions ---------------------------------------------------------------------------
def test_predictions_npz_has_the_right_shapes_and_snapshots(tmp_path):
    changes = {"trainer.max_epochs": 2, "data.train_size": 300, "schedule.name": "cosine_restarts",
               "schedule.cycles": 2}
    summary = run_one(changes, tmp_path)
    assert summary["status"] == "completed"
    z = load_predictions(tmp_path / "runs" / summary["run_id"] / "predictions.npz")
    n_val, n_test = len(z["val_labels"]), len(z["test_labels"])
    assert z["val_probs"].shape == (n_val, 10) and z["test_probs"].shape == (n_test, 10) and n_val > 100
    assert z["val_probs"].dtype == np.float16
    np.testing.assert_allclose(z["test_probs"].astype(np.float32).sum(1), 1, atol=1e-2)
    assert (z["test_probs"].argmax(1) == z["test_labels"]).mean() == pytest.approx(summary["test_acc"], abs=1e-3)
    assert z["snapshot_val_probs"].shape == (2, n_val, 10) and z["snapshot_test_probs"].shape == (2, n_test, 10)
    assert z["snapshot_steps"].tolist() == [3, 6]       # 3 optimizer steps an epoch, one cycle an epoch
    np.testing.assert_array_equal(z["snapshot_test_probs"][-1], z["test_probs"])   # last snapshot = final
    other = run_one({**changes, "seed": 1}, tmp_path)   # another seed predicts the same examples
    z1 = load_predictions(tmp_path / "runs" / other["run_id"] / "predictions.npz")
    np.testing.assert_array_equal(z1["test_labels"], z["test_labels"])
    assert not list((tmp_path / "runs" / summary["run_id"]).glob(".*tmp"))


def test_swa_with_batch_norm_is_tested_with_recomputed_statistics(tmp_path):
    summary = run_one({"trainer.max_epochs": 3, "model.norm": "batch", "averaging.name": "swa",
                       "averaging.start": 0.5}, tmp_path)
    assert summary["status"] == "completed" and summary["test_acc"] >= 0.85
    z = load_predictions(tmp_path / "runs" / summary["run_id"] / "predictions.npz")
    assert (z["test_probs"].argmax(1) == z["test_labels"]).mean() == pytest.approx(summary["test_acc"], abs=1e-3)


# --- the ensembles study and its report -----------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("ens")
    study = STUDIES.get("ensembles")
    runs = plan([study], {"trainer.max_epochs": 2, "data.train_size": 300}, seeds=2)
    write_manifests([study], runs, out)
    for r in runs:
        assert train(r.cfg, out)["status"] == "completed"
    return out


def _data(results):
    runs = runs_table(results)
    return StudyData("ensembles", runs, None, {}, results)


def test_ensembles_study_runs_tiny_and_reports_both_kinds(tiny_study):
    table = ensemble_table(_data(tiny_study))
    assert {"variant", "kind", "n_models", "test_single_acc", "test_ensemble_acc", "test_gain"} <= set(table.columns)
    base = table[(table.variant == "baseline") & (table.kind == "independent")].iloc[0]
    assert base.n_models == 2 and base.test_gain == pytest.approx(base.test_ensemble_acc - base.test_single_acc)
    snap = table[table.kind == "snapshot"]
    assert list(snap.variant) == ["schedule=snapshots"] and snap.n_models.iloc[0] == 4
    assert set(table.variant) == {"baseline", "schedule=cosine", "schedule=snapshots", "averaging=ema",
                                  "averaging=swa"}
    runs = runs_table(tiny_study)
    verdict, why, *_ = evaluate(STUDIES.get("ensembles").verdict.to_dict(), runs[runs.study == "ensembles"], tiny_study)
    assert verdict in OUTCOMES and "2 models" in why and "paired t-test over n=" in why and "test examples" in why


def test_missing_corrupt_and_mismatched_predictions_are_skipped_with_a_warning(tiny_study, tmp_path):
    import shutil
    copy = tmp_path / "copy"
    shutil.copytree(tiny_study, copy)
    runs = runs_table(copy)
    base = runs[(runs.study == "ensembles") & (runs.variant == "baseline")].run_id.tolist()
    (copy / "runs" / base[0] / "predictions.npz").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.warns(UserWarning, match="skipping unreadable"):
        assert load_predictions(copy / "runs" / base[0] / "predictions.npz") is None
    with pytest.warns(UserWarning, match="skipping"):
        table = ensemble_table(_data(copy))
    assert "baseline" not in set(table.variant)   # one readable run left: no ensemble, no crash
    ema = runs[(runs.study == "ensembles") & (runs.variant == "averaging=ema")].run_id.tolist()
    (copy / "runs" / ema[0] / "predictions.npz").unlink()
    path = copy / "runs" / ema[1] / "predictions.npz"
    swa = runs[(runs.study == "ensembles") & (runs.variant == "averaging=swa")].run_id.tolist()
    z = dict(np.load(copy / "runs" / swa[0] / "predictions.npz"))
    z["test_labels"] = np.roll(z["test_labels"], 1)   # evaluated on other examples: refuse to average
    np.savez(copy / "runs" / swa[0] / "predictions.npz", **z)
    with pytest.warns(UserWarning) as caught:
        table = ensemble_table(_data(copy))
    messages = " ".join(str(w.message) for w in caught)
    assert "is missing" in messages and "labels differ" in messages and path.exists()
    assert not {"baseline", "averaging=ema", "averaging=swa"} & set(table.variant)
    assert math.isfinite(table.test_gain.sum())
