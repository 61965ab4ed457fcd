"""Inclusion probabilities of weighted sampling without replacement (Gumbel-top-k, the
Wallenius law with one ball per item), for all items at once, from the exponential race.

Give item ``j`` an exponential clock of rate ``w_j``; the items ring in the order they are
drawn, so item ``i`` is among the first ``k`` when fewer than ``k`` others ring before it:

    P(i in S) = integral_0^inf w_i e^{-w_i u} P(R_{-i}(u) <= k - 1) du,

where ``R_{-i}(u)``, the others rung by ``u``, is Poisson-binomial with ``q_j(u) = 1 -
exp(-w_j u)``. With ``u = e^v`` item ``i``'s weight is ``exp(s - e^s)``, ``s = log w_i + v``,
of total mass one, so ``P(i in S) = 1 - P(i not in S)`` with

    P(i not in S) = integral exp(s - e^s) P(R_{-i}(e^v) >= k) dv,

whose integrand falls off like ``e^{(k + 1) v}`` on the left (``P(R >= k) <= (N u)^k``) and
doubly exponentially on the right. It is analytic in a strip around the real line, so the
trapezoid rule with step ``STEP`` over the interval where it exceeds ``e^-LEFT`` is exact to
rounding. The law of ``R_{-i}`` comes from its generating function on ``L`` roots of unity
(``L >= N``, odd, so that no factor ``1 - q + q z`` vanishes): the full product divided by
item ``i``'s factor, in log-modulus and angle, on half the roots (the others are their
conjugates). Batched real tensor algebra, differentiable in the logits; ``O(Q N L)`` work per
urn for ``Q`` nodes. Exact to rounding in absolute terms (a probability below ``1e-16`` is
not resolved relative to itself).
"""

from __future__ import annotations

import functools
import math

import torch

from diffhypergeom.numerics.base import checkpoint_if_large
from diffhypergeom.numerics.special import NEG_INF
from diffhypergeom.numerics.wallenius import log1mexp_exp

__all__ = [
    "LEFT", "MAX_ELEMENTS", "MAX_SPREAD", "RIGHT", "STEP", "inclusion", "log_prob", "serves",
]

# the trapezoid rule's step in v = log(time)
STEP = 0.2
# the grid starts where the integrand is below e^-LEFT (bounded by N^k e^{(k + 1) v}) ...
LEFT = 38.0
# ... and ends where the lightest item's is below exp(-e^RIGHT)
RIGHT = math.log(40.0)
# most elements (nodes x urns x items x points) held at once
MAX_ELEMENTS = 1 << 22
# widest logit spread served: the grid reaches log-time RIGHT + spread (5 nodes per unit)
MAX_SPREAD = 2000.0


def serves(theta: torch.Tensor) -> bool:
    """Whether the grid serves the logits ``theta [B, N]``: finite, and spread (largest less
    smallest, per urn) at most ``MAX_SPREAD``."""
    if theta.numel() == 0:
        return True
    if not bool(torch.isfinite(theta).all()):
        return False
    spread = (theta.amax(-1) - theta.amin(-1)).max()
    return float(spread) <= MAX_SPREAD


def inclusion(theta: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``P(i in S)`` and ``P(i not in S)``, ``[B, N]`` float64, for the first ``k [B]`` items
    drawn without replacement with weights ``exp(theta) [B, N]`` (finite), differentiable in
    ``theta``.

    Example:
        >>> import torch
        >>> from diffhypergeom.numerics.race import inclusion
        >>> w = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
        >>> inside, _ = inclusion(w.log(), torch.tensor([1]))
        >>> [round(v, 12) for v in (6 * inside[0]).tolist()]  # one draw: w_i / sum w
        [1.0, 2.0, 3.0]
    """
    theta = theta.to(torch.float64)
    batch, items = theta.shape
    outside = torch.zeros_like(theta)
    inner = (k > 0) & (k < items)
    if bool(inner.any()):
        keep = inner.nonzero().squeeze(-1)
        outside = outside.index_put((keep,), _outside(theta[keep], k[keep]))
    outside = torch.where((k <= 0).unsqueeze(-1), torch.ones_like(outside), outside)
    return 1 - outside, outside


def _outside(theta: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``P(i not in S)`` ``[B, N]`` for urns with ``0 < k < N``: the module docstring's
    integral on the trapezoid grid."""
    batch, items = theta.shape
    log_w = theta - theta.detach().amax(-1, keepdim=True)
    points = items | 1
    smallest = int(k.min())
    first = -(LEFT + smallest * math.log(items)) / (smallest + 1)
    v = torch.arange(first, RIGHT - float(log_w.detach().amin()) + STEP, STEP,
                     dtype=torch.float64, device=theta.device)
    cos, sin, weights = _roots(points, theta.device)                            # [H]
    above = _count_weights(k, points) * weights                                 # [B, H]
    outside = torch.zeros_like(theta)
    chunk = max(1, MAX_ELEMENTS // (batch * items * cos.shape[0]))
    for start in range(0, v.shape[0], chunk):
        # beyond s = 700 the item has rung for sure and its weight is 0; e^s would overflow
        # (and its gradient be 0 times inf)
        s = (log_w.unsqueeze(1) + v[start:start + chunk, None]).clamp(max=700)  # [B, Q, N]
        q = -torch.expm1(-s.exp()).unsqueeze(-1)                               # rung by e^v
        # the factor 1 - q + q z at z = cos + i sin, as log-modulus and angle
        modulus = 0.5 * torch.log1p(-2 * q * (1 - q) * (1 - cos))               # [B,Q,N,H]
        angle = torch.atan2(q * sin, 1 - q * (1 - cos))
        modulus = modulus.sum(-2, keepdim=True) - modulus                       # G_{-i}
        angle = angle.sum(-2, keepdim=True) - angle
        more = (modulus.exp() * (angle.cos() * above.real[:, None, None]
                                 - angle.sin() * above.imag[:, None, None])).sum(-1)
        outside = outside + ((s - s.exp()).exp() * more).sum(1) * STEP
    return outside.clamp(0, 1)


def log_prob(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """``[P, B]``: ``log p(S)`` of the subsets ``x [P, B, N]`` (0/1, floating) drawn without
    replacement with weights ``exp(theta) [B, N]`` (finite), differentiable in ``theta``;
    intermediates beyond ``MAX_ELEMENTS`` are recomputed in the backward pass.

    Example:
        >>> import torch
        >>> from diffhypergeom.numerics.race import log_prob
        >>> w = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
        >>> x = torch.tensor([[[1.0, 0.0, 1.0]]], dtype=torch.float64)  # 1/6 3/5 + 3/6 1/3
        >>> round(float(log_prob(x, w.log()).exp()), 12)
        0.266666666667
    """
    theta = theta.to(torch.float64)
    x = x.to(torch.float64)
    items = theta.shape[-1]
    if x.numel() == 0:
        return x.sum(-1)
    log_w = theta - theta.detach().amax(-1, keepdim=True)
    size = int(x.detach().sum(-1).min().round())  # the smallest subset decays slowest
    first = -LEFT / (size + 1) - math.log(max(items, 1))
    v = torch.arange(first, RIGHT - float(log_w.detach().amin()) + STEP, STEP,
                     dtype=torch.float64, device=theta.device)
    s = (log_w.unsqueeze(1) + v.unsqueeze(-1)).clamp(max=700)                  # [B, Q, N]
    log_rung = log1mexp_exp(s)
    per_point = x.shape[1] * v.shape[0]
    chunk = max(1, MAX_ELEMENTS // max(1, per_point))
    parts = [checkpoint_if_large(_log_prob, x[start:start + chunk], log_w, log_rung, v,
                                 elements=x.shape[0] * per_point)
             for start in range(0, x.shape[0], chunk)]
    return torch.cat(parts)


def _log_prob(x: torch.Tensor, log_w: torch.Tensor, log_rung: torch.Tensor, v: torch.Tensor
              ) -> torch.Tensor:
    """``log p(S)`` ``[P, B]`` on the grid ``v [Q]``, with ``log q_j`` at its nodes
    ``[B, Q, N]`` (the docstring of ``log_prob``)."""
    # log d(S) [P, B], in log space: the items left may all be lighter than e^-745
    log_rest = torch.logsumexp(torch.where(x == 0, log_w, NEG_INF), -1)
    left = torch.isfinite(log_rest)
    safe = torch.where(left, log_rest, 0.0).unsqueeze(-1)
    log_h = (torch.einsum("pbn,bqn->pbq", x, log_rung) + v + safe
             - (safe + v).clamp(max=700).exp())
    found = torch.logsumexp(log_h, -1) + math.log(STEP)
    # the whole urn: the state is never left, and is reached with probability one
    return torch.where(left, found, 0.0)


@functools.lru_cache(maxsize=64)
def _roots(points: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The roots of unity ``z_l``, ``l = 0 .. (L - 1) / 2`` (``L`` odd), as cosines and sines,
    and their weights: 1 for ``z = 1``, 2 for the others (each stands for its conjugate)."""
    half = torch.arange((points + 1) // 2, dtype=torch.float64, device=device)
    angles = 2 * math.pi * half / points
    weights = torch.where(half == 0, 1.0, 2.0).to(torch.float64)
    return angles.cos(), angles.sin(), weights


def _count_weights(k: torch.Tensor, points: int) -> torch.Tensor:
    """``[B, H]`` complex128: ``(1 / L) sum_{k <= m < L} z_l^{-m}``, which turns a generating
    function on the roots ``z_l`` into ``P(R >= k)``."""
    counts = torch.arange(points, device=k.device)
    half = torch.arange((points + 1) // 2, dtype=torch.float64, device=k.device)
    inverse = torch.polar(torch.ones(points, half.shape[0], dtype=torch.float64,
                                     device=k.device),
                          -2 * math.pi * torch.outer(counts.to(torch.float64), half) / points)
    more = (counts.unsqueeze(0) >= k.unsqueeze(-1)).to(inverse.dtype)          # [B, m]
    return more @ inverse / points
