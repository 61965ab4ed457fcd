"""``diffhypergeom.stats.odds`` and ``num``: the urn from its mean, exact where BiasedUrn's
``oddsM*NCHypergeo`` and ``numM*NCHypergeo`` approximate; against planted odds and ball counts,
the maximum-likelihood fit, a search over every composition of small urns, and named errors."""

from __future__ import annotations

import itertools

import pytest
import torch

from diffhypergeom import MultivariateFisherNCHypergeometric as Fisher
from diffhypergeom import MultivariateWalleniusNCHypergeometric as Wallenius
from diffhypergeom.stats import fit, num, odds

LAWS = pytest.mark.parametrize("law", [Fisher, Wallenius], ids=["fisher", "wallenius"])


@LAWS
def test_odds_recover_the_planted_odds_of_a_batch_of_urns(law):
    population = torch.tensor([[20, 30, 20], [5, 9, 40], [12, 3, 8]])
    draws = torch.tensor([24, 30, 10])
    weights = torch.tensor([[1.0, 2.5, 1.8], [3.0, 0.2, 1.0], [0.5, 4.0, 1.0]],
                           dtype=torch.float64)
    mean = law(population, draws, weights=weights).mean
    found = odds(law, population, draws, mean)
    assert found.shape == (3, 3) and bool((found[:, 0] == 1).all())
    torch.testing.assert_close(found, weights / weights[:, :1], rtol=1e-9, atol=0)


def test_means_given_as_python_floats_keep_their_precision():
    population, weights = torch.tensor([20, 30, 20]), torch.tensor([1.0, 2.5, 1.8],
                                                                   dtype=torch.float64)
    mu = Fisher(population, 24, weights=weights).mean
    torch.testing.assert_close(odds(Fisher, [20, 30, 20], 24, mu.tolist()), weights,
                               rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="mean must be real numbers, got dtype complex128"):
        odds(Fisher, population, 24, [8 + 1j, 8, 8])


def test_biasedurn_cornfield_approximation_is_what_odds_improves_on():
    """BiasedUrn's ``oddsMFNCHypergeo`` is Cornfield's ``mu_i (m_0 - mu_0) / (mu_0 (m_i -
    mu_i))``: off by percents here, where the exact solution is exact."""
    population, weights = torch.tensor([20, 30, 20]), torch.tensor([1.0, 2.5, 1.8],
                                                                   dtype=torch.float64)
    mu = Fisher(population, 24, weights=weights).mean
    cornfield = mu * (population[0] - mu[0]) / (mu[0] * (population - mu))
    assert float((cornfield / weights - 1).abs().max()) > 1e-3
    assert float((odds(Fisher, population, 24, mu) / weights - 1).abs().max()) < 1e-12


def test_fisher_odds_of_one_observation_are_its_maximum_likelihood_odds():
    population, counts = torch.tensor([10, 14, 14]), torch.tensor([7.0, 5.0, 4.0])
    torch.testing.assert_close(odds(Fisher, population, 16, counts),
                               fit(Fisher, population, 16, counts).logits.exp(),
                               rtol=1e-9, atol=0)


def test_odds_at_a_bound_or_of_a_fixed_class_are_named_errors():
    population = torch.tensor([4, 5, 3])
    with pytest.raises(ValueError, match="class 2's mean 0 .* least count .* odds relative to "
                                         "the others are 0"):
        odds(Fisher, population, 6, torch.tensor([2.5, 3.5, 0.0]))
    with pytest.raises(ValueError, match="class 0's mean 4 .* greatest count .* infinite"):
        odds(Wallenius, population, 6, torch.tensor([4.0, 1.5, 0.5]))
    with pytest.raises(ValueError, match="class 1's count is fixed at 0 .* not identified"):
        odds(Fisher, torch.tensor([4, 0, 3]), 5, torch.tensor([3.0, 0.0, 2.0]))
    with pytest.raises(ValueError, match="mean must sum to draws"):
        odds(Fisher, population, 6, torch.tensor([2.0, 3.0, 0.5]))
    with pytest.raises(ValueError, match="mean must lie in 0 <= x <= population"):
        odds(Fisher, population, 6, torch.tensor([-1.0, 4.0, 3.0]))
    with pytest.raises(ValueError, match="mean must be finite"):
        odds(Fisher, population, 6, torch.tensor([float("nan"), 4.0, 2.0]))
    with pytest.raises(ValueError, match="law must be the class"):
        odds(torch.distributions.Binomial, population, 6, torch.tensor([2.0, 2.0, 2.0]))


@LAWS
def test_num_recovers_the_planted_population(law):
    weights = torch.tensor([1.0, 2.5, 1.8], dtype=torch.float64)
    planted = torch.tensor([[20, 30, 20], [5, 45, 20]])
    mean = law(planted, 24, weights=weights).mean
    found = num(law, 70, 24, weights, mean)
    assert found.dtype == torch.int64
    torch.testing.assert_close(found, planted)


@LAWS
def test_num_is_the_best_composition_of_a_small_urn(law):
    """A mean no urn has exactly: the answer is the composition of ``N = 12`` whose exact mean
    is nearest, found by trying all 91 of them."""
    total, draws = 12, 5
    weights = torch.tensor([1.0, 3.0, 0.4], dtype=torch.float64)
    target = torch.tensor([1.3, 2.9, 0.8], dtype=torch.float64)
    compositions = torch.tensor([c for c in itertools.product(range(total + 1), repeat=3)
                                 if sum(c) == total])
    means = law(compositions, draws, weights=weights.expand(len(compositions), 3)).mean
    best = compositions[(means - target).square().sum(-1).argmin()]
    torch.testing.assert_close(num(law, total, draws, weights, target), best)


def test_num_bad_input_is_a_named_error():
    weights = torch.tensor([1.0, 2.0])
    with pytest.raises(ValueError, match="draws must be <= total"):
        num(Fisher, 5, 6, weights, torch.tensor([3.0, 3.0]))
    with pytest.raises(ValueError, match="total must be non-negative"):
        num(Fisher, -5, 2, weights, torch.tensor([1.0, 1.0]))
    with pytest.raises(ValueError, match="draws must be integers"):
        num(Fisher, 5, 2.5, weights, torch.tensor([1.0, 1.5]))
    with pytest.raises(ValueError, match="odds must be finite and > 0"):
        num(Fisher, 5, 2, torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0]))
    with pytest.raises(ValueError, match=r"odds must have shape \[c\]"):
        num(Fisher, 5, 2, torch.tensor([[1.0, 2.0]]), torch.tensor([1.0, 1.0]))
    with pytest.raises(ValueError, match=r"mean must have shape \[\.\.\., 2\]"):
        num(Fisher, 5, 2, weights, torch.tensor([1.0, 0.5, 0.5]))
    with pytest.raises(ValueError, match="mean must sum to draws"):
        num(Fisher, 5, 2, weights, torch.tensor([1.0, 0.5]))
    with pytest.raises(ValueError, match="mean must be finite and >= 0"):
        num(Fisher, 5, 2, weights, torch.tensor([3.0, -1.0]))
