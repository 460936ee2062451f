import os

import pytest
import torch

# Tests must never reach for the network or a W&B account.
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` skip, saying why, where CUDA is absent; on a GPU machine they run like any
    other (a failure there is a failure, never a skip).  Their CPU halves are unmarked and run here."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU: torch.cuda.is_available() is False here "
                                   "(run benchmarks/gpu_check.sh on a machine with one)")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def digits_batch():
    """256 real digits images, standardized per pixel-channel, with labels (no datamodule involved)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images[:256], dtype=torch.float32).unsqueeze(1) / 16.0
    x = (x - x.mean()) / x.std()
    return x, torch.tensor(d.target[:256])
