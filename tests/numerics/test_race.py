"""``numerics.race``: the inclusion probabilities of Gumbel-top-k subsets against brute force
over the draw orders (exact rational arithmetic), and their gradient against enumeration."""

import itertools
import math
from fractions import Fraction

import pytest
import torch

from diffhypergeom.numerics import race
from diffhypergeom.subsets import gumbel_top_k

F64 = torch.float64


def _by_orders(logits: torch.Tensor, k: int) -> list[float]:
    """``P(i in S)`` summed over every order of ``k`` draws, in exact fractions of the float
    weights (no rounding but the weights' own)."""
    w = [Fraction(v) for v in logits.exp().tolist()]
    total = sum(w)
    inside = [Fraction(0)] * len(w)
    for order in itertools.permutations(range(len(w)), k):
        p, rest = Fraction(1), total
        for item in order:
            p *= w[item] / rest
            rest -= w[item]
        for item in order:
            inside[item] += p
    return [float(v) for v in inside]


@pytest.mark.parametrize("n, k, spread", [(6, 2, 0.5), (7, 3, 3.0), (6, 1, 8.0), (7, 6, 2.0),
                                           (5, 0, 1.0), (5, 5, 1.0), (6, 3, 20.0)])
def test_inclusion_matches_the_draw_orders(n, k, spread):
    generator = torch.Generator().manual_seed(10 * n + k)
    logits = torch.randn(n, generator=generator, dtype=F64) * spread
    inside, outside = race.inclusion(logits.unsqueeze(0), torch.tensor([k]))
    expected = torch.tensor(_by_orders(logits, k), dtype=F64)
    torch.testing.assert_close(inside[0], expected, rtol=0, atol=1e-13)
    torch.testing.assert_close(inside + outside, torch.ones_like(inside), rtol=0, atol=1e-15)


def test_inclusion_is_batched_over_urns_and_subset_sizes():
    logits = torch.randn(4, 9, generator=torch.Generator().manual_seed(1), dtype=F64)
    k = torch.tensor([0, 2, 5, 9])
    inside, _ = race.inclusion(logits, k)
    for row in range(4):
        alone, _ = race.inclusion(logits[row:row + 1], k[row:row + 1])
        torch.testing.assert_close(inside[row], alone[0], rtol=0, atol=1e-15)
    torch.testing.assert_close(inside.sum(-1), k.to(F64), rtol=0, atol=1e-12)


def test_the_gradient_matches_enumeration():
    """d/dtheta of sum_i c_i P(i in S), against the gradient of the enumerated sum over the
    subsets with the Wallenius law's own (quadrature) log_prob."""
    n, k = 7, 3
    base = torch.randn(n, generator=torch.Generator().manual_seed(2), dtype=F64)
    c = torch.linspace(-1.0, 2.0, n, dtype=F64)
    theta = base.clone().requires_grad_()
    inside, _ = race.inclusion(theta.unsqueeze(0), torch.tensor([k]))
    (got,) = torch.autograd.grad((inside[0] * c).sum(), theta)
    masks = torch.zeros(math.comb(n, k), n, dtype=F64)
    for row, chosen in enumerate(itertools.combinations(range(n), k)):
        masks[row, list(chosen)] = 1.0
    point = base.clone().requires_grad_()
    probs = gumbel_top_k(point, k).log_prob(masks).exp()
    (expected,) = torch.autograd.grad((probs * (masks @ c)).sum(), point)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)


def test_a_large_batch_is_computed_in_chunks():
    """A batch whose grid would exceed MAX_ELEMENTS gives the same numbers chunk by chunk."""
    logits = torch.randn(300, 16, generator=torch.Generator().manual_seed(3), dtype=F64)
    inside, _ = race.inclusion(logits, torch.full((300,), 5))
    torch.testing.assert_close(inside[7], race.inclusion(logits[7:8], torch.tensor([5]))[0][0],
                               rtol=0, atol=1e-15)


def test_gumbel_top_k_members_use_it_and_agree_with_the_wallenius_law():
    """GumbelTopK's mean, variance and marginals (the race) against the general Wallenius
    law's (its Fisher mixture) for the same urn of ones."""
    from diffhypergeom import MultivariateWalleniusNCHypergeometric

    logits = torch.randn(2, 6, generator=torch.Generator().manual_seed(4), dtype=F64)
    d = gumbel_top_k(logits, 2)
    general = MultivariateWalleniusNCHypergeometric(torch.ones(6, dtype=torch.int64), 2,
                                                    logits=logits)
    torch.testing.assert_close(d.mean, general.mean, rtol=0, atol=1e-9)
    torch.testing.assert_close(d.variance, general.variance, rtol=0, atol=1e-9)
    offset, log_probs = d.log_marginals()
    assert log_probs.shape == (2, 6, 2) and int(offset.abs().sum()) == 0
    torch.testing.assert_close(log_probs.exp(), general.log_marginals()[1].exp(), rtol=0,
                               atol=1e-9)
    torch.testing.assert_close(d.marginal(3).probs, log_probs[:, 3].exp())


def _subset_by_orders(logits: torch.Tensor, chosen: tuple[int, ...]) -> float:
    """``log p(S)`` summed over the orders of ``S`` in exact fractions."""
    w = [Fraction(v) for v in logits.exp().tolist()]
    total, p = sum(w), Fraction(0)
    for order in itertools.permutations(chosen):
        q, rest = Fraction(1), total
        for item in order:
            q *= w[item] / rest
            rest -= w[item]
        p += q
    return math.log(p)


@pytest.mark.parametrize("n, k, spread", [(7, 3, 1.0), (8, 2, 8.0), (6, 5, 30.0), (6, 2, 30.0),
                                           (6, 6, 1.0), (6, 0, 1.0)])
def test_subset_log_prob_matches_the_draw_orders_in_relative_terms(n, k, spread):
    """Down to probabilities of e^-160 (logits spread 30), to 1e-13 in log."""
    generator = torch.Generator().manual_seed(n + 100 * k)
    logits = torch.randn(n, generator=generator, dtype=F64) * spread
    chosen = list(itertools.combinations(range(n), k))
    masks = torch.zeros(len(chosen), 1, n, dtype=F64)
    for row, items in enumerate(chosen):
        masks[row, 0, list(items)] = 1.0
    got = race.log_prob(masks, logits.unsqueeze(0))[:, 0]
    expected = torch.tensor([_subset_by_orders(logits, items) for items in chosen], dtype=F64)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-13)
    torch.testing.assert_close(torch.logsumexp(got, 0), torch.zeros((), dtype=F64), rtol=0,
                               atol=1e-13)


def test_gumbel_top_k_log_prob_is_batched_and_matches_the_quadrature():
    """GumbelTopK.log_prob (the shared grid) against the Wallenius law's per-value quadrature,
    over a batch of urns and subset sizes."""
    from diffhypergeom import MultivariateWalleniusNCHypergeometric

    logits = torch.randn(3, 7, generator=torch.Generator().manual_seed(6), dtype=F64) * 2
    k = torch.tensor([1, 3, 6])
    d = gumbel_top_k(logits, k)
    x = d.sample((5,))
    general = MultivariateWalleniusNCHypergeometric(torch.ones(7, dtype=torch.int64), k,
                                                    logits=logits)
    torch.testing.assert_close(d.log_prob(x), general.log_prob(x), rtol=0, atol=1e-9)
