"""The laws at the edges of their envelope: empty classes at any logit, logit gaps up to the
dtype's range, one-class urns (issues "Never surprised" and its part 2). Each case failed
before its fix (a ``-inf`` where the probability is about one, NaN draws or gradients, an error
from deep inside autograd)."""

import math

import pytest
import torch

from diffhypergeom import MultivariateFisherNCHypergeometric as MFNCH
from diffhypergeom import MultivariateWalleniusNCHypergeometric as MWNCH
from diffhypergeom.subsets import gumbel_top_k

F64 = dict(dtype=torch.float64)


def test_an_empty_class_changes_nothing_whatever_its_logit():
    x = torch.tensor([0.0, 1.0, 0.0], **F64)
    with_logit = MWNCH(torch.tensor([3, 1, 0]), 1, logits=torch.tensor([0.0, -35.0, 3.0], **F64))
    without = MWNCH(torch.tensor([3, 1, 0]), 1, logits=torch.tensor([0.0, -35.0, 0.0], **F64))
    expected = -35 - math.log(3 + math.exp(-35))
    assert float(with_logit.log_prob(x)) == pytest.approx(expected, abs=1e-10)
    assert float(without.log_prob(x)) == pytest.approx(expected, abs=1e-10)
    torch.testing.assert_close(with_logit.mean, without.mean)


@pytest.mark.parametrize("gap", [700.0, 1000.0, 1e5])
def test_wide_logit_gaps_give_the_heavy_balls_first(gap):
    """Two heavy balls and a light one, two drawn: the heavy pair with probability 1 - O(e^-gap),
    a light ball with probability about 1.5 e^-gap (first, 1 / (2W + 1), or second, 2W / (2W +
    1) / (W + 1), W = e^gap; in log space, not -inf)."""
    d = MWNCH(torch.tensor([2, 1]), 2, logits=torch.tensor([gap, 0.0], **F64))
    assert float(d.log_prob(torch.tensor([2.0, 0.0], **F64))) == pytest.approx(0.0, abs=1e-12)
    assert float(d.log_prob(torch.tensor([1.0, 1.0], **F64))) == pytest.approx(
        math.log(1.5) - gap, rel=1e-9)


def test_the_only_point_of_the_support_has_probability_one():
    d = MWNCH(torch.tensor([0, 0, 2]), 1, logits=torch.tensor([1000.0, 0.0, 0.0], **F64))
    assert float(d.log_prob(torch.tensor([0.0, 0.0, 1.0], **F64))) == 0.0
    draws = d.sample((4,))
    assert torch.equal(draws, torch.tensor([[0.0, 0.0, 1.0]] * 4, **F64))


def test_the_wallenius_gradient_at_an_extreme_logit_is_finite():
    logits = torch.tensor([-1000.0, 0.0, 0.0], **F64, requires_grad=True)
    MWNCH(torch.tensor([0, 0, 2]), 1, logits=logits).log_prob(
        torch.tensor([0.0, 0.0, 1.0], **F64)).backward()
    assert torch.equal(logits.grad, torch.zeros(3, **F64))


def test_wallenius_moments_with_a_wide_gap():
    d = MWNCH(torch.tensor([1, 1]), 1, logits=torch.tensor([1000.0, 0.0], **F64))
    torch.testing.assert_close(d.mean, torch.tensor([1.0, 0.0], **F64))
    nothing = MWNCH(torch.tensor([0, 0, 1]), 0, logits=torch.tensor([1000.0, 0.0, 0.0], **F64))
    torch.testing.assert_close(nothing.mean, torch.zeros(3, **F64))


def test_wallenius_draws_have_the_right_size_at_an_extreme_logit():
    d = MWNCH(torch.tensor([1] * 7 + [3001]), 3000, logits=torch.tensor([1000.0] + [0.0] * 7))
    draws = d.sample((2,))
    assert torch.equal(draws.sum(-1), torch.full((2,), 3000.0))
    assert bool((draws[:, 0] == 1).all())  # the heavy ball is drawn first


@pytest.mark.parametrize("gap", [800.0, 1500.0, 1e4])
def test_gumbel_top_k_at_a_wide_gap(gap):
    """On the race's grid up to race.MAX_SPREAD (2,000), beyond it by the quadrature."""
    d = gumbel_top_k(torch.tensor([gap, 0.0, 0.0], **F64), 1)
    assert float(d.log_prob(torch.tensor([1.0, 0.0, 0.0], **F64))) == pytest.approx(0, abs=1e-12)
    assert float(d.log_prob(torch.tensor([0.0, 1.0, 0.0], **F64))) == pytest.approx(-gap,
                                                                                   rel=1e-12)
    torch.testing.assert_close(d.mean, torch.tensor([1.0, 0.0, 0.0], **F64))


@pytest.mark.parametrize("law", [MWNCH, MFNCH])
def test_a_one_class_urn_is_degenerate(law):
    """x = [n] always: mean n, variance and covariance 0, entropy 0, log_prob 0."""
    d = law(torch.tensor([3]), 2, logits=torch.zeros(1, **F64))
    torch.testing.assert_close(d.mean, torch.tensor([2.0], **F64))
    torch.testing.assert_close(d.variance, torch.zeros(1, **F64))
    torch.testing.assert_close(d.covariance_matrix, torch.zeros(1, 1, **F64))
    assert float(d.entropy()) == 0.0
    assert float(d.log_prob(torch.tensor([2.0], **F64))) == pytest.approx(0.0, abs=1e-15)
    assert torch.equal(d.sample((3,)), torch.full((3, 1), 2.0, **F64))


def test_one_drawable_class_among_empty_ones_is_degenerate():
    d = MWNCH(torch.tensor([0, 4, 0]), 3, logits=torch.tensor([5.0, 0.0, -5.0], **F64))
    torch.testing.assert_close(d.mean, torch.tensor([0.0, 3.0, 0.0], **F64))
    torch.testing.assert_close(d.variance, torch.zeros(3, **F64))
    offset, log_probs = d.log_marginals()
    assert float(log_probs[1, 3]) == 0.0


def test_an_urn_too_large_for_memory_gets_advice_the_user_can_follow():
    """The Wallenius law of an urn of 2 x 10^12 balls: its Fisher mixture fits neither engine;
    the error says so instead of advising engine='auto', the engine in use."""
    d = MWNCH(torch.tensor([10**12, 10**12]), 10**12, logits=torch.tensor([0.0, 1.0], **F64))
    with pytest.raises(ValueError, match="would need about") as error:
        d.mean  # noqa: B018
    assert "'auto'" not in str(error.value)
    assert "too" in str(error.value)


def test_a_logit_spread_beyond_the_stated_limit_is_a_clear_error():
    """Up to 1e6 log_prob is exact (the gap test above); beyond MAX_SPREAD a ValueError naming
    the logits, not a -inf or an error from inside the quadrature."""
    from diffhypergeom.laws.wallenius import MAX_SPREAD

    d = MWNCH(torch.tensor([2, 1]), 2, logits=torch.tensor([1e6, 0.0], **F64))
    assert float(d.log_prob(torch.tensor([1.0, 1.0], **F64))) == pytest.approx(
        math.log(1.5) - 1e6, rel=1e-12)
    for spread in (10 * MAX_SPREAD, 1e300):
        far = MWNCH(torch.tensor([2, 2]), 2, logits=torch.tensor([spread, 0.0], **F64))
        with pytest.raises(ValueError, match="logits: the drawable classes' logits spread"):
            far.log_prob(torch.tensor([1.0, 1.0], **F64))
    # an empty class's logit is not part of the spread
    empty = MWNCH(torch.tensor([2, 2, 0]), 2, logits=torch.tensor([0.0, 1.0, 1e300], **F64))
    assert torch.isfinite(empty.log_prob(torch.tensor([1.0, 1.0, 0.0], **F64)))


@pytest.mark.parametrize("population, draws, weights", [
    ([1, 1], 1, [0.0, 1.0]),
    ([3, 2, 4], 4, [1.0, 0.0, 2.0]),
])
def test_the_marginal_gradient_at_a_zero_weight_is_the_one_sided_derivative(
        population, draws, weights):
    """marginal(i).probs in every weight, against the one-sided finite difference (a zero
    weight only grows): autograd gave 0 in the zero weight, the softmax over log-probabilities
    dropping the first-order mass of the counts that had probability zero."""
    base = torch.tensor(weights, **F64)
    for i in range(len(population)):
        for count in range(population[i] + 1):
            def prob(w, i=i, count=count):
                return MFNCH(torch.tensor(population), draws, weights=w).marginal(i).probs[count]
            w = base.clone().requires_grad_()
            prob(w).backward()
            h = 1e-7
            difference = torch.stack([(prob(base + h * e) - prob(base)) / h
                                      for e in torch.eye(len(population), **F64)])
            torch.testing.assert_close(w.grad, difference, rtol=0, atol=1e-5)


@pytest.mark.parametrize("population", [[0, 0, 1], [0] * 7 + [1]])
def test_log_marginal_windows_never_start_below_zero(population):
    """engine='fft' with every weight but the last zero: each class's window starts at a count
    of zero or more (it started at -1) and holds the exact marginal."""
    c = len(population)
    weights = torch.zeros(c, **F64)
    weights[-1] = 1.0
    d = MFNCH(torch.tensor(population), 1, weights=weights, engine="fft")
    for i in range(c):
        offset, log_probs = d.log_marginal(i)
        assert int(offset) >= 0
        probs = torch.zeros(2, **F64)
        for j, value in enumerate(log_probs.exp().tolist()):
            if 0 <= int(offset) + j < 2:
                probs[int(offset) + j] += value
        expected = torch.tensor([0.0, 1.0] if i == c - 1 else [1.0, 0.0], **F64)
        torch.testing.assert_close(probs, expected)


def test_an_urn_of_10_to_the_12_balls_answers_or_names_the_limit():
    """m = [10^12, 10^12], n = 10^12 (issue 28 asked for 12 GB here): the mean and the variance
    answer (the variance from the Hessian, against the large-urn approximation 1 / Var = sum of
    1 / mu and 1 / (m - mu) over the two classes, exact to O(1 / N)); draws and marginals,
    whose windows span 10^7 counts, raise a ValueError naming the limit before allocating."""
    d = MFNCH(torch.tensor([10**12, 10**12]), 10**12, logits=torch.tensor([0.0, 1.0], **F64))
    mu = d.mean
    m = 1e12
    expected = 1 / (1 / mu[0] + 1 / (m - mu[0]) + 1 / mu[1] + 1 / (m - mu[1]))
    torch.testing.assert_close(d.variance, expected.expand(2), rtol=1e-6, atol=0)
    for member in (lambda: d.sample(), lambda: d.log_marginal(0)):
        with pytest.raises(ValueError, match="MAX_TRANSFORM_WORK"):
            member()
