"""The log-depth exact sampler: a balanced binary tree over the classes (``docs/design/index.md``,
section 6).

Split the classes into a balanced binary tree; for a node with class set ``A`` let
``G_A(t) = prod_{i in A} (1 + w_i t)^m_i``. A node that holds ``r`` of the drawn balls gives
``j`` of them to its left child with probability

    P(left = j | r) = G_left[j] G_right[r - j] / G_node[r],

and both children recurse. Drawing the split of every node of a level at once, from the root
(``r = n``) down, gives exact MFNCH draws in ``ceil(log2 c)`` batched steps, where the
sequential sampler takes ``c - 1``.

The coefficients are kept as the log-pmfs of exponentially tilted counts (``numerics.fft``):
with the saddle point ``tau`` (``sum_i m_i sigmoid(theta_i + tau) = n``) the coefficient ``j``
of ``G_A`` is, up to a factor that cancels in every split, ``P(S_A = j)`` for ``S_A`` a sum of
independent binomials ``Bin(m_i, sigmoid(theta_i + tau))``. A node keeps that pmf on the counts
it can take in a draw (``max(0, n - (N - m_A)) .. min(m_A, n)``) within the Bernstein half-width
of the FFT engine around its mean; the mass left out is below ``e^-lam`` relative to the draw's
own probability (``lam = 40 + log(2 + sigma)``). Small urns keep every count (exact to
rounding). A parent's pmf is its children's log-space convolution.

Cost: building the tree is ``sum_nodes W_left W_right`` (``W`` a node's window: ``O(sigma_A)``);
a draw costs ``O(W)`` per node that holds a ball, so at most ``min(nodes, n)`` per level.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from diffhypergeom.numerics.base import Window, distinct
from diffhypergeom.numerics.fft import LAMBDA, count_window, solve_saddle, tail_halfwidth
from diffhypergeom.numerics.logspace import (
    LOGSPACE_MAGNITUDE,
    log_poly_mul,
    logit_magnitude,
    product_levels,
    product_work,
)
from diffhypergeom.numerics.special import NEG_INF, log_binomial_pmf, log_binomial_row

__all__ = [
    "CHUNK_ELEMENTS", "DENSE_ELEMENTS", "FULL_WORK", "Level", "NARROW", "SMALL_CLASS",
    "build_tree", "log_normalizer", "sample_tree", "tree_work", "whole_tables",
]

# Largest intermediate (elements) of one level's convolutions; larger levels run in chunks.
CHUNK_ELEMENTS = 1 << 24
# Windows up to this wide are convolved in log space, wider ones by a grouped conv1d.
NARROW = 32
# Leaves of classes up to this size that keep all their counts take the plain binomial row.
SMALL_CLASS = 64
# Trees whose untruncated log-space tables touch at most this many elements keep them whole
# (``logspace.product_levels``): exact, and no saddle point or windows to compute.
FULL_WORK = 1 << 24
# Levels where (samples x parents x left window) is at most this split every node densely.
DENSE_ELEMENTS = 1 << 20


class Level(NamedTuple):
    """One level of the tree (nodes ``v``; leaves are level 0).

    Attributes:
        lo: ``[B, V]`` int64, the smallest count each node keeps.
        table: ``[B, V, W]`` float64, ``log P(S_v = lo + j)`` (``-inf`` past the node's
            window).

    Example:
        >>> import torch
        >>> from diffhypergeom.numerics.tree import Level, build_tree
        >>> theta = torch.zeros(1, 2, dtype=torch.float64)  # small: whole, untilted tables
        >>> leaves, root = build_tree(torch.tensor([[2, 3]]), torch.tensor([2]), theta)
        >>> isinstance(root, Level), root.lo, root.table.exp()  # (1 + t)^5 up to t^2
        (True, tensor([[0]]), tensor([[[ 1.0000,  5.0000, 10.0000]]], dtype=torch.float64))
    """

    lo: torch.Tensor
    table: torch.Tensor


def _window(mean: torch.Tensor, variance: torch.Tensor, lam: torch.Tensor, low: torch.Tensor,
            high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Counts within the Bernstein half-width of ``mean``, clipped to ``[low, high]``."""
    lo, hi = count_window(mean, tail_halfwidth(variance.clamp_min(0).sqrt(), lam), low, high)
    return lo, hi.to(torch.int64)


def _gather_window(full: torch.Tensor, start: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor
                   ) -> torch.Tensor:
    """``[B, V, W]``: entries ``lo - start + j`` of ``full [B, V, L]`` for ``lo + j <= hi``."""
    width = int((hi - lo).max()) + 1 if lo.numel() else 1
    index = (lo - start).unsqueeze(-1) + torch.arange(width, device=lo.device)
    inside = (lo.unsqueeze(-1) + torch.arange(width, device=lo.device)) <= hi.unsqueeze(-1)
    values = full.gather(-1, index.clamp(0, full.shape[-1] - 1))
    return torch.where(inside, values, torch.full_like(values, NEG_INF))


def _convolve(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """``[B, V, Wl + Wr - 1]``: the log-space convolution of ``left [B, V, Wl]`` and
    ``right [B, V, Wr]``. Narrow windows: ``logsumexp`` over the products; wide ones: each
    factor scaled by its maximum, then a grouped ``conv1d`` of the (positive) coefficients, which
    keeps their relative precision; entries below ``1e-308`` of a node's largest product, far
    outside every window, would read as ``-inf``. Nodes run in chunks that keep each
    intermediate below ``CHUNK_ELEMENTS``."""
    width = right.shape[-1]
    if width <= NARROW:
        padded = F.pad(left, (0, width - 1), value=NEG_INF)
        per_node = left.shape[0] * padded.shape[-1] * width
        step = max(1, CHUNK_ELEMENTS // max(per_node, 1))
        return torch.cat([log_poly_mul(padded[:, v : v + step], right[:, v : v + step])
                          for v in range(0, left.shape[1], step)], dim=1)
    batch, nodes = left.shape[:2]
    top_left = left.detach().amax(-1, keepdim=True)
    top_right = right.detach().amax(-1, keepdim=True)
    scaled_left = F.pad((left - top_left).exp(), (width - 1, width - 1)).reshape(
        1, batch * nodes, -1)
    scaled_right = (right - top_right).exp().flip(-1).reshape(batch * nodes, 1, width)
    out = F.conv1d(scaled_left, scaled_right, groups=batch * nodes).reshape(batch, nodes, -1)
    positive = out > 0
    logged = torch.where(positive, out, torch.ones_like(out)).log() + top_left + top_right
    return torch.where(positive, logged, torch.full_like(logged, NEG_INF))


def build_tree(population: torch.Tensor, draws: torch.Tensor, theta: torch.Tensor
               ) -> list[Level]:
    """The tree's levels, leaves first, for a flat batch: ``population [B, c]`` int64,
    ``draws [B]`` int64, ``theta [B, c]`` float64 (``-inf`` for a weight of zero). The tables
    are differentiable in ``theta`` when it requires grad (the saddle point and the windows are
    not: the law does not depend on them).

    Example:
        >>> import torch
        >>> from diffhypergeom.numerics.tree import build_tree
        >>> m, n = torch.tensor([[10_000, 10_000]]), torch.tensor([10_000])
        >>> leaves, root = build_tree(m, n, torch.zeros(1, 2, dtype=torch.float64))  # p = 1/2
        >>> leaves.lo, root.lo  # Bin(10^4, 1/2) within 486 of 5,000; the root keeps only n
        (tensor([[4514, 4514]]), tensor([[10000]]))
        >>> round(float(root.table.exp()), 8)  # P(S = n) = C(20000, 10000) / 2^20000
        0.00564183
    """
    levels, _ = _build(population, draws, theta)
    return levels


def log_normalizer(population: torch.Tensor, draws: torch.Tensor, theta: torch.Tensor,
                   return_levels: bool = False
                   ) -> torch.Tensor | tuple[torch.Tensor, list[Level]]:
    """``[B]``: ``A = log P0`` from the tree's root, ``-n tau + sum_i m_i softplus(theta_i +
    tau) + log P(S = n)``, differentiable (twice) in ``theta``. With ``return_levels`` also the
    tree's levels, detached: one tree serves the mean and the sampler.

    Example:
        >>> import torch
        >>> from diffhypergeom.numerics.tree import log_normalizer
        >>> theta = torch.tensor([[1.0, 3.0]], dtype=torch.float64).log().requires_grad_()
        >>> a = log_normalizer(torch.tensor([[2, 2]]), torch.tensor([2]), theta)
        >>> round(a.exp().item(), 9)  # [t^2] (1 + t)^2 (1 + 3t)^2 = 1 + 12 + 9
        22.0
        >>> torch.autograd.grad(a.sum(), theta)[0]  # the mean: E[x_1] = (12 + 2 * 9) / 22
        tensor([[0.6364, 1.3636]], dtype=torch.float64)
    """
    levels, tilt = _build(population, draws, theta)
    root = levels[-1]
    at_root = (draws - root.lo[:, 0]).clamp(0, root.table.shape[-1] - 1)
    value = tilt + root.table[:, 0].gather(-1, at_root.unsqueeze(-1)).squeeze(-1)
    if not return_levels:
        return value
    return value, [Level(level.lo, level.table.detach()) for level in levels]


def whole_tables(population: torch.Tensor, draws: torch.Tensor, theta: torch.Tensor) -> bool:
    """Whether ``build_tree`` keeps every count of every node: when that touches at most
    ``FULL_WORK`` elements and the logits are close enough for log-space tables
    (``LOGSPACE_MAGNITUDE``). Then the tree is the log-space engine's product tree, exact to
    rounding.

    Example:
        >>> import torch
        >>> from diffhypergeom.numerics.tree import whole_tables
        >>> m, n, theta = torch.tensor([[100, 100]]), torch.tensor([50]), torch.zeros(1, 2).double()
        >>> whole_tables(m, n, theta), whole_tables(100 * m, 200 * n, theta)  # 51^2; 10^8 > 2^24
        (True, False)
        >>> whole_tables(m, n, theta.new_tensor([[0.0, -3e4]]))  # logits 3e4 apart, 50 draws
        False
    """
    return (product_work(population, draws) <= FULL_WORK
            and logit_magnitude(population, draws, theta) <= LOGSPACE_MAGNITUDE)


def _build(population: torch.Tensor, draws: torch.Tensor, theta: torch.Tensor
           ) -> tuple[list[Level], torch.Tensor]:
    """The levels and ``-n tau + sum_i m_i softplus(theta_i + tau)`` (for whole tables, which
    are not tilted, ``n`` times the logits' shift to a largest of ``0``)."""
    batch, classes = population.shape
    m = torch.where(theta > NEG_INF, population, torch.zeros_like(population))
    if whole_tables(m, draws, theta):
        n_max = int(draws.max()) if draws.numel() else 0
        present = m > 0
        shift = torch.where(present, theta, NEG_INF).detach().amax(-1, keepdim=True)
        shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
        tables = product_levels(m, torch.where(present, theta - shift, torch.zeros_like(theta)),
                                n_max)
        zero = torch.zeros(tables[0].shape[:2], dtype=torch.int64, device=theta.device)
        levels = [Level(zero[:, : t.shape[1]], t) for t in tables]
        return levels, draws.to(torch.float64) * shift.squeeze(-1)
    size = 1 << max(classes - 1, 0).bit_length()
    m = F.pad(m, (0, size - classes))
    theta = F.pad(torch.where(m[:, :classes] > 0, theta, torch.zeros_like(theta)),
                  (0, size - classes))
    md, n = m.to(torch.float64), draws.to(torch.float64)
    tau = solve_saddle(md, n, theta.detach())
    z = theta + tau.unsqueeze(-1)
    log_p, log_q = F.logsigmoid(z), F.logsigmoid(-z)
    tilt = -n * tau - (md * log_q).sum(-1)
    p = log_p.detach().exp()
    mean, variance = md * p, md * p * (1 - p)
    lam = (LAMBDA + torch.log(2 + variance.sum(-1).sqrt())).unsqueeze(-1)
    total = m.sum(-1, keepdim=True)
    n_col = draws.unsqueeze(-1)

    def bounds(count: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The counts a node with ``count`` balls can take in a draw of ``n``."""
        return (n_col - (total - count)).clamp_min(0), torch.minimum(count, n_col)

    low, high = bounds(m)
    lo, hi = _window(mean, variance, lam, low, high)
    width = int((hi - lo).max()) + 1 if lo.numel() else 1
    k = lo.unsqueeze(-1) + torch.arange(width, device=lo.device)
    if int(m.max()) <= SMALL_CLASS and not bool(lo.any()):
        # whole rows of small classes: the running-sum binomial row, exact and cheap
        kd = k.to(torch.float64)
        table = (log_binomial_row(m.unsqueeze(-1), width) + kd * log_p.unsqueeze(-1)
                 + (md.unsqueeze(-1) - kd) * log_q.unsqueeze(-1))
    else:
        table = log_binomial_pmf(k.to(torch.float64), md.unsqueeze(-1), log_p.unsqueeze(-1),
                                 log_q.unsqueeze(-1))
    table = torch.where(k <= hi.unsqueeze(-1), table, torch.full_like(table, NEG_INF))
    levels = [Level(lo, table)]
    while table.shape[1] > 1:
        full = _convolve(table[:, 0::2], table[:, 1::2])
        start = lo[:, 0::2] + lo[:, 1::2]
        m = m[:, 0::2] + m[:, 1::2]
        mean = mean[:, 0::2] + mean[:, 1::2]
        variance = variance[:, 0::2] + variance[:, 1::2]
        low, high = bounds(m)
        low = torch.maximum(low, start)
        high = torch.minimum(high, hi[:, 0::2] + hi[:, 1::2])
        lo, hi = _window(mean, variance, lam, low, high)
        table = _gather_window(full, start, lo, hi)
        levels.append(Level(lo, table))
    return levels, tilt


@torch.no_grad()
def sample_tree(levels: list[Level], draws: torch.Tensor, num_classes: int, num_samples: int
                ) -> torch.Tensor:
    """``[num_samples, B, num_classes]`` int64 exact draws, splitting the drawn balls from the
    root down one level at a time. Only nodes that hold a ball do any work; each distinct
    ``(node, r)`` row is computed once and shared by the samples in it (inverse-CDF sampling,
    one ``searchsorted`` per level).

    Example:
        >>> import torch
        >>> from diffhypergeom.numerics import tree
        >>> one_each, k = torch.ones(1, 8, dtype=torch.int64), torch.tensor([3])
        >>> theta = torch.zeros(1, 8, dtype=torch.float64)  # 3-subsets of 8 equal items
        >>> levels = tree.build_tree(one_each, k, theta)
        >>> len(levels), tree.sample_tree(levels, k, 8, 4).sum(-1).flatten()
        (4, tensor([3, 3, 3, 3]))
        >>> round(float(tree.log_normalizer(one_each, k, theta).exp()), 9)  # C(8, 3) subsets
        56.0
    """
    root = levels[-1]
    batch = draws.shape[0]
    at_root = draws - root.lo[:, 0]
    width = root.table.shape[-1]
    held = root.table[:, 0].gather(-1, at_root.clamp(0, width - 1).unsqueeze(-1))
    if bool(((at_root < 0) | (at_root >= width)).any()) or not bool(torch.isfinite(held).all()):
        raise RuntimeError("the tree's root does not hold the number of draws; please report "
                           "this urn")
    counts = draws.view(1, batch, 1).expand(num_samples, batch, 1)
    rows_per_node = int(draws.max()) + 1 if batch else 1
    for level in reversed(levels[:-1]):
        if counts.numel() * level.table.shape[-1] <= DENSE_ELEMENTS:
            split = _split_dense(level, counts)
            counts = torch.stack([split, counts - split], dim=-1).flatten(-2)
            continue
        s, b, v = (counts > 0).nonzero(as_tuple=True)
        r = counts[s, b, v]
        nodes = counts.shape[-1]
        keys, position = distinct((b * nodes + v) * rows_per_node + r,
                                   batch * nodes * rows_per_node)
        cdf, left = _split_rows(level, keys, nodes, rows_per_node)
        row_id = torch.arange(keys.numel(), device=draws.device, dtype=torch.float64)
        flat = (cdf + row_id.unsqueeze(-1)).reshape(-1)
        target = position.to(torch.float64) + torch.rand(position.shape, dtype=torch.float64,
                                                         device=draws.device)
        found = torch.searchsorted(flat, target, right=True) - position * cdf.shape[-1]
        # u -> 1 can round past the row's end: its last count of positive probability
        last = torch.where(cdf < 1, torch.arange(cdf.shape[-1], device=draws.device) + 1,
                           0).amax(-1).clamp_max(cdf.shape[-1] - 1)
        j = torch.minimum(found.clamp(0, cdf.shape[-1] - 1), last[position])
        split = torch.zeros(counts.shape, dtype=torch.int64, device=draws.device)
        split[s, b, v] = left[position, j]
        counts = torch.stack([split, counts - split], dim=-1).flatten(-2)
    return counts[..., :num_classes]


def _split_dense(level: Level, counts: torch.Tensor) -> torch.Tensor:
    """``[S, B, V]``: the left children's counts for parents holding ``counts [S, B, V]``,
    every (sample, node) at once, by inverse-CDF sampling over the left child's window."""
    cdf, left = _split_cdf(level.table[:, 0::2], level.table[:, 1::2], level.lo[:, 0::2],
                           level.lo[:, 1::2], counts)
    u = torch.rand(counts.shape, dtype=cdf.dtype, device=cdf.device).unsqueeze(-1)
    j = (cdf < u * cdf[..., -1:]).sum(-1, keepdim=True).clamp_max(cdf.shape[-1] - 1)
    return torch.where(counts > 0, left.expand_as(cdf).gather(-1, j).squeeze(-1), 0)


def _split_rows(level: Level, keys: torch.Tensor, nodes: int, rows_per_node: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """For rows ``keys = (b * nodes + v) * rows_per_node + r`` (parent ``v`` holding ``r``
    balls): the CDF of the left child's count over its window, ``[U, W]``, and those counts."""
    parent, r = keys // rows_per_node, keys % rows_per_node
    b, v = parent // nodes, parent % nodes
    cdf, left = _split_cdf(level.table[:, 0::2][b, v], level.table[:, 1::2][b, v],
                           level.lo[:, 0::2][b, v], level.lo[:, 1::2][b, v], r)
    return cdf / cdf[:, -1:], left


def _split_cdf(left_table: torch.Tensor, right_table: torch.Tensor, left_lo: torch.Tensor,
               right_lo: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For parents holding ``r [...]`` balls, with children's tables ``[..., W]`` and
    ``[..., W_right]`` and lowest counts ``[...]`` (broadcasting against ``r``): the
    unnormalised CDF ``[..., W]`` of ``P(left = j | r) ∝ G_left[j] G_right[r - j]`` over the
    left child's window, and those counts ``left_lo + j``."""
    left = left_lo.unsqueeze(-1) + torch.arange(left_table.shape[-1], device=r.device)
    scores = left_table + Window(right_lo, right_table).at(r.unsqueeze(-1) - left)
    return (scores - scores.amax(-1, keepdim=True)).exp().cumsum(-1), left


def tree_work(population: torch.Tensor, draws: torch.Tensor) -> float:
    """The elements ``build_tree``'s convolutions touch: up to ``FULL_WORK``, the count for
    whole tables (the windowed tree of far-apart logits touches no more), else an estimate
    (weights taken equal, tilted windows) of ``sum`` over parents of ``(W_left + W_right) *
    W_right``.

    Example:
        >>> import torch
        >>> from diffhypergeom.numerics.tree import tree_work
        >>> tree_work(torch.tensor([[100, 100]]), torch.tensor([50]))  # whole rows: 51 * 51
        2601.0
        >>> # windows of W = 2 * 485.56 + 1 counts, not 10,001: 2 W^2
        >>> round(tree_work(torch.tensor([[10_000, 10_000]]), torch.tensor([10_000])))
        1890033
    """
    batch, classes = population.shape
    if batch * classes == 0:
        return 0.0
    full = product_work(population, draws)
    if full <= FULL_WORK:
        return float(full)
    size = 1 << max(classes - 1, 0).bit_length()
    m = F.pad(population.to(torch.float64), (0, size - classes))
    share = (draws.to(torch.float64) / m.sum(-1).clamp_min(1)).unsqueeze(-1)
    lam = LAMBDA + torch.log(2 + (m.sum(-1, keepdim=True) * share * (1 - share)).sqrt())
    work = 0.0
    while m.shape[-1] > 1:
        width = torch.minimum(2 * tail_halfwidth((m * share * (1 - share)).sqrt(), lam) + 1,
                              m + 1)
        width = width.amax(0)
        work += float((2 * width[0::2] * width[1::2]).sum()) * batch
        m = m[:, 0::2] + m[:, 1::2]
    return work
