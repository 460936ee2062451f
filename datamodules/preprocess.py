"""Preprocessing registry (lecture 7, "data preprocessing"): none, centering, standardizing, whitening.

Each entry is a class: `fit(x_train)` computes its statistics from the training split only (fitting
on validation or test data would leak them into training), `__call__(x)` maps an NCHW batch to an
NCHW batch of the same shape, and `to(device)` moves the statistics next to the data so the loader
can preprocess batch by batch on the training device.
"""
from __future__ import annotations

import torch
from torch import Tensor

from lit_modules.registry import Registry

# Whitening divides by sqrt(eigenvalue); directions this far below the largest carry no data (e.g.
# digits' always-zero corner pixels) and would only amplify rounding noise, so they map to zero.
RELATIVE_EIGEN_FLOOR = 1e-5
# Rows per chunk when accumulating a covariance in float64 (bounds memory for CIFAR's 3072 dims).
_COV_CHUNK = 4096


class Preprocessor:
    """Base: moving to a device moves every tensor the subclass fitted."""

    def fit(self, x_train: Tensor) -> "Preprocessor":
        return self

    def __call__(self, x: Tensor) -> Tensor:
        return x

    def to(self, device: torch.device | str) -> "Preprocessor":
        for key, value in list(vars(self).items()):
            if isinstance(value, Tensor):
                setattr(self, key, value.to(device))
        return self


class CenterImage(Preprocessor):
    """Subtract the mean image (AlexNet): one mean per pixel and channel."""

    def fit(self, x_train: Tensor) -> "CenterImage":
        self.mean = x_train.mean(dim=0, keepdim=True)
        return self

    def __call__(self, x: Tensor) -> Tensor:
        return x - self.mean


class CenterChannel(Preprocessor):
    """Subtract the per-channel mean (VGG): three numbers for RGB."""

    def fit(self, x_train: Tensor) -> "CenterChannel":
        self.mean = x_train.mean(dim=(0, 2, 3), keepdim=True)
        return self

    def __call__(self, x: Tensor) -> Tensor:
        return x - self.mean


class Standardize(Preprocessor):
    """Per-channel mean and standard deviation (ResNet-style)."""

    def fit(self, x_train: Tensor) -> "Standardize":
        self.mean = x_train.mean(dim=(0, 2, 3), keepdim=True)
        # A constant channel would divide by zero; leave its scale alone instead.
        std = x_train.std(dim=(0, 2, 3), keepdim=True, correction=0)
        self.std = torch.where(std > 1e-8, std, torch.ones_like(std))
        return self

    def __call__(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


def _covariance(flat: Tensor, mean: Tensor) -> Tensor:
    """float64 covariance of the rows of `flat`, accumulated in chunks so no float64 copy is made."""
    cov = torch.zeros(flat.shape[1], flat.shape[1], dtype=torch.float64, device=flat.device)
    for start in range(0, flat.shape[0], _COV_CHUNK):
        centered = flat[start:start + _COV_CHUNK].double() - mean
        cov += centered.T @ centered
    return cov / max(flat.shape[0] - 1, 1)


class _Whiten(Preprocessor):
    """Shared fit for PCA and ZCA whitening: y = (x - mean) @ W on the flattened image."""

    def fit(self, x_train: Tensor) -> "_Whiten":
        flat = x_train.flatten(1)
        mean = flat.double().mean(dim=0)
        eigvals, eigvecs = torch.linalg.eigh(_covariance(flat, mean))
        order = eigvals.argsort(descending=True)       # principal axis first
        eigvals, eigvecs = eigvals[order], eigvecs[:, order]
        keep = eigvals > RELATIVE_EIGEN_FLOOR * eigvals.max()
        inv_sqrt = torch.where(keep, eigvals.clamp_min(1e-300).rsqrt(), torch.zeros_like(eigvals))
        self.mean = mean.float()
        self.matrix = self._matrix(eigvecs, inv_sqrt).float()
        return self

    @staticmethod
    def _matrix(eigvecs: Tensor, inv_sqrt: Tensor) -> Tensor:
        raise NotImplementedError

    def __call__(self, x: Tensor) -> Tensor:
        return ((x.flatten(1) - self.mean) @ self.matrix).reshape(x.shape)


class PCAWhiten(_Whiten):
    """Rotate onto the principal axes and divide by sqrt(eigenvalue); component k lands in pixel k."""

    @staticmethod
    def _matrix(eigvecs: Tensor, inv_sqrt: Tensor) -> Tensor:
        return eigvecs * inv_sqrt                      # U diag(1/sqrt(S))


class ZCAWhiten(_Whiten):
    """PCA whitening rotated back to pixel space, so images still look like (edge-enhanced) images."""

    @staticmethod
    def _matrix(eigvecs: Tensor, inv_sqrt: Tensor) -> Tensor:
        return (eigvecs * inv_sqrt) @ eigvecs.T        # U diag(1/sqrt(S)) U^T


PREPROCESSORS: Registry[type[Preprocessor]] = Registry("preprocessing", {
    "none": Preprocessor,
    "center_image": CenterImage,
    "center_channel": CenterChannel,
    "standardize": Standardize,
    "pca_whiten": PCAWhiten,
    "zca_whiten": ZCAWhiten,
})


def build_preprocessor(name: str) -> Preprocessor:
    """An unfitted preprocessor; call `.fit(x_train)` before use."""
    return PREPROCESSORS.get(name)()
