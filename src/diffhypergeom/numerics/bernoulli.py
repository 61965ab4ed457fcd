"""The k-subset law (the Fisher law with one ball per item) as independent Bernoulli variables
conditioned on their sum (``docs/design/index.md`` sections 4 and 6).

For any ``tau``, independent ``B_i ~ Bernoulli(p_i)``, ``p_i = sigmoid(theta_i + tau)``, given
``sum_i B_i = k`` have exactly the law ``p(S) ∝ prod_{i in S} w_i`` over ``k``-subsets. With
``tau`` at the saddle point (``sum_i p_i = k``, ``fft.solve_saddle``) the conditioning event is
the mode of the sum, ``P(sum = k) ≈ 1 / (2.5 sigma)``, ``sigma^2 = sum_i p_i (1 - p_i)``, so:

- ``log_normalizer``: ``A = log e_k(w) = sum_i softplus(theta_i + tau) - k tau + log P(sum =
  k)``, with ``P(sum = k)`` from the characteristic function of the sum on ``L`` points
  (``L = N + 1``, or fewer when the Bernstein tail of the sum beyond ``L`` is below ``e^-40`` of
  ``P(sum = k)``: the accuracy rule of the FFT engine); ``O(N L)`` work, differentiable twice;
- ``sample``: exact draws by rejection: propose independent Bernoulli vectors, keep those of
  sum ``k`` (about one in ``2.5 sigma``), a handful of batched tensor operations per call.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from diffhypergeom.numerics.fft import budget, solve_saddle, tail_halfwidth

__all__ = [
    "EXACT_LENGTH", "MAX_PROPOSALS", "MAX_TRANSFORM", "NEWTON_STEPS", "REJECTION_WORK",
    "Tilt", "acceptance", "coin_flips", "inclusion", "log_normalizer", "log_sum_probability",
    "proposals", "rejection_pays", "sample", "tilt", "tilted", "transform_length",
]

# Largest proposal tensor (vectors x urns x items) that ``sample`` draws in one round.
MAX_PROPOSALS = 1 << 22
# Most proposal elements per accepted draw (items / acceptance) for which ``proposals`` offers
# rejection; beyond it the caller samples another way (the tree: about 1,000 items and a
# subset of 50 cost as much either way on the 2-core CPU).
REJECTION_WORK = 1 << 14
# Largest characteristic-function table (urns x items x points) ``log_normalizer`` builds.
MAX_TRANSFORM = 1 << 24
# Newton steps ``tilt`` takes at most, checking the root before each (where it is still off,
# it finds the root by safeguarded Newton)
NEWTON_STEPS = 2
# Below this many items the transform takes all N + 1 points without estimating fewer
EXACT_LENGTH = 64


def tilt(theta: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``[B]`` float64: ``tau`` with ``sum_i sigmoid(theta_i + tau)`` close to ``k`` (detached),
    for ``theta [B, N]`` and ``k [B]``. Every ``tau`` gives the same law; this one puts ``k`` near
    the mode of the tilted sum (within half its standard deviation), where ``P(sum = k)`` is
    largest: the equal-weights root, refined by up to ``NEWTON_STEPS`` Newton steps (none once
    it is that close), and the safeguarded root of ``fft.solve_saddle`` for urns they leave
    further off (``k = 0`` or ``N``, logits spread far apart).

    Example:
        >>> import torch
        >>> from diffhypergeom.numerics.bernoulli import tilt
        >>> theta = torch.tensor([[0.0, 1.0, 2.0, 3.0]], dtype=torch.float64)
        >>> tau = tilt(theta, torch.tensor([2]))
        >>> p = torch.sigmoid(theta + tau.unsqueeze(-1))  # the expected sum is close to k
        >>> bool((p.sum(-1) - 2).abs() <= 0.5 * (p * (1 - p)).sum(-1).sqrt())
        True
    """
    return tilted(theta, k).tau


class Tilt(NamedTuple):
    """``tilted``'s result, ``[B]`` each: the tilt, and the variance of the tilted sum and
    ``k`` less its mean there."""

    tau: torch.Tensor
    variance: torch.Tensor
    gap: torch.Tensor


def tilted(theta: torch.Tensor, k: torch.Tensor) -> Tilt:
    """``tilt``'s root with the tilted sum's variance and the gap of ``k`` to its mean, which
    ``acceptance`` and ``rejection_pays`` take instead of evaluating the sum again."""
    theta = theta.detach().to(torch.float64)
    n, items = k.to(torch.float64), theta.shape[-1]
    inner = (n > 0) & (n < items)
    share = torch.where(inner, n, 0.5 * items) / items
    tau = torch.log(share / (1 - share)) - theta.mean(-1)
    for step in range(NEWTON_STEPS + 1):
        p = torch.sigmoid(theta + tau.unsqueeze(-1))
        excess, spread = p.sum(-1) - n, (p * (1 - p)).sum(-1)
        close = inner & torch.isfinite(tau) & (excess.abs() <= 0.5 * spread.sqrt())
        if bool(close.all()):
            return Tilt(tau, spread, -excess)
        if step < NEWTON_STEPS:
            tau = tau - excess / spread.clamp_min(1e-300)
    tau = torch.where(close, tau, solve_saddle(torch.ones_like(theta), n, theta))
    p = torch.sigmoid(theta + tau.unsqueeze(-1))
    return Tilt(tau, (p * (1 - p)).sum(-1), n - p.sum(-1))


def transform_length(theta: torch.Tensor, k: torch.Tensor, tau: torch.Tensor) -> int:
    """The points ``L`` of the characteristic function: ``N + 1`` (exact), or, where that is
    shorter, enough that the tilted sum's mass at ``L`` or more from ``k`` (what aliases onto
    ``k``) is below the Bernstein bound ``e^-lam`` of the FFT engine's accuracy rule: its
    distance from its mean to ``k`` plus its Bernstein half-width, plus one."""
    n = theta.shape[-1]
    if n < EXACT_LENGTH:
        return n + 1
    with torch.no_grad():
        p = torch.sigmoid(theta.detach().to(torch.float64) + tau.unsqueeze(-1))
        sigma = (p * (1 - p)).sum(-1).sqrt()
        reach = tail_halfwidth(sigma, budget(sigma)) + (p.sum(-1) - k).abs()
        wanted = int(torch.ceil(reach.max()).item()) + 2 if theta.shape[0] else 1
    return min(n + 1, wanted)


def log_normalizer(theta: torch.Tensor, k: torch.Tensor, tau: torch.Tensor | None = None,
                   return_log_p_k: bool = False, length: int | None = None
                   ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """``[B]``: ``A = log e_k(exp(theta))`` for ``theta [B, N]`` (finite) and ``k [B]``,
    differentiable (twice) in ``theta``; with ``return_log_p_k`` also ``log P(sum = k)`` of the
    tilted Bernoullis (detached), which sizes ``sample``'s proposals. ``tau`` (default ``tilt``)
    and ``length`` (default ``transform_length``) may be passed when known.

    Example:
        >>> import math, torch
        >>> from diffhypergeom.numerics.bernoulli import log_normalizer
        >>> w = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=torch.float64)
        >>> round(float(log_normalizer(w.log(), torch.tensor([2])).exp()), 10)  # 2+3+4+6+8+12
        35.0
    """
    theta = theta.to(torch.float64)
    if tau is None:
        tau = tilt(theta, k)
    z = theta + tau.unsqueeze(-1)
    log_p_k = log_sum_probability(theta, k, tau, length)
    # -logsigmoid(-z) = log(1 + e^z) to the last bit (F.softplus returns z itself above 20)
    value = -F.logsigmoid(-z).sum(-1) - k.to(torch.float64) * tau + log_p_k
    if return_log_p_k:
        return value, log_p_k.detach()
    return value


def log_sum_probability(theta: torch.Tensor, k: torch.Tensor, tau: torch.Tensor,
                        length: int | None = None) -> torch.Tensor:
    """``[B]``: ``log P(sum_i B_i = k)`` for ``B_i ~ Bernoulli(sigmoid(theta_i + tau))``,
    differentiable (twice) in ``theta``: the part of ``log_normalizer`` beyond the independent
    terms. Its gradient ``c`` gives the inclusion probabilities ``sigmoid(z) + c`` and their
    complements ``sigmoid(-z) - c`` each without cancellation.

    Example:
        >>> import torch
        >>> from diffhypergeom.numerics.bernoulli import log_sum_probability
        >>> theta = torch.zeros(1, 4, dtype=torch.float64)  # Bin(4, 1/2) at tau = 0
        >>> log_sum_probability(theta, torch.tensor([2]), torch.zeros(1)).exp()  # 6 / 16
        tensor([0.3750], dtype=torch.float64)
    """
    theta = theta.to(torch.float64)
    if length is None:
        length = transform_length(theta, k, tau)
    p = torch.sigmoid(theta + tau.unsqueeze(-1))
    phi = (1 + p.unsqueeze(-1) * _steps(length, theta.device)).prod(-2)         # [B, L]
    pmf = torch.fft.fft(phi, norm="forward").real                                # P(S = j)
    p_k = pmf.gather(-1, k.unsqueeze(-1) % length).squeeze(-1)
    return p_k.clamp_min(torch.finfo(torch.float64).tiny).log()


@functools.lru_cache(maxsize=64)
def _steps(length: int, device: torch.device) -> torch.Tensor:
    """``[L]`` complex128: ``e^{2 pi i j / L} - 1``, the factor ``1 - p + p e^{i a_j}`` less
    one, over ``p``."""
    angles = 2 * math.pi * torch.arange(length, dtype=torch.float64, device=device) / length
    return torch.polar(torch.ones_like(angles), angles) - 1


def acceptance(tilt: Tilt) -> torch.Tensor:
    """``[B]``: ``log P(sum = k)`` of the tilted Bernoullis by the normal approximation (at most
    0), detached: what sizes ``sample``'s rounds, where the exact value (``log_sum_probability``,
    a transform) is not needed; a round it sizes too small is followed by another.

    Example:
        >>> import torch
        >>> from diffhypergeom.numerics.bernoulli import acceptance, tilted
        >>> theta = torch.zeros(1, 4, dtype=torch.float64)  # Bin(4, 1/2): P(2) = 0.375
        >>> round(float(acceptance(tilted(theta, torch.tensor([2]))).exp()), 3)
        0.399
    """
    variance = tilt.variance.clamp_min(1e-12)
    log_density = -0.5 * torch.log(2 * math.pi * variance) - tilt.gap.square() / (2 * variance)
    return log_density.clamp(max=0.0)


def rejection_pays(tilt: Tilt, items: int) -> bool:
    """Whether a draw by rejection costs at most ``REJECTION_WORK`` proposal elements in every
    urn of ``items`` items, by the normal approximation ``P(sum = k) ≈ 1 / (sqrt(2 pi)
    sigma)`` at the tilt (before any transform is computed)."""
    if tilt.variance.numel() == 0:
        return True
    sigma = float(tilt.variance.max().sqrt())
    return items * max(1.0, math.sqrt(2 * math.pi) * sigma) <= REJECTION_WORK


def inclusion(theta: torch.Tensor, k: torch.Tensor, tau: torch.Tensor, length: int | None = None,
              create_graph: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``P(i in S)`` and ``P(i not in S)``, ``[B, N]``, each without cancellation: ``sigmoid(z) +
    c`` and ``sigmoid(-z) - c`` with ``z = theta + tau`` and ``c`` the gradient of
    ``log_sum_probability`` in ``theta`` (which must require grad); with ``create_graph`` both
    keep a graph to ``theta`` (their backward passes are Hessian-vector products of
    ``log e_k``).

    Example:
        >>> import torch
        >>> from diffhypergeom.numerics.bernoulli import inclusion, tilt
        >>> w = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=torch.float64)
        >>> theta, k = w.log().requires_grad_(), torch.tensor([2])
        >>> inside, outside = inclusion(theta, k, tilt(theta, k))
        >>> [round(35 * v, 10) for v in inside[0].tolist()]  # w_i e_1(w without i)
        [9.0, 16.0, 21.0, 24.0]
        >>> [round(v, 12) for v in (inside + outside)[0].tolist()]
        [1.0, 1.0, 1.0, 1.0]
    """
    (slope,) = torch.autograd.grad(log_sum_probability(theta, k, tau, length).sum(), theta,
                                   create_graph=create_graph)
    z = theta + tau.unsqueeze(-1)
    return torch.sigmoid(z) + slope, torch.sigmoid(-z) - slope


def proposals(log_p_k: torch.Tensor, num_samples: int, num_items: int) -> int | None:
    """How many proposal vectors per urn ``sample`` draws in a round for ``num_samples``
    accepted ones when each is accepted with probability ``exp(log_p_k)`` (the least likely
    urn of the batch sets it: the expected need plus two standard deviations, at most
    ``MAX_PROPOSALS`` elements a round); ``None`` where a draw would cost more than
    ``REJECTION_WORK`` proposal elements."""
    if log_p_k.numel() == 0:
        return 1
    accept = min(1.0, float(log_p_k.min().exp()))
    if accept <= 0 or num_items / accept > REJECTION_WORK:
        return None
    need = num_samples / accept
    count = int(math.ceil(need + 2 * math.sqrt(need * (1 - accept) / accept) + 4))
    return max(1, min(count, MAX_PROPOSALS // max(num_items * log_p_k.numel(), 1)))


def coin_flips(p: torch.Tensor, count: int, generator: torch.Generator | None = None
               ) -> torch.Tensor:
    """``[count, *p.shape]`` bool: independent ``Bernoulli(p)`` draws, exact to float64's
    resolution, from one random byte each: a byte ``b`` below ``floor(256 p)`` is a success and
    one above it a failure (the uniform ``(b + u) / 256`` is below ``p`` or not whatever ``u``);
    only on a tie (one in 256) is ``u`` drawn, in float64. A quarter of the random bits of
    ``torch.rand``'s float64 uniforms, and as many times faster on the CPU.

    Example:
        >>> import torch
        >>> from diffhypergeom.numerics.bernoulli import coin_flips
        >>> g = torch.Generator().manual_seed(0)
        >>> flips = coin_flips(torch.tensor([0.0, 0.3, 1.0], dtype=torch.float64), 100_000, g)
        >>> flips.double().mean(0).round(decimals=2)
        tensor([0.0000, 0.3000, 1.0000], dtype=torch.float64)
    """
    size = count * p.numel()
    words = torch.empty((size + 7) // 8, dtype=torch.int64, device=p.device)
    words.random_(-(1 << 63), None, generator=generator)
    random = words.view(torch.uint8)[:size].view((count,) + p.shape)
    scaled = p.to(torch.float64) * 256
    level = scaled.floor().clamp(max=255)
    byte = level.to(torch.uint8)
    flips = random < byte
    tie = random == byte
    if bool(tie.any()):
        where = tie.nonzero(as_tuple=True)
        u = torch.rand(where[0].shape[0], generator=generator, dtype=torch.float64,
                       device=p.device)
        flips[where] = u < (scaled - level)[where[1:]]
    return flips


def sample(theta: torch.Tensor, k: torch.Tensor, num_samples: int, tau: torch.Tensor,
           count: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``[num_samples, B, N]`` int64 exact ``k``-subset draws (0/1) by rejection: rounds of
    ``count`` Bernoulli proposal vectors per urn at the tilt ``tau``, the first ``num_samples``
    of sum ``k`` kept (``proposals`` sizes the rounds so that one usually suffices).

    Example:
        >>> import torch
        >>> from diffhypergeom.numerics.bernoulli import log_normalizer, proposals, sample, tilt
        >>> theta, k = torch.zeros(1, 6, dtype=torch.float64), torch.tensor([2])
        >>> tau = tilt(theta, k)
        >>> _, log_p_k = log_normalizer(theta, k, tau, return_log_p_k=True)
        >>> x = sample(theta, k, 5, tau, proposals(log_p_k, 5, 6))
        >>> x.shape, x.sum(-1).unique().tolist()
        (torch.Size([5, 1, 6]), [2])
    """
    batch, items = theta.shape
    p = torch.sigmoid(theta.detach().to(torch.float64) + tau.unsqueeze(-1))
    draws = coin_flips(p, count, generator)
    accepted = draws.sum(-1) == k                                                 # [M, B]
    # the first num_samples accepted proposals of each urn, in proposal order
    first = (~accepted).to(torch.uint8).sort(dim=0, stable=True).indices[:num_samples]
    out = draws.gather(0, first.unsqueeze(-1).expand(-1, -1, items)).to(torch.int64)
    taken = accepted.sum(0).clamp(max=num_samples)
    if batch == 0 or int(taken.min()) >= num_samples:
        return out
    # urns short of draws (rare for one urn; likelier in a large batch) keep theirs and go on
    out = out.transpose(0, 1).contiguous()                                        # [B, S, N]
    pending = (taken < num_samples).nonzero().squeeze(-1)
    while pending.numel():
        draws = coin_flips(p[pending], count, generator)
        accepted = draws.sum(-1) == k[pending]                                    # [M, P]
        rank = accepted.cumsum(0) + taken[pending]                                # 1-based
        keep = accepted & (rank <= num_samples)
        m, urn = keep.nonzero(as_tuple=True)
        out[pending[urn], rank[m, urn] - 1] = draws[m, urn].to(torch.int64)
        taken[pending] += keep.sum(0)
        pending = pending[taken[pending] < num_samples]
    return out.transpose(0, 1)
