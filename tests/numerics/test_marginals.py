"""``numerics.marginals``: the Fisher law's marginal terms at any count against exact integer
arithmetic (``math.comb`` and a sum over the other classes' counts), deep in the tails."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from diffhypergeom.numerics.marginals import (
    fisher_class_terms,
    log_binomial_runs,
    support_bounds,
)

F64 = torch.float64


def _exact_terms(population, draws, weights, i, counts):
    """``log(C(m_i, k) w_i^k P0_{-i}(n - k))`` with ``P0_{-i}`` summed over the other classes."""
    others = [j for j in range(len(population)) if j != i]
    out = []
    for k in counts:
        rest = 0.0
        for y in itertools.product(*(range(population[j] + 1) for j in others)):
            if sum(y) == draws - k:
                rest += math.prod(math.comb(population[j], yj) * weights[j] ** yj
                                  for j, yj in zip(others, y, strict=True))
        out.append(math.log(math.comb(population[i], k) * weights[i] ** k * rest))
    return out


@pytest.mark.parametrize("engine", ["logspace", "fft"])
def test_terms_of_two_and_three_classes(engine):
    for population, draws, weights in (([30, 45], 40, [0.2, 1.0]),
                                       ([12, 9, 15], 16, [0.5, 3.0, 1.0])):
        theta = torch.tensor([weights], dtype=F64).log()
        low, high = support_bounds(torch.tensor([population]), torch.tensor([draws]), 0)
        run = torch.arange(int(low), int(high) + 1, dtype=F64)
        for counts in (run, run.flip(0)):
            got = fisher_class_terms(torch.tensor([population]), torch.tensor([draws]), theta,
                                     0, counts.unsqueeze(0), engine)[0]
            want = torch.tensor(_exact_terms(population, draws, weights, 0,
                                             counts.long().tolist()), dtype=F64)
            torch.testing.assert_close(got, want, rtol=1e-13, atol=1e-11)


def test_log_binomial_runs_of_a_huge_class():
    """log C(10^9, k) along a run, against mpmath (lgamma differences would lose 6 digits)."""
    mpmath = pytest.importorskip("mpmath")
    ks = [5 * 10**8, 5 * 10**8 + 1, 5 * 10**8 + 2, 5 * 10**8 + 2, 5 * 10**8 + 1]
    got = log_binomial_runs(torch.tensor([[1e9]], dtype=F64),
                            torch.tensor([ks], dtype=F64))[0].tolist()
    with mpmath.workdps(40):
        want = [float(mpmath.log(mpmath.binomial(10**9, k))) for k in ks]
    assert max(abs(a - b) / abs(b) for a, b in zip(got, want, strict=True)) < 1e-15
