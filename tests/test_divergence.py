"""What ends a run early: a non-finite loss (always, `diverged`) and the opt-in search-time early stop
(`stopped_early`, on the epoch-mean loss).  The device-independence of the divergence step is checked
in tests/test_gpu.py (its CPU half runs everywhere)."""
import json
import math

import lightning as L
import pandas as pd
import pytest

from ablations import ledger, resolve, run_one, train
from ablations.grid import plan
from ablations.studies import STUDIES
from lit_modules import ConfigError

QUIET = {"trainer.diagnostics_every": 0}


class StepLosses(L.Callback):
    """Every optimizer step's loss, read from training_step's return (needs data.steps_per_call=1)."""

    def __init__(self):
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"] if isinstance(outputs, dict) else outputs))


@pytest.mark.slow
def test_a_noisy_sigmoid_mlp_at_batch_10_trains_on(tmp_path):
    """Glorot and Bengio's setting scaled down (sigmoid MLP, mini-batches of 10, Fashion-MNIST): a
    single mini-batch's loss jumps above 3x the first within a few steps, which the old rule called
    divergence.  The run is not diverging: it trains on and learns, and the opt-in early stop, which
    reads the epoch's mean loss, does not fire on that one batch either."""
    changes = {**QUIET, "data.name": "fashion_mnist", "data.train_size": 2000, "data.batch_size": 10,
               "data.steps_per_call": 1, "model.activation": "sigmoid", "model.depth": 2, "model.width": 256,
               "model.init": "lecun_normal", "optim.name": "sgd", "optim.lr": 1.5, "trainer.max_epochs": 2}
    steps = StepLosses()
    summary = train(resolve(changes), tmp_path, callbacks=[steps])
    losses = steps.losses
    old_rule = next(i + 1 for i, loss in enumerate(losses) if loss > 3 * losses[0])
    assert old_rule <= 12                                           # the old rule would have stopped here
    assert summary["status"] == "completed" and summary["epochs"] == 2
    assert all(math.isfinite(loss) for loss in losses) and len(losses) == 2 * 200
    history = pd.read_csv(tmp_path / "runs" / summary["run_id"] / "metrics.csv")
    assert history["train/loss"].iloc[-1] < math.log(10) - 0.5      # well below chance: it learns
    assert summary["final_val_acc"] >= 0.4                          # chance is 0.1

    opted = run_one({**changes, "trainer.max_epochs": 1, "trainer.early_stop_factor": 3.0}, tmp_path)
    assert opted["status"] == "completed" and opted.get("stopped_early_epoch") is None
    first = pd.read_csv(tmp_path / "runs" / opted["run_id"] / "metrics.csv").iloc[0]
    assert first["train/loss"] == history["train/loss"].iloc[0] < 3 * losses[0]   # same steps, mean below 3x


def test_a_nan_learning_rate_ends_the_run_as_diverged_at_the_step_it_happened(tmp_path):
    steps = StepLosses()
    cfg = resolve({**QUIET, "optim.lr": 1e6, "trainer.max_epochs": 3, "data.steps_per_call": 1})
    summary = train(cfg, tmp_path, callbacks=[steps])
    first_bad = next(i + 1 for i, loss in enumerate(steps.losses) if not math.isfinite(loss))
    assert summary["status"] == "diverged" and summary["diverged_step"] == first_bad <= 5
    assert len(steps.losses) == first_bad                           # one step per check: stops right there
    assert summary["epochs"] <= 1 and math.isnan(summary["test_acc"])
    stored = json.loads((tmp_path / "runs" / summary["run_id"] / "summary.json").read_text())
    assert stored["status"] == "diverged" and stored["diverged_step"] == first_bad
    assert stored["test_acc"] is None and "predictions" not in stored   # NaN is stored as null; no test


def test_the_early_stop_fires_on_the_epoch_mean_and_only_when_opted_in(tmp_path):
    """Plain SGD at lr 50 blows the loss up to huge but finite values: not `diverged`.  Opted in, the
    search-time stop cuts it after the first epoch as `stopped_early`, untested; the ledger counts it as
    done, so a re-run does not train it again."""
    changes = {**QUIET, "optim.name": "sgd", "optim.lr": 50.0, "trainer.max_epochs": 4}
    plain = run_one(changes, tmp_path)
    assert plain["status"] == "completed" and plain["epochs"] == 4 and math.isfinite(plain["train_loss"])
    cut = run_one({**changes, "trainer.early_stop_factor": 3.0}, tmp_path)
    assert cut["status"] == "stopped_early" and cut["stopped_early_epoch"] == 1 and cut["epochs"] == 1
    assert cut.get("diverged_step") is None and math.isnan(cut["test_acc"])
    first_epoch = pd.read_csv(tmp_path / "runs" / cut["run_id"] / "metrics.csv")["train/loss"].iloc[0]
    assert first_epoch > 3 * cut["initial_loss"]
    assert ledger.state(tmp_path, cut["run_id"], max_attempts=2) == "done"


@pytest.mark.parametrize("bad", [0.5, 1.0, -3.0, float("nan"), float("inf")])
def test_an_impossible_early_stop_factor_fails_before_training(bad):
    expected = r"not a finite number" if not math.isfinite(bad) else r"early_stop_factor: .*0 \(off\)"
    with pytest.raises(ConfigError, match=expected):
        resolve({"trainer.early_stop_factor": bad})


def test_the_search_stages_opt_in_and_their_follow_ups_and_lr_find_do_not():
    for name in ("search", "optimizers"):
        runs = plan([STUDIES.get(name)], {}, seeds=1)
        assert runs and all(r.cfg.trainer.early_stop_factor == 3.0 for r in runs)
    coarse = pd.DataFrame({"variant": ["a", "b"], "final_val_acc": [0.5, 0.9], "optim.lr": [0.1, 0.01],
                           "optim.weight_decay": [1e-4, 1e-3], "optim.name": ["sgd", "momentum"]})
    follow_ups = [STUDIES.get("search").then(coarse), STUDIES.get("optimizers").then(coarse)]
    assert all(r.cfg.trainer.early_stop_factor == 0.0 for r in plan(follow_ups, {}, seeds=1))
    assert resolve({}).trainer.early_stop_factor == 0.0
    # lr_find's own stop rule reads the blow-up the early stop would cut off.
    assert resolve({"trainer.procedure": "lr_find", "trainer.early_stop_factor": 3.0}).trainer.early_stop_factor == 0
