"""W&B tracking: offline runs read back from disk, resume by run id, mode resolution, and failures that
never fail a run.  Nothing here reaches the network: every W&B run is offline (or never started)."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from wandb_records import FAKE_KEY, closed_port, offline_runs, read_run

from ablations.code_version import code_version
from ablations.runner import resolve, run_id, train
from ablations.tracking import MODES, Tracking, finish, make_logger, resolve_mode
from lit_modules import ConfigError, to_dict

TAGS = ["study", "x=1"]


# --- one real offline run, shared by the read-back tests ------------------------------------------
STUDIES = {"study": {"variant": "variant", "axes": {"x": "1"}}}


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory):
    """Train 2 epochs (diagnostics every 5 optimizer steps) with an offline logger, a (fake) API key in the
    environment and WANDB_MODE=disabled left by conftest: an explicit mode="offline" must win over it,
    and the key must go nowhere."""
    results = tmp_path_factory.mktemp("results")
    cfg = resolve({"trainer.max_epochs": 2, "trainer.diagnostics_every": 5})
    rid = run_id(cfg)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_API_KEY", FAKE_KEY)
        logger = make_logger(Tracking(mode="offline"), results, rid, cfg, group="study", name="variant", tags=TAGS,
                             studies=STUDIES)
        assert logger is not None
        summary = train(cfg, results, loggers=[logger])
        finish(logger, summary)
    (run_dir,) = offline_runs(results, rid)
    return {"results": results, "cfg": cfg, "rid": rid, "summary": summary, "logger": logger, "wb": read_run(run_dir)}


def test_offline_run_records_identity_and_the_nested_config(offline_run):
    run, cfg, config = offline_run["wb"]["run"], offline_run["cfg"], offline_run["wb"]["config"]
    assert offline_run["summary"]["status"] == "completed"
    assert run.run_id == offline_run["rid"] == offline_run["logger"].version
    assert (run.project, run.run_group, run.display_name, list(run.tags), run.job_type) == \
        ("cs231n-ablations", "study", "variant seed=0", TAGS, "fit")   # the name carries the seed
    # The run config as config.json has it, nested, plus the code version and the study membership.
    assert config == {**to_dict(cfg), "code_version": code_version(), "studies": STUDIES}
    assert config["optim"]["lr"] == cfg.optim.lr
    assert config["code_version"] == offline_run["summary"]["code_version"] != "unknown"


def test_epoch_metrics_are_against_epochs_and_diagnostics_against_optimizer_steps(offline_run):
    history, summary, axes = offline_run["wb"]["history"], offline_run["summary"], offline_run["wb"]["axes"]
    assert {"train/*": "epoch", "val/*": "epoch", "test/*": "epoch", "lr": "epoch", "time_s": "epoch",
            "diag/*": "optimizer_step", "landscape/*": "optimizer_step"}.items() <= axes.items()
    assert not any("trainer/global_step" in row for row in history)   # Lightning's shared axis is gone
    epochs = [row for row in history if "train/loss" in row]
    assert [row["epoch"] for row in epochs] == [1, 2]   # as in metrics.csv
    assert all({"train/acc", "val/loss", "val/acc", "lr", "time_s"} <= row.keys() for row in epochs)
    assert "train/initial_loss" in epochs[0]
    assert epochs[-1]["train/loss"] == pytest.approx(summary["train_loss"])  # same numbers as summary.json
    (test_row,) = [row for row in history if "test/acc" in row]
    assert test_row["test/acc"] == pytest.approx(summary["test_acc"]) and test_row["epoch"] == 2
    # Every diagnostics row is at its optimizer step, the steps diagnostics.csv has, and nowhere else.
    diag_rows = [row for row in history if any(k.startswith("diag/") for k in row)]
    assert diag_rows and all("epoch" not in row and "train/loss" not in row for row in diag_rows)
    stored = [line.split(",")[0] for line in (offline_run["results"] / "runs" / offline_run["rid"] /
                                               "diagnostics.csv").read_text().splitlines()[1:]]
    steps = sorted({row["optimizer_step"] for row in diag_rows})
    assert steps == sorted({int(s) for s in stored})
    assert set(range(0, steps[-1], 5)) <= set(steps)   # sampled every 5 steps (and once at the end)


def test_wandb_summary_holds_the_run_summary_and_the_run_ended_cleanly(offline_run):
    wb = offline_run["wb"]["summary"]
    stored = json.loads((offline_run["results"] / "runs" / offline_run["rid"] / "summary.json").read_text())
    for key in ("status", "initial_loss", "best_val_acc", "final_val_acc", "test_acc", "initial_loss_suspect",
                "final_update_ratio", "code_version", "epochs"):
        assert wb[key] == pytest.approx(stored[key]), key
    assert stored["status"] == "completed" and "traceback" not in wb
    assert offline_run["wb"]["exit_code"] == 0 and "completed" not in offline_run["wb"]["run"].tags


def test_api_key_is_written_nowhere(offline_run):
    files = [p for p in offline_run["results"].rglob("*") if p.is_file()]
    assert any(p.suffix == ".wandb" for p in files) and any(p.name == "summary.json" for p in files)
    leaks = [p for p in files if FAKE_KEY.encode() in p.read_bytes()]
    assert leaks == []


# --- outcomes, landscapes and transfer sources, through the grid's own execute() -------------------
def _execute(results: Path, overrides: dict) -> tuple[dict, dict]:
    """Train one run as a grid worker does (offline W&B); its summary and its W&B run read back."""
    from ablations.executors import Job, execute

    cfg = resolve(overrides)
    job = Job(run_id(cfg), cfg, "study", "variant", ("study",), str(results), Tracking(mode="offline"),
              studies={"study": {"variant": "variant", "axes": {}}})
    summary = execute(job)
    (run_dir,) = offline_runs(results, job.run_id)
    return summary, read_run(run_dir)


def test_a_diverged_run_is_tagged_and_says_so_in_its_summary(tmp_path):
    summary, wb = _execute(tmp_path, {"trainer.max_epochs": 2, "optim.lr": 1e4, "trainer.diagnostics_every": 0})
    assert summary["status"] == "diverged"
    assert wb["summary"]["status"] == "diverged" and "diverged" in wb["run"].tags
    assert wb["exit_code"] == 0   # a diverged run is a finished outcome, not a crash: state "finished"


def test_a_failed_run_exits_non_zero_with_a_tag_and_its_error(tmp_path, monkeypatch):
    from lit_modules.module import ImageClassifier

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in training_step")
    monkeypatch.setattr(ImageClassifier, "training_step", broken)
    summary, wb = _execute(tmp_path, {"trainer.max_epochs": 1, "trainer.diagnostics_every": 0})
    assert summary["status"] == "failed"
    assert wb["summary"]["status"] == "failed" and "a bug in training_step" in wb["summary"]["error"]
    assert "failed" in wb["run"].tags and wb["exit_code"] == 1   # W&B shows the run as failed


def test_a_landscape_run_logs_its_path_and_loss_per_optimizer_step(tmp_path):
    summary, wb = _execute(tmp_path, {"trainer.procedure": "landscape", "landscape.steps": 12})
    assert summary["status"] == "completed" and wb["run"].job_type == "landscape"
    path = [row for row in wb["history"] if "landscape/loss" in row]
    stored = (tmp_path / "runs" / summary["run_id"] / "trajectory.csv").read_text().splitlines()
    header, rows = stored[0].split(","), [dict(zip(stored[0].split(","), map(float, r.split(",")))) for r in stored[1:]]
    assert header[:4] == ["step", "x", "y", "loss"] and len(path) == len(rows) == 13
    for logged, row in zip(path, rows):
        assert logged["optimizer_step"] == row["step"]
        assert (logged["landscape/x"], logged["landscape/y"], logged["landscape/loss"]) == \
            pytest.approx((row["x"], row["y"], row["loss"]))
    assert wb["summary"]["distance"] == pytest.approx(summary["distance"])   # the path's metrics too


@pytest.mark.slow
def test_the_transfer_source_trained_on_demand_is_a_wandb_run_too(tmp_path):
    from ablations.transfer import source_config

    overrides = {"trainer.max_epochs": 1, "transfer.mode": "linear", "transfer.source_epochs": 1,
                 "data.classes": (5, 6, 7, 8, 9), "transfer.source_classes": (0, 1, 2, 3, 4), "data.train_size": 25,
                 "trainer.diagnostics_every": 0}
    summary, target = _execute(tmp_path, overrides)
    sid = run_id(source_config(resolve(overrides)))
    (source_dir,) = offline_runs(tmp_path, sid)
    source = read_run(source_dir)
    assert summary["status"] == "completed" and target["summary"]["status"] == "completed"
    assert (source["run"].run_group, list(source["run"].tags)) == ("transfer source", ["transfer-source"])
    assert source["summary"]["status"] == "completed" and source["summary"]["role"] == "transfer source"
    assert [row["epoch"] for row in source["history"] if "train/loss" in row] == [1]
    assert source["config"]["data"]["classes"] == [0, 1, 2, 3, 4] and source["exit_code"] == 0


# --- no network: one failed connection sends the grid offline ---------------------------------------
@pytest.fixture
def unreachable_server(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    return Tracking(mode="auto", fallback_file=str(tmp_path / "wandb" / ".offline-test"))


def test_an_unreachable_server_switches_to_offline_once(unreachable_server, tmp_path, caplog, monkeypatch):
    import ablations.tracking as tracking

    probes, probe = [], tracking.connect_error
    monkeypatch.setattr(tracking, "connect_error", lambda *a, **k: probes.append(probe(*a, **k)) or probes[-1])
    cfg = resolve({"trainer.max_epochs": 1})
    with caplog.at_level(logging.WARNING, logger="ablations.tracking"):
        for rid in ("first", "second", "third"):
            logger = _quick_run(tmp_path, rid, cfg, unreachable_server)
            assert logger is not None and logger.experiment.settings.mode == "offline"
            finish(logger)
    assert len(probes) == 1 and "refused" in probes[0].lower()   # the later runs never try the network again
    assert len([r for r in caplog.records if "logs offline" in r.getMessage()]) == 1
    assert Path(unreachable_server.fallback_file).exists()
    for rid in ("first", "second", "third"):   # kept for `wandb sync`
        (run_dir,) = offline_runs(tmp_path, rid)
        assert read_run(run_dir)["history"][0]["train/loss"] == 1.0


def test_a_server_that_accepts_but_fails_init_also_falls_back(unreachable_server, tmp_path, monkeypatch, caplog):
    """Past the connection probe (forced here), wandb.init itself fails: the run is kept offline."""
    import time

    import ablations.tracking as tracking

    monkeypatch.setattr(tracking, "connect_error", lambda *a, **k: None)
    monkeypatch.setattr(tracking, "INIT_TIMEOUT_S", 2.0)
    cfg = resolve({"trainer.max_epochs": 1})
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="ablations.tracking"):
        logger = _quick_run(tmp_path, "refused", cfg, unreachable_server)
    assert logger is not None and logger.experiment.settings.mode == "offline"
    finish(logger)
    assert time.monotonic() - start < 30 and "logs offline" in caplog.text
    assert Path(unreachable_server.fallback_file).exists() and offline_runs(tmp_path, "refused")


# --- resume, leftovers, disabled ------------------------------------------------------------------
def _quick_run(results: Path, rid: str, cfg, tracking: Tracking = Tracking(mode="offline")):
    logger = make_logger(tracking, results, rid, cfg, group="g", name="n", tags=["g"])
    if logger is not None:
        logger.log_metrics({"train/loss": 1.0}, step=0)
    return logger


def test_same_run_id_reuses_the_same_wandb_id(tmp_path):
    cfg = resolve({"trainer.max_epochs": 1})
    rid = run_id(cfg)
    for _ in range(2):
        logger = _quick_run(tmp_path, rid, cfg)
        assert logger.version == rid
        finish(logger)
    dirs = offline_runs(tmp_path, rid)
    assert len(dirs) == 2  # one local record per attempt, both for the same W&B run (wandb sync merges)
    assert [read_run(d)["run"].run_id for d in dirs] == [rid, rid]


def test_run_left_open_is_finished_not_reused(tmp_path, caplog):
    cfg = resolve({"trainer.max_epochs": 1})
    first = _quick_run(tmp_path, "leftover1", cfg)  # never finished, as after a crash in a worker
    second = _quick_run(tmp_path, "leftover2", cfg)
    assert second.experiment is not first.experiment and second.version == "leftover2"
    assert "still open" in caplog.text
    finish(second)


def test_disabled_mode_starts_nothing(tmp_path):
    cfg = resolve({"trainer.max_epochs": 1})
    assert _quick_run(tmp_path, run_id(cfg), cfg, Tracking(mode="disabled")) is None
    assert not (tmp_path / "wandb").exists()
    finish(None)  # a None logger is fine to finish


# --- mode resolution ------------------------------------------------------------------------------
@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    for var in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))  # does not exist
    return tmp_path


def test_auto_is_offline_without_credentials(no_credentials):
    assert resolve_mode("auto") == "offline"


def test_auto_is_online_with_an_api_key(no_credentials, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    assert resolve_mode("auto") == "online"


def test_auto_is_online_with_a_netrc_entry(no_credentials):
    (no_credentials / ".netrc").write_text(f"machine api.wandb.ai\n  login user\n  password {FAKE_KEY}\n")
    assert resolve_mode("auto") == "online"


@pytest.mark.parametrize("env, expected", [("disabled", "disabled"), ("offline", "offline"),
                                           ("dryrun", "offline"), ("online", "online")])
def test_auto_follows_wandb_mode(no_credentials, monkeypatch, env, expected):
    monkeypatch.setenv("WANDB_MODE", env)
    assert resolve_mode("auto") == expected


@pytest.mark.parametrize("mode", ["online", "offline", "disabled"])
def test_explicit_modes_pass_through_whatever_wandb_mode_says(monkeypatch, mode):
    monkeypatch.setenv("WANDB_MODE", "disabled" if mode != "disabled" else "online")
    assert resolve_mode(mode) == mode


def test_unknown_mode_lists_the_choices():
    for bad in (lambda: resolve_mode("cloud"), lambda: Tracking(mode="cloud")):
        with pytest.raises(ConfigError, match="auto, online, offline, disabled"):
            bad()
    assert MODES.names() == ["auto", "online", "offline", "disabled"]


def test_online_without_credentials_never_prompts(no_credentials, caplog):
    cfg = resolve({"trainer.max_epochs": 1})
    assert _quick_run(no_credentials, "nokey", cfg, Tracking(mode="online")) is None
    assert "no API key" in caplog.text and not (no_credentials / "wandb").exists()


# --- W&B failures never fail a run ----------------------------------------------------------------
def test_init_failure_gives_no_logger_and_a_warning(tmp_path, monkeypatch, caplog):
    import wandb

    def broken_init(*args, **kwargs):
        raise RuntimeError("W&B is down")

    monkeypatch.setattr(wandb, "init", broken_init)
    cfg = resolve({"trainer.max_epochs": 1})
    with caplog.at_level(logging.WARNING, logger="ablations.tracking"):
        assert make_logger(Tracking(mode="offline"), tmp_path, "down", cfg, group="g", name="n", tags=[]) is None
    assert "W&B is down" in caplog.text


def test_logging_failures_warn_once_and_the_run_completes(tmp_path, monkeypatch, caplog):
    cfg = resolve({"trainer.max_epochs": 2})
    logger = make_logger(Tracking(mode="offline"), tmp_path, run_id(cfg), cfg, group="g", name="n", tags=[])

    def broken(*args, **kwargs):
        raise ConnectionError("lost W&B")

    monkeypatch.setattr(logger.experiment, "log", broken)
    monkeypatch.setattr(logger.experiment, "finish", broken)
    with caplog.at_level(logging.WARNING, logger="ablations.tracking"):
        summary = train(cfg, tmp_path, loggers=[logger])
        finish(logger)  # must not raise either
    assert summary["status"] == "completed"
    failures = [r for r in caplog.records if "log_metrics failed" in r.getMessage()]
    assert len(failures) == 1  # a failed call per epoch and one after testing, but one warning
    monkeypatch.undo()
    finish(logger)  # really end it, so later tests start clean


@pytest.mark.slow
def test_a_ddp_run_in_the_grid_logs_to_wandb_from_rank_zero(tmp_path, monkeypatch):
    """devices=2: the torchrun child's rank 0 makes the W&B logger from the grid's settings."""
    from ablations.executors import Job, execute
    monkeypatch.delenv("WANDB_MODE", raising=False)
    cfg = resolve({"trainer.max_epochs": 2, "trainer.devices": 2, "trainer.accelerator": "cpu"})
    summary = execute(Job(run_id(cfg), cfg, "study", "ddp", ("study",), str(tmp_path), Tracking(mode="offline")))
    assert summary["status"] == "completed" and summary["device"].endswith("x2")
    runs = list((tmp_path / "wandb").glob(f"offline-run-*-{run_id(cfg)}"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))
