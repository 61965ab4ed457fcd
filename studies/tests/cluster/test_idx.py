"""IDX reader: round trips on files the tests write (raw and gzip) and clear errors."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from diffhypergeom_studies.cluster.datasets import FASHION_MNIST_DIR, load_idx_splits, load_splits
from diffhypergeom_studies.cluster.idx import read_idx, write_idx


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32,
                                   np.float64])
@pytest.mark.parametrize("name", ["a-idx3-ubyte", "a-idx3-ubyte.gz"])
def test_round_trip(tmp_path, dtype, name):
    rng = np.random.default_rng(0)
    array = (rng.normal(size=(5, 3, 4)) * 50).astype(dtype)
    path = write_idx(tmp_path / name, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    back = read_idx(path)
    assert back.dtype == array.dtype
    np.testing.assert_array_equal(back, array)


def test_header_bytes_are_the_idx_format(tmp_path):
    """Hand-built MNIST-style label file: magic 0x00000801, count 3, then the bytes."""
    raw = bytes([0, 0, 0x08, 1]) + (3).to_bytes(4, "big") + bytes([7, 0, 9])
    (tmp_path / "labels").write_bytes(raw)
    (tmp_path / "labels.gz").write_bytes(gzip.compress(raw))
    for name in ("labels", "labels.gz"):
        np.testing.assert_array_equal(read_idx(tmp_path / name), [7, 0, 9])


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        read_idx(tmp_path / "nothing")
    good = write_idx(tmp_path / "good", np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    blob = good.read_bytes()
    cases = {
        "short": (blob[:3], "no full header"),
        "header": (blob[:9], "inside its header"),
        "truncated": (blob[:-1], "truncated"),
        "trailing": (blob + b"\x00", "trailing"),
        "magic": (b"\x01" + blob[1:], "first two bytes"),
        "code": (blob[:2] + b"\x07" + blob[3:], "unknown type code"),
        "gzip": (gzip.compress(blob)[:-10], "gzip"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match=message):
            read_idx(tmp_path / name)
    with pytest.raises(ValueError, match="IDX type"):
        write_idx(tmp_path / "bad", np.zeros(3, dtype=np.complex64))


def _write_dataset(directory, n_train=6, n_test=4, gz=True, n_test_labels=None):
    rng = np.random.default_rng(1)
    suffix = ".gz" if gz else ""
    write_idx(directory / f"train-images-idx3-ubyte{suffix}",
              rng.integers(0, 256, (n_train, 2, 3), dtype=np.uint8))
    write_idx(directory / f"train-labels-idx1-ubyte{suffix}",
              rng.integers(0, 3, n_train).astype(np.uint8))
    write_idx(directory / "t10k-images-idx3-ubyte",  # raw and gzip mixed
              rng.integers(0, 256, (n_test, 2, 3), dtype=np.uint8))
    write_idx(directory / "t10k-labels-idx1-ubyte",
              rng.integers(0, 3, n_test_labels or n_test).astype(np.uint8))


def test_idx_directory(tmp_path):
    _write_dataset(tmp_path)
    train, test = load_idx_splits(tmp_path)
    assert train.x.shape == (6, 6) and test.x.shape == (4, 6)
    assert train.x.dtype == np.float32 and 0 <= train.x.min() and train.x.max() <= 1
    raw = read_idx(tmp_path / "train-images-idx3-ubyte.gz").reshape(6, -1)
    np.testing.assert_allclose(train.x, raw / raw.max(), rtol=1e-6)
    np.testing.assert_array_equal(train.y, read_idx(tmp_path / "train-labels-idx1-ubyte.gz"))
    same, _ = load_splits("idx", tmp_path)
    np.testing.assert_array_equal(same.x, train.x)


def test_idx_directory_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_idx_splits(tmp_path / "missing")
    _write_dataset(tmp_path, n_test_labels=5)
    with pytest.raises(ValueError, match="mismatched IDX files.*4 images.*5 labels"):
        load_idx_splits(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte"):
        load_idx_splits(tmp_path)
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_splits("fashion-mnist", tmp_path / "nowhere")
    with pytest.raises(ValueError, match="--data-dir"):
        load_splits("idx", None)
    with pytest.raises(ValueError, match="unknown dataset"):
        load_splits("cifar", None)


@pytest.mark.skipif(not FASHION_MNIST_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_package():
    train, test = load_splits("fashion-mnist")
    assert train.x.shape == (60000, 784) and test.x.shape == (10000, 784)
    np.testing.assert_array_equal(np.bincount(train.y), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(test.y), [1000] * 10)
