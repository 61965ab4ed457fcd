"""Numerics of the multivariate Wallenius law: its probability as a one-dimensional integral,
exact draws by exponential clocks, and its moments as a mixture of Fisher laws.

Balls are drawn one at a time, each with probability proportional to its weight. Give every
ball of class ``i`` an exponential clock of rate ``w_i``: the balls ring in the order they are
drawn, the counts rung by time ``u`` are independent ``Bin(m_i, q_i(u))`` with ``q_i(u) = 1 -
exp(-w_i u)``, and the draw is the state of the counts when the ``n``-th ball rings. Hence

    p(x) = integral_0^inf d(x) prod_i Bin(x_i; m_i, q_i(u)) du,   d(x) = sum_i w_i (m_i - x_i)

(the state ``x`` is left at rate ``d(x)``; the integral is the probability that it is ever
visited). With ``u = e^v`` the log-integrand

    h(v) = v + log d + sum_i log Bin(x_i; m_i, 1 - exp(-w_i e^v))

is concave in ``v`` (``docs/design/index.md``, section 6), so it has one peak, found by safeguarded
Newton steps, and falls off on both sides at least as fast as its tangents.

- ``log_prob``: Gauss-Legendre quadrature of ``exp(h)`` on each side of the peak, over the
  interval where ``h`` is within ``DROP`` of its maximum. The mass outside is bounded by the
  tangents at the ends (``exp(h(a)) / h'(a)`` on the left), and the quadrature error is
  estimated by the difference to a rule with fewer nodes (``RULES``: finer pairs are tried in
  turn); their sum must be below ``TOLERANCE`` relative to the result, else a ``ValueError``
  says so. Nodes are placed
  without gradient; the value is differentiable in ``x`` and the log-weights through the
  integrand.
- ``clock_sample``: exact draws by bisection in time. Keep two times ``a < b`` with the counts
  rung by each, fewer than ``n`` at ``a`` and at least ``n`` at ``b``; the balls that rang in
  ``(a, b]`` rang before the midpoint independently with probability ``(1 - exp(-w_i (mid -
  a))) / (1 - exp(-w_i (b - a)))``, a binomial thinning. Stop when exactly ``n`` have rung by
  ``b``: those are the first ``n``. Cost: ``O(c)`` binomial draws per step, about
  ``log2(N)`` steps, whatever ``m_i``.
- ``mixture``: ``p(x) = integral f(u) p(x | u) du`` with the time ``u`` at which the draw's
  state is left: given ``u``, ``p(x | u)`` is ``d(x)`` times the Fisher law with odds ``w_i =
  e^{w_i u} - 1`` (independent binomials conditioned on their sum), normalised. Moments are
  integrals of Fisher moments over ``u`` (trapezoid rule in ``v``, whose total must be 1 to
  ``TOLERANCE``).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
import torch

from diffhypergeom.numerics.engines import Urn, build
from diffhypergeom.numerics.marginals import log_binomial_runs
from diffhypergeom.numerics.special import NEG_INF, log_binomial, log_binomial_pmf, logsumexp
from diffhypergeom.numerics.support import support_points, support_size

__all__ = [
    "BLOCK_NODES", "CLOCK_SPREAD", "DIRECT_UP_TO", "DROP", "ENDS_NEWTON_STEPS", "MIXTURE_POINTS",
    "Mixture", "NEWTON_STEPS", "RULES", "TOLERANCE", "clock_sample", "log1mexp", "log1mexp_exp",
    "log_prob", "log_prob_block", "logit_spread", "marginal_log_prob", "mean_approximation",
    "mixture", "mixture_covariance", "mixture_marginals", "mixture_mean",
]

# the integration interval ends where the log-integrand is this far below its peak
DROP = 46.0
# Gauss-Legendre nodes on each side of the peak, and those of the rule the error is estimated
# against, tried in turn until the estimate is below TOLERANCE (48 and 40 nodes differ by 2e-13
# on n = 0; integrands with slowly falling left tails, n = 1 of unit counts, need the next)
RULES = ((48, 40), (64, 52), (96, 80))
# largest relative error (tails plus the quadrature's own estimate) that is accepted
TOLERANCE = 1e-10
# Newton steps for the peak and for the ends
NEWTON_STEPS = 16
ENDS_NEWTON_STEPS = 10
# Up to this many balls per class the integrand is summed directly (its terms, of size ``m``,
# cancel to an error of ``m * 1e-16``); beyond, in Loader's form (``special.log_binomial_pmf``).
DIRECT_UP_TO = 1e5
# widest spread of the logits of classes drawn together that the clock sampler spans (its
# times reach e^spread; float64 overflows at e^709)
CLOCK_SPREAD = 650.0
# equally spaced nodes of ``log_prob_block``'s first trapezoid rule (odd: every other node is
# the rule it is checked against)
BLOCK_NODES = 49
# points of the trapezoid rule over the time of leaving, first try (doubled up to 5 times)
MIXTURE_POINTS = 48


def log1mexp(s: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(-s))`` for ``s >= 0`` (``-inf`` at 0), without cancellation."""
    small = s < math.log(2)
    safe_small = torch.where(small, s, torch.ones_like(s))
    safe_large = torch.where(small, torch.ones_like(s), s)
    return torch.where(small, torch.log(-torch.expm1(-safe_small)),
                       torch.log1p(-torch.exp(-safe_large)))


def log1mexp_exp(log_s: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(-e^log_s))`` from ``log_s``, without cancellation, also where ``e^log_s``
    underflows (below ``log_s = -20`` it is ``log_s - e^log_s / 2`` to rounding)."""
    # beyond e^700 the value is 0 to the last bit; the clamp keeps exp finite, so that the
    # gradient is 0 there rather than 0 times inf
    log_s = log_s.clamp(max=700)
    tiny = log_s < -20
    safe = torch.where(tiny, torch.zeros_like(log_s), log_s)
    return torch.where(tiny, log_s - 0.5 * log_s.exp(), log1mexp(safe.exp()))


def _log_integrand(v: torch.Tensor, x: torch.Tensor, m: torch.Tensor, log_w: torch.Tensor,
                   log_d: torch.Tensor) -> torch.Tensor:
    """``h(v)`` ``[..., K]`` for nodes ``v [..., K]`` and ``x, m, log_w [..., c]``."""
    log_s = log_w.unsqueeze(-2) + v.unsqueeze(-1)               # [..., K, c]
    s = log_s.clamp(max=700).exp()  # e^-s is 0 beyond; a finite s keeps its gradient finite
    drawable = log_w.unsqueeze(-2) > NEG_INF
    log_q = torch.where(drawable, -s, torch.zeros_like(s))
    log_p = torch.where(drawable, log1mexp_exp(torch.where(drawable, log_s, 0.0)),
                        torch.full_like(s, NEG_INF))
    if m.numel() and float(m.detach().max()) <= DIRECT_UP_TO:
        # log C(m, x) once per count vector, then the two powers at every node (a class with
        # nothing left adds nothing, even where its e^{-s} underflows)
        drawn = torch.where(x.unsqueeze(-2) > 0, x.unsqueeze(-2) * log_p, torch.zeros_like(s))
        rest = (m - x).unsqueeze(-2)
        powers = drawn + torch.where(rest > 0, rest * log_q, torch.zeros_like(s))
        constant = log_binomial(m, x).sum(-1, keepdim=True)
        return v + log_d.unsqueeze(-1) + constant + powers.sum(-1)
    terms = log_binomial_pmf(x.unsqueeze(-2), m.unsqueeze(-2), log_p, log_q)
    return v + log_d.unsqueeze(-1) + terms.sum(-1)


def _slopes(v: torch.Tensor, x: torch.Tensor, m: torch.Tensor, log_w: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """``h'(v)`` and ``h''(v)`` for ``v [...]`` (no gradient)."""
    s = (log_w + v.unsqueeze(-1)).exp()  # not w e^v: e^-1000 e^1000 would be 0 times inf
    # s / (e^s - 1) and its product with 1 - s / (1 - e^-s) vanish where e^s overflows
    finite = (s > 0) & (s < 700)
    safe = torch.where(finite, s, torch.ones_like(s))
    ratio = torch.where(finite, safe / torch.expm1(safe), (s == 0).to(s.dtype))
    spread = safe / -torch.expm1(-safe)
    bend = torch.where(finite, ratio * (1 - spread), torch.zeros_like(s))
    rest = m - x
    leaving = torch.where(rest > 0, rest * s, torch.zeros_like(s)).sum(-1)
    first = 1 + (x * ratio).sum(-1) - leaving
    second = (x * bend).sum(-1) - leaving
    return first, second


def _placement(v: torch.Tensor, x: torch.Tensor, rest: torch.Tensor, log_w: torch.Tensor
               ) -> torch.Tensor:
    """``h(v)`` up to a constant in ``v`` (``log d`` and the binomial coefficients left out),
    for placing the nodes: ``v + sum_i x_i log(1 - e^-s_i) - (m_i - x_i) s_i``, ``s = w e^v``."""
    log_s = log_w + v.unsqueeze(-1)
    s = log_s.exp()
    drawn = torch.where(x > 0, x * log1mexp_exp(torch.where(x > 0, log_s, 0.0)),
                        torch.zeros_like(s))
    return v + drawn.sum(-1) - torch.where(rest > 0, rest * s, torch.zeros_like(s)).sum(-1)


@torch.no_grad()
def _interval(x: torch.Tensor, m: torch.Tensor, log_w: torch.Tensor, log_d: torch.Tensor,
              converged: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The peak ``v*`` of ``h`` and the ends ``a < v* < b`` where ``h`` is ``DROP`` below it.
    ``converged > 0`` stops each Newton loop once every step is below it (the peak) or every
    end is within it of ``DROP`` (else all ``NEWTON_STEPS`` and ``ENDS_NEWTON_STEPS``)."""
    rest = m - x
    v = torch.log1p(x.sum(-1)) - log_d
    lo, hi = v - 80.0, v + 80.0
    for _ in range(NEWTON_STEPS):
        first, second = _slopes(v, x, m, log_w)
        lo = torch.where(first > 0, v, lo)
        hi = torch.where(first > 0, hi, v)
        step = v - first / torch.where(second < 0, second, torch.full_like(second, -1.0))
        # inclusive: at the peak to the last bit (first == 0) the step stays where it is
        moved = torch.where((step >= lo) & (step <= hi), step, 0.5 * (lo + hi))
        done = converged > 0 and bool(((moved - v).abs() <= converged).all())
        v = moved
        if done:
            break
    target = _placement(v, x, rest, log_w) - DROP
    curvature = (-_slopes(v, x, m, log_w)[1]).clamp_min(1e-12)
    guess = (2 * DROP / curvature).sqrt()
    ends = torch.stack([v - guess, v + guess])
    sign = torch.tensor([1.0, -1.0], dtype=v.dtype, device=v.device).view(2, *[1] * v.dim())
    for _ in range(ENDS_NEWTON_STEPS):
        # Newton on the concave h(v) = target: from outside the interval it stays outside and
        # converges monotonically; from inside one step takes it outside
        gap = _placement(ends, x, rest, log_w) - target
        if converged > 0 and bool((gap.abs() <= converged).all()):
            break
        slope = (sign * _slopes(ends, x, m, log_w)[0]).clamp_min(1e-12)
        ends = ends - sign * gap / slope
    return v, ends[0].minimum(v - 1e-6), ends[1].maximum(v + 1e-6)


@functools.cache
def _legendre(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes on ``[-1, 1]`` and the logs of their weights."""
    unit, weight = np.polynomial.legendre.leggauss(count)
    return unit, np.log(weight)


def _rule(left: torch.Tensor, peak: torch.Tensor, right: torch.Tensor, count: int
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss-Legendre nodes ``[..., 2 count]`` on ``[left, peak]`` and ``[peak, right]``, and
    the logs of their weights."""
    unit, log_weight = (torch.as_tensor(t, dtype=peak.dtype, device=peak.device)
                        for t in _legendre(count))
    nodes, log_weights = [], []
    for a, b in ((left, peak), (peak, right)):
        half = 0.5 * (b - a).unsqueeze(-1)
        nodes.append((0.5 * (a + b)).unsqueeze(-1) + half * unit)
        log_weights.append(log_weight + half.clamp_min(1e-300).log())
    return torch.cat(nodes, -1), torch.cat(log_weights, -1)


def log_prob(x: torch.Tensor, m: torch.Tensor, log_w: torch.Tensor) -> torch.Tensor:
    """``log p(x)`` ``[...]`` of the multivariate Wallenius law for counts ``x [..., c]`` inside
    the support (whole numbers, ``0 <= x_i <= m_i``, ``x_i = 0`` where ``w_i = 0``), ``m`` and
    ``log_w`` (``-inf`` for weight zero) broadcasting against ``x``; float64. Differentiable in
    ``x`` and ``log_w``. Raises a ``ValueError`` where the quadrature cannot reach
    ``TOLERANCE``."""
    x, m, log_w = torch.broadcast_tensors(x, m, log_w)
    shift = torch.where(log_w > NEG_INF, log_w, torch.full_like(log_w, NEG_INF)).detach()
    shift = shift.amax(-1, keepdim=True)
    log_w = log_w - torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
    rest = m - x
    log_d = logsumexp(torch.where(rest > 0, log_w + rest.clamp_min(1).log(),
                                  torch.full_like(log_w, NEG_INF)), -1)
    # every drawable ball drawn, or none: p = 1 on the support
    settled = ~torch.isfinite(log_d) | (x.detach().sum(-1) == 0)
    if bool(settled.any()):
        # computed as a benign urn (one class, one ball, nothing drawn: p = 1), so that no
        # infinite intermediate reaches the gradient through the final where
        lone = torch.zeros_like(x)
        lone[..., 0] = 1
        row = settled.unsqueeze(-1)
        x = torch.where(row, torch.zeros_like(x), x)
        m = torch.where(row, lone, m)
        log_w = torch.where(row, torch.zeros_like(log_w), log_w)
        log_d = torch.where(settled, torch.zeros_like(log_d), log_d)
    safe_d = log_d
    peak, left, right = _interval(x.detach(), m, log_w.detach(), safe_d.detach())
    for count, check_count in RULES:
        nodes, log_weights = _rule(left, peak, right, count)
        check_nodes, check_weights = _rule(left, peak, right, check_count)
        ends = torch.stack([left, right], -1)
        # one evaluation for the rule, the check rule and the ends
        values = _log_integrand(torch.cat([nodes, check_nodes, ends], -1), x, m, log_w, safe_d)
        value = logsumexp(values[..., : nodes.shape[-1]] + log_weights, -1)
        with torch.no_grad():
            check = logsumexp(values[..., nodes.shape[-1]: -2] + check_weights, -1)
            slopes = torch.stack([_slopes(end, x, m, log_w)[0].abs()
                                  for end in (left, right)], -1)
            tails = logsumexp(values[..., -2:] - slopes.clamp_min(1e-300).log(), -1)
            error = (check - value).abs() + (tails - value).exp()
            bad = ~settled & torch.isfinite(value) & ~(error <= TOLERANCE)
        if not bool(bad.any()):
            break
    else:
        raise ValueError(f"the Wallenius quadrature could not reach a relative error of "
                         f"{TOLERANCE:g} (estimated {float(error[bad].max()):.3g}) for the "
                         f"counts {x[bad][0].tolist()}; please report this urn")
    return torch.where(settled, torch.zeros_like(value), value)


def log_prob_block(x: torch.Tensor, m: torch.Tensor, log_w: torch.Tensor) -> torch.Tensor:
    """``log p(x)`` ``[B, K]`` for blocks of ``K`` count vectors ``x [B, K, c]`` of the urns
    ``m, log_w [B, c]``, each block a run (neighbouring counts differ by -1, 0 or +1 in each
    class: a marginal's tail), as ``log_prob`` computes them but on nodes shared by the block,
    over the union of the intervals of its first and last counts (the peak of the integrand
    moves monotonically with a class's count). There ``h`` is a bilinear form in the counts and
    the per-node ``log(1 - e^-s_i)``, ``-s_i`` and log-weights: one matrix product for the
    whole block, and another for its slopes at the ends.

    The rule is the trapezoid rule in ``v`` on ``BLOCK_NODES`` (then about twice, four times as
    many) equally spaced nodes: ``h`` is concave and smooth, so the rule converges
    geometrically and the same rule on every other node estimates its error (far above the
    error of the finer rule). That estimate and the tails beyond the ends (as in ``log_prob``)
    must be below ``TOLERANCE`` for each count; counts that miss it, urns with one point of
    support and classes above ``DIRECT_UP_TO`` balls are computed by ``log_prob``.
    Differentiable in ``log_w``."""
    if x.shape[1] == 0 or float(m.detach().max()) > DIRECT_UP_TO:
        return log_prob(x, m.unsqueeze(1), log_w.unsqueeze(1))
    shift = log_w.detach().amax(-1, keepdim=True)
    log_w = log_w - torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
    drawable = log_w > NEG_INF
    rest = m.unsqueeze(1) - x
    log_d = logsumexp(torch.where(rest > 0, log_w.unsqueeze(1) + rest.clamp_min(1).log(),
                                  NEG_INF), -1)
    settled = ~torch.isfinite(log_d.detach()) | (x.sum(-1) == 0)
    constant = log_d + log_binomial_runs(m.unsqueeze(-1), x.transpose(1, 2)).sum(1)
    counts = torch.cat([x, rest], -1)                                           # [B, K, 2c]
    with torch.no_grad():
        ends = x[:, [0, -1]].detach()
        safe = torch.where(settled[:, [0, -1]].all(-1).view(-1, 1, 1),
                           torch.zeros_like(ends), ends)
        pair = (x.shape[0], 2, x.shape[-1])
        _, left, right = _interval(safe, m.unsqueeze(1).expand(pair),
                                   log_w.detach().unsqueeze(1).expand(pair),
                                   log_d[:, [0, -1]].detach().nan_to_num(0.0, neginf=0.0),
                                   converged=1e-10)
        left, right = left.amin(-1), right.amax(-1)
    out = torch.zeros(x.shape[:2], dtype=torch.float64, device=x.device)
    bad = settled.clone()
    rows = (~settled.all(-1)).nonzero().squeeze(-1)
    for nodes in (BLOCK_NODES, 2 * BLOCK_NODES - 1, 4 * BLOCK_NODES - 3):
        if len(rows) == 0:
            break
        unit = torch.linspace(0, 1, nodes, dtype=torch.float64, device=x.device)
        span = (right[rows] - left[rows]).unsqueeze(-1)
        v = left[rows].unsqueeze(-1) + span * unit                               # [b, G]
        live = drawable[rows].unsqueeze(1)
        log_s = torch.where(live, log_w[rows].unsqueeze(1) + v.unsqueeze(-1), 0.0)
        s = log_s.clamp(max=700).exp()
        features = torch.cat([torch.where(live, log1mexp_exp(log_s), 0.0),
                              torch.where(live, -s, 0.0)], -1)                  # [b, G, 2c]
        # the trapezoid's weights: a half at both ends (of the rule and of its check)
        weight = v.clone()
        weight[:, [0, -1]] += math.log(0.5)
        h = torch.baddbmm(weight.unsqueeze(1), counts[rows], features.transpose(1, 2))
        log_step = (span / (nodes - 1)).log()
        value = torch.logsumexp(h, -1) + log_step
        with torch.no_grad():
            check = torch.logsumexp(h[..., ::2], -1) + log_step + math.log(2)
            ends_s = s[:, [0, -1]]
            finite = (ends_s > 0) & (ends_s < 700) & live
            safe_s = torch.where(finite, ends_s, 1.0)
            ratio = torch.where(finite, safe_s / torch.expm1(safe_s), (ends_s == 0) & live)
            slopes = 1 + torch.bmm(counts[rows].detach(), torch.cat(
                [ratio, -torch.where(live, ends_s, 0.0)], -1).transpose(1, 2))   # [b, K, 2]
            at_ends = h[..., [0, -1]].detach() - math.log(0.5)
            tails = torch.logsumexp(at_ends - slopes.abs().clamp_min(1e-300).log(), -1)
            error = (check - value.detach()).abs() + (tails - value.detach()).exp()
            missed = settled[rows] | ~(error <= TOLERANCE)
        out = out.index_put((rows,), torch.where(missed, 0.0, value + constant[rows]))
        bad = bad.index_put((rows,), missed)
        rows = rows[(missed & ~settled[rows]).any(-1)]
    if bool(bad.any()):
        at = bad.nonzero(as_tuple=True)
        out = out.index_put(at, log_prob(x[at], m[at[0]], log_w[at[0]]))
    return out


def marginal_log_prob(population: torch.Tensor, draws: torch.Tensor, log_w: torch.Tensor,
                      i: int, counts: torch.Tensor, limit: int) -> torch.Tensor:
    """``[B, K]``: ``log P(X_i = k)`` for urns ``population [B, c]`` (int64, zero where the
    weight is), ``draws [B]``, ``log_w [B, c]`` and counts ``[B, K]`` inside the support, exact
    in log space: ``log_prob`` of every count vector with ``x_i = k`` (the points of the urn
    without class ``i`` drawing ``n - k``), summed by ``logsumexp``. A ``ValueError`` where
    those points number more than ``limit`` for some ``k``. Differentiable in ``log_w``."""
    batch, width = counts.shape
    others = [j for j in range(population.shape[-1]) if j != i]
    blocks, owners = [], []
    for b in range(batch):
        rest = population[b, others].tolist()
        for col, k in enumerate(counts[b].round().to(torch.int64).tolist()):
            left = int(draws[b]) - k
            size, _ = support_size(rest, left, stop_above=limit)
            if size > limit:
                raise ValueError(
                    f"the marginal of class {i} at count {k} sums over {size:,}+ count vectors "
                    f"of the other classes (population {rest[:8]}, {left} drawn), above the "
                    f"limit of {limit:,} (max_support); beyond it only the table "
                    f"marginal({i}).probs is computed (from the Fisher mixture, to about 1e-12 "
                    f"absolute), not log-space tails")
            points = support_points(rest, left, counts.device)
            full = torch.zeros(len(points), population.shape[-1], dtype=torch.float64,
                               device=counts.device)
            full[:, others] = points.to(torch.float64)
            full[:, i] = k
            blocks.append(full)
            owners.append(torch.full((len(points),), b * width + col, device=counts.device))
    x, owner = torch.cat(blocks), torch.cat(owners)
    row = owner // width
    values = log_prob(x, population[row].to(torch.float64), log_w[row])
    # logsumexp per (urn, count): shift by the group's largest value, detached
    top = torch.full((batch * width,), NEG_INF, dtype=torch.float64, device=counts.device)
    top = top.scatter_reduce(0, owner, values.detach(), "amax")
    total = torch.zeros_like(top).index_add(0, owner, (values - top[owner]).exp())
    return (top + total.log()).reshape(batch, width)


@torch.no_grad()
def mean_approximation(m: torch.Tensor, n: torch.Tensor, log_w: torch.Tensor) -> torch.Tensor:
    """``[B, c]``: Fog's approximation of the mean of urns ``m [B, c]`` (float64, zero where the
    weight is zero) drawing ``n [B]``: the counts expected to have rung by the time ``u`` at
    which ``n`` balls are expected to have rung, ``m_i (1 - e^{-w_i u})`` with ``sum_i m_i (1 -
    e^{-w_i u}) = n`` (bisection in ``log u``). Within a count or two of the mean; not exact."""
    log_w = log_w - log_w.amax(-1, keepdim=True).clamp_min(-1e300)
    w = torch.where(m > 0, log_w.exp(), torch.zeros_like(m))
    lo = torch.full(n.shape, -800.0, dtype=torch.float64, device=m.device)
    hi = torch.full_like(lo, 800.0)
    for _ in range(64):
        mid = 0.5 * (lo + hi)
        rung = (m * -torch.expm1(-w * mid.unsqueeze(-1).exp())).sum(-1)
        below = rung < n
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return m * -torch.expm1(-w * hi.unsqueeze(-1).exp())


def logit_spread(m: torch.Tensor, log_w: torch.Tensor) -> torch.Tensor:
    """``[B]`` (detached): the largest less the smallest log-weight among the classes of
    ``m [B, c]`` with balls (0 where fewer than two have any)."""
    log_w = log_w.detach()
    has = m > 0
    top = torch.where(has, log_w, NEG_INF).amax(-1)
    bottom = torch.where(has, log_w, -NEG_INF).amin(-1)
    return torch.where(has.sum(-1) > 1, top - bottom, 0.0)


@torch.no_grad()
def clock_sample(m: torch.Tensor, n: torch.Tensor, log_w: torch.Tensor, num_samples: int,
                 max_steps: int | None = None) -> torch.Tensor:
    """``[num_samples, B, c]`` float64 exact draws for ``m [B, c]`` (float64, zero where the
    weight is zero), ``n [B]`` and ``log_w [B, c]``, by bisection in time (module docstring).
    The times span ``e^spread`` for logits spread by ``spread`` among the classes with balls:
    ``max_steps`` (default: enough for that span) doublings and halvings at most, and a
    ``ValueError`` beyond ``CLOCK_SPREAD``, where float64 times overflow."""
    batch, classes = m.shape
    spread = float(logit_spread(m, log_w).max()) if m.numel() else 0.0
    if spread > CLOCK_SPREAD:
        raise ValueError(f"logits: the clock sampler spans logits spread by at most "
                         f"{CLOCK_SPREAD:g} among classes drawn together, got {spread:.4g}")
    if max_steps is None:
        max_steps = 400 + int(spread / math.log(2))
    log_w = log_w - log_w.amax(-1, keepdim=True).clamp_min(-1e300)
    w = torch.where(m > 0, log_w.exp(), torch.zeros_like(m))
    total = m.sum(-1)
    shape = (num_samples, batch, classes)
    m_s = m.expand(shape)
    w_s = w.expand(shape)
    n_s = n.to(m.dtype).expand(num_samples, batch)
    rate = (w * m).sum(-1) / total.clamp_min(1)
    start = -torch.log1p(-(n.to(m.dtype) / total.clamp_min(1)).clamp_max(0.5)) / \
        rate.clamp_min(1e-300)
    a = torch.zeros(num_samples, batch, dtype=m.dtype, device=m.device)
    b = start.clamp_min(1e-300).expand(num_samples, batch).clone()
    low = torch.zeros(shape, dtype=m.dtype, device=m.device)

    def thin(count: torch.Tensor, prob: torch.Tensor) -> torch.Tensor:
        return torch.binomial(count, prob.clamp(0, 1))

    high = thin(m_s.clone(), -torch.expm1(-w_s * b.unsqueeze(-1)))
    everything = n_s >= total.expand(num_samples, batch)
    for _ in range(max_steps):  # widen until at least n have rung by b
        short = (high.sum(-1) < n_s) & ~everything
        if not bool(short.any()):
            break
        step = b.unsqueeze(-1)
        extra = thin(m_s - high, -torch.expm1(-w_s * step))
        a = torch.where(short, b, a)
        low = torch.where(short.unsqueeze(-1), high, low)
        b = torch.where(short, 2 * b, b)
        high = torch.where(short.unsqueeze(-1), high + extra, high)
    else:
        raise RuntimeError("the clock sampler could not reach n rings; please report this urn")
    for _ in range(max_steps):
        open_ = (high.sum(-1) > n_s) & ~everything
        if not bool(open_.any()):
            break
        mid = 0.5 * (a + b)
        collapsed = open_ & ((mid <= a) | (mid >= b))
        width = (b - a).unsqueeze(-1)
        inner = (mid - a).unsqueeze(-1)
        denominator = -torch.expm1(-w_s * width)
        prob = torch.where(denominator > 0, -torch.expm1(-w_s * inner)
                           / torch.where(denominator > 0, denominator, torch.ones_like(width)),
                           torch.zeros_like(width))
        middle = low + thin(high - low, prob)
        left = (middle.sum(-1) >= n_s).unsqueeze(-1)
        move = open_.unsqueeze(-1) & ~collapsed.unsqueeze(-1)
        high = torch.where(move & left, middle, high)
        low = torch.where(move & ~left, middle, low)
        b = torch.where(open_ & ~collapsed & left.squeeze(-1), mid, b)
        a = torch.where(open_ & ~collapsed & ~left.squeeze(-1), mid, a)
        if bool(collapsed.any()):  # rings closer than the time's precision: draw them in order
            high = torch.where(collapsed.unsqueeze(-1),
                               _draw_in_order(low, high, w_s, n_s), high)
    else:
        raise RuntimeError("the clock sampler did not converge; please report this urn")
    return torch.where(everything.unsqueeze(-1), m_s, high)


def _draw_in_order(low: torch.Tensor, high: torch.Tensor, w: torch.Tensor, n: torch.Tensor
                   ) -> torch.Tensor:
    """Of the balls that rang in an interval too short to split, the first ``n - sum(low)``
    in weight order (each next ball of class ``i`` with probability ``∝ w_i`` times the class's
    balls left in the interval, as the interval shrinks to a point)."""
    counts = low.clone()
    while True:
        need = counts.sum(-1) < n
        if not bool(need.any()):
            return counts
        left = (high - counts) * w
        pick = torch.multinomial(torch.where(need.unsqueeze(-1), left, torch.ones_like(left))
                                 .reshape(-1, left.shape[-1]).clamp_min(1e-300), 1)
        one = torch.zeros_like(counts).reshape(-1, counts.shape[-1]).scatter_(-1, pick, 1.0)
        counts = counts + torch.where(need.unsqueeze(-1), one.reshape(counts.shape), 0.0)


class Mixture(NamedTuple):
    """The law as a mixture of Fisher laws over the time ``u = e^v`` at which the draw's state
    is left (trapezoid rule in ``v``).

    Attributes:
        log_mass: ``[B, K]``, ``log`` of the rule's weight times ``e^v P(S(u) = n)``.
        mean: ``[B, K, c]`` Fisher means ``E[X | S(u) = n]``.
        tilted: ``[B, K, c]`` ``C w``, the Fisher covariance times the weights.
        leave: ``[B, K]`` ``E[d(X) | S(u) = n]`` (so ``sum exp(log_mass) leave = 1``).
        weights: ``[B, c]`` the weights ``w`` used (largest 1, zero where no ball is).
        population: ``[B, c]`` float64.
        covariance: ``[B, K, c, c]`` Fisher covariances ``C`` (with ``second=True``).
        tilted_hessian: ``[B, K, c, c]`` the Hessian of ``w . mu`` in the Fisher logits, i.e.
            the third cumulants contracted with ``w`` (with ``second=True``).
        marginals: per class, the Fisher marginals ``P_F(X_i = k)`` ``[B, K, W_i]`` and their
            derivative along ``w``, ``(w . grad_theta) P_F`` (with ``marginals=True``).
    """

    log_mass: torch.Tensor
    mean: torch.Tensor
    tilted: torch.Tensor
    leave: torch.Tensor
    weights: torch.Tensor
    population: torch.Tensor
    covariance: torch.Tensor | None = None
    tilted_hessian: torch.Tensor | None = None
    marginals: list[tuple[torch.Tensor, torch.Tensor]] | None = None


def _time_grid(m: torch.Tensor, n: torch.Tensor, w: torch.Tensor, points: int, spread: float
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """``[B, points]`` values of ``v`` covering the time of the ``(n + 1)``-th ring, and the
    spacing ``[B]``: centred where ``n + 1/2`` balls are expected to have rung, ``spread``
    standard deviations of that count wide (further to the left, where the density falls like
    ``e^{(n + 1) v}``)."""
    target = n.to(m.dtype) + 0.5
    lo = torch.full_like(target, -800.0)
    hi = torch.full_like(target, 800.0)
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        rung = (m * -torch.expm1(-w * mid.unsqueeze(-1).exp())).sum(-1)
        lo, hi = torch.where(rung < target, mid, lo), torch.where(rung < target, hi, mid)
    centre = 0.5 * (lo + hi)
    s = w * centre.unsqueeze(-1).exp()
    q = -torch.expm1(-s)
    sd = ((m * q * (1 - q)).sum(-1) + 0.25).sqrt() / (m * s * torch.exp(-s)).sum(-1)
    left = centre - torch.maximum(spread * sd, DROP / (n.to(m.dtype) + 1))
    right = centre + spread * sd + 1.0 / (n.to(m.dtype) + 1)
    unit = torch.linspace(0, 1, points, dtype=m.dtype, device=m.device)
    return left.unsqueeze(-1) + (right - left).unsqueeze(-1) * unit, (right - left) / (points - 1)


class _Nodes(NamedTuple):
    """The Fisher urns of the mixture at the nodes ``v [B, K]`` (flattened to ``B K``)."""

    population: torch.Tensor   # [B K, c] int64, the classes rung to the last ball removed
    draws: torch.Tensor        # [B K]
    theta: torch.Tensor        # [B K, c] the Fisher logits log(e^s - 1)
    full: torch.Tensor         # [B, K, c] the classes rung to the last ball
    feasible: torch.Tensor     # [B, K] at most the balls left are to be drawn
    s: torch.Tensor            # [B, K, c] w e^v


def _node_urns(population: torch.Tensor, draws: torch.Tensor, w: torch.Tensor, v: torch.Tensor
               ) -> _Nodes:
    """The Fisher urns at the nodes. Classes rung to their last ball (``m e^-s < 5e-18``)
    leave the urn: their share of ``log P(S = n)`` would cancel against the normaliser's in
    float64 (weight ratios like ``e^60``)."""
    m = population.to(torch.float64)
    classes = population.shape[-1]
    s = w.unsqueeze(1) * v.unsqueeze(-1).exp()
    full = (s > m.unsqueeze(1).clamp_min(1).log() + 40).detach()
    node_population = torch.where(full, 0, population.unsqueeze(1))
    node_draws = draws.unsqueeze(1) - torch.where(full, population.unsqueeze(1), 0).sum(-1)
    feasible = (node_draws >= 0) & (node_draws <= node_population.sum(-1))
    safe = torch.where((s > 0) & ~full, s, torch.ones_like(s))
    odds = torch.where((s > 0) & ~full, safe + log1mexp(safe), torch.where(full, 0.0, NEG_INF))
    return _Nodes(node_population.reshape(-1, classes),
                  torch.where(feasible, node_draws, 0).reshape(-1), odds.reshape(-1, classes),
                  full, feasible, s)


def mixture(population: torch.Tensor, draws: torch.Tensor, log_w: torch.Tensor,
            engine: str = "auto", second: bool = False, marginals: bool = False) -> Mixture:
    """The Fisher mixture of ``population [B, c]`` (int64, zero where the weight is zero),
    ``draws [B]`` (below the drawable balls) and ``log_w [B, c]``: Fisher urns at every node,
    their normalisers, means and ``C w`` (by autograd; differentiable in ``log_w`` while
    gradients are recorded). The rule is refined (more points, wider) until its total is 1 to
    ``TOLERANCE``; a ``ValueError`` if it cannot be. ``second=True`` adds the Fisher
    covariances and the Hessians of ``w . mu`` (``2 c`` more backward passes);
    ``marginals=True`` the Fisher marginals and their derivative along ``w`` (one
    double-backward per class)."""
    log_w = log_w - log_w.detach().amax(-1, keepdim=True)
    w = torch.where(population > 0, log_w.exp(), torch.zeros_like(log_w))
    m = population.to(torch.float64)
    batch, classes = m.shape
    for attempt in range(6):
        with torch.no_grad():
            v, step = _time_grid(m, draws, w.detach(), MIXTURE_POINTS << attempt,
                                 14.0 + 2 * attempt)
        points = v.shape[-1]
        nodes = _node_urns(population, draws, w, v)
        s, full, feasible = nodes.s, nodes.full, nodes.feasible
        recording = torch.is_grad_enabled() and log_w.requires_grad
        with torch.enable_grad():
            theta = nodes.theta if recording else nodes.theta.detach().requires_grad_()
            urn = build(engine, nodes.population, nodes.draws, theta)
            mean = urn.mean() if recording else None
            if mean is None:
                (mean,) = torch.autograd.grad(urn.log_normalizer.sum(), theta,
                                              create_graph=True)
            weights = w.repeat_interleave(points, 0)
            # C w, differentiable in w too (through grad_outputs) while recording
            (tilted,) = torch.autograd.grad(mean, theta, grad_outputs=weights,
                                            create_graph=recording or second or marginals)
            covariance = hessian = None
            if second:
                covariance, hessian = (torch.stack([
                    torch.autograd.grad(of[:, i].sum(), theta, retain_graph=True,
                                        create_graph=recording)[0]
                    for i in range(classes)], -2).reshape(batch, points, classes, classes)
                    for of in (mean, tilted))
            along_w = _marginals_along(urn, theta, population, nodes.full, weights, recording) \
                if marginals else None
        log_normalizer = urn.log_normalizer.reshape(batch, points)
        mean, tilted = mean.reshape(batch, points, classes), tilted.reshape(batch, points, classes)
        if not recording:
            log_normalizer, mean, tilted = log_normalizer.detach(), mean.detach(), tilted.detach()
        mean = mean + torch.where(full, m.unsqueeze(1), 0.0)
        rung = log1mexp(torch.where(full, s, torch.ones_like(s)))  # log(1 - e^-s), ~ 0
        rest = torch.where(full, m.unsqueeze(1) * rung, -m.unsqueeze(1) * s).sum(-1)
        log_mass = torch.where(feasible, v + log_normalizer + rest + step.log().unsqueeze(-1),
                               NEG_INF)
        leave = (w.unsqueeze(1) * (m.unsqueeze(1) - mean)).sum(-1)
        with torch.no_grad():
            total = (log_mass.exp() * leave).sum(-1)
            edges = (log_mass[:, [0, -1]].exp() * leave[:, [0, -1]]).amax(-1)
        # the total, a smooth integral like the moments', is held 100 times tighter
        if bool(((total - 1).abs() <= TOLERANCE / 100).all()
                & (edges <= TOLERANCE / 100).all()):
            return Mixture(log_mass, mean, tilted, leave, w, m, covariance, hessian, along_w)
    raise ValueError(f"the Wallenius moments' time integral could not reach a relative error of "
                     f"{TOLERANCE:g} (its total is {total.tolist()}); please report this urn")


def mixture_mean(mix: Mixture) -> torch.Tensor:
    """``[B, c]``: ``E[X] = integral P(S = n) E[d(X) X | S = n] du`` with ``E[d X] = (D - w .
    mu) mu - C w``, ``D - w . mu = sum_i w_i (m_i - mu_i)`` taken as that sum (``leave``), which
    does not cancel when the heaviest classes are exhausted."""
    terms = mix.leave.unsqueeze(-1) * mix.mean - mix.tilted
    return (mix.log_mass.exp().unsqueeze(-1) * terms).sum(1)


def mixture_covariance(population: torch.Tensor, draws: torch.Tensor, log_w: torch.Tensor,
                       engine: str = "auto") -> torch.Tensor:
    """``[B, c, c]``: ``Cov[X]`` from ``E[X X^T] = integral P(S = n) E[d(X) X X^T | S = n] du``,
    where ``E[d X X^T] = D M2 - T``, ``M2 = C + mu mu^T`` and ``T = sum_j w_j E[X_j X X^T] =
    H + (C w) mu^T + mu (C w)^T + (w . mu) M2`` (``H`` the Hessian of ``w . mu``: exponential
    family identities of the Fisher law); ``D - w . mu`` is taken as ``leave``."""
    mix = mixture(population, draws, log_w, engine, second=True)
    mu, tilted = mix.mean, mix.tilted
    second = mix.covariance + mu.unsqueeze(-1) * mu.unsqueeze(-2)
    third = (mix.tilted_hessian + tilted.unsqueeze(-1) * mu.unsqueeze(-2)
             + mu.unsqueeze(-1) * tilted.unsqueeze(-2))
    terms = mix.leave[..., None, None] * second - third
    moment = (mix.log_mass.exp()[..., None, None] * terms).sum(1)
    mean = mixture_mean(mix)
    return moment - mean.unsqueeze(-1) * mean.unsqueeze(-2)


def _marginals_along(urn: Urn, theta: torch.Tensor, population: torch.Tensor, full: torch.Tensor,
                     weights: torch.Tensor, recording: bool
                     ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per class, the node urns' marginals ``[B, K, W]`` (a class rung to its last ball holds
    all of them) and their derivative along ``weights``, ``J w``, by double-backward: the
    vector-Jacobian product ``J^T probe`` is linear in ``probe``, so its gradient in ``probe``
    along ``w`` is ``J w``."""
    batch, points, classes = full.shape
    out = []
    for i, window in enumerate(urn.log_marginals()):
        width = int(population[:, i].max()) + 1 if population.numel() else 1
        probs = window.dense(width).exp()                                # [B K, W]
        whole = torch.nn.functional.one_hot(population[:, i].repeat_interleave(points),
                                            width).to(probs.dtype)
        probs = torch.where(full.reshape(-1, classes)[:, i].unsqueeze(-1), whole, probs)
        probe = torch.zeros_like(probs, requires_grad=True)
        (pulled,) = torch.autograd.grad(probs, theta, grad_outputs=probe, create_graph=True)
        (along,) = torch.autograd.grad(pulled, probe, grad_outputs=weights,
                                       create_graph=recording)
        if not recording:
            probs, along = probs.detach(), along.detach()
        out.append((probs.reshape(batch, points, width), along.reshape(batch, points, width)))
    return out


def mixture_marginals(mix: Mixture) -> list[torch.Tensor]:
    """Per class ``i`` the exact marginal ``P(X_i = k)``, ``[B, max m_i + 1]``, of a mixture
    built with ``marginals=True``: ``integral P(S = n) E[d(X) 1{X_i = k} | S = n] du`` with
    ``E[d 1{X_i = k}] = (D - w . mu) P_F(k) - (w . grad_theta) P_F(k)`` (``sum_j w_j E[X_j
    1{X_i = k}] = (w . grad) P_F(k) + (w . mu) P_F(k)`` in an exponential family).
    Differentiable in ``log_w`` when the mixture is."""
    mass = mix.log_mass.exp().unsqueeze(-1)
    return [(mass * (mix.leave.unsqueeze(-1) * probs - along)).sum(1)
            for probs, along in mix.marginals]
