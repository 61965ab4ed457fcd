"""The data of the k-subset task benchmarks: the tables that scikit-learn ships (no download),
split into training and test rows per seed (stratified by class), as float32 tensors."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Split", "breast_cancer_split", "digits_split"]


@dataclass(frozen=True)
class Split:
    """Training and test rows: features ``[n, d]`` (float32) and integer labels ``[n]``."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])


@functools.cache
def _table(name: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets

    loader = {"digits": datasets.load_digits,
              "breast_cancer": datasets.load_breast_cancer}[name]
    x, y = loader(return_X_y=True)
    return x.astype(np.float64), y.astype(np.int64)


def _split(name: str, seed: int, test_fraction: float) -> tuple[np.ndarray, ...]:
    from sklearn.model_selection import train_test_split

    x, y = _table(name)
    return tuple(train_test_split(x, y, test_size=test_fraction, stratify=y,
                                  random_state=int(seed) % 2**32))


def _tensors(x_train, x_test, y_train, y_test) -> Split:
    def as_float(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=torch.float32)

    return Split(as_float(x_train), torch.as_tensor(y_train), as_float(x_test),
                 torch.as_tensor(y_test))


def digits_split(seed: int, test_fraction: float = 0.2) -> Split:
    """``sklearn.datasets.load_digits``: 1,797 images of 8 x 8 pixels, the 64 pixels scaled to
    ``[0, 1]``; 10 classes.

    Example:
        >>> from diffhypergeom_studies.subsets.data import digits_split
        >>> split = digits_split(0)
        >>> split.x_train.shape, split.x_test.shape, float(split.x_train.max())
        (torch.Size([1437, 64]), torch.Size([360, 64]), 1.0)
    """
    x_train, x_test, y_train, y_test = _split("digits", seed, test_fraction)
    return _tensors(x_train / 16.0, x_test / 16.0, y_train, y_test)


def breast_cancer_split(seed: int, test_fraction: float = 0.3) -> Split:
    """``sklearn.datasets.load_breast_cancer``: 569 rows of 30 features, standardised with the
    training rows' mean and standard deviation; 2 classes.

    Example:
        >>> from diffhypergeom_studies.subsets.data import breast_cancer_split
        >>> split = breast_cancer_split(0)
        >>> split.x_train.shape, split.x_test.shape, round(float(split.x_train.mean()), 6)
        (torch.Size([398, 30]), torch.Size([171, 30]), 0.0)
    """
    x_train, x_test, y_train, y_test = _split("breast_cancer", seed, test_fraction)
    mean, sd = x_train.mean(0), x_train.std(0)
    return _tensors((x_train - mean) / sd, (x_test - mean) / sd, y_train, y_test)
