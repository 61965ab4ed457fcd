"""The multivariate Wallenius law against independent references: the exact recursion over draw
orders (brute force), scipy for two classes, an exact log-space recursion deep in a tail,
``torch.multinomial(replacement=False)`` draws, and closed forms."""

from __future__ import annotations

import itertools
import math
from functools import cache

import numpy as np
import pytest
import torch
from goodness_of_fit import chisquare_pvalue

from diffhypergeom import MultivariateFisherNCHypergeometric as Fisher
from diffhypergeom import MultivariateWalleniusNCHypergeometric as Wallenius
from diffhypergeom.subsets import gumbel_top_k

F64 = torch.float64


def brute_force(population: list[int], weights: list[float], draws: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Every count vector and its probability, from the recursion over draw orders: the last
    ball drawn is of class ``i`` with probability ``w_i (m_i - y_i) / d(y)`` given the counts
    ``y`` before it (exact rational arithmetic would give the same to rounding)."""
    c = len(population)

    @cache
    def prob(x: tuple[int, ...]) -> float:
        if sum(x) == 0:
            return 1.0
        total = 0.0
        for i in range(c):
            if x[i] > 0:
                before = x[:i] + (x[i] - 1,) + x[i + 1:]
                left = sum(weights[j] * (population[j] - before[j]) for j in range(c))
                total += prob(before) * weights[i] * (population[i] - before[i]) / left
        return total

    points = [x for x in itertools.product(*(range(m + 1) for m in population))
              if sum(x) == draws]
    return np.array(points), np.array([prob(x) for x in points])


URNS = [
    ([5, 7, 4], [1.0, 4.0, 0.25], 8),
    ([3, 6, 2, 5], [1e-3, 1.0, 1e3, 3.0], 7),
    ([4, 4], [1.0, 2.0], 0),
    ([4, 4], [1.0, 2.0], 1),
    ([4, 4], [1.0, 2.0], 7),
    ([4, 4], [1.0, 2.0], 8),
    ([2, 3, 1], [1.0, 0.0, 2.0], 3),            # a zero weight: n = the drawable balls
    ([3, 0, 4], [1.0, 1.0, 3.0], 2),            # an empty class
    ([3, 2, 4], [math.exp(30), 1.0, math.exp(-30)], 5),
    ([2, 2, 2, 2, 2, 2, 2, 2, 2], [1.0, 0.5, 2.0, 1.5, 0.3, 4.0, 1.0, 0.7, 2.5], 6),
]


@pytest.mark.parametrize("population,weights,draws", URNS)
def test_log_prob_and_moments_against_the_recursion_over_draw_orders(population, weights,
                                                                     draws):
    points, probs = brute_force(population, weights, draws)
    d = Wallenius(torch.tensor(population), draws, weights=torch.tensor(weights, dtype=F64))
    got = d.log_prob(torch.from_numpy(points)).numpy()
    positive = probs > 0
    np.testing.assert_allclose(got[positive], np.log(probs[positive]), rtol=0, atol=1e-12)
    assert np.isneginf(got[~positive]).all()
    mean = probs @ points
    centred = points - mean
    cov = (centred * probs[:, None]).T @ centred
    np.testing.assert_allclose(d.mean.numpy(), mean, rtol=0, atol=1e-10)
    np.testing.assert_allclose(d.covariance_matrix.numpy(), cov, rtol=0, atol=1e-10)
    np.testing.assert_allclose(d.variance.numpy(), np.diag(cov), rtol=0, atol=1e-10)
    entropy = -(probs[positive] * np.log(probs[positive])).sum()
    assert abs(float(d.entropy()) - entropy) < 1e-10


def test_two_classes_against_scipy():
    from scipy.stats import nchypergeom_wallenius

    d = Wallenius(torch.tensor([30, 50]), 40, weights=torch.tensor([2.5, 1.0], dtype=F64))
    x = torch.arange(0, 31, dtype=F64)
    counts = torch.stack([x, 40 - x], -1)
    inside = counts[:, 1] <= 50
    got = d.log_prob(counts[inside]).numpy()
    want = nchypergeom_wallenius.logpmf(x[inside].numpy(), 80, 30, 40, 2.5)
    bulk = want > -20  # scipy's own accuracy (about 1e-8) holds in the bulk
    np.testing.assert_allclose(got[bulk], want[bulk], rtol=1e-7)


def test_deep_tail_against_an_exact_recursion():
    """m = [2000, 2000], n = 2000, w = [3, 1], x = [1995, 5]: scipy returns -inf; the
    recursion over (x_1, x_2) in log space is exact to rounding."""
    m1 = m2 = 2000
    w1, w2 = 3.0, 1.0
    table = np.full((1996, 6), -np.inf)
    table[0, 0] = 0.0
    for a in range(1996):
        for b in range(6):
            if a == b == 0:
                continue
            terms = []
            if a > 0:
                left = w1 * (m1 - a + 1) + w2 * (m2 - b)
                terms.append(table[a - 1, b] + math.log(w1 * (m1 - a + 1) / left))
            if b > 0:
                left = w1 * (m1 - a) + w2 * (m2 - b + 1)
                terms.append(table[a, b - 1] + math.log(w2 * (m2 - b + 1) / left))
            table[a, b] = np.logaddexp.reduce(terms)
    d = Wallenius(torch.tensor([m1, m2]), 2000, weights=torch.tensor([w1, w2], dtype=F64))
    got = float(d.log_prob(torch.tensor([1995, 5])))
    assert got < -1000 and abs(got - table[1995, 5]) < 1e-12 * abs(got)


@pytest.mark.parametrize("classes,scale", [(2, 0.0), (9, 0.0), (9, 5.0), (40, 30.0)])
def test_nothing_drawn_has_probability_one(classes, scale):
    """``n = 0``: the only outcome has probability 1 and no gradient, whatever the weights (the
    quadrature used to fail here from 9 classes on)."""
    logits = (scale * torch.randn(classes, generator=torch.Generator().manual_seed(classes),
                                  dtype=torch.float64)).requires_grad_()
    d = Wallenius(torch.ones(classes, dtype=torch.int64), 0, logits=logits)
    value = d.log_prob(torch.zeros(classes))
    assert float(value.detach()) == 0.0
    (grad,) = torch.autograd.grad(value, logits)
    assert float(grad.abs().max()) == 0.0


def test_gumbel_top_k_sets_have_their_own_law():
    """w = [1, 2, 3, 4], k = 2: P({3, 4}) = 3/10 * 4/7 + 4/10 * 3/6 = 0.3714 (Fisher: 12/35)."""
    logits = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=F64).log()
    mask = torch.tensor([0, 0, 1, 1])
    exact = 3 / 10 * 4 / 7 + 4 / 10 * 3 / 6
    assert abs(float(gumbel_top_k(logits, 2).log_prob(mask).exp()) - exact) < 1e-14
    fisher = Fisher(torch.ones(4, dtype=torch.int64), 2, logits=logits)
    assert abs(float(fisher.log_prob(mask).exp()) - 12 / 35) < 1e-14


def _ball_draws(population: list[int], weights: list[float], draws: int, num: int
                ) -> np.ndarray:
    """Class counts of ``torch.multinomial`` draws without replacement over the balls."""
    ball_weights = torch.cat([torch.full((m,), w, dtype=F64)
                              for m, w in zip(population, weights, strict=True)])
    labels = torch.repeat_interleave(torch.arange(len(population)), torch.tensor(population))
    picked = torch.multinomial(ball_weights.expand(num, -1), draws, replacement=False)
    return torch.nn.functional.one_hot(labels[picked], len(population)).sum(1).numpy()


def test_the_law_of_sampling_without_replacement_and_of_sample():
    """Chi-square of ``torch.multinomial(replacement=False)`` draws and of ``sample`` against
    ``exp(log_prob)``; power: the Fisher law of the same urn is rejected for both."""
    population, weights, draws = [5, 7, 4], [1.0, 4.0, 0.25], 8
    d = Wallenius(torch.tensor(population), draws, weights=torch.tensor(weights, dtype=F64))
    fisher = Fisher(torch.tensor(population), draws, weights=torch.tensor(weights, dtype=F64))
    points = d.enumerate_support()
    index = {tuple(p): j for j, p in enumerate(points.long().tolist())}
    probs = d.log_prob(points).exp().numpy()
    fisher_probs = fisher.log_prob(points).exp().numpy()
    torch.manual_seed(0)
    for draws_of in (_ball_draws(population, weights, draws, 20_000),
                     d.sample((20_000,)).long().numpy()):
        cells = np.bincount([index[tuple(x)] for x in draws_of.tolist()], minlength=len(probs))
        assert chisquare_pvalue(cells, probs) > 1e-3
        assert chisquare_pvalue(cells, fisher_probs) < 1e-6


def test_large_urn_draws_match_the_exact_mean():
    """m = [10^6] * 3, n = 10^5: 1,000 clock draws, their mean within 5 standard errors."""
    torch.manual_seed(1)
    d = Wallenius(torch.full((3,), 10**6), 10**5,
                  weights=torch.tensor([1.0, 10.0, 1.0], dtype=F64))
    x = d.sample((1000,))
    assert bool((x.sum(-1) == 10**5).all())
    error = (x.mean(0) - d.mean).abs()
    assert bool((error <= 5 * (d.variance / 1000).sqrt()).all()), error


def test_gradients_against_finite_differences():
    logits = torch.tensor([0.3, -0.5, 1.1], dtype=F64, requires_grad=True)
    x = torch.tensor([2.0, 4.0, 2.0], dtype=F64)

    def members(t):
        d = Wallenius(torch.tensor([5, 7, 4]), 8, logits=t)
        return torch.cat([d.log_prob(x).reshape(1), d.mean])

    assert torch.autograd.gradcheck(members, (logits,), eps=1e-6, atol=1e-7)
    # rsample: exact draws forward, the exact mean's gradient backward
    d = Wallenius(torch.tensor([5, 7, 4]), 8, logits=logits)
    draw = d.rsample((5,))
    (got,) = torch.autograd.grad(draw[..., 1].sum(), logits)
    (want,) = torch.autograd.grad(5 * Wallenius(torch.tensor([5, 7, 4]), 8,
                                                logits=logits).mean[1], logits)
    torch.testing.assert_close(got, want)
    assert torch.equal(draw.detach(), draw.detach().round())


def test_bad_input_shares_the_fisher_checks():
    for kwargs, match in [(dict(logits=torch.tensor([0.0, math.nan])), "logits must not be NaN"),
                          (dict(weights=torch.tensor([1.0, -1.0])), "weights must be >= 0"),
                          (dict(logits=torch.zeros(3)), "population has 2 classes")]:
        with pytest.raises(ValueError, match=match):
            Wallenius(torch.tensor([3, 4]), 2, **kwargs)
    with pytest.raises(ValueError, match=r"draws must be <= population.sum\(-1\)"):
        Wallenius(torch.tensor([3, 4]), 8, logits=torch.zeros(2))
    d = Wallenius(torch.tensor([3, 4]), 2, logits=torch.zeros(2))
    with pytest.raises(ValueError, match="gradient must be 'mean'"):
        d.rsample(gradient="gumbel")



def test_entropy_beyond_the_support_limit_is_a_monte_carlo_estimate():
    """Above ``max_support`` points the entropy is estimated from exact draws and the exact
    ``log_prob``: within 5 of its standard errors of the exact sum."""
    exact = Wallenius(torch.tensor([6, 5, 7]), 9, weights=torch.tensor([1.0, 3.0, 0.5]))
    limited = Wallenius(torch.tensor([6, 5, 7]), 9, weights=torch.tensor([1.0, 3.0, 0.5]),
                        max_support=10)
    torch.manual_seed(0)
    estimate = float(limited.entropy())
    spread = float(limited.log_prob(limited.sample((4096,))).std()) / 64
    assert abs(estimate - float(exact.entropy())) < 5 * spread


def test_unbiased_estimators_work_unchanged():
    """``surrogate_loss`` with ``"exact"`` (summing over the support) gives the exact gradient
    of ``E[f(X)]`` (against finite differences of that sum), and ``"reinforce-loo"`` (the exact
    ``log_prob``'s score) agrees with it within 5 standard errors over 200 calls."""
    from diffhypergeom.estimators import surrogate_loss

    def f(x: torch.Tensor) -> torch.Tensor:
        return (x[..., 0] - 2 * x[..., 2]).square()

    def law(logits: torch.Tensor) -> Wallenius:
        return Wallenius(torch.tensor([5, 7, 4]), 8, logits=logits)

    theta = torch.tensor([0.3, -0.5, 1.1], dtype=F64, requires_grad=True)
    (exact,) = torch.autograd.grad(surrogate_loss(law(theta), f, estimator="exact"), theta)
    points = law(theta.detach()).enumerate_support()

    def expectation(t: torch.Tensor) -> float:
        return float((law(t).log_prob(points).exp() * f(points)).sum())

    for j in range(3):
        step = torch.zeros(3, dtype=F64)
        step[j] = 1e-6
        numeric = (expectation(theta.detach() + step) - expectation(theta.detach() - step)) / 2e-6
        assert abs(float(exact[j]) - numeric) < 1e-6
    torch.manual_seed(0)
    calls = torch.stack([torch.autograd.grad(
        surrogate_loss(law(theta), f, num_samples=32, estimator="reinforce-loo"), theta)[0]
        for _ in range(200)])
    error = (calls.mean(0) - exact).abs()
    assert bool((error <= 5 * calls.std(0) / 200**0.5).all()), error


@pytest.mark.parametrize("population,weights,draws", URNS[:3] + URNS[6:9])
def test_marginals_against_the_recursion(population, weights, draws):
    points, probs = brute_force(population, weights, draws)
    d = Wallenius(torch.tensor(population), draws, weights=torch.tensor(weights, dtype=F64))
    for i in range(len(population)):
        want = np.bincount(points[:, i], weights=probs, minlength=population[i] + 1)
        got = d.marginal(i).probs.numpy()[: population[i] + 1]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


def test_reinforce_cv_works_with_the_exact_marginals():
    """The control-variate estimator (it needs the exact marginals and their gradients) is
    unbiased here too: within 5 standard errors of the exact gradient over 60 calls."""
    from diffhypergeom.estimators import surrogate_loss

    def f(x: torch.Tensor) -> torch.Tensor:
        return (x[..., 1] >= 4).to(x.dtype)

    theta = torch.tensor([0.3, -0.5, 1.1], dtype=F64, requires_grad=True)

    def law(logits):
        return Wallenius(torch.tensor([5, 7, 4]), 8, logits=logits)

    (exact,) = torch.autograd.grad(surrogate_loss(law(theta), f, estimator="exact"), theta)
    torch.manual_seed(0)
    calls = torch.stack([torch.autograd.grad(
        surrogate_loss(law(theta), f, num_samples=32, estimator="reinforce-cv"), theta)[0]
        for _ in range(60)])
    error = (calls.mean(0) - exact).abs()
    assert bool((error <= 5 * calls.std(0) / 60**0.5 + 1e-12).all()), error
