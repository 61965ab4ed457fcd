"""``numerics.tails``: the log-space walk and the mode of a unimodal law, against mpmath sums of
a binomial law (exact at any count), and its refusal of a law that is not unimodal."""

from __future__ import annotations

import math

import mpmath
import pytest
import torch

from diffhypergeom.numerics import tails

F64 = torch.float64


def _binomial(size: int, p: float):
    def terms(rows: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return (math.lgamma(size + 1) - torch.lgamma(k + 1) - torch.lgamma(size - k + 1)
                + k * math.log(p) + (size - k) * math.log1p(-p))
    return terms


def _reference(size: int, p: float, counts) -> float:
    with mpmath.workdps(40):
        p = mpmath.mpf(p)
        return float(mpmath.log(sum(mpmath.binomial(size, k) * p**k * (1 - p)**(size - k)
                                    for k in counts)))


@pytest.mark.parametrize("start,end,step", [(900, 1000, 1), (0, 1000, 1), (150, 0, -1),
                                            (300, 1000, 1), (301, 0, -1), (5, 4, 1)])
def test_walks_match_mpmath_sums(start, end, step):
    """Upward and downward, from either side of the mode (the walk passes through it), tails
    down to 10^-346 and the whole law; an empty range is -inf."""
    got = float(tails.log_walk(_binomial(1000, 0.3), torch.tensor([start]), torch.tensor([end]),
                               step))
    counts = range(start, end + 1) if step > 0 else range(end, start + 1)
    if len(counts) == 0:
        assert got == -math.inf
        return
    assert got == pytest.approx(_reference(1000, 0.3, counts), rel=0, abs=1e-12)


def test_block_sizes_do_not_change_the_sum(monkeypatch):
    terms = _binomial(4000, 0.5)
    start, end = torch.tensor([2100, 2500, 1990]), torch.tensor([4000, 4000, 4000])
    first = tails.log_walk(terms, start, end, 1)
    monkeypatch.setattr(tails, "FIRST_BLOCK", 1)
    torch.testing.assert_close(tails.log_walk(terms, start, end, 1), first, rtol=0, atol=1e-12)


def test_a_rise_after_a_fall_is_refused():
    def bimodal(rows, k):
        return -torch.minimum((k - 10).abs(), (k - 40).abs())
    with pytest.raises(ValueError, match="not unimodal"):
        tails.log_walk(bimodal, torch.tensor([12]), torch.tensor([60]), 1)


def test_the_mode_takes_the_largest_of_tied_counts():
    terms = _binomial(5, 0.5)  # C(5, 2) = C(5, 3)
    low, high = torch.tensor([0, 0, 3, 4]), torch.tensor([5, 2, 5, 4])
    assert tails.unimodal_mode(terms, low, high).tolist() == [3, 2, 3, 4]
    skewed = _binomial(1000, 0.3)
    assert tails.unimodal_mode(skewed, torch.tensor([0]), torch.tensor([1000])).tolist() == [300]
