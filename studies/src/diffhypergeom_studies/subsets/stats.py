"""The paired comparison of two methods across seeds (same seed: same data split, same
initialisation and the same minibatches), and the choice of the best method of a family."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["ALPHA", "best_method", "paired_comparison"]

ALPHA = 0.05


def best_method(finals: Mapping[str, Sequence[float]], higher_is_better: bool) -> str | None:
    """The method with the best mean final metric (``None`` for no methods). NaN means lose.

    Example:
        >>> from diffhypergeom_studies.subsets.stats import best_method
        >>> best_method({"a": [0.8, 0.9], "b": [0.85, 0.95]}, higher_is_better=True)
        'b'
    """
    def score(name: str) -> float:
        mean = float(np.mean(finals[name]))
        if math.isnan(mean):
            return -math.inf
        return mean if higher_is_better else -mean

    return max(finals, key=score, default=None)


def paired_comparison(library: Sequence[float], peer: Sequence[float],
                      higher_is_better: bool) -> dict[str, Any]:
    """Per-seed differences ``library - peer``, signed so that positive favours the library;
    wins, losses and ties; the paired t-test (``scipy.stats.ttest_rel``) and the Wilcoxon
    signed-rank test (``scipy.stats.wilcoxon``, exact for few seeds; with 5 seeds its smallest
    two-sided p-value is 0.0625), both two-sided; and a ``verdict`` from the t-test at
    ``ALPHA``: ``"library better"``, ``"peer better"`` or ``"no significant difference"``
    (``"too few seeds"`` below 2).

    Example:
        >>> from diffhypergeom_studies.subsets.stats import paired_comparison
        >>> result = paired_comparison([0.9, 0.8, 0.85], [0.7, 0.75, 0.8], True)
        >>> result["wins"], result["losses"], result["verdict"]
        (3, 0, 'no significant difference')
    """
    from scipy import stats

    a, b = np.asarray(library, dtype=float), np.asarray(peer, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired values differ in length: {a.shape} and {b.shape}")
    sign = 1.0 if higher_is_better else -1.0
    diff = sign * (a - b)
    out: dict[str, Any] = {
        "n": len(diff), "differences": diff.tolist(),
        "mean_difference": float(diff.mean()) if len(diff) else math.nan,
        "wins": int((diff > 0).sum()), "losses": int((diff < 0).sum()),
        "ties": int((diff == 0).sum()), "t_p_value": math.nan, "wilcoxon_p_value": math.nan}
    if len(diff) < 2 or not np.isfinite(diff).all():
        out["verdict"] = "too few seeds" if len(diff) < 2 else "not finite"
        return out
    if np.all(diff == diff[0]):  # no spread: the t-test is undefined
        out["t_p_value"] = 0.0 if diff[0] != 0 else 1.0
    else:
        out["t_p_value"] = float(stats.ttest_rel(a, b).pvalue)
    if np.any(diff != 0):
        out["wilcoxon_p_value"] = float(stats.wilcoxon(a, b).pvalue)
    else:
        out["wilcoxon_p_value"] = 1.0
    if out["t_p_value"] < ALPHA:
        out["verdict"] = "library better" if out["mean_difference"] > 0 else "peer better"
    else:
        out["verdict"] = "no significant difference"
    return out
