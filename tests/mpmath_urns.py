"""High-precision references for the urn laws' tails (mpmath): exact sums of exact
probabilities, independent of the library's numerics.

- ``fisher_pmf``: the univariate Fisher law from binomial coefficients;
- ``fisher_marginal``: a class's marginal of the multivariate Fisher law, by enumeration;
- ``wallenius_pmf``: the multivariate Wallenius law by the recursion over the draws (the last
  ball drawn is of class ``i`` with probability ``w_i (m_i - y_i) / d(y)``), exact in ``mpf``
  however small (no quadrature);
- ``wallenius_logpmf``: one probability of the Wallenius law from its integral
  ``int_0^inf d prod_i Bin(x_i; m_i, 1 - e^{-w_i u}) du`` by ``mpmath.quad`` (for urns too large
  for the recursion);
- ``log_tail``: ``log`` of a sum of probabilities over a set of counts.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from functools import cache

import mpmath

DPS = 40


def fisher_pmf(m1: int, m2: int, n: int, odds: float) -> dict[int, mpmath.mpf]:
    """``P(X = k)`` of the univariate Fisher law (class 1 of ``[m1, m2]``, ``n`` drawn)."""
    with mpmath.workdps(DPS):
        odds = mpmath.mpf(odds)
        low, high = max(0, n - m2), min(m1, n)
        terms = {k: mpmath.binomial(m1, k) * mpmath.binomial(m2, n - k) * odds**k
                 for k in range(low, high + 1)}
        total = sum(terms.values())
        return {k: v / total for k, v in terms.items()}


def fisher_marginal(population: Sequence[int], draws: int, weights: Sequence[float], i: int
                    ) -> dict[int, mpmath.mpf]:
    """``P(X_i = k)`` of the multivariate Fisher law, summed over its support."""
    with mpmath.workdps(DPS):
        w = [mpmath.mpf(v) for v in weights]
        terms: dict[int, mpmath.mpf] = {}
        for x in itertools.product(*(range(m + 1) for m in population)):
            if sum(x) != draws:
                continue
            value = mpmath.mpf(1)
            for mj, xj, wj in zip(population, x, w, strict=True):
                value *= mpmath.binomial(mj, xj) * wj**xj
            terms[x[i]] = terms.get(x[i], mpmath.mpf(0)) + value
        total = sum(terms.values())
        return {k: v / total for k, v in terms.items()}


def wallenius_pmf(population: Sequence[int], draws: int, weights: Sequence[float]
                  ) -> dict[tuple[int, ...], mpmath.mpf]:
    """``p(x)`` for every count vector of ``draws`` balls of the multivariate Wallenius law,
    by the recursion over the draws, in ``mpf``."""
    c = len(population)
    with mpmath.workdps(DPS):
        w = [mpmath.mpf(v) for v in weights]
        layer = {(0,) * c: mpmath.mpf(1)}
        for _ in range(draws):
            nxt: dict[tuple[int, ...], mpmath.mpf] = {}
            for y, p in layer.items():
                left = sum(w[j] * (population[j] - y[j]) for j in range(c))
                for j in range(c):
                    if y[j] < population[j] and w[j] > 0:
                        z = y[:j] + (y[j] + 1,) + y[j + 1:]
                        nxt[z] = nxt.get(z, mpmath.mpf(0)) + p * w[j] * (population[j] - y[j]) \
                            / left
            layer = nxt
        return layer


def wallenius_marginal(population: Sequence[int], draws: int, weights: Sequence[float], i: int
                       ) -> dict[int, mpmath.mpf]:
    """``P(X_i = k)`` of the multivariate Wallenius law (``wallenius_pmf`` summed)."""
    out: dict[int, mpmath.mpf] = {}
    for x, p in _wallenius(tuple(population), draws, tuple(weights)).items():
        out[x[i]] = out.get(x[i], mpmath.mpf(0)) + p
    return out


@cache
def _wallenius(population: tuple[int, ...], draws: int, weights: tuple[float, ...]
               ) -> dict[tuple[int, ...], mpmath.mpf]:
    return wallenius_pmf(population, draws, weights)


def wallenius_logpmf(x: Sequence[int], population: Sequence[int], weights: Sequence[float],
                     dps: int = 20) -> mpmath.mpf:
    """``log p(x)`` of the Wallenius law from its integral over ``v = log u``, around the
    integrand's peak (found on a grid of quarter steps), by ``mpmath.quad``."""
    with mpmath.workdps(dps):
        w = [mpmath.mpf(v) for v in weights]
        d = sum(wi * (mi - xi) for wi, mi, xi in zip(w, population, x, strict=True))
        constant = sum(mpmath.log(mpmath.binomial(mi, xi)) for mi, xi in zip(population, x,
                                                                              strict=True))

        def h(v):
            u = mpmath.exp(v)
            total = v + mpmath.log(d) + constant
            for wi, mi, xi in zip(w, population, x, strict=True):
                if xi:
                    total += xi * mpmath.log(-mpmath.expm1(-wi * u))
                total -= (mi - xi) * wi * u
            return total

        grid = [mpmath.mpf(k) / 4 for k in range(-400, 120)]
        values = [h(v) for v in grid]
        top = max(range(len(grid)), key=lambda k: values[k])
        lo = hi = top
        while lo > 0 and values[lo] > values[top] - 80:
            lo -= 1
        while hi < len(grid) - 1 and values[hi] > values[top] - 80:
            hi += 1
        points = mpmath.linspace(grid[lo], grid[hi], 40)
        return values[top] + mpmath.log(mpmath.quad(lambda v: mpmath.exp(h(v) - values[top]),
                                                    points))


def log_tail(pmf: dict[int, mpmath.mpf], counts: Iterable[int]) -> float:
    """``log sum_{k in counts} pmf[k]`` as a float (``-inf`` for an empty sum)."""
    with mpmath.workdps(DPS):
        total = sum((pmf.get(k, mpmath.mpf(0)) for k in counts), mpmath.mpf(0))
        return float(mpmath.log(total)) if total > 0 else float("-inf")
