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
    logits = torch.randn(n, generator=torch.Generator().manual_seed(10 * n + k), dtype=F64) * spread
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
