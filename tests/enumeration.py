"""Brute-force reference for small urns: enumerate the support, no library code.

``p(x) ∝ prod_i C(m_i, x_i) w_i^x_i`` over ``{x : 0 <= x_i <= m_i, sum x = n}``, in float64
with ``math.lgamma`` and a max-shifted sum.
"""

from __future__ import annotations

import itertools
import math

import numpy as np


def log_comb(m: int, k: int) -> float:
    return math.lgamma(m + 1) - math.lgamma(k + 1) - math.lgamma(m - k + 1)


def _times_log(x: int, w: float) -> float:
    if x == 0:
        return 0.0
    return -math.inf if w == 0 else x * math.log(w)


def support(population: list[int], draws: int) -> np.ndarray:
    """``[S, c]`` all count vectors of the support."""
    points = [x for x in itertools.product(*[range(m + 1) for m in population])
              if sum(x) == draws]
    return np.array(points, dtype=np.int64).reshape(-1, len(population))


def log_pmf_table(population: list[int], draws: int, weights: list[float]
                  ) -> tuple[np.ndarray, np.ndarray, float]:
    """Support ``[S, c]``, normalised log-PMF ``[S]`` and the log normaliser ``log P0``."""
    points = support(population, draws)
    unnorm = np.array([
        sum(log_comb(m, int(x)) + _times_log(int(x), w)
            for m, x, w in zip(population, row, weights, strict=True))
        for row in points
    ])
    shift = unnorm.max()
    log_p0 = shift + math.log(np.exp(unnorm - shift).sum())
    return points, unnorm - log_p0, log_p0


def moments(population, draws, weights) -> dict[str, np.ndarray]:
    points, log_p, log_p0 = log_pmf_table(population, draws, weights)
    p = np.exp(log_p)
    mean = p @ points
    centred = points - mean
    cov = (centred * p[:, None]).T @ centred
    marginals = []
    for i, m in enumerate(population):
        marginals.append(np.bincount(points[:, i], weights=p, minlength=m + 1))
    return {"points": points, "log_p": log_p, "p": p, "log_p0": log_p0, "mean": mean,
            "cov": cov, "var": np.diag(cov), "marginals": marginals,
            "entropy": -np.where(p > 0, p * np.where(p > 0, log_p, 0.0), 0.0).sum()}


def grid_marginals_3(population: list[int], draws: int, weights: list[float]
                     ) -> list[np.ndarray]:
    """Exact marginals of a 3-class urn from a numpy grid over ``(x1, x2)``, for urns too large
    for ``itertools``."""
    from scipy.special import gammaln

    m = np.asarray(population)
    x1 = np.arange(m[0] + 1)[:, None]
    x2 = np.arange(m[1] + 1)[None, :]
    x3 = draws - x1 - x2
    valid = (x3 >= 0) & (x3 <= m[2])
    x3c = np.where(valid, x3, 0)

    def lc(n, k):
        return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)

    logw = np.log(np.asarray(weights, dtype=np.float64))
    terms = lc(m[0], x1) + lc(m[1], x2) + lc(m[2], x3c) + logw[0] * x1 + logw[1] * x2 \
        + logw[2] * x3c
    terms = np.where(valid, terms, -np.inf)
    p = np.exp(terms - terms.max())
    p /= p.sum()
    third = np.bincount(x3c[valid], weights=p[valid], minlength=m[2] + 1)
    return [p.sum(1), p.sum(0), third]


def merged_process_log_pmf(points: np.ndarray, population: list[int],
                           weights: list[float]) -> np.ndarray:
    """Log-probability of each point under the paper's merged sequential sampler: class ``i``
    against one class ``R = {i+1..c}`` with ``m_R = sum m_j`` and ``w_R = sum w_j m_j / m_R``,
    using ``scipy.stats.nchypergeom_fisher`` for every step."""
    from scipy import stats

    out = np.zeros(len(points))
    for row, x in enumerate(points):
        remaining = int(x.sum())
        for i in range(len(population) - 1):
            m_right = sum(population[i + 1:])
            w_right = sum(w * m for w, m in zip(weights[i + 1:], population[i + 1:],
                                                strict=True)) / m_right
            odds = weights[i] / w_right
            out[row] += stats.nchypergeom_fisher.logpmf(
                x[i], population[i] + m_right, population[i], remaining, odds)
            remaining -= int(x[i])
    return out
