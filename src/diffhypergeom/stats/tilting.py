"""``TiltedCount``: the law of one count ``X`` on its support ``k_0 < k_1 < ...`` with base
weights ``h(k)``, tilted by a log odds ratio ``theta``,

    p_theta(k) = h(k) e^(theta k) / sum_j h(k_j) e^(theta k_j),

an exponential family in ``theta``: the first cell of a 2 x 2 table given its margins under
Fisher's noncentral hypergeometric law (``h`` is the central hypergeometric law). It gives the
mean, the tails ``log P(X >= x)`` and ``log P(X <= x)`` with their derivatives in ``theta``, all
in log space (float64, exact down to the smallest normal tails), and the ``theta`` at which
each takes a given value: the conditional maximum-likelihood estimate and the exact confidence
limits of the odds ratio (``diffhypergeom.stats.tables``).
"""

from __future__ import annotations

import math

import torch

from diffhypergeom.stats.solvers import increasing_root

__all__ = ["TiltedCount"]


class TiltedCount:
    """A count's law tilted by ``theta`` (see the module docstring).

    Args:
        values: ``[K]`` the support, increasing integers.
        log_base: ``[K]`` ``log h(k)`` (any additive constant).
        center: the exponent is ``theta (k - center)``, exact where the mass is near
            ``center`` (the observed count).

    Example:
        The first cell of the table ``[[3, 1], [1, 3]]``: 4 balls of class 0 and 4 of class 1,
        4 drawn:

        >>> import math
        >>> import torch
        >>> from diffhypergeom.stats.tilting import TiltedCount
        >>> k = torch.arange(5, dtype=torch.float64)
        >>> h = torch.lgamma(torch.tensor(5.0)) * 2 - 2 * (torch.lgamma(k + 1)
        ...                                               + torch.lgamma(5 - k))
        >>> law = TiltedCount(k, h, center=3)
        >>> round(law.mean(0.0), 12), round(law.log_upper(3, 0.0)[0], 6)  # log(17/70)
        (2.0, -1.415282)
        >>> theta = law.solve_mean(3)  # the conditional MLE of the log odds ratio
        >>> round(law.mean(theta), 10), round(math.exp(theta), 6)
        (3.0, 6.40832)
    """

    def __init__(self, values: torch.Tensor, log_base: torch.Tensor, center: float):
        self.values = values.to(torch.float64)
        self.log_base = log_base.to(torch.float64)
        self.center = float(center)
        self.offsets = self.values - self.center

    def log_probs(self, theta: float) -> torch.Tensor:
        """``[K]``: ``log p_theta(k)``."""
        weights = self.log_base + theta * self.offsets
        return weights - torch.logsumexp(weights, 0)

    def mean(self, theta: float) -> float:
        """``E_theta[X]``."""
        return float((self.log_probs(theta).exp() * self.values).sum())

    def _moments(self, theta: float) -> tuple[float, float]:
        probs = self.log_probs(theta).exp()
        mean = (probs * self.offsets).sum()
        return float(mean) + self.center, float((probs * (self.offsets - mean) ** 2).sum())

    def log_upper(self, x: float, theta: float) -> tuple[float, float]:
        """``log P_theta(X >= x)`` and its derivative ``E[X | X >= x] - E[X]``."""
        return self._log_tail(self.values >= x, theta)

    def log_lower(self, x: float, theta: float) -> tuple[float, float]:
        """``log P_theta(X <= x)`` and its derivative ``E[X | X <= x] - E[X]``."""
        return self._log_tail(self.values <= x, theta)

    def _log_tail(self, inside: torch.Tensor, theta: float) -> tuple[float, float]:
        log_probs = self.log_probs(theta)
        tail = torch.where(inside, log_probs, -math.inf)
        log_tail = torch.logsumexp(tail, 0)
        conditional = ((tail - log_tail).exp() * self.values).sum()
        return float(log_tail), float(conditional - (log_probs.exp() * self.values).sum())

    def solve_mean(self, x: float, start: float = 0.0) -> float:
        """The ``theta`` with ``E_theta[X] = x`` (``x`` strictly inside the support's range):
        the maximum-likelihood estimate from one observation ``x``."""
        def gap(theta: float) -> tuple[float, float]:
            mean, variance = self._moments(theta)
            return mean - x, variance
        return increasing_root(gap, start, xtol=1e-14, max_step=8.0)

    def solve_upper(self, x: float, log_level: float, start: float = 0.0) -> float:
        """The ``theta`` with ``log P_theta(X >= x) = log_level`` (``x`` above the support's
        least value): ``P(X >= x)`` rises with ``theta``."""
        def gap(theta: float) -> tuple[float, float]:
            value, slope = self.log_upper(x, theta)
            return value - log_level, slope
        return increasing_root(gap, start, xtol=1e-14, max_step=8.0)

    def solve_lower(self, x: float, log_level: float, start: float = 0.0) -> float:
        """The ``theta`` with ``log P_theta(X <= x) = log_level`` (``x`` below the support's
        greatest value): ``P(X <= x)`` falls as ``theta`` rises."""
        def gap(theta: float) -> tuple[float, float]:
            value, slope = self.log_lower(x, theta)
            return log_level - value, -slope
        return increasing_root(gap, start, xtol=1e-14, max_step=8.0)
