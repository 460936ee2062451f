"""Reading offline W&B runs back from disk, with wandb's own protobuf `Record` (wandb.proto); and a
fake key and a closed local port for tests of W&B without network.

run-<id>.wandb is a LevelDB-style log written by wandb-core (this SDK ships no Python reader): a 7-byte
file header (":W&B", magic 0xBEE1, version 0), then 32 KiB blocks of chunks, each a 7-byte header
(crc32c, length, type) and a piece of one serialized `Record`.  A record too long for the rest of a
block is split into FIRST/MIDDLE/LAST chunks; a block tail under 7 bytes is padding.
"""
from __future__ import annotations

import json
import socket
import struct
import time
from pathlib import Path
from typing import Any

FAKE_KEY = "0123456789abcdef0123456789abcdef01234567"  # 40 characters, like a real W&B API key


def closed_port() -> int:
    """A loopback port the OS just handed out and nobody listens on any more: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def read_run(run_dir: Path) -> dict[str, Any]:
    """One offline run folder: its last `run` record (identity; tags as they ended), the config, the
    history rows, the summary as it ended, the step axes from define_metric, and the exit code
    (None while the run has not ended)."""
    (log_file,) = run_dir.glob("run-*.wandb")
    run, config, history, summary, axes, exit_code = None, {}, [], {}, {}, None
    for record in closed_records(log_file):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
            config.update({_key(i): json.loads(i.value_json) for i in run.config.update})
        elif kind == "config":
            config.update({_key(i): json.loads(i.value_json) for i in record.config.update})
        elif kind == "history":
            history.append({_key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "summary":
            summary.update({_key(i): json.loads(i.value_json) for i in record.summary.update})
        elif kind == "metric":
            axes[record.metric.name or record.metric.glob_name] = record.metric.step_metric
        elif kind == "exit":
            exit_code = record.exit.exit_code
    config.pop("_wandb", None)  # W&B's own bookkeeping, not ours
    return {"run": run, "config": config, "history": history, "summary": summary, "axes": axes,
            "exit_code": exit_code}


def offline_runs(results_dir: Path, rid: str) -> list[Path]:
    # offline-run-<time>-<id>, with "-1", "-2"... appended when the same id starts twice in one second
    return sorted((results_dir / "wandb").glob(f"offline-run-*-{rid}*"))


def all_runs(results_dir: Path) -> dict[str, dict[str, Any]]:
    """Every offline run of a results folder by W&B id (the last attempt where a run has several)."""
    return {read["run"].run_id: read for read in map(read_run, sorted((results_dir / "wandb").glob("offline-run-*")))}
