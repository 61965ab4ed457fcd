"""Goodness-of-fit helpers for the sampling tests: chi-square tests of observed counts against
exact probabilities, with sparse cells pooled, and a Benjamini-Hochberg decision."""

from __future__ import annotations

import numpy as np
from scipy import stats


def chisquare_pvalue(observed: np.ndarray, probs: np.ndarray, min_expected: float = 5.0
                     ) -> float:
    """Chi-square goodness-of-fit p-value. Cells are sorted by probability and the smallest are
    pooled until each pooled cell expects at least ``min_expected`` observations; an observation
    in a cell of probability zero gives p = 0."""
    observed = np.asarray(observed, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    if observed[probs <= 0].sum() > 0:
        return 0.0
    keep = probs > 0
    observed, probs = observed[keep], probs[keep] / probs[keep].sum()
    total = observed.sum()
    order = np.argsort(probs)
    pooled_obs, pooled_exp, acc_obs, acc_exp = [], [], 0.0, 0.0
    for idx in order:
        acc_obs += observed[idx]
        acc_exp += probs[idx] * total
        if acc_exp >= min_expected:
            pooled_obs.append(acc_obs)
            pooled_exp.append(acc_exp)
            acc_obs = acc_exp = 0.0
    if acc_exp > 0 and pooled_exp:
        pooled_obs[-1] += acc_obs
        pooled_exp[-1] += acc_exp
    if len(pooled_exp) < 2:
        return 1.0
    return float(stats.chisquare(pooled_obs, pooled_exp).pvalue)


def any_rejected(pvalues: list[float], alpha: float) -> bool:
    """Benjamini-Hochberg at false discovery rate ``alpha``."""
    adjusted = stats.false_discovery_control(np.asarray(pvalues))
    return bool((adjusted < alpha).any())


def marginal_pvalues(samples: np.ndarray, marginals: list[np.ndarray]) -> list[float]:
    """One chi-square p-value per class: sample counts ``[N, c]`` against exact marginals."""
    return [chisquare_pvalue(np.bincount(samples[:, i], minlength=len(p))[: len(p)], p)
            for i, p in enumerate(marginals)]
