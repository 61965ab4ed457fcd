"""The independent numpy/scipy references used by the validation studies."""

import numpy as np
import pytest
from scipy.stats import nchypergeom_fisher

from diffhypergeom_studies.validation import reference


def test_two_class_pmf_matches_scipy_univariate_fisher():
    urn = reference.enumerate_urn([12, 9], 10, [2.5, 1.0])
    expected = nchypergeom_fisher.pmf(urn.support[:, 0], 21, 12, 10, 2.5)
    np.testing.assert_allclose(urn.pmf, expected, rtol=1e-10)


def test_support_is_complete_and_feasible():
    urn = reference.enumerate_urn([3, 4, 2], 5, [1.0, 1.0, 1.0])
    assert (urn.support.sum(1) == 5).all()
    assert (urn.support <= [3, 4, 2]).all() and (urn.support >= 0).all()
    brute = {(a, b, 5 - a - b) for a in range(4) for b in range(5) if 0 <= 5 - a - b <= 2}
    assert {tuple(x) for x in urn.support} == brute
    # central case: p(x) = prod C(m_i, x_i) / C(N, n)
    assert urn.pmf.sum() == pytest.approx(1.0)


def test_merged_law_is_exact_only_for_equal_weights():
    population, draws = [8, 8, 8], 9
    equal = reference.merged_law(population, draws, [2.0, 2.0, 2.0])
    exact = reference.enumerate_urn(population, draws, [2.0, 2.0, 2.0])
    np.testing.assert_allclose(equal.pmf, exact.pmf, atol=1e-12)
    skewed = reference.merged_law(population, draws, [1.0, 10.0, 1.0])
    exact = reference.enumerate_urn(population, draws, [1.0, 10.0, 1.0])
    assert reference.total_variation(skewed.marginal(0), exact.marginal(0)) > 0.05


def test_merged_draws_follow_merged_law():
    population, draws, weights = [10, 10, 10], 12, [1.0, 6.0, 1.0]
    law = reference.merged_law(population, draws, weights)
    x = reference.merged_draws(population, draws, weights, 20_000, np.random.default_rng(1))
    assert (x.sum(1) == draws).all()
    # empirical mean within 5 standard errors of the law's mean, per class
    se = np.sqrt(law.expect((law.support - law.mean()) ** 2) / len(x))
    assert (np.abs(x.mean(0) - law.mean()) < 5 * se).all()


def test_exact_draws_follow_pmf():
    urn = reference.enumerate_urn([6, 6, 6], 7, [1.0, 3.0, 0.5])
    x = urn.draw(20_000, np.random.default_rng(2))
    se = np.sqrt(urn.expect((urn.support - urn.mean()) ** 2) / len(x))
    assert (np.abs(x.mean(0) - urn.mean()) < 5 * se).all()


@pytest.mark.parametrize("population, draws, weights, match", [
    ([3], 1, [1.0], "population"),
    ([3, 3], 7, [1.0, 1.0], "draws"),
    ([3, 3], 2, [1.0], "weights"),
    ([3, 3], 2, [1.0, 0.0], "weights"),
])
def test_bad_urns_raise(population, draws, weights, match):
    with pytest.raises(ValueError, match=match):
        reference.enumerate_urn(population, draws, weights)


def test_total_variation():
    assert reference.total_variation(np.array([0.5, 0.5]), np.array([1.0])) == 0.5
