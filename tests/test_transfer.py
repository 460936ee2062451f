"""Transfer learning: class subsets, checkpoints, modes, the cached source model and the real benefit."""
import threading
import time
import warnings

import lightning as L
import numpy as np
import pytest
import torch

from ablations import transfer
from ablations.ledger import RunLock, run_dir
from ablations.runner import resolve, run_id, train
from datamodules import DataConfig, ImageDataModule, load_dataset
from lit_modules import TRANSFER_MODES, CheckpointError, ConfigError, ModelConfig, build_network, load_body

# Target digits 5-9 from a source trained on digits 0-4; tiny so each run takes about a second.
TINY = {"data.classes": (5, 6, 7, 8, 9), "transfer.source_classes": (0, 1, 2, 3, 4), "data.train_size": 60,
        "trainer.max_epochs": 3, "transfer.source_epochs": 3, "model.width": 32}


def tiny(**changes):
    return resolve({**TINY, **{k.replace("__", "."): v for k, v in changes.items()}})


class Probe(L.Callback):
    """Records the network before and after fit, and the optimizer's groups as training starts."""

    def on_train_start(self, trainer, module):
        self.before = {k: v.clone() for k, v in module.net.state_dict().items()}
        names = {id(p): n for n, p in module.net.named_parameters()}
        self.groups = [(g["lr"], {names[id(p)] for p in g["params"]}) for g in trainer.optimizers[0].param_groups]

    def on_train_end(self, trainer, module):
        self.after = {k: v.clone() for k, v in module.net.state_dict().items()}
        self.end_lrs = [g["lr"] for g in trainer.optimizers[0].param_groups]

    def changed(self):
        return {k for k in self.before if not torch.equal(self.before[k], self.after[k])}


# ---------------------------------------------------------------- class subsets

def test_class_subset_remaps_labels_and_keeps_splits_consistent():
    full = ImageDataModule(DataConfig())
    full.setup()
    sub = ImageDataModule(DataConfig(classes=(7, 3)))
    sub.setup()
    raw = load_dataset("digits")
    assert sub.num_classes == 2
    for y in (sub.y_train, sub.y_val, sub.y_test):
        assert set(y.tolist()) == {0, 1}
    # Validation = the full validation set's images of those classes, relabelled in the given order.
    assert set(sub.val_indices.tolist()) == {int(i) for i in full.val_indices if int(raw.y_train[i]) in (7, 3)}
    assert torch.equal(raw.y_train[sub.val_indices], torch.tensor([7, 3])[sub.y_val])
    assert not set(sub.train_indices.tolist()) & set(full.val_indices.tolist())
    # Every test image of the two classes, none of the others.
    assert len(sub.y_test) == int(((raw.y_test == 7) | (raw.y_test == 3)).sum())
    assert torch.equal(sub.x_test[sub.y_test == 0], raw.x_test[raw.y_test == 7])
    small = ImageDataModule(DataConfig(classes=(7, 3), train_size=20))
    small.setup()
    assert torch.equal(small.train_indices, sub.train_indices[:20])   # nested, as without classes


@pytest.mark.parametrize("classes, words", [
    ((4,), "fewer than two"), ((3, 10), "not a class of 'digits'"), ((2, 2), "more than once"),
    ((-1, 2), "valid class ids: 0..9")])
def test_bad_class_subsets_fail_with_clear_errors(classes, words):
    with pytest.raises(ConfigError, match=words):
        DataConfig(classes=classes)


def test_class_subset_from_the_command_line():
    assert resolve({"data.classes": "5,6,7"}).data.classes == (5, 6, 7)
    assert resolve({"data.classes": "none"}).data.classes is None


# ---------------------------------------------------------------- checkpoints

def _net(width=16):
    return build_network(ModelConfig(width=width, norm="batch"), (1, 8, 8), 5)


def test_checkpoint_round_trip_with_weights_only(tmp_path):
    src, dst = _net(), _net()
    torch.save(src.state_dict(), tmp_path / "w.pt")
    load_body(dst, tmp_path / "w.pt")
    for k, v in src.body.state_dict().items():
        assert torch.equal(v, dst.body.state_dict()[k])
    assert not torch.equal(src.head.weight, dst.head.weight)   # the classifier is not transferred


@pytest.mark.parametrize("content, words", [
    (b"not a checkpoint at all", "could not be read"),
    ({"body.1.weight": 3}, "plain state_dict"),
])
def test_corrupt_checkpoints_name_the_file_and_problem(tmp_path, content, words):
    path = tmp_path / "bad.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(CheckpointError, match=words) as err:
        load_body(_net(), path)
    assert str(path) in str(err.value)


def test_truncated_checkpoint_is_reported(tmp_path):
    path = tmp_path / "cut.pt"
    torch.save(_net().state_dict(), path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=f"{path}.*could not be read"):
        load_body(_net(), path)


def test_mismatched_checkpoints_list_keys_and_shapes(tmp_path):
    path = tmp_path / "w.pt"
    torch.save(_net(width=16).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"shape mismatch 1.weight: checkpoint \(16, 64\) vs network "
                                              r"\(32, 64\)") as err:
        load_body(_net(width=32), path)
    assert str(path) in str(err.value)
    state = _net().state_dict()
    del state["body.1.bias"]
    state["body.9.weight"] = torch.zeros(1)
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="missing keys 1.bias; unexpected keys 9.weight"):
        load_body(_net(), path)


# ---------------------------------------------------------------- modes

@pytest.mark.parametrize("mode", TRANSFER_MODES.names())
def test_each_mode_trains_exactly_its_parameters(mode, tmp_path):
    cfg = tiny(transfer__mode=mode, model__norm="batch", model__depth=2)
    probe = Probe()
    summary = train(cfg, tmp_path, callbacks=[probe])
    assert summary["status"] == "completed", summary.get("error")
    spec = TRANSFER_MODES.get(mode)
    net = build_network(cfg.model, (1, 8, 8), 5)   # same structure: names of what the mode freezes
    frozen_modules = spec.frozen(net.body, cfg.transfer.top_layers)
    ids = {id(t) for m in frozen_modules for t in m.state_dict(keep_vars=True).values()}
    frozen = {k for k, t in net.state_dict(keep_vars=True).items() if id(t) in ids}
    changed = probe.changed()
    assert not frozen & changed, f"{mode} changed frozen weights {frozen & changed}"
    trainable = {k for k, _ in net.named_parameters()} - frozen
    assert trainable <= changed, f"{mode} left {trainable - changed} untrained"
    if spec.pretrained:   # the body started from the source's weights
        source = torch.load(next((tmp_path / "checkpoints").glob("*.pt")), weights_only=True)
        assert all(torch.equal(probe.before[k], source[k]) for k in probe.before if k.startswith("body."))
    if mode == "linear":
        assert {n for _, names in probe.groups for n in names} == {"head.weight", "head.bias"}


def test_finetune_all_trains_the_body_at_a_tenth_of_the_rate(tmp_path):
    cfg = tiny(transfer__mode="finetune_all", schedule__name="step")   # 0.01x by the end
    probe = Probe()
    assert train(cfg, tmp_path, callbacks=[probe])["status"] == "completed"
    lrs = {n: lr for lr, names in probe.groups for n in names}
    assert lrs["head.weight"] == lrs["head.bias"] == pytest.approx(cfg.optim.lr)
    body = [n for n in lrs if n.startswith("body.")]
    assert body and all(lrs[n] == pytest.approx(0.1 * cfg.optim.lr) for n in body)
    assert probe.groups[0][0] == pytest.approx(cfg.optim.lr)   # the logged lr is the head's
    head_end, body_end = probe.end_lrs[0], probe.end_lrs[-1]   # the schedule scales both groups alike
    assert head_end == pytest.approx(0.01 * cfg.optim.lr) and body_end == pytest.approx(0.1 * head_end)
    body_state = {n for n in probe.before if n.startswith("body.")}
    assert {n for n in probe.changed() if n.startswith("body.")} == body_state


# ---------------------------------------------------------------- the source model

def test_source_is_trained_once_and_shared_by_target_runs(tmp_path):
    first = train(tiny(transfer__mode="linear"), tmp_path)
    sid = run_id(transfer.source_config(tiny(transfer__mode="linear")))
    path = tmp_path / "checkpoints" / f"{sid}.pt"
    stamp = path.stat().st_mtime_ns
    second = train(tiny(transfer__mode="finetune_all", seed=1), tmp_path)
    assert first["status"] == second["status"] == "completed"
    assert path.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [f"{sid}.pt"]
    assert len(list((tmp_path / "runs").iterdir())) == 3   # two targets and the source's own run
    state = torch.load(path, weights_only=True)
    assert state["head.weight"].shape[0] == 5 and all(isinstance(v, torch.Tensor) for v in state.values())


def test_a_worker_waits_for_the_source_another_one_is_training(tmp_path):
    cfg = tiny(transfer__mode="linear")
    sid = run_id(transfer.source_config(cfg))
    done = {}
    with RunLock(run_dir(tmp_path, sid)) as got:   # "another worker" holds the source's lock
        assert got
        worker = threading.Thread(target=lambda: done.update(train(cfg, tmp_path)))
        worker.start()
        time.sleep(1.5)
        assert worker.is_alive() and not (tmp_path / "checkpoints").exists()
        (tmp_path / "checkpoints").mkdir()
        net = build_network(cfg.model, (1, 8, 8), 5)
        torch.save(net.state_dict(), tmp_path / "checkpoints" / f"{sid}.pt")
    worker.join(60)
    assert done["status"] == "completed"
    assert not (run_dir(tmp_path, sid) / "summary.json").exists()   # it used the file, trained nothing


def test_a_corrupt_cached_source_fails_the_run_before_training(tmp_path):
    cfg = tiny(transfer__mode="finetune_top")
    path = tmp_path / "checkpoints" / f"{run_id(transfer.source_config(cfg))}.pt"
    path.parent.mkdir()
    path.write_bytes(b"\x00garbage")
    summary = train(cfg, tmp_path)
    assert summary["status"] == "failed" and summary["epochs"] == 0
    assert str(path) in summary["error"] and "could not be read" in summary["error"]


def test_the_source_config_is_part_of_the_target_run_id():
    a, b = tiny(transfer__mode="linear"), tiny(transfer__mode="linear", transfer__source_epochs=4)
    assert run_id(a) != run_id(b)
    assert run_id(transfer.source_config(a)) == run_id(transfer.source_config(tiny(transfer__mode="finetune_all",
                                                                                    data__train_size=10, seed=2)))


@pytest.mark.parametrize("changes, words", [
    ({"transfer.mode": "frozen"}, "unknown transfer mode 'frozen'; valid choices: scratch, linear"),
    ({"transfer.body_lr_scale": 0}, "body_lr_scale"),
    ({"transfer.mode": "linear", "transfer.source_classes": (0, 12)}, r"source model's config\): data.classes"),
    ({"transfer.mode": "linear", "transfer.source_data": "fashion_mnist"}, r"\(1, 28, 28\).*one body"),
    ({"transfer.mode": "linear", "transfer.source": "imagenet_resnet18"}, "needs model.network='tv_resnet18'"),
])
def test_bad_transfer_configs_fail_before_training(changes, words):
    with pytest.raises(ConfigError, match=words):
        resolve(changes)


# ---------------------------------------------------------------- ImageNet weights from the hub cache

IMAGENET = {"transfer.mode": "linear", "transfer.source": "imagenet_resnet18", "model.network": "tv_resnet18",
            "data.name": "cifar10"}


def test_missing_imagenet_weights_fall_back_to_the_suite_source(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.warns(UserWarning, match=r"not in the torch hub cache.*using transfer.source='suite'"):
        cfg = resolve(IMAGENET)
    assert cfg.transfer.source == "suite"
    with pytest.raises(CheckpointError, match="not in the torch hub cache"):
        transfer.SOURCES.get("imagenet_resnet18").checkpoint(resolve(IMAGENET), tmp_path)


def test_cached_imagenet_weights_load_into_the_resnet18_body(tmp_path, monkeypatch):
    from torchvision.models import resnet18
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    reference = resnet18()
    (tmp_path / "checkpoints").mkdir()
    torch.save(reference.state_dict(), tmp_path / "checkpoints" / "resnet18-f37072fd.pth")
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # no fallback warning: the weights are there
        cfg = resolve(IMAGENET)
    weights = transfer.pretrained_weights(cfg, tmp_path)
    net = build_network(cfg.model, (3, 32, 32), 10)
    load_body(net, weights, prefix="", ignore=("fc.",))
    assert torch.equal(net.body.conv1.weight, reference.conv1.weight)
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    gray = build_network(ModelConfig(network="tv_resnet18"), (1, 28, 28), 10)
    with pytest.raises(CheckpointError, match=r"conv1.weight: checkpoint \(64, 3, 7, 7\)"):
        load_body(gray, weights, prefix="", ignore=("fc.",))


# ---------------------------------------------------------------- the lecture's claim, for real

def test_pretrained_features_beat_scratch_with_ten_target_images(tmp_path):
    """The study's setting (512-unit MLP, digits 0-4 -> 5-9, 10 target images), 3 seeds."""
    base = {"data.classes": (5, 6, 7, 8, 9), "transfer.source_classes": (0, 1, 2, 3, 4),
            "data.train_size": 10, "model.depth": 1, "model.width": 512}
    acc = {mode: [train(resolve({**base, "transfer.mode": mode, "seed": s}), tmp_path)["test_acc"]
                  for s in range(3)] for mode in ("scratch", "linear")}
    assert np.mean(acc["linear"]) > np.mean(acc["scratch"]) + 0.02, acc

