"""The reference for profile-likelihood intervals of two free logits: the points where the
profile (the other logit re-maximised by a 1-D search) falls by ``q / 2`` from the maximum,
found by root-finding (scipy)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import optimize

__all__ = ["profile_limits"]


def profile_limits(loglik: Callable[[np.ndarray], float], best: np.ndarray, q: float, j: int,
                   width: float, tol: float = 1e-12) -> tuple[float, float]:
    """``(low, high)`` of logit ``j`` of two (``loglik`` of a vector of 2, maximal at ``best``)
    where ``2 (max - profile) = q``; the roots are searched ``width`` either side of
    ``best[j]``, the other logit within ``best +- width``."""
    top = loglik(best)

    def excess(t: float) -> float:
        def inner(u: float) -> float:
            free = np.empty(2)
            free[j], free[1 - j] = t, u
            return -loglik(free)
        other = best[1 - j]
        found = optimize.minimize_scalar(inner, bracket=(other - width / 2, other + width / 2),
                                         tol=tol)
        return top + found.fun - q / 2

    low = optimize.brentq(excess, best[j] - width, best[j], xtol=tol)
    high = optimize.brentq(excess, best[j], best[j] + width, xtol=tol)
    return low, high
