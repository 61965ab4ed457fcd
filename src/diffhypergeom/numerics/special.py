"""Numerical primitives shared by both engines: a NaN-free logsumexp, ``log C(m, k)`` accurate for
any ``m``, and the binomial log-pmf without cancellation (Loader's saddle-point form).

Everything here is differentiable, broadcasts, works in float64, and never produces NaN
gradients where a value is ``-inf`` (infeasible states of an urn).
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "HALF_LOG_2PI", "NEG_INF", "bd0", "log_binomial", "log_binomial_pmf", "log_binomial_row",
    "logsumexp", "stirlerr", "times_logit",
]

NEG_INF = float("-inf")
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)

# Above this argument the Stirling series of ``stirlerr`` is accurate to a few 1e-17 (its next
# term is 1/(1188 x^9)); below it ``lgamma`` is used directly.
_STIRLING_FROM = 30.0


def logsumexp(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``log(sum(exp(x), dim))`` that returns ``-inf`` for all ``-inf`` slices with a zero
    (not NaN) gradient, unlike ``torch.logsumexp``.

    Example:
        >>> import torch
        >>> from diffhypergeom.numerics.special import logsumexp
        >>> x = torch.full((2,), float("-inf"), requires_grad=True)
        >>> value = logsumexp(x, 0)
        >>> value.backward()
        >>> value, x.grad
        (tensor(-inf, grad_fn=<WhereBackward0>), tensor([0., 0.]))
    """
    shift = x.detach().amax(dim, keepdim=True)
    shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
    total = (x - shift).exp().sum(dim)
    positive = total > 0
    safe_total = torch.where(positive, total, torch.ones_like(total))
    out = shift.squeeze(dim) + safe_total.log()
    return torch.where(positive, out, torch.full_like(out, NEG_INF))


def times_logit(count: torch.Tensor, logit: torch.Tensor) -> torch.Tensor:
    """``count * logit`` with ``0 * (-inf) = 0`` (a class of weight zero drawn zero times).

    Example:
        >>> import torch
        >>> from diffhypergeom.numerics.special import times_logit
        >>> count, logit = torch.tensor([0.0, 2.0]), torch.tensor([float("-inf"), -0.5])
        >>> count * logit, times_logit(count, logit)
        (tensor([nan, -1.]), tensor([ 0., -1.]))
    """
    product = count * logit
    return torch.where(count == 0, torch.zeros_like(product), product)


def stirlerr(x: torch.Tensor) -> torch.Tensor:
    """``log Gamma(x + 1) - (x + 1/2) log x + x - log sqrt(2 pi)`` for ``x > 0``: the error of
    Stirling's formula, computed without cancellation.

    Example:
        >>> import math, torch
        >>> from diffhypergeom.numerics.special import stirlerr
        >>> x = torch.tensor([1.0, 10.0, 100.0], dtype=torch.float64)
        >>> [round(v, 7) for v in stirlerr(x).tolist()]  # about 1 / (12 x)
        [0.0810615, 0.0083306, 0.0008333]
        >>> [round(math.lgamma(n + 1) - math.log(math.sqrt(2 * math.pi * n) * (n / math.e) ** n), 7)
        ...  for n in (1, 10, 100)]  # log(n!) - log(sqrt(2 pi n) (n / e)^n)
        [0.0810615, 0.0083306, 0.0008333]
    """
    large = x >= _STIRLING_FROM
    xl = torch.where(large, x, torch.full_like(x, _STIRLING_FROM))
    inv2 = 1.0 / (xl * xl)
    series = (1.0 / 12 - inv2 * (1.0 / 360 - inv2 * (1.0 / 1260 - inv2 * (1.0 / 1680)))) / xl
    xs = torch.where(large, torch.ones_like(x), x.clamp_min(1e-300))
    direct = torch.lgamma(xs + 1) - (xs + 0.5) * xs.log() + xs - HALF_LOG_2PI
    return torch.where(large, series, direct)


def bd0(x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """``x log(x / mean) + mean - x >= 0`` (the binomial deviance), accurate when ``x`` is close
    to ``mean``. Needs ``mean > 0``; ``x = 0`` gives ``mean``.

    Example:
        >>> import math, torch
        >>> from diffhypergeom.numerics.special import bd0
        >>> bd0(torch.tensor([0.0, 3.0]).double(), torch.tensor(4.0).double())
        tensor([4.0000, 0.1370], dtype=torch.float64)
        >>> round(3 * math.log(3 / 4) + 4 - 3, 4)  # x log(x / mean) + mean - x; x = 0 gives mean
        0.137
        >>> x, mean = torch.tensor(1e6 + 1).double(), torch.tensor(1e6).double()  # x - mean << mean
        >>> float(bd0(x, mean)), 1 / 2e6 - 1 / 6e12 + 1 / 12e18  # (m + 1) log(1 + 1/m) - 1 in 1/m
        (4.999998333334166e-07, 4.999998333334166e-07)
    """
    total = x + mean
    v = (x - mean) / torch.where(total > 0, total, torch.ones_like(total))
    small = v.abs() < 0.1
    # atanh(v) - v by its series where cancellation would cost digits, directly elsewhere
    v2 = v * v
    series = torch.zeros_like(v)
    for j in range(8, 0, -1):
        series = (series + 1.0 / (2 * j + 1)) * v2
    series = series * v
    # atanh(v) = log(x / mean) / 2, from the logs (v rounded near +-1 would lose the digits)
    xs = torch.where(small, torch.ones_like(x), x.clamp_min(1e-300))
    ms = torch.where(small, torch.ones_like(mean), mean.clamp_min(1e-300))
    direct = 0.5 * (xs.log() - ms.log()) - torch.where(small, torch.zeros_like(v), v)
    atanh_minus_v = torch.where(small, series, direct)
    out = (x - mean) * v + 2 * x * atanh_minus_v
    return torch.where(x > 0, out, mean)


def log_binomial(m: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``log C(m, k)``, broadcast over ``m`` and ``k``; ``-inf`` outside ``0 <= k <= m``.

    Inside, non-integer ``k`` gives the Gamma-function extension. Accurate to a relative
    ``~1e-15`` for any ``m`` (``lgamma(m + 1) - lgamma(m - k + 1)`` loses ``log10(m)`` digits to
    cancellation; this uses ``a = min(k, m - k)``, ``b = m - a`` and Stirling's series with
    ``log1p(-a / m)`` when ``b >= 30``).

    Example:
        >>> import math, torch
        >>> from diffhypergeom.numerics.special import log_binomial
        >>> log_binomial(torch.tensor([10, 10, 10]), torch.tensor([3, 0, 11]))  # log 120, log 1
        tensor([4.7875, 0.0000,   -inf], dtype=torch.float64)
        >>> m, k = torch.tensor(1e15, dtype=torch.float64), torch.tensor(3.0, dtype=torch.float64)
        >>> round(float(log_binomial(m, k)), 12), round(math.log(math.comb(10**15, 3)), 12)
        (101.824569715504, 101.824569715504)
    """
    m = m.to(torch.float64) if not m.is_floating_point() else m
    k = k.to(m.dtype) if not k.is_floating_point() else k
    m, k = torch.broadcast_tensors(m, k)
    inside = (k >= 0) & (k <= m)
    k = torch.where(inside, k, torch.zeros_like(k))
    a = torch.minimum(k, m - k)
    b = m - a
    large = b >= _STIRLING_FROM
    if not torch.compiler.is_compiling() and not bool(large.any()):
        value = torch.lgamma(m + 1) - torch.lgamma(k + 1) - torch.lgamma(m - k + 1)
        return torch.where(inside, value, torch.full_like(value, NEG_INF))
    # small urns: plain lgamma (no large cancellation below 30)
    ms, as_ = torch.where(large, torch.ones_like(m), m), torch.where(large, torch.zeros_like(a), a)
    plain = torch.lgamma(ms + 1) - torch.lgamma(as_ + 1) - torch.lgamma(ms - as_ + 1)
    ml = torch.where(large, m, torch.full_like(m, 2 * _STIRLING_FROM))
    al = torch.where(large, a, torch.zeros_like(a))
    bl = ml - al
    ratio_log = torch.log1p(-al / ml)
    head = al * ml.log() - (bl + 0.5) * ratio_log - al + stirlerr(ml) - stirlerr(bl)
    stirling = head - torch.lgamma(al + 1)
    value = torch.where(large, stirling, plain)
    return torch.where(inside, value, torch.full_like(value, NEG_INF))


def log_binomial_row(m: torch.Tensor, width: int) -> torch.Tensor:
    """``[..., width]``: ``log C(m, k)`` for ``k = 0..width-1`` (``-inf`` above ``m``), as the
    running sum of ``log((m - j + 1) / j)``: accurate for any ``m`` (no ``lgamma``
    cancellation) in a handful of operations. ``m``: ``[..., 1]`` whole numbers.

    Example:
        >>> import math, torch
        >>> from diffhypergeom.numerics.special import log_binomial_row
        >>> row = log_binomial_row(torch.tensor([[3], [5]]), 6)
        >>> row[0, 4:], row.exp().round().int().tolist()
        (tensor([-inf, -inf], dtype=torch.float64), [[1, 3, 3, 1, 0, 0], [1, 5, 10, 10, 5, 1]])
        >>> [[math.comb(m, k) for k in range(6)] for m in (3, 5)]
        [[1, 3, 3, 1, 0, 0], [1, 5, 10, 10, 5, 1]]
    """
    m = m.to(torch.float64)
    j = torch.arange(1, width, device=m.device, dtype=torch.float64)
    ratio = ((m - j + 1) / j).clamp_min(1e-300)
    steps = torch.where(j <= m, ratio.log(), torch.full_like(ratio, NEG_INF))
    out = torch.cat([torch.zeros_like(m), steps.cumsum(-1)], -1)
    return torch.where(torch.isnan(out), torch.full_like(out, NEG_INF), out)


def log_binomial_pmf(k: torch.Tensor, m: torch.Tensor, log_p: torch.Tensor,
                     log_q: torch.Tensor) -> torch.Tensor:
    """``log Bin(k; m, p) = log C(m, k) + k log p + (m - k) log q`` (``q = 1 - p`` given as its
    own log for accuracy), broadcast; ``-inf`` outside ``0 <= k <= m``.

    Uses Loader's form ``stirlerr(m) - stirlerr(k) - stirlerr(m - k) - bd0(k, mp) - bd0(m - k,
    mq) - log sqrt(2 pi k (m - k) / m)``, whose terms are all of the size of the result, so it is
    accurate to ~1e-15 absolute for ``m`` up to ``1e15`` where the direct sum of the three terms
    (each ``~m``) would lose ``log10(m)`` digits. Falls back to the direct sum where ``mp`` or
    ``mq`` underflows.

    Example:
        >>> import math, torch
        >>> from diffhypergeom.numerics.special import log_binomial_pmf
        >>> log_p, log_q = torch.tensor([0.3, 0.7], dtype=torch.float64).log()
        >>> log_binomial_pmf(torch.arange(5), torch.tensor(3), log_p, log_q).exp()  # k = 4 > m
        tensor([0.3430, 0.4410, 0.1890, 0.0270, 0.0000], dtype=torch.float64)
        >>> m, k = torch.tensor(10**12), torch.tensor(3 * 10**11)  # Bin(10**12, 0.3) at its mean
        >>> round(float(log_binomial_pmf(k, m, log_p, log_q)), 9), round(-0.5 * math.log(
        ...     2 * math.pi * 1e12 * 0.3 * 0.7), 9)  # the normal density there, to ~1e-12
        (-13.954125217, -13.954125217)
    """
    m = m.to(torch.float64) if not m.is_floating_point() else m
    k = k.to(m.dtype) if not k.is_floating_point() else k
    m, k, log_p, log_q = torch.broadcast_tensors(m, k, log_p, log_q)
    inside = (k >= 0) & (k <= m)
    k = torch.where(inside, k, torch.zeros_like(k))
    mp, mq = m * log_p.exp(), m * log_q.exp()
    interior = (k > 0) & (k < m) & (mp > 1e-250) & (mq > 1e-250)
    one = torch.ones_like(m)
    ki = torch.where(interior, k, one)
    mi = torch.where(interior, m, 2 * one)
    mpi, mqi = torch.where(interior, mp, one), torch.where(interior, mq, one)
    rest = mi - ki
    loader = (stirlerr(mi) - stirlerr(ki) - stirlerr(rest) - bd0(ki, mpi) - bd0(rest, mqi)
              - HALF_LOG_2PI - 0.5 * (ki.log() + torch.log1p(-ki / mi)))
    direct = log_binomial(m, k) + times_logit(k, log_p) + times_logit(m - k, log_q)
    value = torch.where(interior, loader, direct)
    return torch.where(inside, value, torch.full_like(value, NEG_INF))
