"""``numerics.wallenius``: the quadrature's peak search at a peak found to the last bit, the
block quadrature on shared nodes against the per-count quadrature, the marginal summed over
the support, and Fog's approximate mean."""

from __future__ import annotations

import math

import pytest
import torch
from mpmath_urns import wallenius_logpmf, wallenius_marginal

from diffhypergeom import MultivariateWalleniusNCHypergeometric as Wallenius
from diffhypergeom.numerics import wallenius as quadrature

F64 = torch.float64


@pytest.mark.parametrize("odds,count", [(2.4181, 9), (2.3962, 13), (2.5771, 11)])
def test_log_prob_where_newton_lands_on_the_peak_exactly(odds, count):
    """At these urns Newton's step for the peak lands where h' is 0 to the last bit; the
    safeguard took that step for a step out of its (exclusive) bracket and bisected away, and
    log_prob was -inf. Inclusive, it keeps the peak; the value is the integral's."""
    x = torch.tensor([[count, 2864.0 - count]], dtype=F64)
    m = torch.tensor([13.0, 19987.0], dtype=F64)
    log_w = torch.tensor([odds, 1.0], dtype=F64).log()
    got = float(quadrature.log_prob(x, m, log_w)[0])
    want = float(wallenius_logpmf([count, 2864 - count], [13, 19987], [odds, 1.0]))
    assert got == pytest.approx(want, rel=0, abs=1e-10)


@pytest.mark.parametrize("seed", range(3))
def test_blocks_on_shared_nodes_match_the_per_count_quadrature(seed):
    """Runs of 16 counts (up, down, with repeats, across three classes) of random urns with a
    class of up to 10^5 balls: the block quadrature equals log_prob to 2e-10 (both are within
    1e-10 of mpmath's integral there: the rounding of terms of size 10^5 in float64)."""
    generator = torch.Generator().manual_seed(seed)
    batch, width = 40, 16
    m = torch.stack([torch.randint(20, 300, (batch,), generator=generator),
                     torch.randint(100, 100_000, (batch,), generator=generator),
                     torch.randint(5, 50, (batch,), generator=generator)], -1).to(F64)
    n = (m.sum(-1) * 0.3).floor()
    log_w = torch.randn(batch, 3, generator=generator, dtype=F64)
    start = (m[:, 0] * torch.rand(batch, generator=generator, dtype=F64)).floor()
    step = torch.tensor([1.0, -1.0], dtype=F64)[torch.randint(0, 2, (batch,),
                                                              generator=generator)]
    run = (start.unsqueeze(-1) + step.unsqueeze(-1) * torch.arange(width)).clamp(
        torch.zeros(batch, 1, dtype=F64), m[:, :1])
    third = m[:, 2:] // 2
    x = torch.stack([run, n.unsqueeze(-1) - run - third, third.expand_as(run)], -1)
    got = quadrature.log_prob_block(x, m, log_w)
    want = quadrature.log_prob(x, m.unsqueeze(1), log_w.unsqueeze(1))
    torch.testing.assert_close(got, want, rtol=0, atol=2e-10)


def test_the_marginal_summed_over_the_support():
    population, draws, weights = [7, 5, 6], 9, [0.4, 2.5, 1.0]
    counts = torch.arange(0.0, 8.0, dtype=F64).unsqueeze(0)
    got = quadrature.marginal_log_prob(torch.tensor([population]), torch.tensor([draws]),
                                       torch.tensor([weights], dtype=F64).log(), 0, counts,
                                       limit=1000)
    reference = wallenius_marginal(population, draws, weights, 0)
    want = torch.tensor([math.log(float(reference[k])) for k in range(8)], dtype=F64)
    torch.testing.assert_close(got[0], want, rtol=0, atol=1e-11)
    with pytest.raises(ValueError, match="limit of 3"):
        quadrature.marginal_log_prob(torch.tensor([population]), torch.tensor([draws]),
                                     torch.tensor([weights], dtype=F64).log(), 0, counts,
                                     limit=3)


def test_fogs_approximation_is_within_a_count_or_two_of_the_mean():
    generator = torch.Generator().manual_seed(5)
    m = torch.randint(5, 100, (8, 3), generator=generator)
    n = (m.sum(-1) * torch.rand(8, generator=generator)).long()
    log_w = torch.randn(8, 3, generator=generator, dtype=F64)
    exact = Wallenius(m, n, logits=log_w).mean
    approximate = quadrature.mean_approximation(m.to(F64), n.to(F64), log_w)
    assert float((approximate - exact).abs().max()) < 2
    torch.testing.assert_close(approximate.sum(-1), n.to(F64))
