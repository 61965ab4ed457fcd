"""Matched accuracy against a brute-force permutation search; NMI/ARI; weights matching."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from diffhypergeom_studies.cluster.metrics import (
    best_matching,
    cluster_accuracy,
    clustering_scores,
    matched_weights,
    rank_correlation,
)


def brute_force_accuracy(y_true, y_pred, k):
    return max(np.mean(np.array(perm)[y_pred] == y_true)
               for perm in itertools.permutations(range(k)))


@pytest.mark.parametrize("seed", range(6))
def test_accuracy_matches_permutation_search(seed):
    rng = np.random.default_rng(seed)
    k = 5
    y_true = rng.integers(0, k, 60)
    noise = rng.random(60) < 0.4
    y_pred = np.where(noise, rng.integers(0, k, 60), rng.permutation(k)[y_true])
    assert cluster_accuracy(y_true, y_pred) == pytest.approx(
        brute_force_accuracy(y_true, y_pred, k))


def test_scores_are_permutation_invariant():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 100)
    relabelled = np.array([2, 0, 3, 1])[y]
    scores = clustering_scores(y, relabelled)
    assert scores == pytest.approx({"acc": 1.0, "nmi": 1.0, "ari": 1.0})
    assert best_matching(y, relabelled) == {2: 0, 0: 1, 3: 2, 1: 3}
    chance = clustering_scores(y, rng.integers(0, 4, 100))
    assert chance["ari"] < 0.1 and chance["nmi"] < 0.1


def test_matched_weights_and_rank_correlation():
    y_true = np.array([0, 0, 1, 1, 1, 2])
    y_pred = np.array([2, 2, 0, 0, 0, 1])  # cluster 2 -> class 0, 0 -> 1, 1 -> 2
    weights = np.array([0.5, 0.2, 0.3])
    np.testing.assert_allclose(matched_weights(weights, y_true, y_pred, 3), [0.3, 0.5, 0.2])
    assert rank_correlation(np.array([0.3, 0.5, 0.2]), np.array([2, 3, 1])) == pytest.approx(1)
    assert math.isnan(rank_correlation(np.ones(3), np.array([1.0, 2.0, 3.0])))
    with pytest.raises(ValueError, match="equal length"):
        rank_correlation(np.ones(3), np.ones(4))


def test_metric_errors():
    with pytest.raises(ValueError, match="equal length"):
        cluster_accuracy(np.zeros(3, int), np.zeros(4, int))
    with pytest.raises(ValueError, match="non-empty"):
        clustering_scores(np.zeros(0, int), np.zeros(0, int))
    with pytest.raises(ValueError, match="non-negative"):
        cluster_accuracy(np.array([0, -1]), np.array([0, 1]))
