"""How each method chooses the shared latent dimensions of a pair, and how they are aggregated.

For a pair with diagonal Gaussian posteriors ``q(z | x1) = N(mu1, exp(logvar1))`` and
``q(z | x2)`` (each ``[B, d]``), every method computes the per-dimension symmetric KL

    gamma_j = 0.5 * (KL(q1_j || q2_j) + KL(q2_j || q1_j))          [B, d]

and returns an *independent mask* ``m [B, d]`` (1 = dimension j is independent, kept per view;
0 = shared, aggregated across the views) and ``s_hat [B]``, the number of shared dimensions.

* ``label`` (LabelVAE; Bouchacourt et al. 2018, Hosoya 2018): the number of independent
  dimensions ``k`` is given (default 1, as in the paper); the ``k`` dims with the largest
  ``gamma`` are independent. ``s_hat = d - k`` for every pair. (disentanglement_lib's label
  variant also knows *which* factor changed; with ``k`` possibly > 1 and no such label we pick by
  ``gamma``.)
* ``ada`` (AdaVAE; Locatello et al. 2020): dims with ``gamma_j < 0.5 * (max gamma + min gamma)``
  are shared. The mask is hard (no gradient through the threshold).
* ``hg`` (HGVAE; the paper): a dense layer maps ``gamma`` to ``log w in R^2`` (independent,
  shared); ``k ~ MFNCH(m = [d, d], n = d, w)`` drawn by ``rsample`` (exact integer draw
  forward; by default straight-through Gumbel-softmax gradients back) gives ``k`` independent
  and ``s_hat = d - k`` shared dims. NeuralSort's relaxed permutation ``P [B, d, d]`` of ``gamma``
  (descending; row i = item of rank i) and the relaxed one-hot ``y [B, d + 1]`` over ``k``
  combine into per-rank weights ``r_i = P(k > i) = sum_{k' > i} y_k'`` (1 for the top-k ranks,
  0 below, in the forward pass) and the mask ``m_j = sum_i r_i P[i, j]`` -- the top-k dims of
  ``gamma``, differentiable in the MFNCH logits through ``y`` and in ``gamma`` through ``P``.
  With ``hard_sort=True`` (default) ``P`` is a hard permutation forward (straight-through), so
  the forward mask is exactly the top-k indicator and agrees with ``s_hat``.

Aggregation of shared dims (the paper uses GroupVAE): ``mean`` averages the posterior
parameters, ``mu = (mu1 + mu2) / 2`` and ``var = (var1 + var2) / 2`` (disentanglement_lib's
GroupVAE); ``poe`` (ML-VAE) uses the product of experts, ``1/var = 1/var1 + 1/var2``,
``mu = var (mu1/var1 + mu2/var2)``. Each view then uses ``m * own + (1 - m) * aggregated`` for
both mean and log-variance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from diffhypergeom import MultivariateFisherNCHypergeometric
from diffhypergeom.numerics.sort import neural_sort, soft_top_k_mask

__all__ = [
    "AGGREGATIONS", "AdaSelector", "HypergeometricSelector", "LabelSelector", "METHODS",
    "OMEGA_INPUTS", "SELECTOR_GRADIENTS", "Selection", "aggregate", "gaussian_kl", "make_selector",
    "symmetric_kl", "top_k_mask",
]

METHODS = ("label", "ada", "hg")
SELECTOR_GRADIENTS = ("gumbel", "mean")
AGGREGATIONS = ("mean", "poe")
OMEGA_INPUTS = ("raw", "sorted", "log-sorted")


def gaussian_kl(mu1: torch.Tensor, logvar1: torch.Tensor, mu2: torch.Tensor,
                logvar2: torch.Tensor) -> torch.Tensor:
    """Per-dimension ``KL(N(mu1, e^logvar1) || N(mu2, e^logvar2))``, shape of the inputs."""
    return 0.5 * (logvar2 - logvar1 + (logvar1.exp() + (mu1 - mu2) ** 2) / logvar2.exp() - 1.0)


def symmetric_kl(mu1, logvar1, mu2, logvar2) -> torch.Tensor:
    """``gamma [B, d] = (KL(q1||q2) + KL(q2||q1)) / 2`` per dimension."""
    return 0.5 * (gaussian_kl(mu1, logvar1, mu2, logvar2) + gaussian_kl(mu2, logvar2, mu1, logvar1))


@dataclass
class Selection:
    """``independent [B, d]`` mask (1 = independent), ``num_shared [B]`` (``s_hat``), and for
    HGVAE the MFNCH ``logits [B, 2]`` (independent, shared)."""

    independent: torch.Tensor
    num_shared: torch.Tensor
    logits: torch.Tensor | None = None


def top_k_mask(gamma: torch.Tensor, k: int) -> torch.Tensor:
    """Hard ``[B, d]`` indicator of the ``k`` largest entries of ``gamma`` per row."""
    mask = torch.zeros_like(gamma)
    if k > 0:
        mask.scatter_(-1, gamma.topk(k, dim=-1).indices, 1.0)
    return mask


class LabelSelector(nn.Module):
    def __init__(self, latent_dim: int, num_independent: int = 1):
        super().__init__()
        if not 0 <= num_independent <= latent_dim:
            raise ValueError(f"num_independent must be in [0, latent_dim={latent_dim}], got "
                             f"{num_independent}")
        self.latent_dim, self.k = latent_dim, num_independent

    def forward(self, gamma: torch.Tensor, temperature: float) -> Selection:
        mask = top_k_mask(gamma.detach(), self.k)
        shared = torch.full(gamma.shape[:-1], float(self.latent_dim - self.k),
                            device=gamma.device)
        return Selection(mask, shared)


class AdaSelector(nn.Module):
    def forward(self, gamma: torch.Tensor, temperature: float) -> Selection:
        g = gamma.detach()
        threshold = 0.5 * (g.max(-1, keepdim=True).values + g.min(-1, keepdim=True).values)
        shared = g < threshold
        return Selection((~shared).to(gamma.dtype), shared.sum(-1).to(gamma.dtype))


class HypergeometricSelector(nn.Module):
    """HGVAE's selector (see module docs). ``omega_input``: what the dense layer sees --
    ``raw`` gamma (the paper), gamma ``sorted`` descending (permutation invariant), or
    ``log-sorted`` ``log1p`` of the sorted gamma (scale-robust). ``gradient``: ``rsample``'s
    backward pass for ``k`` (``"gumbel"``, the paper's; ``"mean"``, the library's default)."""

    def __init__(self, latent_dim: int, omega_input: str = "raw", hard_sort: bool = True,
                 gradient: str = "gumbel"):
        super().__init__()
        if omega_input not in OMEGA_INPUTS:
            raise ValueError(f"omega_input must be one of {OMEGA_INPUTS}, got {omega_input!r}")
        self.latent_dim = latent_dim
        self.omega_input = omega_input
        self.hard_sort = hard_sort
        self.gradient = gradient
        self.omega = nn.Linear(latent_dim, 2)
        self.register_buffer("population", torch.tensor([latent_dim, latent_dim]),
                             persistent=False)

    def omega_features(self, gamma: torch.Tensor) -> torch.Tensor:
        if self.omega_input == "raw":
            return gamma
        ordered = gamma.sort(dim=-1, descending=True).values
        return ordered if self.omega_input == "sorted" else torch.log1p(ordered)

    def urn(self, logits: torch.Tensor) -> MultivariateFisherNCHypergeometric:
        """The MFNCH over (independent, shared) dims, urn ``[d, d]``, draw ``d``, for the
        omega layer's ``logits [B, 2]``."""
        return MultivariateFisherNCHypergeometric(self.population, self.latent_dim,
                                                  logits=logits)

    def forward(self, gamma: torch.Tensor, temperature: float) -> Selection:
        logits = self.omega(self.omega_features(gamma))                      # [B, 2]
        urn = self.urn(logits)
        # default: the published estimator (straight-through Gumbel-softmax, a random class
        # order per call)
        gumbel = {} if self.gradient == "mean" else {"temperature": temperature, "permute": True}
        draw = urn.rsample_detailed(gradient=self.gradient, **gumbel)
        k = draw.counts[..., 0]                                              # [B]
        y = draw.one_hot[..., 0, :].to(gamma.dtype)                          # [B, d + 1]
        rank_weights = y.flip(-1).cumsum(-1).flip(-1)[..., 1:]               # [B, d]: P(k > i)
        permutation = neural_sort(gamma, temperature, hard=self.hard_sort)  # [B, d, d]
        mask = soft_top_k_mask(permutation, rank_weights)
        return Selection(mask, self.latent_dim - k, logits)


def make_selector(method: str, latent_dim: int, num_independent: int = 1,
                  omega_input: str = "raw", hard_sort: bool = True,
                  gradient: str = "gumbel") -> nn.Module:
    if method == "label":
        return LabelSelector(latent_dim, num_independent)
    if method == "ada":
        return AdaSelector()
    if method == "hg":
        return HypergeometricSelector(latent_dim, omega_input, hard_sort, gradient)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def aggregate(mu1: torch.Tensor, logvar1: torch.Tensor, mu2: torch.Tensor,
              logvar2: torch.Tensor, independent: torch.Tensor, how: str = "mean"
              ) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Replace the shared dims of both views' posteriors by the aggregate (see module docs).
    All tensors ``[B, d]``; returns ``((mu1', logvar1'), (mu2', logvar2'))``."""
    if how == "mean":
        mu_s = 0.5 * (mu1 + mu2)
        logvar_s = torch.log(0.5 * (logvar1.exp() + logvar2.exp()))
    elif how == "poe":
        precision1, precision2 = (-logvar1).exp(), (-logvar2).exp()
        logvar_s = -torch.log(precision1 + precision2)
        mu_s = logvar_s.exp() * (mu1 * precision1 + mu2 * precision2)
    else:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {how!r}")
    m = independent
    return ((m * mu1 + (1 - m) * mu_s, m * logvar1 + (1 - m) * logvar_s),
            (m * mu2 + (1 - m) * mu_s, m * logvar2 + (1 - m) * logvar_s))
