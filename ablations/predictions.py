"""Class probabilities of a finished run, kept for ensembles (lecture 7: average the softmax of models).

<run_dir>/predictions.npz (written once, after the test, before summary.json; atomically):
    val_probs  (n_val, C) float16     val_labels  (n_val,)     softmax of the final (or averaged) weights
    test_probs (n_test, C) float16    test_labels (n_test,)
  and, for cyclic schedules (schedule.cycles > 1), the snapshot at the end of each cycle (Huang et al.):
    snapshot_val_probs (K, n_val, C)  snapshot_test_probs (K, n_test, C)  snapshot_steps (K,)
Validation and test splits depend only on the data config (fixed split seed), so runs of one variant
that differ by seed predict the same examples in the same order; reports check the labels agree.
"""
from __future__ import annotations

import io
import math
from pathlib import Path

import lightning as L
import numpy as np
import torch

from .storage import write_atomic


@torch.no_grad()
def predict(module: torch.nn.Module, loader) -> tuple[np.ndarray, np.ndarray]:
    """Softmax probabilities (float16) and labels of every batch of `loader`, in eval mode."""
    was_training = module.training
    module.eval()
    probs, labels = [], []
    for x, y in loader:
        probs.append(torch.softmax(module(x).float(), dim=1).cpu())
        labels.append(y.cpu())
    module.train(was_training)
    return torch.cat(probs).numpy().astype(np.float16), torch.cat(labels).numpy()


def split_predictions(module: torch.nn.Module, datamodule) -> dict[str, np.ndarray]:
    out = {}
    for split, loader in (("val", datamodule.val_dataloader()), ("test", datamodule.test_dataloader())):
        out[f"{split}_probs"], out[f"{split}_labels"] = predict(module, loader)
    return out


class Snapshots(L.Callback):
    """Predictions of the weights at the end of each of the schedule's `cycles` (snapshot ensembles).

    A post-step hook on the optimizer counts optimizer steps, so the snapshot is taken after the last
    step of each cycle (where the cyclic lr is lowest), whatever `data.steps_per_call` is.  The module's
    LambdaLR gives step i the lr at progress i / total, so cycle k ends after ceil(k * total / cycles).
    """

    def __init__(self, cycles: int):
        self.cycles = cycles
        self.taken: list[dict[str, np.ndarray]] = []
        self.steps: list[int] = []
        self._count, self._at, self._handle = 0, set(), None
        self._module = self._datamodule = None

    def on_train_start(self, trainer, module) -> None:
        total = max(1, trainer.max_epochs * trainer.train_dataloader.num_steps)
        self._at = {math.ceil(k * total / self.cycles) for k in range(1, self.cycles + 1)}
        self._module, self._datamodule = module, trainer.datamodule
        self._handle = trainer.optimizers[0].register_step_post_hook(self._after_step)

    def _after_step(self, optimizer, args, kwargs) -> None:
        self._count += 1
        if self._count in self._at:
            self.taken.append(split_predictions(self._module, self._datamodule))
            self.steps.append(self._count)

    def on_train_end(self, trainer, module) -> None:
        if self._handle is not None:
            self._handle.remove()


def prediction_callbacks(schedule_cfg) -> list[Snapshots]:
    """A Snapshots callback for cyclic schedules ([] otherwise: no cost per step)."""
    return [Snapshots(schedule_cfg.cycles)] if schedule_cfg.cycles > 1 else []


def save_predictions(path: Path, module: torch.nn.Module, datamodule, callbacks=()) -> None:
    """Write the final val/test predictions of `module`, plus any snapshots, to `path` atomically."""
    arrays = split_predictions(module, datamodule)
    for snap in (c for c in callbacks if isinstance(c, Snapshots) and c.taken):
        for key in ("val_probs", "test_probs"):
            arrays[f"snapshot_{key}"] = np.stack([t[key] for t in snap.taken])
        arrays["snapshot_steps"] = np.asarray(snap.steps)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_atomic(Path(path), buf.getvalue())
