"""Evaluation: how well ``s`` is estimated and how much factor information the shared and the
independent latent dims carry (the paper's Figure 2 and Table 1).

* ``mse_num_shared``: ``mean_p (s - s_hat_p)^2`` over held-out pairs ``p``.
* ``shared_dims``: which latent dims a trained model treats as shared -- those its selector marks
  shared in at least half of the held-out pairs (the selection is per pair; the probe needs one
  fixed split).
* ``factor_scores``: for each factor, a logistic regression (scikit-learn, standardised inputs)
  trained on the posterior means restricted to the given dims, scored by
  ``balanced_accuracy_score(adjusted=True)`` on a test set (chance = 0, perfect = 1); ``nan`` when
  the part has no dims. ``part_score`` averages over factors.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

__all__ = [
    "encode_posteriors", "factor_scores", "kl_to_prior_per_dim", "mse_num_shared", "part_score",
    "shared_dims",
]


def mse_num_shared(s_true: np.ndarray | float, s_hat: np.ndarray) -> float:
    """``mean((s_true - s_hat)^2)``; ``s_true`` a scalar or an array like ``s_hat``."""
    s_hat = np.asarray(s_hat, dtype=np.float64)
    if s_hat.size == 0:
        raise ValueError("s_hat is empty")
    return float(np.mean((np.asarray(s_true, dtype=np.float64) - s_hat) ** 2))


def shared_dims(independent_masks: np.ndarray) -> np.ndarray:
    """``[P, d]`` per-pair independent masks (1 = independent) -> bool ``[d]``: dims shared in
    at least half of the pairs."""
    masks = np.asarray(independent_masks, dtype=np.float64)
    if masks.ndim != 2 or masks.shape[0] == 0:
        raise ValueError(f"independent_masks must be [P, d] with P >= 1, got {masks.shape}")
    return (1.0 - masks).mean(0) >= 0.5


def factor_scores(z_train: np.ndarray, f_train: np.ndarray, z_test: np.ndarray,
                  f_test: np.ndarray, dims: np.ndarray, max_iter: int = 500) -> np.ndarray:
    """Adjusted balanced accuracy ``[K]`` of a logistic regression per factor on ``z[:, dims]``
    (``z_* [N, d]``, ``f_* [N, K]`` ints, ``dims`` bool ``[d]``); all ``nan`` if no dims."""
    dims = np.asarray(dims, dtype=bool)
    if z_train.shape[1] != dims.shape[0] or z_test.shape[1] != dims.shape[0]:
        raise ValueError(f"dims has {dims.shape[0]} entries but z has {z_train.shape[1]} dims")
    num_factors = f_train.shape[1]
    if not dims.any():
        return np.full(num_factors, np.nan)
    scores = np.empty(num_factors)
    for factor in range(num_factors):
        labels = f_train[:, factor]
        if np.unique(labels).size < 2:
            scores[factor] = np.nan
            continue
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
        model.fit(z_train[:, dims], labels)
        scores[factor] = balanced_accuracy_score(f_test[:, factor],
                                                 model.predict(z_test[:, dims]), adjusted=True)
    return scores


def part_score(scores: np.ndarray) -> float:
    """Mean over factors, ignoring ``nan``; ``nan`` if all are."""
    scores = np.asarray(scores, dtype=np.float64)
    return float(np.nanmean(scores)) if np.isfinite(scores).any() else float("nan")


def kl_to_prior_per_dim(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """Mean ``KL(q(z_j | x) || N(0, 1))`` per dim over the images (``mu, logvar [N, d]`` ->
    ``[d]``). Dims with (near) zero KL are collapsed: they carry no information about the image,
    so no method can tell shared from independent there."""
    kl = 0.5 * (mu ** 2 + np.exp(logvar) - logvar - 1.0)
    return kl.mean(0)


@torch.no_grad()
def encode_posteriors(encoder: torch.nn.Module, images: torch.Tensor, batch: int = 256
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and log-variances ``[N, d]`` of ``images [N, C, S, S]``."""
    mus, logvars = [], []
    for i in range(0, images.shape[0], batch):
        mu, logvar = encoder(images[i:i + batch])
        mus.append(mu)
        logvars.append(logvar)
    return torch.cat(mus).cpu().numpy(), torch.cat(logvars).cpu().numpy()
