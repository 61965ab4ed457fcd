"""Independent references for the MFNCH, written with numpy/scipy only (no library code).

Exact reference: enumerate the support ``S = {x : 0 <= x_i <= m_i, sum x = n}`` as a grid over
the first ``c - 1`` classes (``x_c = n - sum_{i<c} x_i``), evaluate

    log p(x) = sum_i [gammaln(m_i+1) - gammaln(x_i+1) - gammaln(m_i-x_i+1) + x_i log w_i] - log P0

with ``scipy.special.gammaln`` (``log P0`` by log-sum-exp over ``S``) and draw with
``numpy.random.Generator.choice``. Merged reference: the paper's sampler, class ``i`` drawn
against one merged right class ``R = {i+1..c}`` with ``m_R = sum_R m_j`` and
``w_R = sum_R w_j m_j / m_R``, each step a ``scipy.stats.nchypergeom_fisher`` draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln, logsumexp

__all__ = [
    "EnumeratedUrn", "empirical_marginal", "enumerate_urn", "log_binomial", "merged_draws",
    "merged_law", "merged_parameters", "total_variation",
]


@dataclass(frozen=True)
class EnumeratedUrn:
    """The full support and exact PMF of a small urn.

    Attributes:
        population: ``[c]`` balls per class.
        draws: balls drawn ``n``.
        support: ``[S, c]`` int64, every feasible count vector.
        pmf: ``[S]`` float64 probabilities (sum 1).
    """

    population: np.ndarray
    draws: int
    support: np.ndarray
    pmf: np.ndarray

    def marginal(self, i: int) -> np.ndarray:
        """``[m_i + 1]``: exact ``p(x_i = k)``."""
        return np.bincount(self.support[:, i], weights=self.pmf,
                           minlength=int(self.population[i]) + 1)

    def mean(self) -> np.ndarray:
        """``[c]``: ``E[x]``."""
        return self.pmf @ self.support

    def expect(self, values: np.ndarray) -> np.ndarray:
        """``E[f(X)]`` for ``values = f(support)`` of shape ``[S, ...]``."""
        return np.tensordot(self.pmf, values, axes=1)

    def draw(self, num: int, rng: np.random.Generator) -> np.ndarray:
        """``[num, c]`` exact i.i.d. draws (``Generator.choice`` over the support)."""
        index = rng.choice(len(self.pmf), size=num, p=self.pmf)
        return self.support[index]


def _check_urn(population, draws, weights) -> tuple[np.ndarray, int, np.ndarray]:
    population = np.asarray(population, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    if population.ndim != 1 or population.size < 2:
        raise ValueError(f"population must be a 1-D list of >= 2 class sizes, got {population}")
    if weights.shape != population.shape:
        raise ValueError(f"weights must have one entry per class ({population.size}), "
                         f"got shape {weights.shape}")
    if (population < 0).any() or not (weights > 0).all() or not np.isfinite(weights).all():
        raise ValueError("population must be >= 0 and weights finite and > 0")
    if not 0 <= int(draws) <= int(population.sum()):
        raise ValueError(f"draws must be in [0, sum(population)={population.sum()}], "
                         f"got {draws}")
    return population, int(draws), weights


def log_binomial(m: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``log C(m, k)`` with ``gammaln``."""
    return gammaln(m + 1.0) - gammaln(k + 1.0) - gammaln(m - k + 1.0)


def enumerate_urn(population, draws: int, weights) -> EnumeratedUrn:
    """Enumerate the support of ``MFNCH(m, n, w)`` and its exact PMF (see module docstring).
    The grid has ``prod_{i<c} (m_i + 1)`` points: meant for small ``c``."""
    population, draws, weights = _check_urn(population, draws, weights)
    grid = np.indices(tuple(int(m) + 1 for m in population[:-1])).reshape(
        population.size - 1, -1).T
    last = draws - grid.sum(axis=1)
    keep = (last >= 0) & (last <= population[-1])
    support = np.concatenate([grid[keep], last[keep, None]], axis=1).astype(np.int64)
    log_terms = (log_binomial(population, support) + support * np.log(weights)).sum(axis=1)
    pmf = np.exp(log_terms - logsumexp(log_terms))
    return EnumeratedUrn(population, draws, support, pmf / pmf.sum())


def merged_parameters(population: np.ndarray, weights: np.ndarray, i: int
                      ) -> tuple[int, float]:
    """``(m_R, w_R)`` of the merged right class ``R = {i+1..c}`` (paper, Equation 3)."""
    m_right = int(population[i + 1:].sum())
    if m_right == 0:
        return 0, 1.0
    return m_right, float((weights[i + 1:] * population[i + 1:]).sum() / m_right)


def _nchg(population, weights, i):
    from scipy.stats import nchypergeom_fisher

    m_right, w_right = merged_parameters(population, weights, i)
    total = int(population[i]) + m_right
    return nchypergeom_fisher, total, int(population[i]), float(weights[i] / w_right)


def merged_draws(population, draws: int, weights, num: int, rng: np.random.Generator
                 ) -> np.ndarray:
    """``[num, c]`` draws of the paper's merged sequential sampler with scipy's univariate
    Fisher distribution; samples sharing the same number of balls left are drawn together."""
    population, draws, weights = _check_urn(population, draws, weights)
    c = population.size
    out = np.zeros((num, c), dtype=np.int64)
    remaining = np.full(num, draws, dtype=np.int64)
    for i in range(c - 1):
        dist, total, m_left, odds = _nchg(population, weights, i)
        for r in np.unique(remaining):
            rows = np.flatnonzero(remaining == r)
            if total == m_left:  # no balls to the right: class i takes all that is left
                out[rows, i] = r
                continue
            out[rows, i] = dist.rvs(total, m_left, int(r), odds, size=rows.size,
                                    random_state=rng)
        remaining = remaining - out[:, i]
    out[:, c - 1] = remaining
    return out


def merged_law(population, draws: int, weights) -> EnumeratedUrn:
    """The exact law of the merged sampler on the support (product of scipy's univariate
    Fisher PMFs along the class order) — what the paper's Algorithm 1 really samples."""
    population, draws, weights = _check_urn(population, draws, weights)
    urn = enumerate_urn(population, draws, np.ones_like(weights))
    support = urn.support
    log_p = np.zeros(len(support))
    remaining = np.full(len(support), draws, dtype=np.int64)
    for i in range(population.size - 1):
        dist, total, m_left, odds = _nchg(population, weights, i)
        if total > m_left:
            log_p += dist.logpmf(support[:, i], total, m_left, remaining, odds)
        remaining = remaining - support[:, i]
    pmf = np.exp(log_p)
    return EnumeratedUrn(population, draws, support, pmf / pmf.sum())


def empirical_marginal(samples: np.ndarray, i: int, size: int) -> np.ndarray:
    """``[size]``: the empirical distribution of class ``i`` in ``samples [N, c]``."""
    return np.bincount(samples[:, i], minlength=size)[:size] / len(samples)


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """``0.5 * sum |p - q|`` of two distributions over the same support."""
    size = max(len(p), len(q))
    p = np.pad(p, (0, size - len(p)))
    q = np.pad(q, (0, size - len(q)))
    return float(0.5 * np.abs(p - q).sum())
