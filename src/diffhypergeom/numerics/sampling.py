"""Sequential samplers over conditional rows (``docs/design/index.md`` sections 1 and 2).

Both samplers walk the classes in order. Class ``i`` takes a count ``k`` from the row
``(b, r)`` of its conditional (an engine's ``conditional(i, rows)``: a ``Window`` of
log-probabilities over ``k = offset + j``), where ``r`` is the number of balls still to draw; the
last class takes what is left. Only the rows that some sample visits are computed, once each,
and shared by all samples in them. Per sample the work is the width of the windows: ``O(m_i)``
with the log-space engine, ``O(sigma_i)`` with the FFT engine.

``sample`` and ``rsample`` run eagerly inside ``torch.compile``\\ d code (the distribution's
methods are ``torch.compiler.disable``\\ d): which rows exist depends on the draws, and Inductor
(torch 2.13) fails on the relaxed sampler's surroundings with an internal pattern-matcher error
(``BackendCompilerFailed ... slice_shape``). Under ``torch.func``
transforms they compute every row instead of the visited ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

from diffhypergeom.numerics.base import Window, distinct, readable
from diffhypergeom.numerics.special import NEG_INF

__all__ = [
    "ConditionalFn", "GumbelSettings", "RelaxedDraw", "project_to_support_hull",
    "rsample_sequential", "sample_sequential",
]

# conditional(i, rows) -> Window over k of log p(x_i = k | row), rows = b * (n_max + 1) + r
ConditionalFn = Callable[[int, torch.Tensor], Window]


def _visited_rows(remaining: torch.Tensor, rows_per_urn: int
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Distinct flat rows ``b * rows_per_urn + r`` of ``remaining [S, B]`` and, per sample, the
    position of its row among them."""
    urn = torch.arange(remaining.shape[1], device=remaining.device) * rows_per_urn
    flat = urn + remaining
    num_rows = remaining.shape[1] * rows_per_urn
    if not readable(remaining):  # under torch.func: every row, no data-dependent shapes
        return torch.arange(num_rows, device=remaining.device), flat
    return distinct(flat, num_rows)


class RelaxedDraw(NamedTuple):
    """Result of ``rsample_detailed``.

    Attributes:
        counts: ``[*sample, *batch, c]`` counts summing to ``draws``: exact draws forward
            (``rsample_detailed``), with the chosen gradient backward.
        one_hot: ``[*sample, *batch, c, max_m + 1]`` per-class relaxed one-hot vectors over the
            count ``0..max_m`` (zero-padded past each class's range). The last class visited,
            determined as ``x_c = n - sum_{i<c} x_i``, is the exact one-hot of its count with a
            straight-through gradient from the others: ``y_c[k]`` moves with
            ``y_i[x_i + x_c - k]`` for every earlier class ``i``.
        log_prob: ``[*sample, *batch]`` log-probability of the hard draw under the sampling
            process (for the Fisher law this is its exact ``log_prob``).

    Example:
        >>> import torch
        >>> from diffhypergeom import MultivariateFisherNCHypergeometric
        >>> d = MultivariateFisherNCHypergeometric(torch.tensor([4, 5, 6]), 7, weights=torch.tensor(
        ...     [1.0, 2.0, 0.5], dtype=torch.float64))
        >>> draw = d.rsample_detailed((2,), gradient="gumbel")
        >>> draw.counts.shape, draw.one_hot.shape, draw.log_prob.shape  # one-hot over 0..6
        (torch.Size([2, 3]), torch.Size([2, 3, 7]), torch.Size([2]))
        >>> (bool((draw.one_hot.argmax(-1) == draw.counts).all()),
        ...  bool(torch.allclose(draw.log_prob, d.log_prob(draw.counts))))
        (True, True)
    """

    counts: torch.Tensor
    one_hot: torch.Tensor
    log_prob: torch.Tensor


@torch.no_grad()
def sample_sequential(
    conditional: ConditionalFn, draws: torch.Tensor, num_classes: int, num_samples: int
) -> torch.Tensor:
    """Exact draws by inverse-CDF sampling of each conditional.

    The CDF rows that the samples visit are laid end to end with row ``j`` shifted by ``j``,
    which makes one sorted vector; a uniform ``u`` for a sample in row ``j`` is found with a
    single ``searchsorted`` of ``j + u``.

    Returns:
        ``[num_samples, B, c]`` int64 counts.

    Example:
        Exact draws from the rows of an engine (``diffhypergeom.numerics.engines.build``), as
        ``MultivariateFisherNCHypergeometric.sample`` takes them:

        >>> import torch
        >>> from diffhypergeom.numerics.engines import build
        >>> from diffhypergeom.numerics.sampling import sample_sequential
        >>> urn = build("logspace", torch.tensor([[4, 5, 6]]), torch.tensor([7]),
        ...             torch.tensor([[1.0, 2.0, 0.5]], dtype=torch.float64).log())
        >>> x = urn.to_user(sample_sequential(urn.engine.conditional, urn.engine.draws, 3, 1000))
        >>> x.shape, x.dtype, bool(((x >= 0) & (x <= urn.population)).all()
        ...                        & (x.sum(-1) == 7).all())  # in the support
        (torch.Size([1000, 1, 3]), torch.int64, True)
    """
    batch = draws.shape[0]
    rows_per_urn = int(draws.max()) + 1 if batch else 1
    counts = []
    remaining = draws.unsqueeze(0).expand(num_samples, batch)
    for i in range(num_classes - 1):
        rows, position = _visited_rows(remaining, rows_per_urn)
        window = conditional(i, rows)
        table = window.log_prob.detach()
        width = table.shape[-1]
        cdf = table.exp().cumsum(-1)
        total = cdf[..., -1:]
        cdf = torch.where(total > 0, cdf / torch.where(total > 0, total, 1.0), 1.0)
        row_id = torch.arange(rows.numel(), device=draws.device, dtype=torch.float64)
        flat = (cdf + row_id.unsqueeze(-1)).reshape(-1)
        target = position.to(torch.float64) + torch.rand(
            num_samples, batch, dtype=torch.float64, device=draws.device)
        found = torch.searchsorted(flat, target.reshape(-1), right=True).view_as(remaining)
        # j + u can round up to j + 1 and land in the next row: take this row's last count of
        # positive probability instead (where u -> 1 belongs)
        last_positive = torch.where(torch.isfinite(table), torch.arange(width, device=table.device),
                                    0).amax(-1)
        k = torch.minimum((found - position * width).clamp(0, width - 1),
                          last_positive[position])
        if not readable(window.offset) or bool(window.offset.any()):
            k = k + window.offset[position]
        counts.append(k)
        remaining = remaining - k
    counts.append(remaining)
    return torch.stack(counts, dim=-1)


def _neg_gumbel_like(x: torch.Tensor) -> torch.Tensor:
    """``log(-log u)`` for ``u ~ U(0, 1)``, i.e. minus a standard Gumbel variable. ``u`` is kept
    away from 0 so that the noise is finite."""
    u = torch.rand_like(x).clamp(min=torch.finfo(x.dtype).tiny)
    return u.log().neg().log()


class GumbelSettings(NamedTuple):
    """How ``rsample_sequential`` relaxes each class's conditional.

    Attributes:
        temperature: ``tau > 0``, a float or a tensor ``[S, B, 1]``.
        hard: straight-through: the hard count forward, the relaxed gradient backward.
        coupled: give the balls left for later classes a gradient path (``_couple_rows``).
        rao_samples: ``K > 0`` Rao-Blackwellises the backward pass over ``K`` noise draws
            (Gumbel-Rao); 0 for plain Gumbel-softmax.

    Example:
        >>> from diffhypergeom.numerics.sampling import GumbelSettings
        >>> settings = GumbelSettings(temperature=0.5, hard=True)  # rsample(gradient="gumbel")
        >>> settings
        GumbelSettings(temperature=0.5, hard=True, coupled=False, rao_samples=0)
        >>> settings._replace(rao_samples=10)  # gradient="gumbel-rao"
        GumbelSettings(temperature=0.5, hard=True, coupled=False, rao_samples=10)
    """

    temperature: float | torch.Tensor
    hard: bool
    coupled: bool = False
    rao_samples: int = 0


def rsample_sequential(
    conditional: ConditionalFn,
    draws: torch.Tensor,
    num_classes: int,
    num_samples: int,
    settings: GumbelSettings,
    dtype: torch.dtype,
    one_hot_width: int | None = None,
    population: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Gumbel-softmax over each conditional (straight-through when ``settings.hard``).

    For class ``i``: ``alpha = table_i[b, r]``, ``y = softmax((alpha + g) / tau)`` with Gumbel
    noise ``g``; the hard count is ``argmax(alpha + g)`` (an exact draw from the conditional)
    and the relaxed count ``sum_k k y_k``. The balls left for the next class follow the hard
    count; the last class is ``draws - sum`` of the others. Relaxed counts (not ``hard``) that
    leave the box ``0 <= x_i <= m_i`` (the last class can: it absorbs the others' relaxation)
    are projected onto ``{0 <= x_i <= m_i, sum x = n}`` (Euclidean; needs ``population``).

    Computes in at least float32 (the Gumbel noise and the softmax lose the draw's exactness in
    half precision) and returns ``dtype``; forward counts are exact whenever ``dtype`` holds
    ``draws`` exactly.

    Returns:
        counts ``[S, B, c]``; if ``one_hot_width`` is given also the one-hot vectors
        ``[S, B, c, one_hot_width]`` and the log-probability ``[S, B]`` of the hard draw.

    Example:
        Hard (straight-through) counts from an engine's rows: whole numbers summing to the
        draws, with the exact Fisher log-probability of each draw:

        >>> import torch
        >>> from diffhypergeom.numerics.engines import build
        >>> from diffhypergeom.numerics.sampling import GumbelSettings, rsample_sequential
        >>> urn = build("logspace", torch.tensor([[4, 5, 6]]), torch.tensor([7]),
        ...             torch.tensor([[1.0, 2.0, 0.5]], dtype=torch.float64).log())
        >>> counts, one_hot, log_prob = rsample_sequential(
        ...     urn.engine.conditional, urn.engine.draws, 3, 4, GumbelSettings(0.5, hard=True),
        ...     torch.float64, one_hot_width=7)
        >>> (counts.shape, one_hot.shape, bool((counts == counts.round()).all()),
        ...  bool((counts.sum(-1) == 7).all()),
        ...  bool(torch.allclose(log_prob, urn.log_prob(counts))))
        (torch.Size([4, 1, 3]), torch.Size([4, 1, 3, 7]), True, True, True)
    """
    batch = draws.shape[0]
    rows_per_urn = int(draws.max()) + 1 if batch else 1
    output, dtype = dtype, torch.promote_types(dtype, torch.float32)
    detailed = one_hot_width is not None
    remaining = draws.unsqueeze(0).expand(num_samples, batch).clone()
    counts, vectors, hard_counts, deltas = [], [], [], []
    log_prob = torch.zeros(num_samples, batch, dtype=dtype, device=draws.device)
    for i in range(num_classes - 1):
        rows, position = _visited_rows(remaining, rows_per_urn)
        window = conditional(i, rows)
        offset = window.offset[position]
        alpha = F.embedding(position, window.log_prob.to(dtype))
        if settings.coupled and counts:
            alpha = _couple_rows(alpha, offset, counts, remaining, rows_per_urn, conditional, i,
                                 dtype)
        j_hard, soft = _relax(alpha, settings)
        k_hard = j_hard + offset
        values = torch.arange(alpha.shape[-1], device=draws.device, dtype=dtype)
        soft_count = soft @ values + offset.to(dtype)
        counts.append(k_hard.to(dtype) + (soft_count - soft_count.detach()) if settings.hard
                      else soft_count)
        if detailed:
            delta = Window(offset, soft - soft.detach()).dense(one_hot_width, fill=0.0)
            hard_counts.append(k_hard)
            deltas.append(delta)
            vectors.append(F.one_hot(k_hard, one_hot_width).to(dtype) + delta if settings.hard
                           else Window(offset, soft).dense(one_hot_width, fill=0.0))
            log_prob = log_prob + alpha.gather(-1, j_hard.unsqueeze(-1)).squeeze(-1)
        remaining = remaining - k_hard
    last = draws.to(dtype) - sum(counts) if counts else draws.to(dtype).expand(num_samples, batch)
    counts.append(last)
    out = torch.stack(counts, dim=-1)
    if not settings.hard and population is not None:
        out = project_to_support_hull(out, population.to(dtype), draws.to(dtype))
    if not detailed:
        return out.to(output), None, None
    vectors.append(_last_class_vector(remaining, hard_counts, deltas, one_hot_width, dtype))
    return out.to(output), torch.stack(vectors, dim=-2).to(output), log_prob.to(output)


def _relax(alpha: torch.Tensor, settings: GumbelSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """One class's Gumbel-max index ``[S, B]`` (an exact draw from the conditional ``alpha``)
    and its relaxation ``[S, B, W]``: the softmax at the temperature, or its Gumbel-Rao
    average. ``-inf`` terms stay out of the arithmetic (their gradient in a learnable
    temperature would be ``inf * 0``)."""
    temperature = settings.temperature
    feasible = torch.isfinite(alpha)
    noisy = torch.where(feasible, alpha - _neg_gumbel_like(alpha), torch.zeros_like(alpha))
    scaled = torch.where(feasible, noisy / temperature, torch.full_like(alpha, NEG_INF))
    j_hard = scaled.argmax(-1)
    if settings.rao_samples:
        return j_hard, _gumbel_rao_softmax(alpha, feasible, j_hard, temperature,
                                           settings.rao_samples)
    return j_hard, torch.softmax(scaled, dim=-1)


def _gumbel_rao_softmax(alpha: torch.Tensor, feasible: torch.Tensor, j_hard: torch.Tensor,
                        temperature: float | torch.Tensor, samples: int) -> torch.Tensor:
    """``mean_k softmax((alpha + G_k) / tau)`` over ``samples`` draws ``G_k`` of the Gumbel
    noise conditioned on ``argmax(alpha + G) = j_hard``, with the noise held fixed in the
    gradient (top-down construction: the maximum ``log sum exp(alpha) + Gumbel``, the others
    Gumbels truncated below it)."""
    safe = torch.where(feasible, alpha, torch.full_like(alpha, NEG_INF)).detach()
    log_total = torch.logsumexp(safe, -1, keepdim=True)
    chosen = F.one_hot(j_hard, alpha.shape[-1]).bool()
    total = torch.zeros_like(alpha)
    for _ in range(samples):
        top = log_total - _neg_gumbel_like(log_total)
        # -log(exp(-top) + E exp(-alpha)), E ~ Exp(1): a Gumbel(alpha) truncated below top
        below = -torch.logaddexp(-top, torch.where(
            feasible, _neg_gumbel_like(alpha) - safe, torch.full_like(alpha, -NEG_INF)))
        noise = torch.where(feasible, torch.where(chosen, top.expand_as(alpha), below) - safe,
                            torch.zeros_like(alpha))
        scaled = torch.where(feasible, (alpha + noise) / temperature,
                             torch.full_like(alpha, NEG_INF))
        total = total + torch.softmax(scaled, dim=-1)
    return total / samples


def project_to_support_hull(y: torch.Tensor, upper: torch.Tensor, total: torch.Tensor
                            ) -> torch.Tensor:
    """Euclidean projection of ``y [S, B, c]`` (rows summing to ``total [B]``) onto
    ``{0 <= x <= upper [B, c], sum x = total}``: ``x = clip(y - lam, 0, upper)`` with the
    scalar ``lam`` found by bisection; differentiable (``lam`` moves with the free entries).
    Rows already inside are returned unchanged.

    Example:
        Two samples of one urn (``upper = [4, 5, 6]``, 7 draws): the first, outside the box,
        moves to ``clip(y + 0.5, 0, upper) = [4, 3, 0]``; the second is inside:

        >>> import torch
        >>> from diffhypergeom.numerics.sampling import project_to_support_hull
        >>> y = torch.tensor([[[5.0, 2.5, -0.5]], [[1.5, 3.5, 2.0]]], dtype=torch.float64)
        >>> x = project_to_support_hull(y, torch.tensor([[4.0, 5.0, 6.0]], dtype=torch.float64),
        ...                             torch.tensor([7.0], dtype=torch.float64))
        >>> x.round(decimals=6).tolist()
        [[[4.0, 3.0, 0.0]], [[1.5, 3.5, 2.0]]]
    """
    outside = ((y < 0) | (y > upper)).any(-1)
    if readable(outside) and not bool(outside.any()):
        return y
    with torch.no_grad():
        lo = (y - upper).amin(-1)
        hi = y.amax(-1)
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            above = (y - mid.unsqueeze(-1)).clamp(min=0).minimum(upper).sum(-1) > total
            lo, hi = torch.where(above, mid, lo), torch.where(above, hi, mid)
        lam = 0.5 * (lo + hi)
        shifted = y - lam.unsqueeze(-1)
        free = (shifted > 0) & (shifted < upper)
    count = free.sum(-1).clamp_min(1).to(y.dtype)
    moving = torch.where(free, y - y.detach(), torch.zeros_like(y)).sum(-1) / count
    lam = lam + moving
    x = (y - lam.unsqueeze(-1)).clamp(min=0).minimum(upper)
    return torch.where(outside.unsqueeze(-1), x, y)


def _couple_rows(alpha: torch.Tensor, offset: torch.Tensor, counts: list[torch.Tensor],
                 remaining: torch.Tensor, rows_per_urn: int, conditional: ConditionalFn, i: int,
                 dtype: torch.dtype) -> torch.Tensor:
    """``alpha(k | r + delta)`` to first order, ``delta`` the zero-valued, gradient-carrying
    part of the balls left (``-sum`` of the earlier classes' relaxations): the forward values
    are unchanged, and the conditional of class ``i`` moves with the earlier classes' relaxed
    counts through the centred difference of its rows ``r + 1`` and ``r - 1`` (one-sided where
    only one neighbour has the term)."""
    delta = -sum(count - count.detach() for count in counts)
    neighbours = []
    for step in (1, -1):
        moved = (remaining + step).clamp(0, rows_per_urn - 1)
        rows, position = _visited_rows(moved, rows_per_urn)
        window = conditional(i, rows)
        # the neighbour row over this row's counts offset + j
        aligned = Window(window.offset[position] - offset,
                         F.embedding(position, window.log_prob.to(dtype))
                         ).dense(alpha.shape[-1])
        neighbours.append(torch.where((moved != remaining).unsqueeze(-1), aligned,
                                      torch.full_like(aligned, NEG_INF)))
    above, below = neighbours
    here = torch.isfinite(alpha)
    safe = torch.where(here, alpha, torch.zeros_like(alpha))
    up, down = here & torch.isfinite(above), here & torch.isfinite(below)
    zero = torch.zeros_like(alpha)
    forward = torch.where(up, above - safe, zero)
    backward = torch.where(down, safe - below, zero)
    slope = torch.where(up & down, 0.5 * (forward + backward), forward + backward)
    return alpha + delta.unsqueeze(-1) * slope


def _last_class_vector(last: torch.Tensor, hard_counts: list[torch.Tensor],
                       deltas: list[torch.Tensor], width: int, dtype: torch.dtype
                       ) -> torch.Tensor:
    """``[S, B, width]``: the one-hot of the last class's count ``x_c`` (forward) with the
    straight-through gradient of ``x_c = n - sum_i x_i``: entry ``k`` receives the zero-valued,
    gradient-carrying part ``delta_i`` of every earlier class at ``x_i + x_c - k``."""
    vector = F.one_hot(last, width).to(dtype)
    k = torch.arange(width, device=last.device)
    for k_hard, delta in zip(hard_counts, deltas, strict=True):
        index = (k_hard + last).unsqueeze(-1) - k
        inside = (index >= 0) & (index < delta.shape[-1])
        moved = delta.gather(-1, index.clamp(0, delta.shape[-1] - 1))
        vector = vector + torch.where(inside, moved, torch.zeros_like(moved))
    return vector
