"""Every bad input is refused before anything trains, with exit code 2 and one "error: ..." naming it."""
import os
import subprocess
from pathlib import Path

import pytest
import torch

import run_all
from ablations.__main__ import main as run_one
from lit_modules import ConfigError
from lit_modules.config_tools import flat_dict
from ablations.runner import baseline, resolve

GRID = ["--study", "activations", "--seeds", "1", "--epochs", "1", "--wandb-mode", "disabled"]
NOT_FINITE = "is not a finite number; NaN and infinity are not valid settings"
GPUS = torch.cuda.device_count()
# Without a GPU asking for one is the error; with GPUs, asking for one more than there are.
NO_GPU = (["--set", "trainer.accelerator=gpu"], "trainer.accelerator=gpu: this machine has no CUDA GPU") \
    if not GPUS else (["--set", "trainer.accelerator=gpu", "--set", f"trainer.devices={GPUS + 1}"],
                      f"trainer.devices={GPUS + 1}: this machine has {GPUS} CUDA GPU")

CASES = [   # (who, arguments, expected message)
    ("grid", ["--set", "optim.lr=nan"], f"optim.lr: nan {NOT_FINITE}"),
    ("grid", ["--set", "model.dropout=nan"], f"model.dropout: nan {NOT_FINITE}"),
    ("grid", ["--set", "optim.momentum=nan"], f"optim.momentum: nan {NOT_FINITE}"),
    ("grid", ["--set", "trainer.early_stop_factor=nan"], f"trainer.early_stop_factor: nan {NOT_FINITE}"),
    ("grid", ["--set", "optim.lr=inf"], f"optim.lr: inf {NOT_FINITE}"),
    ("grid", ["--set", "optim.lr=-inf"], f"optim.lr: -inf {NOT_FINITE}"),
    ("grid", ["--workers", "0"], "argument --workers: must be at least 1, got 0"),
    ("grid", ["--workers", "-1"], "argument --workers: must be at least 1, got -1"),
    ("grid", ["--max-attempts", "0"], "argument --max-attempts: must be at least 1, got 0"),
    ("grid", ["--max-attempts", "-1"], "argument --max-attempts: must be at least 1, got -1"),
    ("grid", ["--seeds", "0"], "argument --seeds: must be at least 1, got 0"),
    ("grid", ["--epochs", "0"], "argument --epochs: must be at least 1, got 0"),
    ("grid", ["--devices", "0"], "argument --devices: must be at least 1, got 0"),
    ("grid", ["--workers", "two"], "argument --workers: expected a whole number, got 'two'"),
    ("grid", NO_GPU[0], NO_GPU[1]),
    ("grid", ["--set", "model.width=1000000000000"], "model.width=1000000000000: the model is too large"),
    ("grid", ["--set", "model.width=30000000"], "model.width=30000000: the model has 9e+14 parameters; its "
                                                "weights and gradients alone need"),
    ("grid", ["--results-dir", "{file}"], "--results-dir {file}: is a file, not a folder"),
    ("grid", ["--results-dir", "{read_only}"], "--results-dir {read_only}: cannot write there"),
    ("run", ["--config", "/nonexistent.json"], "--config /nonexistent.json: cannot read it (No such file"),
    ("run", ["--config", "{file}"], "--config {file}: not a JSON config"),
    ("run", ["--set", "optim.lr=nan"], f"optim.lr: nan {NOT_FINITE}"),
    ("run", NO_GPU[0], NO_GPU[1]),
    ("run", ["--set", "model.width=1000000000000"], "model.width=1000000000000: the model is too large"),
    ("run", ["--results-dir", "{file}"], "--results-dir {file}: is a file, not a folder"),
    ("run", ["--results-dir", "{read_only}"], "--results-dir {read_only}: cannot write there"),
]


@pytest.fixture
def paths(tmp_path):
    """A plain file, and a folder this process cannot write (a read-only tmpfs for root, who may
    write anywhere else; a folder without write permission for anyone else)."""
    file = tmp_path / "a_file"
    file.write_bytes(b"\xff not json")
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(read_only)], capture_output=True).returncode == 0
    if not mounted:
        read_only.chmod(0o555)
    yield {"file": str(file), "read_only": str(read_only), "mounted": mounted}
    if mounted:
        subprocess.run(["umount", "-l", str(read_only)], capture_output=True)
    read_only.chmod(0o755)


@pytest.mark.parametrize("who,args,message", CASES, ids=[" ".join(a) for _, a, _ in CASES])
def test_bad_input_is_refused_before_training_with_a_clear_message(who, args, message, paths, tmp_path, capsys):
    if "{read_only}" in args and os.geteuid() == 0 and not paths["mounted"]:
        pytest.skip("root writes through any permission and no read-only mount could be made here")
    args = [a.format(**paths) for a in args]
    message = message.format(**paths)
    results = [] if "--results-dir" in args else ["--results-dir", str(tmp_path / "results")]
    argv = [*GRID, *results, *args] if who == "grid" else [*results, *args]
    try:
        code = (run_all.main if who == "grid" else run_one)(argv)
    except SystemExit as e:        # argparse's own usage errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    assert message in err and "error: " in err, err
    assert not list(tmp_path.glob("results/runs/*"))     # nothing trained, nothing written


@pytest.mark.parametrize("key", [k for k, v in flat_dict(baseline()).items() if isinstance(v, float)])
def test_every_float_setting_refuses_nan_and_inf(key):
    for value in ("nan", "inf", float("nan"), float("-inf")):
        with pytest.raises(ConfigError, match=f"{key}: .*{NOT_FINITE}"):
            resolve({key: value})
