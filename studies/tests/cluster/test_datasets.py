"""Imbalanced subsampling: exact proportions, seeded, recorded; the digits loader."""

from __future__ import annotations

import numpy as np
import pytest

from diffhypergeom_studies.cluster.datasets import (
    VERSIONS,
    Split,
    choose_subsampled_classes,
    load_digits_splits,
    make_version,
    subsample_indices,
)


def test_choose_subsampled_classes_is_seeded_half():
    picks = {tuple(choose_subsampled_classes(10, seed)) for seed in range(20)}
    assert len(picks) > 10  # the seed matters
    for pick in picks:
        assert len(pick) == 5 and len(set(pick)) == 5 and list(pick) == sorted(pick)
        assert all(0 <= c < 10 for c in pick)
    assert choose_subsampled_classes(10, 3) == choose_subsampled_classes(10, 3)
    assert len(choose_subsampled_classes(7, 0)) == 3
    with pytest.raises(ValueError, match="num_classes"):
        choose_subsampled_classes(1, 0)


@pytest.mark.parametrize("rate", [0.8, 0.6, 0.35])
def test_subsample_exact_counts(rate):
    counts = [50, 37, 20, 11, 5, 1]
    labels = np.repeat(np.arange(6), counts)
    np.random.default_rng(0).shuffle(labels)
    classes = [1, 3, 4]
    keep = subsample_indices(labels, classes, rate, np.random.default_rng(5))
    assert len(np.unique(keep)) == len(keep) and np.all(np.diff(keep) > 0)
    kept = np.bincount(labels[keep], minlength=6)
    expected = [int(np.floor(rate * n + 0.5)) if c in classes else n
                for c, n in enumerate(counts)]
    np.testing.assert_array_equal(kept, expected)
    again = subsample_indices(labels, classes, rate, np.random.default_rng(5))
    np.testing.assert_array_equal(keep, again)
    other = subsample_indices(labels, classes, rate, np.random.default_rng(6))
    assert not np.array_equal(keep, other)
    with pytest.raises(ValueError, match="rate"):
        subsample_indices(labels, classes, 0.0, np.random.default_rng(0))


def test_versions_of_the_digits():
    train, test = load_digits_splits()
    assert train.x.shape[1] == 64 and len(train.y) + len(test.y) == 1797
    assert 0 <= train.x.min() and train.x.max() <= 1
    base_train = np.bincount(train.y, minlength=10)
    base_test = np.bincount(test.y, minlength=10)
    balanced = make_version("digits", train, test, "balanced", seed=0)
    assert balanced.subsampled_classes == [] and balanced.rate == 1.0
    np.testing.assert_array_equal(balanced.train.y, train.y)
    for version in ("sub80", "sub60"):
        rate = VERSIONS[version]
        for seed in (0, 1):
            data = make_version("digits", train, test, version, seed)
            assert data.subsampled_classes == choose_subsampled_classes(10, seed)
            assert data.rate == rate
            for split, base in ((data.train, base_train), (data.test, base_test)):
                counts = np.bincount(split.y, minlength=10)
                expected = [int(np.floor(rate * n + 0.5)) if c in data.subsampled_classes
                            else n for c, n in enumerate(base)]
                np.testing.assert_array_equal(counts, expected)
            np.testing.assert_allclose(data.class_proportions(),
                                       np.bincount(data.train.y) / len(data.train.y))
    with pytest.raises(ValueError, match="unknown dataset version"):
        make_version("digits", train, test, "sub50", 0)


def test_max_train_and_split_checks():
    train, test = load_digits_splits()
    small = make_version("digits", train, test, "sub80", 0, max_train=200)
    assert len(small.train.y) < 200 and len(small.test.y) < len(test.y)
    with pytest.raises(ValueError, match="max_train"):
        make_version("digits", train, test, "balanced", 0, max_train=3)
    with pytest.raises(ValueError, match="x \\[n, d\\]"):
        Split(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="test_fraction"):
        load_digits_splits(test_fraction=1.5)
