"""W&B tracking: offline runs read back from disk, resume by run id, mode resolution, and failures that
never fail a run.  Nothing here reaches the network: every W&B run is offline (or never started)."""
from __future__ import annotations

import json
import logging
import struct
import time
from pathlib import Path

import pytest

from ablations.runner import resolve, run_id, train
from ablations.tracking import MODES, Tracking, finish, make_logger, resolve_mode
from lit_modules import ConfigError, flat_dict

FAKE_KEY = "0123456789abcdef0123456789abcdef01234567"  # 40 characters, like a real W&B API key
TAGS = ["study", "x=1"]


# --- reading an offline run ------------------------------------------------------------------------
# run-<id>.wandb is a LevelDB-style log written by wandb-core (the SDK no longer ships a Python
# reader): a 7-byte file header (":W&B", magic 0xBEE1, version 0), then 32 KiB blocks of chunks, each
# a 7-byte header (crc32c, length, type) and a piece of one serialized `Record`.  A record too long for
# the rest of a block is split into FIRST/MIDDLE/LAST chunks; a block tail under 7 bytes is padding.
_BLOCK, _HEADER = 32768, 7
_FULL, _LAST = 1, 4


def read_records(path: Path) -> list:
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert struct.unpack("<4sHB", data[:_HEADER]) == (b":W&B", 0xBEE1, 0), "not a W&B transaction log"
    records, pos, pieces = [], _HEADER, b""
    while pos + _HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + _HEADER])
        if pos + _HEADER + length > len(data):  # a chunk still being written
            break
        if kind == 0:  # zero padding to the end of the block
            pos += left
            continue
        pieces += data[pos + _HEADER:pos + _HEADER + length]
        pos += _HEADER + length
        if kind in (_FULL, _LAST):
            record = pb.Record()
            record.ParseFromString(pieces)
            records.append(record)
            pieces = b""
    return records


def _key(item) -> str:
    return item.key or ".".join(item.nested_key)


def closed_records(path: Path, timeout: float = 10.0) -> list:
    """The records of a finished run.  `finish` returns before wandb-core has flushed the log (it only
    tells the service the run is done, without waiting), so wait for the final `exit` record."""
    deadline = time.monotonic() + timeout
    while True:
        records = read_records(path)
        if any(r.WhichOneof("record_type") == "exit" for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.02)


def read_run(run_dir: Path) -> dict:
    """The run record, every config item logged, and the history rows of one offline run folder."""
    (log_file,) = run_dir.glob("run-*.wandb")
    run, config, history = None, {}, []
    for record in closed_records(log_file):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
            config.update({_key(i): json.loads(i.value_json) for i in run.config.update})
        elif kind == "config":
            config.update({_key(i): json.loads(i.value_json) for i in record.config.update})
        elif kind == "history":
            history.append({_key(i): json.loads(i.value_json) for i in record.history.item})
    config.pop("_wandb", None)  # W&B's own bookkeeping, not ours
    return {"run": run, "config": config, "history": history}


def offline_runs(results_dir: Path, rid: str) -> list[Path]:
    # offline-run-<time>-<id>, with "-1", "-2"... appended when the same id starts twice in one second
    return sorted((results_dir / "wandb").glob(f"offline-run-*-{rid}*"))


# --- one real offline run, shared by the read-back tests ------------------------------------------
@pytest.fixture(scope="module")
def offline_run(tmp_path_factory):
    """Train 2 epochs with an offline logger, a (fake) API key in the environment and WANDB_MODE=disabled
    left by conftest: an explicit mode="offline" must win over it, and the key must go nowhere."""
    results = tmp_path_factory.mktemp("results")
    cfg = resolve({"trainer.max_epochs": 2})
    rid = run_id(cfg)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_API_KEY", FAKE_KEY)
        logger = make_logger(Tracking(mode="offline"), results, rid, cfg, group="study", name="variant", tags=TAGS)
        assert logger is not None
        summary = train(cfg, results, loggers=[logger])
        finish(logger)
    (run_dir,) = offline_runs(results, rid)
    return {"results": results, "cfg": cfg, "rid": rid, "summary": summary, "logger": logger, **read_run(run_dir)}


def test_offline_run_records_identity_and_exactly_the_flat_config(offline_run):
    run, cfg = offline_run["run"], offline_run["cfg"]
    assert offline_run["summary"]["status"] == "completed"
    assert run.run_id == offline_run["rid"] == offline_run["logger"].version
    assert (run.project, run.run_group, run.display_name, list(run.tags)) == \
        ("cs231n-ablations", "study", "variant", TAGS)
    assert offline_run["config"] == json.loads(json.dumps(flat_dict(cfg)))  # nothing else as config
    assert offline_run["config"]["optim.lr"] == cfg.optim.lr


def test_offline_run_history_has_every_epoch_and_the_test_metrics(offline_run):
    history, summary = offline_run["history"], offline_run["summary"]
    epochs = [row for row in history if "train/loss" in row]
    assert len(epochs) == 2
    assert all({"train/acc", "val/loss", "val/acc", "lr", "time_s"} <= row.keys() for row in epochs)
    assert "train/initial_loss" in epochs[0]
    assert epochs[-1]["train/loss"] == pytest.approx(summary["train_loss"])  # same numbers as summary.json
    (test_row,) = [row for row in history if "test/acc" in row]
    assert test_row["test/acc"] == pytest.approx(summary["test_acc"])


def test_api_key_is_written_nowhere(offline_run):
    files = [p for p in offline_run["results"].rglob("*") if p.is_file()]
    assert any(p.suffix == ".wandb" for p in files) and any(p.name == "summary.json" for p in files)
    leaks = [p for p in files if FAKE_KEY.encode() in p.read_bytes()]
    assert leaks == []


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
