import numpy as np
import pytest

from diffhypergeom_studies.weak.metrics import (
    factor_scores,
    kl_to_prior_per_dim,
    mse_num_shared,
    part_score,
    shared_dims,
)


def test_mse_by_hand():
    assert mse_num_shared(3, np.array([3, 1, 4, 3])) == pytest.approx((0 + 4 + 1 + 0) / 4)
    assert mse_num_shared(np.array([0, 1]), np.array([2, 1])) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="empty"):
        mse_num_shared(1, np.array([]))


def test_shared_dims_majority():
    masks = np.array([[1, 0, 0, 1], [1, 1, 0, 0], [0, 1, 0, 1], [1, 1, 0, 0]])
    # shared fractions: 0.25, 0.25, 1.0, 0.5
    assert shared_dims(masks).tolist() == [False, False, True, True]
    with pytest.raises(ValueError, match="independent_masks"):
        shared_dims(np.zeros(3))


def test_factor_scores_perfect_chance_and_empty():
    rng = np.random.default_rng(0)
    n = 600
    factors = np.stack([rng.integers(0, 3, n), rng.integers(0, 2, n)], axis=1)
    # dim 0 encodes factor 0 exactly, dim 1 is noise
    z = np.stack([factors[:, 0] * 3.0 + 0.01 * rng.standard_normal(n),
                  rng.standard_normal(n)], axis=1)
    train, test = slice(0, 400), slice(400, None)
    both = factor_scores(z[train], factors[train], z[test], factors[test],
                         np.array([True, True]))
    assert both[0] == pytest.approx(1.0)
    # factor 1 is unrelated to z: adjusted balanced accuracy is near 0 (sd ~ 2/sqrt(200))
    assert abs(both[1]) < 5 * 2 / np.sqrt(200)
    noise_only = factor_scores(z[train], factors[train], z[test], factors[test],
                               np.array([False, True]))
    assert abs(noise_only[0]) < 5 * 1.5 / np.sqrt(200)
    empty = factor_scores(z[train], factors[train], z[test], factors[test],
                          np.array([False, False]))
    assert np.isnan(empty).all()
    assert np.isnan(part_score(empty))
    assert part_score(np.array([1.0, np.nan, 0.5])) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="dims"):
        factor_scores(z, factors, z, factors, np.array([True]))


def test_adjusted_balanced_accuracy_by_hand():
    # 2 classes; predictions right on 3/4 of class 0 and 1/2 of class 1:
    # balanced accuracy 0.625, adjusted (0.625 - 0.5) / (1 - 0.5) = 0.25
    from sklearn.metrics import balanced_accuracy_score
    y = np.array([0, 0, 0, 0, 1, 1])
    pred = np.array([0, 0, 0, 1, 1, 0])
    assert balanced_accuracy_score(y, pred, adjusted=True) == pytest.approx(0.25)


def test_kl_to_prior_by_hand():
    # dim 0: N(1, 1) and N(-1, 1) -> KL 0.5 each; dim 1: the prior itself -> 0;
    # dim 2: N(0, e^2) -> 0.5 (e^2 - 2 - 1)
    mu = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    logvar = np.array([[0.0, 0.0, 2.0], [0.0, 0.0, 2.0]])
    assert np.allclose(kl_to_prior_per_dim(mu, logvar), [0.5, 0.0, 0.5 * (np.e ** 2 - 3)])
