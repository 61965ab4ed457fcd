"""Clustering metrics: accuracy under the best cluster-to-label matching (Hungarian algorithm,
``scipy.optimize.linear_sum_assignment``), NMI and ARI (scikit-learn), and the learned cluster
weights matched to classes against the true class proportions (Spearman rank correlation)."""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "best_matching", "cluster_accuracy", "clustering_scores", "matched_weights",
    "rank_correlation",
]


def _check_labels(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.ndim != 1 or y_true.shape != y_pred.shape or len(y_true) == 0:
        raise ValueError(f"y_true and y_pred must be non-empty 1-d arrays of equal length, got "
                         f"{y_true.shape} and {y_pred.shape}")
    if y_true.min() < 0 or y_pred.min() < 0:
        raise ValueError("labels and cluster ids must be non-negative integers")
    return y_true, y_pred


def best_matching(y_true: np.ndarray, y_pred: np.ndarray) -> dict[int, int]:
    """Cluster -> label map maximising the number of matched samples (one-to-one)."""
    from scipy.optimize import linear_sum_assignment

    y_true, y_pred = _check_labels(y_true, y_pred)
    size = max(y_true.max(), y_pred.max()) + 1
    counts = np.zeros((size, size), dtype=np.int64)  # [cluster, label]
    np.add.at(counts, (y_pred, y_true), 1)
    clusters, labels = linear_sum_assignment(counts, maximize=True)
    return {int(c): int(label) for c, label in zip(clusters, labels, strict=True)}


def cluster_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of samples whose cluster maps to their label under ``best_matching``."""
    y_true, y_pred = _check_labels(y_true, y_pred)
    mapping = best_matching(y_true, y_pred)
    mapped = np.array([mapping[int(c)] for c in y_pred])
    return float((mapped == y_true).mean())


def clustering_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """``{"acc", "nmi", "ari"}``."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    y_true, y_pred = _check_labels(y_true, y_pred)
    return {"acc": cluster_accuracy(y_true, y_pred),
            "nmi": float(normalized_mutual_info_score(y_true, y_pred)),
            "ari": float(adjusted_rand_score(y_true, y_pred))}


def matched_weights(weights: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray,
                    num_classes: int) -> np.ndarray:
    """Learned weight of the cluster matched to each class, [num_classes] (0 for a class
    no cluster is matched to); clusters are matched on ``(y_true, y_pred)``."""
    weights = np.asarray(weights, dtype=np.float64)
    mapping = best_matching(y_true, y_pred)
    out = np.zeros(num_classes)
    for cluster, label in mapping.items():
        if cluster < len(weights) and label < num_classes:
            out[label] = weights[cluster]
    return out


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho (``scipy.stats.spearmanr``); NaN when either input is constant."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"need two 1-d arrays of equal length, got {a.shape} and {b.shape}")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(spearmanr(a, b).statistic)
