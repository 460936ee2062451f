"""Fault injection: kills, signals, stale locks, concurrent grids and a full disk never lose or change a
finished result, never leave a process behind, and never end in a traceback."""
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import run_all
from ablations import ledger, storage
from ablations.executors import PAUSE_ENV
from ablations.grid import plan
from ablations.studies import STUDIES

ROOT = Path(__file__).resolve().parents[1]
SETS = {"trainer.max_epochs": 1, "data.train_size": 300, "trainer.diagnostics_every": 0}
ARGS = ["--study", "activations", "--seeds", "1", "--epochs", "1", "--wandb-mode", "disabled",
        "--set", "data.train_size=300", "--set", "trainer.diagnostics_every=0"]
RUNS = [r.run_id for r in plan([STUDIES.get("activations")], SETS, seeds=1)]   # in the order they start


def _finished(results: Path) -> dict[str, bytes]:
    """Every finished summary, byte for byte."""
    out = {}
    for path in results.glob("runs/*/summary.json"):
        if json.loads(path.read_bytes()).get("status") in ledger.DONE:
            out[path.parent.name] = path.read_bytes()
    return out


def _kept(before: dict[str, bytes], results: Path) -> None:
    after = _finished(results)
    assert {rid: after.get(rid) for rid in before} == before, "a finished result was lost or changed"


def _summary(results: Path, rid: str) -> dict:
    return json.loads((results / "runs" / rid / "summary.json").read_text())


def _consistent(results: Path) -> None:
    """No lock, no half-written file, every summary readable."""
    assert not list(results.glob("runs/*/.lock")) and not list(results.glob("runs/*/.*.tmp"))
    for path in results.glob("runs/*/summary.json"):
        json.loads(path.read_text())


def _grid(results: Path, *extra: str, pause: dict[str, tuple[str, Path]] | None = None) -> subprocess.Popen:
    """run_all in its own process; `pause` = {run_id: (point, marker file)} stops that run's worker there."""
    env = {**os.environ, PAUSE_ENV: ",".join(f"{p}:{rid}:{m}" for rid, (p, m) in (pause or {}).items())}
    return subprocess.Popen([sys.executable, str(ROOT / "run_all.py"), *ARGS, "--results-dir", str(results), *extra],
                            cwd=results.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _paused_pid(marker: Path, proc: subprocess.Popen, timeout: float = 120) -> int:
    deadline = time.time() + timeout
    while not (marker.exists() and marker.read_text()):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.05)
    return int(marker.read_text())


def _descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        try:
            kids = {int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()}
        except OSError:
            continue
        found |= kids
        todo += kids
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _all_gone(pids, timeout: float = 10.0) -> bool:
    deadline = time.time() + timeout
    while any(_alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.05)
    return not any(_alive(p) for p in pids)


@pytest.mark.slow
def test_kills_at_chosen_points_charge_only_the_run_a_worker_held(tmp_path):
    """A worker killed after it wrote a completed summary but before it released the lock keeps that
    result; a worker killed while holding another run charges that run alone, which is retried."""
    results = tmp_path / "results"
    written, locked = tmp_path / "written.pid", tmp_path / "locked.pid"
    proc = _grid(results, "--workers", "2", pause={RUNS[0]: ("summary-written", written),
                                                  RUNS[2]: ("locked", locked)})
    os.kill(_paused_pid(written, proc), signal.SIGKILL)
    result = _finished(results)[RUNS[0]]
    os.kill(_paused_pid(locked, proc), signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert _finished(results)[RUNS[0]] == result                      # the completed result survived
    assert _summary(results, RUNS[2])["attempt"] == 2                 # the held run: one death, one retry
    assert all(_summary(results, rid)["attempt"] == 1 for rid in RUNS if rid != RUNS[2])   # no one else
    assert set(_finished(results)) == set(RUNS)
    _consistent(results)
    before = _finished(results)
    mtimes = {p: p.stat().st_mtime_ns for p in results.glob("runs/*/summary.json")}
    assert run_all.main([*ARGS, "--results-dir", str(results), "--workers", "1"]) == 0
    _kept(before, results)
    assert {p: p.stat().st_mtime_ns for p in results.glob("runs/*/summary.json")} == mtimes   # not retrained


def _two_in_flight(tmp_path: Path) -> tuple[Path, subprocess.Popen, set[int], set[int], dict[str, bytes]]:
    """A 2-worker grid whose first run has finished while its second and third are held in flight
    (paused with their locks taken); returns results, the grid, the pids of its two workers and of
    every other process it started, and the finished results."""
    results = tmp_path / "results"
    markers = {rid: ("locked", tmp_path / f"{rid}.pid") for rid in RUNS[1:3]}
    proc = _grid(results, "--workers", "2", pause=markers)
    paused = {_paused_pid(m, proc) for _, m in markers.values()}
    before = _finished(results)
    assert set(before) == {RUNS[0]}
    return results, proc, paused, paused | _descendants(proc.pid), before


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_stops_at_once_and_a_rerun_finishes_everything(tmp_path, signum):
    results, proc, _, pids, before = _two_in_flight(tmp_path)
    sent = time.time()
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert time.time() - sent < 15 and proc.returncode == 130
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "resume with:" in line]
    assert len(lines) == 1 and lines[0].startswith("interrupted: 1 run(s) ended, 2 interrupted, 7 not started")
    assert _all_gone(pids)                                            # no process outlived the grid
    for rid in RUNS[1:3]:                                             # interrupted, not charged
        assert _summary(results, rid)["status"] == "interrupted" and _summary(results, rid)["attempt"] == 0
    assert not any((results / "runs" / rid / "summary.json").exists() for rid in RUNS[3:])   # cancelled
    _kept(before, results)
    _consistent(results)
    if signum == signal.SIGINT:   # resuming is the same for both signals: once is enough
        assert run_all.main([*ARGS, "--results-dir", str(results), "--workers", "1"]) == 0
        assert set(_finished(results)) == set(RUNS)
        assert all(_summary(results, rid)["attempt"] == 1 for rid in RUNS)
        _kept(before, results)


@pytest.mark.slow
def test_a_second_interrupt_exits_immediately(tmp_path):
    results, proc, paused, pids, before = _two_in_flight(tmp_path)
    for pid in paused:
        os.kill(pid, signal.SIGSTOP)      # workers that cannot stop: the first Ctrl-C waits on them
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert proc.poll() is None
    sent = time.time()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert time.time() - sent < 4 and proc.returncode == 130    # before the first stop's 5 s grace is up
    assert "stopped at once; resume with:" in err and "Traceback" not in err
    assert _all_gone(pids)
    _kept(before, results)


@pytest.mark.slow
def test_workers_die_with_a_killed_grid(tmp_path):
    """SIGKILL of run_all alone (not its process group): the kernel takes its workers too."""
    results, proc, _, pids, before = _two_in_flight(tmp_path)
    proc.kill()
    proc.communicate()
    assert _all_gone(pids)
    _kept(before, results)
    for rid in RUNS[1:3]:                 # their locks name dead processes: the next grid takes them
        with ledger.RunLock(ledger.run_dir(results, rid)) as got:
            assert got


def _forge_lock(results: Path, rid: str, age_s: float) -> None:
    directory = ledger.run_dir(results, rid)
    directory.mkdir(parents=True)
    lock = directory / ".lock"
    lock.write_text(json.dumps({"host": "elsewhere", "pidns": "pid:[1]", "pid": 4242, "token": "forged"}))
    os.utime(lock, (time.time() - age_s, time.time() - age_s))


def test_a_lock_from_another_host_without_heartbeat_expires(tmp_path):
    _forge_lock(tmp_path, RUNS[0], age_s=ledger.LOCK_EXPIRY_S + 60)
    assert run_all.main([*ARGS, "--results-dir", str(tmp_path), "--workers", "1"]) == 0
    assert _summary(tmp_path, RUNS[0])["status"] == "completed"
    _consistent(tmp_path)


def test_a_run_held_elsewhere_is_waited_for_and_named_not_failed(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ledger, "LOCK_EXPIRY_S", 3.0)   # the holder stops beating: expires 3 s later
    _forge_lock(tmp_path, RUNS[0], age_s=0)
    start = time.time()
    assert run_all.main([*ARGS, "--results-dir", str(tmp_path), "--workers", "1"]) == 0
    out = capsys.readouterr()
    assert f"run {RUNS[0]} is held by pid 4242 on host elsewhere" in out.out + out.err
    assert time.time() - start >= 2.5 and set(_finished(tmp_path)) == set(RUNS)


@pytest.mark.slow
def test_two_grids_on_one_folder_both_end_fine(tmp_path):
    results = tmp_path / "results"
    other = _grid(results, "--workers", "2")                           # one in its own process...
    deadline = time.time() + 120
    while not list(results.glob("runs/*/.lock")) and time.time() < deadline:   # training already
        assert other.poll() is None
        time.sleep(0.05)
    assert run_all.main([*ARGS, "--results-dir", str(results), "--workers", "1"]) == 0   # ...one here
    out, err = other.communicate(timeout=600)
    assert other.returncode == 0 and "Traceback" not in err, err
    assert set(_finished(results)) == set(RUNS)
    assert all(_summary(results, rid)["attempt"] == 1 for rid in RUNS)   # trained once, never failed
    _consistent(results)


def test_an_interrupt_while_training_here_records_it_and_the_rerun_finishes(tmp_path, monkeypatch):
    """One worker: the run trains in this process, and Ctrl-C stops it mid-epoch."""
    from lit_modules import ImageClassifier
    original = ImageClassifier.training_step

    def ctrl_c_in_the_third_run(self, batch, batch_idx):
        if len(_finished(tmp_path)) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, batch, batch_idx)

    monkeypatch.setattr(ImageClassifier, "training_step", ctrl_c_in_the_third_run)
    handler = signal.getsignal(signal.SIGINT)
    assert run_all.main([*ARGS, "--results-dir", str(tmp_path), "--workers", "1"]) == 130
    before = _finished(tmp_path)
    assert set(before) == set(RUNS[:2]) and _summary(tmp_path, RUNS[2])["status"] == "interrupted"
    monkeypatch.setattr(ImageClassifier, "training_step", original)
    assert signal.getsignal(signal.SIGINT) is handler                  # main put the handler back
    assert run_all.main([*ARGS, "--results-dir", str(tmp_path), "--workers", "1"]) == 0
    _kept(before, tmp_path)
    assert _summary(tmp_path, RUNS[2])["attempt"] == 1 and set(_finished(tmp_path)) == set(RUNS)


def _stops_cleanly_when_full(results: Path, code: int, err: str) -> None:
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 1 and len(errors) == 1 and "the disk is full" in errors[0] and "resume with" in errors[0]
    assert "Traceback" not in err
    _consistent(results)
    for rid in RUNS:   # nothing charged: a run without a finished result has no failed attempt
        path = results / "runs" / rid / "summary.json"
        assert not path.exists() or _summary(results, rid)["status"] in (*ledger.DONE, "interrupted")


def test_a_full_disk_stops_the_grid_with_one_message(tmp_path, monkeypatch, capsys):
    """ENOSPC injected into every write once three runs have finished (as a disk filling up would)."""
    write = storage.write_atomic

    def filling(path, text):
        if len(_finished(tmp_path)) >= 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        write(path, text)

    monkeypatch.setattr(storage, "write_atomic", filling)
    code = run_all.main([*ARGS, "--results-dir", str(tmp_path), "--workers", "1"])
    _stops_cleanly_when_full(tmp_path, code, capsys.readouterr().err)
    before = _finished(tmp_path)
    assert len(before) == 3
    monkeypatch.setattr(storage, "write_atomic", write)
    assert run_all.main([*ARGS, "--results-dir", str(tmp_path), "--workers", "1"]) == 0
    _kept(before, tmp_path)
    assert set(_finished(tmp_path)) == set(RUNS)


def _mount_tmpfs(path: Path, size: str, remount: bool = False) -> bool:
    opts = f"remount,size={size}" if remount else f"size={size}"
    return subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True).returncode == 0


@pytest.mark.slow
def test_a_small_full_filesystem_stops_the_grid_and_a_rerun_after_freeing_space_finishes(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    if os.geteuid() != 0 or not _mount_tmpfs(results, "160k"):
        pytest.skip("mounting a tmpfs needs root here; test_a_full_disk_stops_the_grid_with_one_message "
                    "covers the same path with injected ENOSPC")
    try:
        proc = _grid(results, "--workers", "2")
        out, err = proc.communicate(timeout=300)
        _stops_cleanly_when_full(results, proc.returncode, err)
        before = _finished(results)
        assert 0 < len(before) < len(RUNS)
        assert _mount_tmpfs(results, "16m", remount=True)
        assert run_all.main([*ARGS, "--results-dir", str(results), "--workers", "1"]) == 0
        _kept(before, results)
        assert set(_finished(results)) == set(RUNS)
    finally:
        subprocess.run(["umount", "-l", str(results)], capture_output=True)


def test_a_dry_run_writes_nothing_and_the_report_still_reads_every_result(tmp_path, capsys):
    assert run_all.main([*ARGS, "--results-dir", str(tmp_path), "--workers", "1"]) == 0

    def snapshot() -> dict:
        return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file()}

    before = snapshot()
    other = ["--study", "optimizers", "--epochs", "2", "--seeds", "2", "--wandb-mode", "disabled", "--dry-run"]
    assert run_all.main([*other, "--results-dir", str(tmp_path)]) == 0
    assert run_all.main([*other, "--results-dir", str(tmp_path / "new")]) == 0
    assert snapshot() == before and not (tmp_path / "new").exists()
    capsys.readouterr()
    assert run_all.main(["--report-only", "--results-dir", str(tmp_path)]) == 0
    assert all(f"activation={a}" in capsys.readouterr().out for a in ("tanh",))
    from reports import runs_table
    assert set(runs_table(tmp_path).run_id) == set(RUNS)   # every earlier result is still in the report
