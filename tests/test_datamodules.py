"""Tests of the data side: dataset registry, preprocessing, augmentation, splits and the TensorLoader.

Tests are parametrized over the registries, so a newly registered dataset, preprocessor or
augmentation is covered without editing this file.
"""
from __future__ import annotations

import dataclasses
import threading
import time

import lightning as L
import pytest
import torch

from datamodules import (AUGMENTATIONS, DATASETS, PREPROCESSORS, DataConfig, DataUnavailableError,
                         ImageDataModule, TensorLoader, build_augmentation, build_preprocessor,
                         load_dataset)
from datamodules import datamodule as datamodule_module
from datamodules import datasets as datasets_module
from lit_modules.config_tools import config_hash
from lit_modules.registry import ConfigError

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
RANDOM_AUGMENTATIONS = [n for n in AUGMENTATIONS.names() if not build_augmentation(n).is_identity]
FETCHED = [n for n in DATASETS.names() if not DATASETS.get(n).bundled]   # can be missing


@pytest.fixture(scope="module")
def digits_dm() -> ImageDataModule:
    dm = ImageDataModule(DataConfig(name="digits"), seed=0)
    dm.prepare_data()
    dm.setup("fit")
    return dm


# ---------------------------------------------------------------- datasets

@pytest.mark.parametrize("name, n_train, n_test", [("digits", 1438, 359),
                                                   ("fashion_mnist", 60000, 10000)])
def test_offline_datasets_load(name, n_train, n_test):
    # Fashion-MNIST comes from the Debian package in CI: a missing package must fail this test.
    spec, raw = DATASETS.get(name), load_dataset(name)
    assert raw.x_train.shape == (n_train, *spec.in_shape)
    assert raw.x_test.shape == (n_test, *spec.in_shape)
    assert raw.x_train.dtype == torch.float32 and raw.y_train.dtype == torch.int64
    assert 0.0 <= raw.x_train.min() and raw.x_train.max() == 1.0
    assert set(raw.y_train.tolist()) == set(range(spec.num_classes)) == set(raw.y_test.tolist())
    assert load_dataset(name) is raw    # decoded once per process


def test_digits_test_split_is_fixed():
    first = load_dataset("digits")
    load_dataset.cache_clear()
    again = load_dataset("digits")
    assert first is not again and torch.equal(first.y_test, again.y_test)
    assert torch.equal(first.x_test, again.x_test)


@pytest.mark.parametrize("name", DATASETS.names())
def test_missing_data_fails_fast(name, tmp_path, monkeypatch):
    monkeypatch.setitem(datasets_module.SYSTEM_DATA_DIRS, name, (tmp_path / "not-installed",))
    spec = DATASETS.get(name)
    start = time.monotonic()
    if spec.bundled:   # ships with a Python package: there is nothing to be missing
        assert load_dataset(name, data_dir=tmp_path, download=False).x_train.shape[1:] == spec.in_shape
        return
    with pytest.raises(DataUnavailableError) as err:
        load_dataset(name, data_dir=tmp_path, download=False)
    assert time.monotonic() - start < 5
    message = str(err.value)
    assert repr(name) in message and str(tmp_path) in message and spec.how_to_get in message
    assert "data.data_dir=" in message
    assert isinstance(err.value, ConfigError)


def test_fashion_mnist_message_names_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setitem(datasets_module.SYSTEM_DATA_DIRS, "fashion_mnist", (tmp_path / "missing",))
    with pytest.raises(DataUnavailableError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion_mnist", data_dir=tmp_path, download=False)


@pytest.mark.parametrize("name", FETCHED)
def test_unreachable_download_host_fails_fast(name, tmp_path, monkeypatch):
    monkeypatch.setitem(datasets_module.SYSTEM_DATA_DIRS, name, ())
    calls = []

    def refuse(address, timeout=None):
        calls.append(address)
        raise OSError("network is unreachable")

    monkeypatch.setattr(datasets_module.socket, "create_connection", refuse)
    start = time.monotonic()
    with pytest.raises(DataUnavailableError, match="could not be reached"):
        load_dataset(name, data_dir=tmp_path, download=True)
    assert time.monotonic() - start < 5 and calls
    assert not any(tmp_path.iterdir())   # nothing was downloaded


def test_hanging_probe_is_cut_off(tmp_path, monkeypatch):
    """A DNS lookup that never returns (not covered by the socket timeout) still fails fast."""
    release = threading.Event()

    def stall(address, timeout=None):
        release.wait(30)
        raise OSError("name resolution gave up")

    monkeypatch.setattr(datasets_module.socket, "create_connection", stall)
    monkeypatch.setattr(datasets_module, "PROBE_TIMEOUT_S", 0.2)
    start = time.monotonic()
    try:
        with pytest.raises(DataUnavailableError):
            load_dataset("cifar10", data_dir=tmp_path, download=True)
    finally:
        release.set()
    assert time.monotonic() - start < 2


def test_unknown_dataset_lists_choices():
    with pytest.raises(ConfigError, match="unknown dataset 'nope'; valid choices: digits"):
        load_dataset("nope")


# ---------------------------------------------------------------- preprocessing

@pytest.mark.parametrize("name", PREPROCESSORS.names())
def test_preprocessor_fits_on_train_only(name, monkeypatch):
    dm = ImageDataModule(DataConfig(name="digits", preprocess=name))
    dm.setup("fit")
    fresh = build_preprocessor(name).fit(dm.x_train)
    out = dm.preprocessor(dm.x_val)
    assert out.shape == dm.x_val.shape and out.dtype == torch.float32
    assert torch.allclose(out, fresh(dm.x_val), atol=1e-5)
    # Replace every validation and test image by noise: the fitted statistics must not move.
    raw = load_dataset("digits")
    x_train = raw.x_train.clone()
    x_train[dm.val_indices] = torch.rand_like(x_train[dm.val_indices])
    noisy = raw._replace(x_train=x_train, x_test=torch.rand_like(raw.x_test))
    monkeypatch.setattr(datamodule_module, "load_dataset", lambda *args: noisy)
    other = ImageDataModule(dm.cfg)
    other.setup("fit")
    assert not torch.equal(other.x_val, dm.x_val) and torch.equal(other.x_train, dm.x_train)
    stats = {k: v for k, v in vars(dm.preprocessor).items() if isinstance(v, torch.Tensor)}
    assert stats.keys() == {k for k, v in vars(other.preprocessor).items() if isinstance(v, torch.Tensor)}
    for key, value in stats.items():
        assert torch.equal(value, getattr(other.preprocessor, key)), key
    assert dm.preprocessor.to("cpu") is dm.preprocessor


def test_centering_and_standardizing(digits_dm):
    x = digits_dm.x_train
    image_mean = build_preprocessor("center_image").fit(x)(x).mean(dim=0)
    assert image_mean.abs().max() < 1e-5
    channel_mean = build_preprocessor("center_channel").fit(x)(x).mean(dim=(0, 2, 3))
    assert channel_mean.abs().max() < 1e-5
    rgb = torch.rand(500, 3, 6, 6) * torch.tensor([0.2, 1.0, 3.0]).view(1, 3, 1, 1) + 5
    out = build_preprocessor("standardize").fit(rgb)(rgb)
    assert torch.allclose(out.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(out.std(dim=(0, 2, 3), correction=0), torch.ones(3), atol=1e-4)


def _covariance(x: torch.Tensor) -> torch.Tensor:
    flat = x.flatten(1).double()
    flat = flat - flat.mean(dim=0)
    return flat.T @ flat / (len(flat) - 1)


@pytest.mark.parametrize("name", ["pca_whiten", "zca_whiten"])
def test_whitening_gives_identity_on_the_data_span(name, digits_dm):
    x = digits_dm.x_train
    cov = _covariance(build_preprocessor(name).fit(x)(x))
    # Digits have always-zero pixels: the whitened covariance is a projection, not the identity.
    assert torch.allclose(cov @ cov, cov, atol=1e-3)
    eig = torch.linalg.eigvalsh(cov)
    assert ((eig - 0).abs() < 1e-3).logical_or((eig - 1).abs() < 1e-3).all()
    assert 50 <= int((eig > 0.5).sum()) < 64


@pytest.mark.parametrize("name", ["pca_whiten", "zca_whiten"])
def test_whitening_full_rank_gaussian(name):
    g = torch.Generator().manual_seed(0)
    # Strongly correlated but full rank: standard deviations from 0.1 to 10 along random axes.
    rotation, _ = torch.linalg.qr(torch.randn(48, 48, generator=g))
    mixing = torch.diag(torch.logspace(-1, 1, 48)) @ rotation
    x = (torch.randn(4000, 48, generator=g) @ mixing + 3).view(4000, 3, 4, 4)
    cov = _covariance(build_preprocessor(name).fit(x)(x))
    assert torch.allclose(cov, torch.eye(48, dtype=torch.float64), atol=2e-3)


# ---------------------------------------------------------------- augmentation

def _images(shape, n=16, seed=0, device="cpu"):
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed)).to(device)


def _gen(seed, device="cpu"):
    return torch.Generator(device=device).manual_seed(seed)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("name", RANDOM_AUGMENTATIONS)
def test_augmentation_output_and_per_sample_randomness(name, shape, device):
    aug = build_augmentation(name)
    one = _images(shape, n=1, device=device)
    batch = one.expand(32, *shape).contiguous()
    out = aug(batch, _gen(1, device))
    assert out.shape == batch.shape and out.dtype == torch.float32 and out.device == batch.device
    assert out.min() >= 0 and out.max() <= 1 and torch.isfinite(out).all()
    # Identical inputs must come out differently: parameters are drawn per image, not per batch.
    assert len(torch.unique(out.flatten(1), dim=0)) >= 2
    assert torch.equal(out, aug(batch, _gen(1, device)))
    assert not torch.equal(out, aug(batch, _gen(2, device)))


def test_flip_and_crop_are_what_they_say():
    x = _images((3, 32, 32), n=64)
    flipped = build_augmentation("flip")(x, _gen(0))
    is_flipped = (flipped == x.flip(-1)).flatten(1).all(1)
    assert ((flipped == x).flatten(1).all(1) | is_flipped).all() and 10 < int(is_flipped.sum()) < 54
    cropped = build_augmentation("crop")(x, _gen(0))
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(len(x)):   # slow reference: each output is some 32x32 window of the padded image
        windows = padded[i].unfold(1, 32, 1).unfold(2, 32, 1)           # (C, 9, 9, 32, 32)
        assert (windows == cropped[i][:, None, None]).flatten(3).all(-1).all(0).any()


def test_cutout_and_color_jitter_on_gray():
    x = _images((1, 28, 28), n=64) * 0.9 + 0.05   # no exact zeros in the input
    holes = (build_augmentation("cutout")(x, _gen(0)) == 0).flatten(1).sum(1)
    assert (holes > 0).all() and (holes <= 14 * 14).all() and (holes == 14 * 14).any()
    gray = torch.full((8, 1, 4, 4), 0.5)
    jittered = build_augmentation("color_jitter")(gray, _gen(0))
    assert len(torch.unique(jittered)) > 1   # brightness still varies on 1-channel images


def test_augmentation_combos_and_identity():
    x = _images((3, 32, 32))
    none = build_augmentation("none")
    assert none.is_identity and none(x, _gen(0)) is x
    assert not build_augmentation("none+flip").is_identity
    combo = build_augmentation("flip+crop+scale+color_jitter+cutout")
    out = combo(x, _gen(0))
    assert out.shape == x.shape and torch.equal(out, combo(x, _gen(0)))
    assert DataConfig(augment="flip+crop").augment == "flip+crop"


def test_unknown_augmentation_lists_choices():
    with pytest.raises(ConfigError, match="unknown augmentation 'foo'; valid choices: none, flip"):
        build_augmentation("flip+foo")
    with pytest.raises(ConfigError, match="augment: unknown augmentation 'foo'"):
        DataConfig(augment="crop+foo")


# ---------------------------------------------------------------- config

@pytest.mark.parametrize("changes, words", [
    ({"batch_size": 0}, ["batch_size", "0"]),
    ({"eval_batch_size": -1}, ["eval_batch_size", "-1"]),
    ({"val_fraction": 1.5}, ["val_fraction", "1.5"]),
    ({"val_fraction": 0.0}, ["val_fraction", "0.0"]),
    ({"train_size": 0}, ["train_size", "0"]),
    ({"split_seed": -3}, ["split_seed", "-3"]),
    ({"name": "imagenet"}, ["name", "'imagenet'", "valid choices"]),
    ({"preprocess": "whiten"}, ["preprocess", "'whiten'", "zca_whiten"]),
    ({"batch_size": "many"}, ["batch_size", "'many'"]),
])
def test_data_config_rejects_bad_values(changes, words):
    with pytest.raises(ConfigError) as err:
        DataConfig(**changes)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_data_config_coerces_and_hashes_without_paths():
    cfg = DataConfig(batch_size="64", train_size="none", download="false")
    assert (cfg.batch_size, cfg.train_size, cfg.download) == (64, None, False)
    assert config_hash(DataConfig(data_dir="/a")) == config_hash(DataConfig(data_dir="/b", download=False))
    assert config_hash(DataConfig()) != config_hash(DataConfig(split_seed=1))


# ---------------------------------------------------------------- splits and the DataModule

def test_val_split_is_fixed_and_disjoint(digits_dm):
    other = ImageDataModule(DataConfig(name="digits"), seed=123)
    other.setup("fit")
    assert torch.equal(other.val_indices, digits_dm.val_indices)
    assert torch.equal(other.x_val, digits_dm.x_val)
    assert (len(other.val_indices), len(other.train_indices)) == (144, 1438 - 144)
    assert not set(other.val_indices.tolist()) & set(other.train_indices.tolist())
    moved = ImageDataModule(DataConfig(name="digits", split_seed=1))
    moved.setup("fit")
    assert not torch.equal(moved.val_indices, digits_dm.val_indices)
    assert (digits_dm.num_classes, digits_dm.in_shape) == (10, (1, 8, 8))


def test_train_size_subset_is_nested_and_checked(digits_dm):
    subsets = {}
    for size in (100, 300):
        dm = ImageDataModule(DataConfig(name="digits", train_size=size), seed=size)
        dm.setup("fit")
        assert len(dm.x_train) == size and torch.equal(dm.val_indices, digits_dm.val_indices)
        subsets[size] = set(dm.train_indices.tolist())
    assert subsets[100] < subsets[300] <= set(digits_dm.train_indices.tolist())
    with pytest.raises(ConfigError, match="train_size: 5000 .* 1294 training samples"):
        ImageDataModule(DataConfig(name="digits", train_size=5000)).setup("fit")


def _epoch_ids(loader):
    return torch.cat([yb for _, yb in loader]).tolist()


def test_loader_epochs_cover_data_and_reproduce():
    n = 103
    x, y = torch.arange(n).float().view(n, 1, 1, 1), torch.arange(n)
    loader = TensorLoader(x, y, 10, shuffle=True, seed=7, preprocess=lambda t: 2 * t)
    assert len(loader) == 11
    epochs = [_epoch_ids(loader) for _ in range(3)]
    assert all(sorted(e) == list(range(n)) for e in epochs)
    assert epochs[0] != epochs[1] != epochs[2]
    again = TensorLoader(x, y, 10, shuffle=True, seed=7)
    assert [_epoch_ids(again) for _ in range(3)] == epochs
    assert _epoch_ids(TensorLoader(x, y, 10, shuffle=True, seed=8)) != epochs[0]
    xb, yb = next(iter(loader))
    assert torch.equal(xb.flatten(), 2 * yb.float())   # preprocessing applied to the right rows
    assert len(TensorLoader(x, y, 10, shuffle=True, seed=0, drop_last=True)) == 10
    assert _epoch_ids(TensorLoader(x, y, 64, shuffle=False, seed=0)) == list(range(n))


def test_loader_ddp_shards_are_disjoint_and_equal():
    n, world = 100, 3
    x, y = torch.zeros(n, 1, 2, 2), torch.arange(n)
    shards = [_epoch_ids(TensorLoader(x, y, 8, shuffle=True, seed=3, rank=r, world_size=world))
              for r in range(world)]
    assert all(len(s) == n // world for s in shards)
    assert len(set().union(*map(set, shards))) == world * (n // world)


@pytest.mark.parametrize("device", DEVICES)
def test_loader_augments_per_batch_on_device(device):
    x = torch.rand(1, 3, 8, 8).expand(40, 3, 8, 8).to(device)
    loader = TensorLoader(x, torch.zeros(40, dtype=torch.long, device=device), 20, shuffle=True,
                          seed=0, augment=build_augmentation("crop+flip"))
    first, second = (torch.cat([xb for xb, _ in loader]) for _ in range(2))
    assert first.device.type == device and not torch.equal(first, second)
    replay = TensorLoader(x, torch.zeros(40, dtype=torch.long, device=device), 20, shuffle=True,
                          seed=0, augment=build_augmentation("crop+flip"))
    assert torch.equal(torch.cat([xb for xb, _ in replay]), first)


def test_full_batch_and_eval_loaders(digits_dm):
    full = ImageDataModule(DataConfig(name="digits", eval_batch_size=100), full_batch=True)
    full.setup("fit")
    train = full.train_dataloader()
    (group,) = list(train)
    assert len(train) == 1 and len(group) == 1 and len(group[0][0]) == len(full.x_train)
    val = full.val_dataloader()
    assert len(val) == 2 and torch.equal(torch.cat([yb for _, yb in val]), full.y_val)
    steps = -(-1294 // 128)
    groups = digits_dm.train_dataloader()
    assert groups.num_steps == steps and len(groups) == -(-steps // digits_dm.cfg.steps_per_call)
    assert sum(len(g) for g in groups) == steps


class _TinyModel(L.LightningModule):
    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.net = torch.nn.Linear(in_features, num_classes)

    def _loss(self, batch):
        x, y = batch
        return torch.nn.functional.cross_entropy(self.net(x.flatten(1)), y)

    def training_step(self, batch, batch_idx):
        return sum(self._loss(b) for b in batch)  # a group of mini-batches (StepGroups)

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self._loss(batch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_trainer_accepts_the_datamodule():
    dm = ImageDataModule(DataConfig(name="digits", augment="flip+crop", batch_size=256, steps_per_call=2))
    model = _TinyModel(64, dm.num_classes)
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(model, datamodule=dm)
    assert trainer.num_training_batches == 3 and "val_loss" in trainer.callback_metrics
    assert dataclasses.asdict(dm.cfg)["augment"] == "flip+crop"
