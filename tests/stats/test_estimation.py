"""``diffhypergeom.stats.fit``: maximum likelihood of the logits, against BFGS over
brute-force likelihoods (Fisher by enumeration, Wallenius by the exact recursion over draw
orders, no library code), the information against finite differences, the profile interval
against a brute-force scan, coverage of planted logits over fixed seeds, and the named errors
where the estimate does not exist or the input is bad."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from enumeration import log_pmf_table
from profiles import profile_limits

from diffhypergeom import MultivariateFisherNCHypergeometric as Fisher
from diffhypergeom import MultivariateWalleniusNCHypergeometric as Wallenius
from diffhypergeom.stats import fit

optimize = pytest.importorskip("scipy.optimize")
special = pytest.importorskip("scipy.special")

Z95 = 1.959963984540054


def _fisher_loglik(population: np.ndarray, draws: np.ndarray, counts: np.ndarray):
    """``theta_free -> sum_s log p(x_s)`` by enumerating each urn's support."""
    def loglik(free):
        weights = np.exp(np.concatenate([[0.0], free])).tolist()
        total = 0.0
        for m, n, x in zip(population, draws, counts, strict=True):
            points, log_p, _ = log_pmf_table(m.tolist(), int(n), weights)
            total += log_p[(points == x).all(1)][0]
        return total
    return loglik


def _wallenius_table(population: tuple[int, ...], weights: tuple[float, ...]
                     ) -> dict[tuple[int, ...], float]:
    """The Wallenius probability of every count vector, drawn ball by ball: ``P(x)`` sums,
    over the class ``i`` of the last ball, ``P(x - e_i)`` times the chance of drawing ``i``
    from what ``x - e_i`` left."""
    layer = {tuple(0 for _ in population): 1.0}
    table = dict(layer)
    for _ in range(sum(population)):
        following: dict[tuple[int, ...], float] = {}
        for state, p in layer.items():
            left = sum(w * (m - k) for w, m, k in zip(weights, population, state, strict=True))
            for i, (w, m, k) in enumerate(zip(weights, population, state, strict=True)):
                if k < m:
                    after = state[:i] + (k + 1,) + state[i + 1:]
                    following[after] = following.get(after, 0.0) + p * w * (m - k) / left
        table.update(following)
        layer = following
    return table


def _enumerated_fisher(population: list[int], draws: int, counts: np.ndarray):
    """``theta_free -> sum_s log p(x_s)`` for draws from one urn, by its enumerated support
    (vectorised: the support and ``log h`` are computed once)."""
    points, log_p, _ = log_pmf_table(population, draws, [1.0] * len(population))
    totals, size = counts.sum(0), len(counts)
    index = [int(np.nonzero((points == x).all(1))[0][0]) for x in counts]
    constant = log_p[index].sum()

    def loglik(free):
        theta = np.concatenate([[0.0], free])
        return (constant + totals @ theta
                - size * special.logsumexp(log_p + points @ theta))
    return loglik


def _bfgs(loglik, c: int) -> np.ndarray:
    return optimize.minimize(lambda f: -loglik(f), np.zeros(c - 1), method="BFGS",
                             options={"gtol": 1e-10}).x


def test_fisher_fit_of_many_urns_against_brute_force():
    """One draw from each of 12 urns sharing the logits: the estimate, the maximum and the
    covariance (the inverse of minus a finite-difference Hessian of the brute force)."""
    torch.manual_seed(1)
    population = torch.randint(1, 7, (12, 3))
    draws = (population.sum(-1) // 2)
    counts = Fisher(population, draws, logits=torch.tensor([0.0, 0.8, -0.5],
                                                           dtype=torch.float64)).sample()
    result = fit(Fisher, population, draws, counts)
    loglik = _fisher_loglik(population.numpy(), draws.numpy(), counts.long().numpy())
    best = _bfgs(loglik, 3)
    np.testing.assert_allclose(result.logits[1:].numpy(), best, atol=1e-6)
    assert result.logits[0] == 0 and result.converged
    assert result.log_likelihood == pytest.approx(loglik(best), abs=1e-9)
    step = 1e-4
    hessian = np.empty((2, 2))
    for i in range(2):
        for j in range(2):
            e_i, e_j = np.eye(2)[i] * step, np.eye(2)[j] * step
            hessian[i, j] = (loglik(best + e_i + e_j) - loglik(best + e_i - e_j)
                             - loglik(best - e_i + e_j)
                             + loglik(best - e_i - e_j)) / (4 * step ** 2)
    np.testing.assert_allclose(result.covariance[1:, 1:].numpy(), np.linalg.inv(-hessian),
                               rtol=1e-5)
    np.testing.assert_allclose(result.stderr[1:].numpy(), np.sqrt(np.diag(np.linalg.inv(
        -hessian))), rtol=1e-5)
    assert result.stderr[0] == 0 and bool((result.covariance[0] == 0).all())


def test_wallenius_fit_of_one_urn_against_the_recursion():
    population, draws = (4, 5, 3), 6
    counts = np.array([[2, 3, 1], [1, 4, 1], [3, 2, 1], [2, 2, 2], [1, 3, 2]])

    def loglik(free):
        table = _wallenius_table(population, tuple(np.exp(np.concatenate([[0.0], free]))))
        return sum(math.log(table[tuple(x)]) for x in counts)

    best = _bfgs(loglik, 3)
    result = fit(Wallenius, torch.tensor(population), draws, torch.tensor(counts))
    np.testing.assert_allclose(result.logits[1:].numpy(), best, atol=1e-6)
    assert result.log_likelihood == pytest.approx(loglik(best), abs=1e-9)


@pytest.mark.parametrize("law", [Fisher, Wallenius], ids=["fisher", "wallenius"])
def test_profile_interval_against_a_brute_force_scan(law):
    """The endpoints of each logit's interval are where the profile (the other logit
    re-maximised by a 1-D search) has fallen by chi2(1)_0.9 / 2 from the maximum."""
    population, draws = [5, 6, 4], 7
    counts = np.array([[2, 3, 2], [3, 3, 1], [1, 4, 2], [2, 2, 3], [1, 5, 1]])
    result = fit(law, torch.tensor(population), draws, torch.tensor(counts))
    low, high = result.confidence_interval(0.9)
    assert low[0] == 0 and high[0] == 0
    if law is Fisher:
        loglik = _enumerated_fisher(population, draws, counts)
    else:
        def loglik(free):
            weights = tuple(np.exp(np.concatenate([[0.0], free])))
            table = _wallenius_table(tuple(population), weights)
            return sum(math.log(table[tuple(x)]) for x in counts)

    best = _bfgs(loglik, 3)
    q = special.ndtri(0.95) ** 2
    for j in range(2):
        reference = profile_limits(loglik, best, q, j, width=6, tol=1e-10)
        assert float(low[j + 1]) == pytest.approx(reference[0], abs=1e-6)
        assert float(high[j + 1]) == pytest.approx(reference[1], abs=1e-6)
    one_low, _ = result.confidence_interval(0.95, "greater")
    _, one_high = result.confidence_interval(0.95, "less")
    # one-sided at 0.95 is two-sided at 0.9 (the signed root)
    torch.testing.assert_close(one_low[1:], low[1:], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(one_high[1:], high[1:], rtol=1e-9, atol=1e-9)


def _binomial_bounds(trials: int, level: float) -> tuple[float, float]:
    """3.5 binomial standard deviations around ``trials * level`` (fixed seeds: the bound only
    has to hold for a correct estimator with overwhelming probability)."""
    spread = 3.5 * math.sqrt(trials * level * (1 - level))
    return trials * level - spread, trials * level + spread


def test_fisher_estimates_cover_planted_logits_within_their_standard_errors():
    """20 draws from one urn per seed, 100 seeds: the Wald intervals ``logit +- 1.96 se``
    hold the planted logits as often as a 95% interval should, and ``(estimate - truth) /
    se`` has mean 0 and spread 1."""
    population, draws = torch.tensor([30, 40, 50]), 40
    truth = torch.tensor([0.0, 0.7, -0.4], dtype=torch.float64)
    z = []
    for seed in range(100):
        torch.manual_seed(seed)
        counts = Fisher(population, draws, logits=truth).sample((20,))
        result = fit(Fisher, population, draws, counts)
        z.append((result.logits[1:] - truth[1:]) / result.stderr[1:])
    z = torch.stack(z).flatten()
    _assert_standard_normal_coverage(z)
    assert 0.8 < float(z.std()) < 1.2


def _assert_standard_normal_coverage(z: torch.Tensor) -> None:
    """``(estimate - truth) / stderr`` over seeds: within ``Z95`` as often as a binomial 95%
    allows, and centred within 3.5 standard errors."""
    low, high = _binomial_bounds(len(z), 0.95)
    assert low <= int((z.abs() < Z95).sum()) <= high
    assert abs(float(z.mean())) < 3.5 / math.sqrt(len(z))


def test_profile_intervals_cover_the_planted_odds():
    """Two classes, 5 draws per seed, 60 seeds: the 95% profile interval's coverage."""
    population, draws = torch.tensor([30, 50]), 30
    truth = torch.tensor([0.0, 0.7], dtype=torch.float64)
    hits = 0
    for seed in range(60):
        torch.manual_seed(seed)
        result = fit(Fisher, population, draws,
                     Fisher(population, draws, logits=truth).sample((5,)))
        low, high = result.confidence_interval(0.95)
        hits += int(low[1] < truth[1] < high[1])
    low, high = _binomial_bounds(60, 0.95)
    assert low <= hits <= min(high, 60)


def test_wallenius_estimates_from_many_urns_cover_planted_logits():
    """One draw from each of 40 urns of random sizes per seed (shared logits), 30 seeds."""
    truth = torch.tensor([0.0, 0.7, -0.4], dtype=torch.float64)
    z = []
    for seed in range(30):
        torch.manual_seed(100 + seed)
        population = torch.randint(1, 15, (40, 3))
        draws = (population.sum(-1) * torch.rand(40)).long().clamp(min=1)
        counts = Wallenius(population, draws, logits=truth).sample()
        result = fit(Wallenius, population, draws, counts)
        z.append((result.logits[1:] - truth[1:]) / result.stderr[1:])
    z = torch.stack(z).flatten()
    _assert_standard_normal_coverage(z)


def test_many_draws_from_one_urn_cost_one_engine():
    """10,000 draws from one urn are one distinct urn for the Fisher likelihood."""
    population = torch.tensor([30, 40, 50])
    torch.manual_seed(3)
    counts = Fisher(population, 40, logits=torch.tensor([0.0, 0.7, -0.4])).sample((10_000,))
    result = fit(Fisher, population, 40, counts)
    assert result._likelihood.urn_population.shape == (1, 3)
    assert float((result.logits[1:] - torch.tensor([0.7, -0.4])).abs().max()) < 4 * float(
        result.stderr.max())


def test_no_estimate_at_a_bound_names_the_class():
    population = torch.tensor([8, 10, 6])
    with pytest.raises(ValueError, match=r"does not exist: in every draw either every ball of "
                                         r"classes \[0\] is drawn"):
        fit(Fisher, population, 10, torch.tensor([[8, 2, 0], [8, 1, 1]]))
    with pytest.raises(ValueError, match=r"classes \[0, 1\] grow"):  # class 2 never drawn
        fit(Wallenius, population, 10, torch.tensor([[4, 6, 0], [5, 5, 0]]))


def test_no_estimate_on_a_face_no_single_count_shows():
    """Classes 0 and 1 are drawn whole in the first urn and the only ones drawn in the
    second, although every class's total lies strictly inside its range: the likelihood
    still rises without end along their logits (checked on the brute force)."""
    population = np.array([[2, 2, 4, 4], [3, 3, 3, 3]])
    draws = np.array([7, 4])
    counts = np.array([[2, 2, 2, 1], [2, 2, 0, 0]])
    with pytest.raises(ValueError, match=r"classes \[0, 1\] is drawn"):
        fit(Fisher, torch.tensor(population), torch.tensor(draws), torch.tensor(counts))
    loglik = _fisher_loglik(population, draws, counts)
    # theta_0 = 0: raising the logits of classes 0 and 1 by t lowers 2 and 3 relative to them
    path = [loglik(np.array([0.0, -t, -t])) for t in (0.0, 2.0, 4.0, 8.0)]
    assert all(b > a for a, b in zip(path, path[1:], strict=False))


def test_logits_that_are_not_identified_are_named():
    with pytest.raises(ValueError, match=r"classes \[2\] are not identified"):
        fit(Fisher, torch.tensor([4, 5, 0]), 4, torch.tensor([[2, 2, 0], [1, 3, 0]]))
    with pytest.raises(ValueError, match=r"classes \[0, 1\] and \[2, 3\] never vary in the "
                                         r"same urn"):
        fit(Fisher, torch.tensor([[3, 3, 0, 0], [0, 0, 3, 3]]), 3,
            torch.tensor([[1, 2, 0, 0], [0, 0, 2, 1]]))


@pytest.mark.parametrize("population, draws, counts, message", [
    ([4, 5, 3], 6, [[2, -3, 7]], "counts must be non-negative"),
    ([4, 5, 3], 6, [[2.5, 2.5, 1]], "counts must be integers"),
    ([4, 5, 3], 6, [[2, 3, 1, 0]], r"population must have shape \[\.\.\., 4\]"),
    ([4, 5, 3], 6, 3, "counts must have shape"),
    ([4], 2, [[2]], "counts must have at least 2 classes"),
    ([4, 5, 3], 6, [[2, 3, 2]], "counts must sum to draws"),
    ([4, 5, 3], 6, [[5, 1, 0]], r"counts must lie in 0 <= x <= population"),
    ([[4, 5, 3]] * 3, 6, [[2, 3, 1]] * 2, "do not broadcast"),
    ([4, 5, 3], [6, 6, 6], [[2, 3, 1]] * 2, "do not broadcast"),
    ([[4, 5, 3]] * 2, 6, [2, 3, 1], "must broadcast to the leading shape of counts"),
    ([4, 5, 3], 13, [[4, 5, 4]], "draws must be <= population.sum"),
])
def test_bad_input_is_a_named_error(population, draws, counts, message):
    with pytest.raises(ValueError, match=message):
        fit(Fisher, torch.tensor(population), torch.tensor(draws), torch.tensor(counts))


def test_bad_law_level_and_iterations_are_named_errors():
    population, counts = torch.tensor([4, 5, 3]), torch.tensor([[2, 3, 1], [1, 4, 1]])
    for law in ("fisher", Fisher(population, 6, logits=torch.zeros(3)), torch.distributions.Normal):
        with pytest.raises(ValueError, match="law must be the class"):
            fit(law, population, 6, counts)
    with pytest.raises(ValueError, match="max_iter must be a positive int"):
        fit(Fisher, population, 6, counts, max_iter=0)
    result = fit(Fisher, population, 6, counts)
    for level in (0.0, 1.0, 95, -0.5, float("nan"), None):
        with pytest.raises(ValueError, match="level must be a number strictly between 0 and 1"):
            result.confidence_interval(level)
    with pytest.raises(ValueError, match="alternative must be one of"):
        result.confidence_interval(0.9, "two")


def test_one_draw_given_as_a_vector():
    result = fit(Fisher, [10, 14, 14], 16, [7, 5, 4])
    assert result.logits.shape == (3,) and result.converged
