"""The Fisher law's marginals at any count, exact in log space however small.

The count of class ``i`` in the multivariate Fisher law has

    P(X_i = k) = C(m_i, k) w_i^k P0_{-i}(n - k) / P0(n),
    P0_{-i}(r) = [t^r] prod_{j != i} (1 + w_j t)^m_j,

so ``log P(X_i = k)`` is ``log C(m_i, k) + k theta_i + A_{-i}(n - k) - A(n)`` with ``A_{-i}(r)``
the log-normaliser of the urn without class ``i`` drawing ``r``: a closed form for two classes
(``log C(m_j, r) + r theta_j``), else one urn per count computed by the engines
(``engines.build``, which tilt each urn at its own saddle point, so a count far in a tail is
computed as accurately as one at the mode). The engines' marginal windows, by contrast, hold
probabilities only to about ``1e-14`` of the mode with the FFT engine.
"""

from __future__ import annotations

import torch

from diffhypergeom.numerics.engines import build
from diffhypergeom.numerics.special import log_binomial, times_logit

__all__ = ["fisher_class_terms", "log_binomial_runs", "support_bounds"]


def support_bounds(population: torch.Tensor, draws: torch.Tensor, i: int
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """``low, high [B]`` (int64): the counts class ``i`` can take in urns ``population [B, c]``
    (the balls that can be drawn: zero where the weight is) drawing ``draws [B]``:
    ``max(0, n - sum_{j != i} m_j)`` and ``min(m_i, n)``.

    Example:
        >>> import torch
        >>> from diffhypergeom.numerics.marginals import support_bounds
        >>> support_bounds(torch.tensor([[4, 5, 6]]), torch.tensor([13]), 0)
        (tensor([2]), tensor([4]))
    """
    own = population[:, i]
    rest = population.sum(-1) - own
    return (draws - rest).clamp_min(0), torch.minimum(own, draws)


def fisher_class_terms(population: torch.Tensor, draws: torch.Tensor, theta: torch.Tensor,
                       i: int, counts: torch.Tensor, engine: str = "auto") -> torch.Tensor:
    """``[B, K]`` float64: ``log C(m_i, k) + k theta_i + A_{-i}(n - k)``, i.e. ``log P(X_i =
    k) + A(n)``, for urns ``population [B, c]`` (int64, zero where the weight is zero),
    ``draws [B]``, ``theta [B, c]`` (float64, ``-inf`` for weight zero) and counts ``[B, K]``
    inside ``support_bounds``. Differentiable in ``theta``.

    Example:
        >>> import math, torch
        >>> from diffhypergeom.numerics.marginals import fisher_class_terms
        >>> theta = torch.zeros(1, 3, dtype=torch.float64)  # central: C(5, k) C(10, 7 - k)
        >>> terms = fisher_class_terms(torch.tensor([[5, 4, 6]]), torch.tensor([7]), theta, 0,
        ...                            torch.tensor([[0.0, 5.0]]))
        >>> [round(math.exp(t)) for t in terms[0].tolist()], math.comb(10, 7), math.comb(10, 2)
        ([120, 45], 120, 45)
    """
    batch, classes = population.shape
    m = population.to(torch.float64)
    others = [j for j in range(classes) if j != i]
    if len(others) == 1:
        return _pair_terms(m[:, i], m[:, others[0]], draws.to(torch.float64), theta[:, i],
                           theta[:, others[0]], counts)
    own = log_binomial(m[:, i : i + 1], counts) + times_logit(counts, theta[:, i : i + 1])
    if len(others) == 0:
        return own
    rest = draws.unsqueeze(-1).to(torch.float64) - counts
    if len(others) == 1:
        return _pair_terms(m[:, i], m[:, others[0]], draws.to(torch.float64), theta[:, i],
                           theta[:, others[0]], counts)
    width = counts.shape[-1]
    urns = build(engine, population[:, others].repeat_interleave(width, 0),
                 rest.reshape(-1).round().to(torch.int64),
                 theta[:, others].repeat_interleave(width, 0))
    return own + urns.log_normalizer.reshape(batch, width)


def log_binomial_runs(m: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """``log C(m, k)`` ``[..., K]`` for rows of counts ``[..., K]`` that are runs (neighbours
    differ by -1, 0 or +1) inside ``0..m`` (``m [...]`` or ``[..., 1]``): ``log_binomial`` at the
    first count, then ``log((m - k) / (k + 1))`` a step (one logarithm a count where
    ``log_binomial`` takes three ``lgamma``; exact integers, rounding that grows with ``K``).

    Example:
        >>> import math, torch
        >>> from diffhypergeom.numerics.marginals import log_binomial_runs
        >>> row = log_binomial_runs(torch.tensor([10.0]), torch.tensor([[3.0, 4.0, 4.0, 3.0]]))
        >>> [round(math.exp(v)) for v in row[0].tolist()]
        [120, 210, 210, 120]
    """
    m = m.to(torch.float64)
    m = m if m.dim() == counts.dim() else m.unsqueeze(-1)
    head = log_binomial(m, counts[..., :1])
    step = counts[..., 1:] - counts[..., :-1]
    k = torch.minimum(counts[..., 1:], counts[..., :-1])
    up = ((m - k) / (k + 1)).clamp_min(1e-300).log()
    return torch.cat([head, head + torch.where(step == 0, 0.0, step * up).cumsum(-1)], -1)


def _pair_terms(m: torch.Tensor, other: torch.Tensor, n: torch.Tensor, theta: torch.Tensor,
                theta_other: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Two classes: ``log C(m, k) + log C(m', n - k) + k theta + (n - k) theta'`` along runs of
    counts (``log_binomial_runs``)."""
    rest = n.unsqueeze(-1) - counts
    return (log_binomial_runs(m, counts) + log_binomial_runs(other, rest)
            + times_logit(counts, theta.unsqueeze(-1))
            + times_logit(rest, theta_other.unsqueeze(-1)))
