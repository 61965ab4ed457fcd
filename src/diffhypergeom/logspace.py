"""Log-space primitives: a NaN-free logsumexp, log binomial coefficients and truncated products
of polynomials whose coefficients are kept as logarithms.

A polynomial ``P(t) = sum_r p_r t^r`` is stored as ``log p`` with shape ``[..., R]``; ``-inf``
stands for a zero coefficient. Everything here is differentiable and never produces NaN
gradients, also where whole rows are ``-inf`` (infeasible states of an urn).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

NEG_INF = float("-inf")

# Above this many elements per log-space convolution, recompute in the backward pass instead of
# storing the [..., R, K] intermediate (torch.utils.checkpoint).
CHECKPOINT_ELEMENTS = 1 << 22


def logsumexp(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``log(sum(exp(x), dim))`` that returns ``-inf`` for all ``-inf`` slices with a zero
    (not NaN) gradient, unlike ``torch.logsumexp``."""
    shift = x.detach().amax(dim, keepdim=True)
    shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
    total = (x - shift).exp().sum(dim)
    positive = total > 0
    safe_total = torch.where(positive, total, torch.ones_like(total))
    out = shift.squeeze(dim) + safe_total.log()
    return torch.where(positive, out, torch.full_like(out, NEG_INF))


def log_binomial(m: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``log C(m, k)`` via ``lgamma``, broadcast over ``m`` and ``k``; ``-inf`` outside
    ``0 <= k <= m``. Inside, non-integer ``k`` gives the Gamma-function extension."""
    m = m.to(torch.float64) if not m.is_floating_point() else m
    k = k.to(m.dtype) if not k.is_floating_point() else k
    inside = (k >= 0) & (k <= m)
    k_safe = torch.where(inside, k, torch.zeros_like(k))
    m_b = m + torch.zeros_like(k_safe)
    value = torch.lgamma(m_b + 1) - torch.lgamma(k_safe + 1) - torch.lgamma(m_b - k_safe + 1)
    return torch.where(inside, value, torch.full_like(value, NEG_INF))


def times_logit(count: torch.Tensor, logit: torch.Tensor) -> torch.Tensor:
    """``count * logit`` with ``0 * (-inf) = 0`` (a class of weight zero drawn zero times)."""
    product = count * logit
    return torch.where(count == 0, torch.zeros_like(product), product)


def _mul_truncated(a: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    length = kernel.shape[-1]
    padded = F.pad(a, (length - 1, 0), value=NEG_INF)
    # windows[..., r, j] = a[r + j - (length - 1)], so j = length - 1 - k pairs with kernel[k]
    windows = padded.unfold(-1, length, 1)
    return logsumexp(windows + kernel.flip(-1).unsqueeze(-2), dim=-1)


def log_poly_mul(a: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Coefficients ``0..R-1`` of the product of two polynomials, in log space.

    Args:
        a: ``[..., R]`` log-coefficients of the first factor.
        kernel: ``[..., K]`` log-coefficients of the second factor.

    Returns:
        ``[..., R]``: ``out[r] = logsumexp_k(kernel[k] + a[r - k])``, terms with ``r - k < 0``
        omitted. Costs ``O(R * K)`` per batch element.
    """
    batch = torch.broadcast_shapes(a.shape[:-1], kernel.shape[:-1])
    a = a.expand(*batch, a.shape[-1])
    kernel = kernel.expand(*batch, kernel.shape[-1])
    return checkpoint_if_large(_mul_truncated, a, kernel,
                               elements=a.numel() * kernel.shape[-1])


def checkpoint_if_large(fn, *tensors: torch.Tensor, elements: int) -> torch.Tensor:
    """``fn(*tensors)``; when gradients are being recorded and the computation touches more
    than ``CHECKPOINT_ELEMENTS`` elements, its intermediates are recomputed in the backward
    pass instead of stored (``torch.utils.checkpoint``)."""
    recording = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    if recording and elements > CHECKPOINT_ELEMENTS:
        return checkpoint(fn, *tensors, use_reentrant=False)
    return fn(*tensors)
