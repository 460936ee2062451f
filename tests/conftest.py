import os

import pytest
import torch

# Tests must never reach for the network or a W&B account.
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture(scope="session")
def digits_batch():
    """256 real digits images, standardized per pixel-channel, with labels (no datamodule involved)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images[:256], dtype=torch.float32).unsqueeze(1) / 16.0
    x = (x - x.mean()) / x.std()
    return x, torch.tensor(d.target[:256])
