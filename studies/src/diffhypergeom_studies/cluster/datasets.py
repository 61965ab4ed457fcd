"""Datasets for the clustering experiments and their imbalanced versions.

* ``digits``: scikit-learn's handwritten digits (1,797 8x8 images, 10 classes, shipped inside
  scikit-learn), pixel values scaled to ``[0, 1]``; a fixed stratified train/test split.
* ``fashion-mnist``: the IDX files of the Debian package ``dataset-fashion-mnist``
  (``/usr/share/datasets/fashion-mnist``), its own 60,000/10,000 train/test split.
* ``idx``: any directory with ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``), e.g. MNIST.

Versions (the paper's Table 2): ``balanced`` (unchanged), ``sub80`` and ``sub60``: half of the
classes, chosen by the seed, keep ``round(0.8 * count)`` resp. ``round(0.6 * count)`` of their
samples, in the train and in the test split separately (so both have the same proportions).
Images are flattened to ``[n, d]`` float32 in ``[0, 1]``; labels are int64 ``[n]``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from diffhypergeom_studies.cluster.idx import read_idx

__all__ = [
    "ClusterData", "DATASETS", "FASHION_MNIST_DIR", "FASHION_MNIST_INSTALL", "Split", "VERSIONS",
    "choose_subsampled_classes", "load_digits_splits", "load_idx_splits", "load_splits",
    "make_version", "subsample_indices",
]

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_INSTALL = "sudo apt-get install dataset-fashion-mnist"
DATASETS = ("digits", "fashion-mnist", "idx")
VERSIONS: dict[str, float] = {"balanced": 1.0, "sub80": 0.8, "sub60": 0.6}
_IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@dataclass
class Split:
    """Flattened images ``x`` [n, d] (float32 in [0, 1]) and labels ``y`` [n] (int64)."""

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        if self.x.ndim != 2 or self.y.ndim != 1 or len(self.x) != len(self.y):
            raise ValueError(f"a split needs x [n, d] and y [n]; got x {self.x.shape}, "
                             f"y {self.y.shape}")

    def take(self, index: np.ndarray) -> Split:
        return Split(self.x[index], self.y[index])


@dataclass
class ClusterData:
    """One dataset version: train and test splits plus how it was subsampled."""

    name: str
    version: str
    train: Split
    test: Split
    num_classes: int
    subsampled_classes: list[int] = field(default_factory=list)
    rate: float = 1.0

    def class_proportions(self) -> np.ndarray:
        """True class proportions of the training split, [num_classes]."""
        counts = np.bincount(self.train.y, minlength=self.num_classes)
        return counts / counts.sum()


def _scale(images: np.ndarray) -> np.ndarray:
    flat = images.reshape(len(images), -1).astype(np.float32)
    top = float(flat.max()) if flat.size else 1.0
    return flat / top if top > 0 else flat


def load_digits_splits(test_fraction: float = 0.2, split_seed: int = 0) -> tuple[Split, Split]:
    """scikit-learn's digits, scaled to [0, 1], with a stratified train/test split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction,
                                              random_state=split_seed, stratify=y)
    return Split(x_tr, y_tr), Split(x_te, y_te)


def _find_idx_file(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"),
                 stem.replace("-idx", ".idx") + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def load_idx_splits(directory: str | os.PathLike, install_hint: str | None = None
                    ) -> tuple[Split, Split]:
    """Train and test splits from an MNIST-style IDX directory (raw or ``.gz`` files)."""
    directory = Path(directory)
    hint = f" ({install_hint})" if install_hint else ""
    if not directory.is_dir():
        raise FileNotFoundError(f"IDX dataset directory not found: {directory}{hint}")
    paths = {key: _find_idx_file(directory, stem) for key, stem in _IDX_FILES.items()}
    missing = [_IDX_FILES[k] + "[.gz]" for k, p in paths.items() if p is None]
    if missing:
        raise FileNotFoundError(f"IDX dataset directory {directory} lacks {', '.join(missing)}"
                                f"{hint}")
    splits = []
    for part in ("train", "test"):
        images = read_idx(paths[f"{part}_images"])
        labels = read_idx(paths[f"{part}_labels"])
        if images.ndim < 2:
            raise ValueError(f"{paths[f'{part}_images']} must hold images [n, ...], "
                             f"got shape {images.shape}")
        if labels.ndim != 1:
            raise ValueError(f"{paths[f'{part}_labels']} must hold labels [n], "
                             f"got shape {labels.shape}")
        if len(images) != len(labels):
            raise ValueError(f"mismatched IDX files: {paths[f'{part}_images'].name} has "
                             f"{len(images)} images but {paths[f'{part}_labels'].name} has "
                             f"{len(labels)} labels")
        if labels.size and (labels.min() < 0):
            raise ValueError(f"{paths[f'{part}_labels']} has negative labels")
        splits.append(Split(_scale(images), labels.astype(np.int64)))
    if splits[0].x.shape[1] != splits[1].x.shape[1]:
        raise ValueError(f"mismatched IDX files in {directory}: train images have "
                         f"{splits[0].x.shape[1]} pixels, test images {splits[1].x.shape[1]}")
    return splits[0], splits[1]


def load_splits(name: str, data_dir: str | os.PathLike | None = None) -> tuple[Split, Split]:
    """``(train, test)`` of dataset ``name`` in ``DATASETS``."""
    if name == "digits":
        return load_digits_splits()
    if name == "fashion-mnist":
        return load_idx_splits(data_dir or FASHION_MNIST_DIR,
                               install_hint=f"install it with `{FASHION_MNIST_INSTALL}` or "
                               "pass --data-dir")
    if name == "idx":
        if data_dir is None:
            raise ValueError("dataset 'idx' needs a directory (--data-dir) with "
                             + ", ".join(_IDX_FILES.values()))
        return load_idx_splits(data_dir)
    raise ValueError(f"unknown dataset {name!r}; choose one of {DATASETS}")


def choose_subsampled_classes(num_classes: int, seed: int) -> list[int]:
    """Half of the classes (``num_classes // 2``), drawn without replacement by ``seed``."""
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    rng = np.random.default_rng(seed)
    return sorted(int(c) for c in rng.choice(num_classes, num_classes // 2, replace=False))


def subsample_indices(labels: np.ndarray, classes: list[int], rate: float,
                      rng: np.random.Generator) -> np.ndarray:
    """Sorted indices keeping every sample of the other classes and, of each class in
    ``classes``, a random ``round(rate * count)`` of its samples."""
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"rate must be in (0, 1], got {rate}")
    keep = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if int(label) in classes:
            count = int(np.floor(rate * len(members) + 0.5))
            members = rng.choice(members, count, replace=False)
        keep.append(members)
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)


def make_version(name: str, train: Split, test: Split, version: str, seed: int,
                 max_train: int | None = None) -> ClusterData:
    """Dataset ``version`` (``VERSIONS``) of ``train``/``test``; ``seed`` picks the subsampled
    classes and samples. ``max_train`` first keeps a seeded random subset of the train split
    (all versions of one seed share it)."""
    if version not in VERSIONS:
        raise ValueError(f"unknown dataset version {version!r}; choose one of "
                         f"{tuple(VERSIONS)}")
    num_classes = int(max(train.y.max(), test.y.max())) + 1
    rng = np.random.default_rng([seed, 1])
    if max_train is not None:
        if max_train < num_classes:
            raise ValueError(f"max_train must be >= the number of classes ({num_classes}), "
                             f"got {max_train}")
        if max_train < len(train.y):
            train = train.take(np.sort(rng.choice(len(train.y), max_train, replace=False)))
    rate = VERSIONS[version]
    classes = [] if rate == 1.0 else choose_subsampled_classes(num_classes, seed)
    if classes:
        train = train.take(subsample_indices(train.y, classes, rate, rng))
        test = test.take(subsample_indices(test.y, classes, rate, rng))
    return ClusterData(name=name, version=version, train=train, test=test,
                       num_classes=num_classes, subsampled_classes=classes, rate=rate)
