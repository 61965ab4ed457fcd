"""Exactness of log_prob, moments, marginals, entropy and KL against independent references:
brute-force enumeration, scipy.stats.nchypergeom_fisher (c = 2) and the central multivariate
hypergeometric (w = 1)."""

import math

import numpy as np
import pytest
import torch
from enumeration import moments
from scipy import stats

from diffhypergeom import MultivariateFisherNCHypergeometric as MFNCH

# c = 2..5, uneven populations, weights spanning 1e-3..1e3
URNS = [
    ([4, 9], 6, [1e-3, 1e3]),
    ([3, 5, 2], 5, [0.5, 3.0, 1e-2]),
    ([7, 1, 4, 6], 9, [1e3, 1e-3, 2.0, 0.3]),
    ([2, 6, 3, 5, 4], 8, [1.0, 1e-3, 50.0, 1e3, 0.02]),
    ([5, 0, 3], 4, [2.0, 7.0, 0.1]),  # an empty class
]
TOL = 1e-9


def _dist(population, draws, weights, **kwargs):
    return MFNCH(torch.tensor(population), draws,
                 weights=torch.tensor(weights, dtype=torch.float64), **kwargs)


@pytest.mark.parametrize("population,draws,weights", URNS)
def test_log_prob_and_normaliser_match_enumeration(population, draws, weights):
    ref = moments(population, draws, weights)
    d = _dist(population, draws, weights)
    got = d.log_prob(torch.from_numpy(ref["points"])).numpy()
    np.testing.assert_allclose(got, ref["log_p"], rtol=0, atol=TOL)
    assert abs(d.log_normalizer().item() - ref["log_p0"]) < TOL * max(1, abs(ref["log_p0"]))


@pytest.mark.parametrize("population,draws,weights", URNS)
def test_moments_marginals_entropy_match_enumeration(population, draws, weights):
    ref = moments(population, draws, weights)
    d = _dist(population, draws, weights)
    np.testing.assert_allclose(d.mean.numpy(), ref["mean"], atol=TOL)
    np.testing.assert_allclose(d.variance.numpy(), ref["var"], atol=TOL)
    np.testing.assert_allclose(d.covariance_matrix.numpy(), ref["cov"], atol=1e-8)
    assert abs(d.entropy().item() - ref["entropy"]) < TOL
    for i, marginal in enumerate(ref["marginals"]):
        np.testing.assert_allclose(d.marginal(i).probs.numpy(), marginal, atol=TOL)


@pytest.mark.parametrize("odds", [1e-3, 0.2, 1.0, 7.5, 1e3])
def test_two_classes_match_scipy(odds):
    m1, m2, n = 30, 45, 40
    d = MFNCH(torch.tensor([m1, m2]), n, validate_args=False,
              logits=torch.tensor([math.log(odds), 0.0], dtype=torch.float64))
    ref = stats.nchypergeom_fisher(m1 + m2, m1, n, odds)
    k = np.arange(0, n + 1)
    x = torch.from_numpy(np.stack([k, n - k], axis=-1))
    expected = ref.logpmf(k)
    got = d.log_prob(x).numpy()
    feasible = np.isfinite(expected)
    np.testing.assert_allclose(got[feasible], expected[feasible], atol=1e-9)
    assert np.all(np.isneginf(got[~feasible]))
    assert d.mean[0].item() == pytest.approx(ref.mean(), abs=1e-8)
    assert d.variance[0].item() == pytest.approx(ref.var(), abs=1e-7)


def test_equal_weights_match_central_hypergeometric():
    population, draws = [6, 4, 9, 3], 10
    d = MFNCH(torch.tensor(population), draws, logits=torch.zeros(4, dtype=torch.float64))
    ref = stats.multivariate_hypergeom(m=population, n=draws)
    points = moments(population, draws, [1.0] * 4)["points"]
    np.testing.assert_allclose(d.log_prob(torch.from_numpy(points)).numpy(),
                               ref.logpmf(points), atol=1e-9)
    np.testing.assert_allclose(d.mean.numpy(), ref.mean(), atol=1e-10)
    np.testing.assert_allclose(d.covariance_matrix.numpy(), ref.cov(), atol=1e-9)


def test_kl_matches_enumeration_and_is_zero_for_scaled_weights():
    population, draws = [3, 5, 2, 4], 6
    wp, wq = [0.5, 3.0, 1e-2, 7.0], [2.0, 0.1, 1.0, 1.0]
    ref_p, ref_q = moments(population, draws, wp), moments(population, draws, wq)
    expected = float((ref_p["p"] * (ref_p["log_p"] - ref_q["log_p"])).sum())
    p, q = _dist(population, draws, wp), _dist(population, draws, wq)
    assert torch.distributions.kl_divergence(p, q).item() == pytest.approx(expected, abs=1e-9)
    scaled = _dist(population, draws, [5 * w for w in wp])
    assert abs(torch.distributions.kl_divergence(p, scaled).item()) < 1e-10


def test_kl_with_zero_weights():
    population, draws = [3, 4, 2], 3
    p = _dist(population, draws, [1.0, 0.0, 2.0])
    q = _dist(population, draws, [1.0, 5.0, 2.0])
    ref_p, ref_q = moments(population, draws, [1.0, 0.0, 2.0]), moments(population, draws,
                                                                         [1.0, 5.0, 2.0])
    keep = ref_p["p"] > 0
    expected = float((ref_p["p"][keep] * (ref_p["log_p"][keep] - ref_q["log_p"][keep])).sum())
    assert torch.distributions.kl_divergence(p, q).item() == pytest.approx(expected, abs=1e-9)
    assert torch.distributions.kl_divergence(q, p).item() == math.inf


def test_kl_requires_same_urn():
    p = _dist([3, 4], 3, [1.0, 2.0])
    q = _dist([3, 5], 3, [1.0, 2.0])
    with pytest.raises(ValueError, match="same population and draws"):
        torch.distributions.kl_divergence(p, q)


def test_zero_weight_class_is_never_drawn():
    population, draws, weights = [4, 5, 3], 5, [1.0, 0.0, 2.5]
    ref = moments(population, draws, weights)
    d = _dist(population, draws, weights)
    np.testing.assert_allclose(d.log_prob(torch.from_numpy(ref["points"])).numpy(),
                               ref["log_p"], atol=TOL)
    assert d.mean[1].item() == 0.0
    assert bool((d.sample((2000,))[..., 1] == 0).all())
    assert bool((d.rsample((2000,))[..., 1] == 0).all())


@pytest.mark.parametrize("draws", [0, 12])
def test_draws_zero_and_all(draws):
    population = [4, 5, 3]
    d = _dist(population, draws, [0.3, 1.0, 8.0])
    only = torch.tensor([0, 0, 0]) if draws == 0 else torch.tensor(population)
    assert d.log_prob(only).item() == pytest.approx(0.0, abs=1e-12)
    assert torch.equal(d.sample((5,)), only.expand(5, 3))
    assert torch.equal(d.rsample((5,)), only.to(torch.float64).expand(5, 3))
    assert d.entropy().item() == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(d.variance.numpy(), 0.0, atol=1e-12)


@pytest.mark.parametrize("scale", [-80.0, 80.0])
def test_extreme_logits_are_finite_and_exact(scale):
    population, draws = [3, 5, 2], 5
    logits = [scale, 0.0, -scale / 2]
    d = MFNCH(torch.tensor(population), draws, logits=torch.tensor(logits, dtype=torch.float64))
    ref = moments(population, draws, [1.0, math.exp(-scale), math.exp(-1.5 * scale)])
    np.testing.assert_allclose(d.mean.numpy(), ref["mean"], atol=1e-9)
    assert torch.isfinite(d.log_normalizer())
    assert torch.isfinite(d.entropy())
    logits_t = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    MFNCH(torch.tensor(population), draws, logits=logits_t).rsample((100,)).sum().backward()
    assert torch.isfinite(logits_t.grad).all()


def test_large_population_matches_numpy_enumeration():
    """m = [60000, 30000, 10000], n = 5000: the 12.5 million support points are enumerated on a
    numpy grid (x1, x2) with scipy's gammaln."""
    from scipy.special import gammaln, logsumexp

    population, draws = np.array([60000, 30000, 10000]), 5000
    logits = np.array([0.0, 1.2, -0.7])
    x1 = np.arange(draws + 1)[:, None]
    x2 = np.arange(draws + 1)[None, :]
    x3 = draws - x1 - x2

    def lc(m, k):
        return gammaln(m + 1) - gammaln(k + 1) - gammaln(m - k + 1)

    valid = x3 >= 0
    x3c = np.where(valid, x3, 0)
    terms = (lc(population[0], x1) + lc(population[1], x2) + lc(population[2], x3c)
             + logits[0] * x1 + logits[1] * x2 + logits[2] * x3c)
    terms = np.where(valid, terms, -np.inf)
    log_p0 = logsumexp(terms)
    p = np.exp(terms - log_p0)
    mean = np.array([(p * x1).sum(), (p * x2).sum(), (p * x3c).sum()])

    d = MFNCH(torch.from_numpy(population), draws, logits=torch.from_numpy(logits))
    assert d.log_normalizer().item() == pytest.approx(log_p0, rel=1e-12)
    np.testing.assert_allclose(d.mean.numpy(), mean, rtol=1e-9)
    assert torch.isfinite(d.entropy())
    samples = d.sample((4000,))
    assert bool((samples.sum(-1) == draws).all())
    se = np.sqrt(d.variance.numpy() / 4000)
    assert np.all(np.abs(samples.double().mean(0).numpy() - mean) < 5 * se)


def test_float32_matches_float64():
    population, draws, weights = [20, 35, 15], 30, [0.2, 1.0, 6.0]
    d64 = _dist(population, draws, weights)
    d32 = MFNCH(torch.tensor(population), draws, weights=torch.tensor(weights))
    x = d64.sample((50,))
    assert d32.log_prob(x).dtype == torch.float32
    assert d32.mean.dtype == torch.float32
    np.testing.assert_allclose(d32.log_prob(x).numpy(), d64.log_prob(x).numpy(), rtol=1e-6)
    np.testing.assert_allclose(d32.mean.numpy(), d64.mean.numpy(), rtol=1e-6)
