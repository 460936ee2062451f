"""The ray executor trains a grid on a local Ray instance like the local executor, and cleans up after."""
import ipaddress
import json
import os
import signal
import tempfile
from pathlib import Path

import pytest

import run_all
from ablations import ledger, ray_executor
from ablations.executors import EXECUTORS
from ablations.grid import plan
from ablations.studies import STUDIES
from lit_modules import ConfigError

ARGS = ["--study", "activations", "--executor", "ray", "--workers", "2", "--epochs", "1", "--seeds", "1",
        "--wandb-mode", "disabled"]


def _listeners() -> set[tuple]:
    """(address, raw entry) of every TCP socket listening on this machine, read from /proc."""
    found = set()
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        for line in table.read_text().splitlines()[1:] if table.exists() else []:
            local, state = line.split()[1], line.split()[3]
            if state == "0A":  # LISTEN
                raw = bytes.fromhex(local.split(":")[0])  # 32-bit words, each in little-endian order
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                found.add((ipaddress.ip_address(words), local))
    return found


def _loopback(ip) -> bool:
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1 from an IPv6 socket
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def _summaries(results: Path) -> dict[str, tuple[str, int]]:
    return {p.parent.name: (json.loads(p.read_text())["status"], p.stat().st_mtime_ns)
            for p in results.glob("runs/*/summary.json")}


def test_a_grid_on_a_local_ray_instance_trains_every_run_once(tmp_path, monkeypatch):
    before = _listeners()
    seen = {}
    mkdtemp, train = tempfile.mkdtemp, ray_executor._train

    def spy_mkdtemp(*args, **kwargs):
        seen["temp_dir"] = mkdtemp(*args, **kwargs)
        return seen["temp_dir"]

    def spy_train(*args, **kwargs):
        train(*args, **kwargs)
        seen["opened"] = _listeners() - before  # the actors are still alive here

    monkeypatch.setattr(ray_executor.tempfile, "mkdtemp", spy_mkdtemp)
    monkeypatch.setattr(ray_executor, "_train", spy_train)

    assert run_all.main([*ARGS, "--results-dir", str(tmp_path)]) == 0
    runs = plan([STUDIES.get("activations")], {"trainer.max_epochs": 1}, seeds=1)
    first = _summaries(tmp_path)
    assert set(first) == {r.run_id for r in runs}
    assert all(status in ledger.DONE for status, _ in first.values())

    assert seen["opened"], "Ray opened no TCP listener: the check below would prove nothing"
    assert all(_loopback(ip) for ip, _ in seen["opened"]), seen["opened"]
    temp = Path(seen["temp_dir"])
    assert not temp.exists() and tmp_path not in temp.parents   # removed, and never in the results
    assert {p.name for p in tmp_path.iterdir()} <= {"runs", "studies", "report"}
    assert not list(tmp_path.rglob("session_*")) and not list(tmp_path.rglob("*.sock"))

    seen.clear()
    assert run_all.main([*ARGS, "--results-dir", str(tmp_path)]) == 0
    assert _summaries(tmp_path) == first        # nothing trained twice...
    assert not seen                             # ...and with nothing to do, Ray is not even started


def _trainer_pids() -> list[int]:
    """Ray names an actor's process after its class: `ray::_Trainer`."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().startswith(b"ray::_Trainer"):
                pids.append(int(cmdline.parent.name))
        except OSError:  # the process ended meanwhile
            pass
    return pids


def test_a_killed_ray_worker_fails_only_its_run_and_the_grid_goes_on(tmp_path, monkeypatch):
    train, results = ray_executor._train, []

    def kill_an_actor_at_the_first_result(jobs, on_result, workers):
        def record(summary):
            if not results:
                os.kill(_trainer_pids()[0], signal.SIGKILL)  # like the kernel's OOM killer would
            results.append(summary)
            on_result(summary)
        train(jobs, record, workers)

    monkeypatch.setattr(ray_executor, "_train", kill_an_actor_at_the_first_result)
    assert run_all.main([*ARGS, "--results-dir", str(tmp_path)]) == 1
    runs = {r.run_id for r in plan([STUDIES.get("activations")], {"trainer.max_epochs": 1}, seeds=1)}
    died = [r for r in results if r["status"] == "failed"]
    assert len(results) == len(runs) and {r["run_id"] for r in results} == runs   # the grid went on
    assert len(died) == 1 and died[0]["error"].startswith("ray worker died"), died

    lost = died[0]["run_id"]
    assert ledger.state(tmp_path, lost, 2) in ("pending", "retry")   # a rerun trains it...
    with ledger.RunLock(ledger.run_dir(tmp_path, lost)) as got:
        assert got                                                    # ...past the dead actor's lock
    assert all(s in ledger.DONE for rid, (s, _) in _summaries(tmp_path).items() if rid != lost)


def test_without_ray_installed_the_executor_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(ray_executor, "ray", None)
    with pytest.raises(ConfigError, match=r'pip install "cs231n-ablations\[ray\]"'):
        EXECUTORS.get("ray")([], print, workers=1, address=None)
