"""Tails of a unimodal law on whole numbers, summed in log space from a count outward; its mode.

The marginals of the urn laws (``laws.marginal``) know ``t(k) = log P(X = k)`` exactly at any
count ``k`` of their support ``low..high`` (``LogTerms``), however small the probability. A tail
``log sum_{k >= x} e^t(k)`` is summed from ``x`` outward in blocks of counts, in log space, so
a tail of ``1e-300`` or ``1e-3000`` keeps every digit. The walk stops at the end of the support
or once the terms fall and what is left cannot matter: in a unimodal law the terms never rise
again after a fall, so the rest is at most the number of counts left times the last term, and
the walk stops when that bound is below ``EPS`` of the sum (``2^-53``: the sum is then exact to
rounding). Once the terms fall, the next block is sized by their rate of fall to reach that
bound, so few counts beyond it are evaluated. Terms that rise again after a fall (beyond
``RISE``) break the premise: a ``ValueError`` says so instead of a wrong sum.

Unimodality is a theorem for the Fisher law's marginals (they are log-concave: ``C(m_i, k)
w^k`` times the coefficients of a polynomial with real roots, a log-concave sequence by
Newton's inequalities). The univariate Wallenius law is not log-concave (its increments can
grow in a tail; the tests show one) and its unimodality is assumed, not proven here: the walk
checks every term it evaluates for a rise after a fall, and the tests compare its sums with
full sums on many urns.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from diffhypergeom.numerics.special import NEG_INF, logsumexp

__all__ = ["BLOCK_ELEMENTS", "EPS", "FIRST_BLOCK", "LogTerms", "RISE", "TIE", "log_total",
           "log_walk", "unimodal_mode"]

# (rows [b] int64: which of the B laws, counts [b, K] float64) -> the exact log-probabilities
# [b, K] (the same constant may be left out of every term of a row). Each row of counts is a run
# of whole numbers inside the support whose neighbours differ by -1, 0 or +1.
LogTerms = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# the walk stops when what is left is below this fraction of the sum
EPS = 2.0**-53
# the first block of counts; later blocks double, up to BLOCK_ELEMENTS counts over all rows
FIRST_BLOCK = 16
BLOCK_ELEMENTS = 1 << 21
# a rise after a fall larger than this (in log-probability, plus 1e-12 relative) is not
# rounding: the law is not unimodal there
RISE = 1e-8
# counts whose log-probabilities differ by less than this are tied (the mode takes the larger)
TIE = 1e-9


def _noise(values: torch.Tensor) -> torch.Tensor:
    return RISE + 1e-12 * values.abs()


def log_walk(terms: LogTerms, start: torch.Tensor, end: torch.Tensor, step: int) -> torch.Tensor:
    """``[B]``: ``log sum_k e^terms(k)`` over ``k = start, start + step, ..., end`` (``step`` is
    ``+1`` or ``-1``; ``end`` included; ``-inf`` where ``start`` is beyond ``end``), for the
    ``B`` rows of ``start, end [B]`` (int64). Differentiable through ``terms``.

    Example:
        >>> import math, torch
        >>> from diffhypergeom.numerics.tails import log_walk
        >>> def binomial(rows, k):  # Bin(k; 1000, 0.3): exact log-probabilities at any k
        ...     return (math.lgamma(1001) - torch.lgamma(k + 1) - torch.lgamma(1001 - k)
        ...             + k * math.log(0.3) + (1000 - k) * math.log(0.7))
        >>> tail = log_walk(binomial, torch.tensor([900]), torch.tensor([1000]), +1)
        >>> round(float(tail), 6)  # log P(X >= 900), about 10^-346 (mpmath: -797.281024)
        -797.281024
    """
    total = torch.full(start.shape, NEG_INF, dtype=torch.float64, device=start.device)
    left = ((end - start) * step + 1).clamp_min(0)
    position = start.clone()
    last = torch.full_like(total, NEG_INF)
    fallen = torch.zeros_like(start, dtype=torch.bool)
    size = torch.full_like(start, FIRST_BLOCK)
    active = left > 0
    while bool(active.any()):
        waiting = active.nonzero().squeeze(-1)
        # rows of one block size at a time (sizes are powers of two)
        for block in torch.unique(size[waiting]).tolist():
            rows = waiting[size[waiting] == block]
            block = min(block, max(FIRST_BLOCK, BLOCK_ELEMENTS // len(rows)))
            total = _advance(terms, step, rows, block, total, left, position, last, fallen,
                             size, active)
    return total


def _advance(terms: LogTerms, step: int, rows: torch.Tensor, block: int, total: torch.Tensor,
             left: torch.Tensor, position: torch.Tensor, last: torch.Tensor,
             fallen: torch.Tensor, size: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """One block of ``log_walk`` for ``rows``: adds the terms to ``total`` (returned) and
    updates the walk's state in place (what is left, where, the last term, whether the terms
    have fallen, the next block's size, which rows go on)."""
    j = torch.arange(block, device=rows.device)
    inside = j < left[rows].unsqueeze(-1)
    counts = position[rows].unsqueeze(-1) + step * torch.minimum(j, (left[rows] - 1).unsqueeze(-1))
    values = torch.where(inside, terms(rows, counts.to(torch.float64)), NEG_INF)
    total = total.index_put((rows,), torch.logaddexp(total[rows], logsumexp(values, -1)))
    with torch.no_grad():
        seen = values.detach()
        taken = inside.sum(-1)
        end_value = seen.gather(-1, (taken - 1).unsqueeze(-1)).squeeze(-1)
        chain = torch.cat([last[rows].unsqueeze(-1), seen], -1)
        both = torch.isfinite(chain[:, 1:]) & torch.isfinite(chain[:, :-1])
        rise = torch.where(both, chain[:, 1:] - chain[:, :-1], 0.0)
        noise = _noise(chain[:, 1:])
        falls = (rise < -noise) | (torch.isinf(chain[:, 1:]) & inside)
        before = fallen[rows].unsqueeze(-1) | (falls.long().cumsum(-1) - falls.long() > 0)
        if bool(((rise > noise) & before & inside).any()):
            raise ValueError("the log-probabilities rise again after a fall: the law is not "
                             "unimodal here, so its tail cannot be bounded; please report this "
                             "urn")
        has_fallen = fallen[rows] | falls.any(-1)
        previous = chain.gather(-1, (taken - 1).unsqueeze(-1)).squeeze(-1)
        falling = (end_value <= previous + _noise(end_value)) & has_fallen
        rest = left[rows] - taken
        bound = end_value + rest.clamp_min(1).to(torch.float64).log()
        gap = bound - total[rows].detach() - math.log(EPS)
        done = (rest <= 0) | (falling & (gap <= 0)) | torch.isinf(end_value)
        # the counts that reach the bound if the rate of fall keeps growing as it did in this
        # block (else twice the block), rounded up to a power of two
        rate = (previous - end_value).clamp_min(1e-3)
        first_rate = (chain[:, 1] - chain[:, 2]) if block > 1 else rate
        growth = ((rate - first_rate) / (taken - 1).clamp_min(1)).nan_to_num(0.0).clamp_min(0)
        reach = torch.where(growth > 0, ((rate * rate + 2 * growth * gap.clamp_min(0)).sqrt()
                                         - rate) / growth.clamp_min(1e-300), gap / rate)
        wanted = torch.where(falling, reach + 2, 2.0 * block).clamp(4, 1 << 20)
        last[rows] = end_value
        fallen[rows] = has_fallen
        position[rows] = position[rows] + step * taken
        left[rows] = rest
        size[rows] = torch.exp2(torch.log2(wanted).ceil()).to(size.dtype)
        active[rows] = ~done
    return total


@torch.no_grad()
def unimodal_mode(terms: LogTerms, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """``[B]`` int64: the count of ``low..high`` where ``terms`` peak, by bisection on the sign
    of ``terms(k + 1) - terms(k)`` (``O(log(high - low))`` pairs of terms). Counts within
    ``TIE`` of each other in log-probability count as tied, and the largest is taken (as
    BiasedUrn's ``modeFNCHypergeo`` does).

    Example:
        >>> import math, torch
        >>> from diffhypergeom.numerics.tails import unimodal_mode
        >>> def binomial(rows, k):  # Bin(k; 5, 1/2) up to a constant: C(5, 2) = C(5, 3) tie
        ...     return math.lgamma(6) - torch.lgamma(k + 1) - torch.lgamma(6 - k)
        >>> unimodal_mode(binomial, torch.tensor([0]), torch.tensor([5]))
        tensor([3])
    """
    lo, hi = low.clone(), high.clone()
    while True:
        open_ = lo < hi
        if not bool(open_.any()):
            return lo
        rows = open_.nonzero().squeeze(-1)
        mid = (lo[rows] + hi[rows]) // 2
        pair = terms(rows, torch.stack([mid, mid + 1], -1).to(torch.float64))
        falling = (pair[:, 1] - pair[:, 0] < -TIE) | (torch.isinf(pair[:, 1])
                                                     & torch.isfinite(pair[:, 0]))
        lo[rows] = torch.where(falling, lo[rows], mid + 1)
        hi[rows] = torch.where(falling, mid, hi[rows])


def log_total(terms: LogTerms, low: torch.Tensor, high: torch.Tensor, start: torch.Tensor
              ) -> torch.Tensor:
    """``[B]``: ``log sum_{k = low..high} e^terms(k)``, walked from ``start`` (best: the mode)
    up to ``high`` and from ``start - 1`` down to ``low``: the log-normaliser of terms known up
    to a constant."""
    return torch.logaddexp(log_walk(terms, start, high, +1), log_walk(terms, start - 1, low, -1))
