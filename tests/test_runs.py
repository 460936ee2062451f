"""One run end to end on real data: learning, files, determinism, failures, bad input (divergence and
the early stop: tests/test_divergence.py)."""
import json
import math

import pandas as pd
import pytest

import ablations.__main__ as cli
from ablations import resolve, run_id, run_one
from datamodules import DataUnavailableError
from lit_modules import ConfigError, ImageClassifier, to_dict

SUMMARY_KEYS = {"run_id", "status", "seed", "epochs", "initial_loss", "best_val_acc", "final_val_acc", "test_acc",
                "train_acc", "train_loss", "val_loss", "wall_time_s", "versions", "device"}


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    return results, run_one({}, results)


def test_default_run_learns_digits(default_run):
    _, summary = default_run
    assert summary["status"] == "completed"
    assert summary["final_val_acc"] >= 0.90 and summary["best_val_acc"] >= summary["final_val_acc"]
    assert summary["test_acc"] >= 0.90
    assert abs(summary["initial_loss"] - math.log(10)) < 0.1


def test_default_run_writes_its_files(default_run):
    results, summary = default_run
    run_dir = results / "runs" / summary["run_id"]
    assert summary["run_id"] == run_id(resolve({}))
    assert json.loads((run_dir / "config.json").read_text()) == to_dict(resolve({}))
    stored = json.loads((run_dir / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(stored) and stored["status"] == "completed"
    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert list(metrics["epoch"]) == list(range(1, resolve({}).trainer.max_epochs + 1))
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "lr", "time_s"} <= set(metrics.columns)
    assert metrics["train/loss"].iloc[-1] < metrics["train/loss"].iloc[0] / 5   # the loss falls
    assert not list(run_dir.glob(".*tmp"))                                       # no temp files left


def test_same_config_and_seed_give_identical_numbers(tmp_path):
    changes = {"trainer.max_epochs": 3, "data.augment": "flip+crop", "model.dropout": 0.2, "seed": 3}
    a = run_one(changes, tmp_path / "a")
    b = run_one(changes, tmp_path / "b")
    c = run_one({**changes, "seed": 4}, tmp_path / "c")
    numbers = ["initial_loss", "final_val_acc", "test_acc", "train_loss", "val_loss"]
    assert [a[k] for k in numbers] == [b[k] for k in numbers]
    history = lambda s, d: pd.read_csv(d / "runs" / s["run_id"] / "metrics.csv").drop(columns="time_s")  # noqa
    pd.testing.assert_frame_equal(history(a, tmp_path / "a"), history(b, tmp_path / "b"))
    assert a["train_loss"] != c["train_loss"]


def test_steps_per_call_changes_speed_not_results(tmp_path):
    """Grouping mini-batches per Lightning call must give exactly the numbers of one step per call."""
    changes = {"trainer.max_epochs": 2, "schedule.name": "cosine", "data.augment": "crop"}
    runs = [run_one({**changes, "data.steps_per_call": k}, tmp_path / str(k)) for k in (1, 3, 8)]
    assert len({r["run_id"] for r in runs}) == 1
    numbers = ["initial_loss", "final_val_acc", "test_acc", "train_loss", "val_loss"]
    assert [runs[0][k] for k in numbers] == [runs[1][k] for k in numbers] == [runs[2][k] for k in numbers]


def test_lightning_counts_every_optimizer_step(tmp_path):
    """The module steps the raw optimizer but must keep trainer.global_step exact (tuner, max_steps)."""
    import tempfile
    from ablations.runner import make_trainer
    from datamodules import ImageDataModule

    cfg = resolve({"trainer.max_epochs": 2, "data.steps_per_call": 3})
    dm = ImageDataModule(cfg.data)
    module = ImageClassifier(cfg.model, cfg.optim, cfg.schedule, dm.in_shape, dm.num_classes)
    trainer = make_trainer(cfg, tempfile.mkdtemp(dir=tmp_path))
    trainer.fit(module, datamodule=dm)
    steps_per_epoch = -(-len(dm.y_train) // cfg.data.batch_size)
    assert trainer.global_step == 2 * steps_per_epoch


def test_a_crash_is_recorded_with_its_traceback_and_keeps_finished_epochs(tmp_path, monkeypatch):
    original = ImageClassifier.training_step

    def crash_in_third_epoch(self, batch, batch_idx):
        if self.current_epoch == 2:
            raise RuntimeError("boom")
        return original(self, batch, batch_idx)

    monkeypatch.setattr(ImageClassifier, "training_step", crash_in_third_epoch)
    summary = run_one({"trainer.max_epochs": 5}, tmp_path)
    assert summary["status"] == "failed" and "boom" in summary["error"] and "RuntimeError" in summary["traceback"]
    run_dir = tmp_path / "runs" / summary["run_id"]
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "failed"
    assert len(pd.read_csv(run_dir / "metrics.csv")) == 2


def test_lr_is_logged_per_epoch_and_follows_the_schedule(tmp_path):
    summary = run_one({"schedule.name": "step", "schedule.milestones": "0.5", "trainer.max_epochs": 4}, tmp_path)
    lrs = pd.read_csv(tmp_path / "runs" / summary["run_id"] / "metrics.csv")["lr"].tolist()
    base = resolve({}).optim.lr
    assert lrs[0] == pytest.approx(base) and lrs[-1] == pytest.approx(base * 0.1)


def test_lbfgs_trains_full_batch_through_the_closure(tmp_path):
    summary = run_one({"optim.name": "lbfgs", "optim.lr": 1.0, "trainer.max_epochs": 5}, tmp_path)
    assert summary["status"] == "completed" and summary["final_val_acc"] >= 0.85


@pytest.mark.parametrize("changes", [
    {"model.activation": "swishy"},
    {"optim.lr": 0},
    {"data.train_size": 10**6},
    {"not.a.key": 1},
])
def test_bad_input_fails_before_anything_is_written(tmp_path, changes):
    with pytest.raises(ConfigError):
        run_one(changes, tmp_path)
    assert not (tmp_path / "runs").exists()


def test_missing_data_fails_fast_with_instructions(tmp_path, monkeypatch):
    import datamodules.datasets as datasets
    monkeypatch.setitem(datasets.SYSTEM_DATA_DIRS, "fashion_mnist", (tmp_path / "nowhere",))
    with pytest.raises(DataUnavailableError) as err:
        run_one({"data.name": "fashion_mnist", "data.data_dir": str(tmp_path), "data.download": False}, tmp_path)
    assert "fashion" in str(err.value).lower() and "apt-get install" in str(err.value)
    assert not (tmp_path / "runs").exists()


def test_cli_runs_and_rejects(tmp_path, capsys):
    assert cli.main(["--set", "trainer.max_epochs=2", "--set", "model.activation=tanh",
                     "--results-dir", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "completed" and out["epochs"] == 2
    assert cli.main(["--set", "model.activation=swishy", "--results-dir", str(tmp_path)]) == 2
    assert "swishy" in capsys.readouterr().err
    assert cli.main(["--set", "optim.lr", "--results-dir", str(tmp_path)]) == 2


@pytest.mark.slow
def test_small_cnn_learns_fashion_mnist_in_one_epoch(tmp_path):
    summary = run_one({"data.name": "fashion_mnist", "model.network": "convnet", "model.channels": (16, 32),
                       "schedule.warmup": 0.1, "trainer.max_epochs": 1}, tmp_path)
    assert summary["status"] == "completed" and summary["test_acc"] >= 0.80


@pytest.mark.slow
def test_one_run_over_two_processes_with_ddp(tmp_path):
    """--devices 2 on CPU: torchrun starts two ranks (gloo); rank 0 alone writes the run's files."""
    summary = run_one({"trainer.devices": 2, "trainer.accelerator": "cpu", "trainer.max_epochs": 5}, tmp_path)
    assert summary["status"] == "completed" and summary["device"].endswith("x2"), summary.get("traceback")
    assert summary["final_val_acc"] >= 0.8
    metrics = pd.read_csv(tmp_path / "runs" / summary["run_id"] / "metrics.csv")
    assert list(metrics["epoch"]) == [1, 2, 3, 4, 5]
    assert run_id(resolve({"trainer.devices": 2})) != run_id(resolve({}))   # effective batch differs
