"""Dataset registry: name -> how to load the raw tensors, plus what a model needs to know up front.

Every loader returns the official train and test splits as float32 NCHW tensors in [0, 1] and int64
labels; splitting off validation, subsetting and preprocessing happen later, in the DataModule.
Decoding is cached per process, so a worker that runs many ablation runs reads the files once.

Missing data must fail fast and say what to do.  Nothing here may hang on a machine without internet:
a download is attempted only after a short socket probe of the download host succeeds.
"""
from __future__ import annotations

import functools
import gzip
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple
from urllib.parse import urlparse

import numpy as np
import torch

from lit_modules.registry import ConfigError, Registry

DEFAULT_ROOT = Path.home() / ".cache" / "cs231n-ablations" / "data"
PROBE_TIMEOUT_S = 3.0

# Places where a system package installs a dataset; looked up at call time so tests can patch them.
SYSTEM_DATA_DIRS: dict[str, tuple[Path, ...]] = {
    "fashion_mnist": (Path("/usr/share/datasets/fashion-mnist"),),
}


class DataUnavailableError(ConfigError):
    """The dataset's files are not on this machine and cannot be fetched now."""


class RawData(NamedTuple):
    x_train: torch.Tensor   # float32 (N, C, H, W) in [0, 1]
    y_train: torch.Tensor   # int64 (N,)
    x_test: torch.Tensor
    y_test: torch.Tensor


@dataclass(frozen=True)
class DatasetSpec:
    load: Callable[[Path | None, bool], RawData]
    num_classes: int
    in_shape: tuple[int, int, int]   # (C, H, W): lets a model be built before any data is read
    how_to_get: str                  # appended to every "data missing" error
    bundled: bool = False            # ships inside a Python package, so it can never be missing


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def load_dataset(name: str, data_dir: str | Path | None = None, download: bool = True) -> RawData:
    DATASETS.check(name)
    return _load_cached(name, None if data_dir is None else str(data_dir), bool(download))


@functools.lru_cache(maxsize=None)
def _load_cached(name: str, data_dir: str | None, download: bool) -> RawData:
    # Exceptions are not cached, so a run after installing the data succeeds in the same process.
    return DATASETS.get(name).load(None if data_dir is None else Path(data_dir), download)


load_dataset.cache_clear = _load_cached.cache_clear  # type: ignore[attr-defined]


# ---------------------------------------------------------------- failing fast, never hanging

def _unavailable(name: str, looked_in: list[Path], reason: str) -> DataUnavailableError:
    places = ", ".join(str(p) for p in looked_in) or "(nowhere)"
    how = DATASETS.get(name).how_to_get
    return DataUnavailableError(f"dataset {name!r} is not available: {reason}. Looked in: {places}. "
                                f"To get it: {how}")


def host_reachable(url: str, timeout: float | None = None) -> bool:
    """True if a TCP connection to the URL's host opens within `timeout` seconds.

    The connect runs in a daemon thread because `socket.create_connection`'s timeout does not cover
    the DNS lookup, which can stall far longer on a machine without a resolver.
    """
    timeout = PROBE_TIMEOUT_S if timeout is None else timeout
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    ok = threading.Event()

    def connect() -> None:
        try:
            socket.create_connection((parsed.hostname, port), timeout=timeout).close()
            ok.set()
        except OSError:
            pass

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return ok.is_set()


def _ensure_can_download(name: str, urls: list[str], download: bool, looked_in: list[Path]) -> None:
    if not download:
        raise _unavailable(name, looked_in, "the files are missing and download=False")
    if not any(host_reachable(u) for u in urls):
        hosts = ", ".join(sorted({urlparse(u).hostname or u for u in urls}))
        reason = (f"the files are missing and the download host ({hosts}) could not be reached "
                  f"(probe timeout {PROBE_TIMEOUT_S:.0f} s)")
        raise _unavailable(name, looked_in, reason)


# ---------------------------------------------------------------- digits (bundled with scikit-learn)

def _load_digits(data_dir: Path | None, download: bool) -> RawData:
    from sklearn.datasets import load_digits
    digits = load_digits()
    x = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)   # values are 0..16
    y = torch.from_numpy(digits.target.astype(np.int64))
    # No official test split exists: a fixed random 20% keeps train/test identical on every machine.
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    n_test = len(y) // 5
    test, train = perm[:n_test], perm[n_test:]
    return RawData(x[train], y[train], x[test], y[test])


# ---------------------------------------------------------------- MNIST-format idx files

_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _read_idx(path: Path) -> np.ndarray:
    """Parse an idx file (optionally gzipped): magic (0, 0, dtype, ndim), ndim big-endian int32 dims."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataUnavailableError(f"{path} is not an unsigned-byte idx file")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4)
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims.tolist())


def _find_idx_files(folder: Path) -> list[Path] | None:
    found = []
    for stem in _IDX_FILES:
        options = [folder / stem, folder / f"{stem}.gz"]
        hit = next((p for p in options if p.is_file()), None)
        if hit is None:
            return None
        found.append(hit)
    return found


def _parse_idx_set(files: list[Path]) -> RawData:
    xtr, ytr, xte, yte = (_read_idx(f) for f in files)
    images = lambda a: torch.from_numpy(a.astype(np.float32) / 255.0).unsqueeze(1)  # noqa: E731
    labels = lambda a: torch.from_numpy(a.astype(np.int64))                          # noqa: E731
    return RawData(images(xtr), labels(ytr), images(xte), labels(yte))


def _load_mnist_like(name: str, tv_name: str, data_dir: Path | None, download: bool) -> RawData:
    import torchvision.datasets as tvd
    tv_class = getattr(tvd, tv_name)
    root = data_dir if data_dir is not None else DEFAULT_ROOT
    # Accept the files directly in data_dir and torchvision's own <root>/<Class>/raw layout.
    looked_in = ([data_dir] if data_dir is not None else []) + [root / tv_name / "raw"]
    looked_in += list(SYSTEM_DATA_DIRS.get(name, ()))
    for folder in looked_in:
        files = _find_idx_files(folder)
        if files is not None:
            return _parse_idx_set(files)
    _ensure_can_download(name, list(tv_class.mirrors), download, looked_in)
    try:
        tv_class(str(root), train=True, download=True)
    except Exception as e:  # network errors come in many types; all mean the same here
        raise _unavailable(name, looked_in, f"the download failed ({e})") from e
    files = _find_idx_files(root / tv_name / "raw")
    if files is None:
        raise _unavailable(name, looked_in, "the download did not produce the idx files")
    return _parse_idx_set(files)


# ---------------------------------------------------------------- CIFAR (torchvision's pickled batches)

def _load_cifar(name: str, tv_name: str, data_dir: Path | None, download: bool) -> RawData:
    import torchvision.datasets as tvd
    tv_class = getattr(tvd, tv_name)
    root = data_dir if data_dir is not None else DEFAULT_ROOT
    folder = root / tv_class.base_folder
    fetch = not folder.is_dir()   # an existing but corrupt folder is reported, never re-fetched blindly
    if fetch:
        _ensure_can_download(name, [tv_class.url], download, [folder])
    try:
        splits = [tv_class(str(root), train=train, download=fetch) for train in (True, False)]
    except Exception as e:  # corrupt files or a failed download
        raise _unavailable(name, [folder], f"torchvision could not load it ({e})") from e
    out = []
    for ds in splits:
        out.append(torch.from_numpy(ds.data).permute(0, 3, 1, 2).float().div_(255.0).contiguous())
        out.append(torch.as_tensor(ds.targets, dtype=torch.int64))
    return RawData(*out)


# ---------------------------------------------------------------- the registry entries

_ELSEWHERE = ("pass data.data_dir=DIR pointing at a folder that holds the files, or run once on a "
              f"machine with internet (download=True) to fetch them into {DEFAULT_ROOT}")

DATASETS.add("digits", DatasetSpec(
    load=_load_digits, num_classes=10, in_shape=(1, 8, 8), bundled=True,
    how_to_get="it ships with scikit-learn: pip install scikit-learn"))
DATASETS.add("fashion_mnist", DatasetSpec(
    load=functools.partial(_load_mnist_like, "fashion_mnist", "FashionMNIST"),
    num_classes=10, in_shape=(1, 28, 28),
    how_to_get="apt-get install dataset-fashion-mnist (installs /usr/share/datasets/fashion-mnist), "
               f"or {_ELSEWHERE} (the four *-idx?-ubyte[.gz] files)"))
DATASETS.add("mnist", DatasetSpec(
    load=functools.partial(_load_mnist_like, "mnist", "MNIST"),
    num_classes=10, in_shape=(1, 28, 28),
    how_to_get=f"{_ELSEWHERE} (the four *-idx?-ubyte[.gz] files)"))
DATASETS.add("cifar10", DatasetSpec(
    load=functools.partial(_load_cifar, "cifar10", "CIFAR10"),
    num_classes=10, in_shape=(3, 32, 32),
    how_to_get=f"{_ELSEWHERE} (torchvision layout: DIR/cifar-10-batches-py)"))
DATASETS.add("cifar100", DatasetSpec(
    load=functools.partial(_load_cifar, "cifar100", "CIFAR100"),
    num_classes=100, in_shape=(3, 32, 32),
    how_to_get=f"{_ELSEWHERE} (torchvision layout: DIR/cifar-100-python)"))
