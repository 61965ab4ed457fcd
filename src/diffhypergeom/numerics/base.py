"""What both engines share: the interface, and the canonical form of an urn.

An engine computes, for a flat batch of ``B`` *canonical* urns (population ``m [B, c]``, draws
``n [B]``, finite log-odds ``theta [B, c]``), the handful of quantities everything else is built
from:

- ``log_normalizer``: ``[B]``, ``A = log P0 = log [t^n] prod_i (1 + w_i t)^m_i``;
- ``log_prob(y)``: ``[..., B]`` for counts ``y [..., B, c]`` inside the support; its gradient in
  ``y`` is that of ``sum_i log C(m_i, y_i) + y_i theta_i``;
- ``log_marginals()``: per class a ``Window``, the exact ``log p(y_i = k)``;
- ``conditional(i, rows)``: a ``Window`` per visited row ``rows = b * (n_max + 1) + r``, the
  exact ``log p(y_i = k | r balls left for classes i..c)`` (what the samplers walk);
- ``entropy()``: ``[B]``.

A ``Window`` holds log-probabilities over ``k = offset + j``, ``j < width``: the log-space engine
returns whole rows (``offset = 0``), the FFT engine only the terms that can matter. ``Urn`` maps
a user's urn to the canonical one and the results back (``docs/design/index.md`` section 1):

- a class of weight zero is never drawn: its population counts as 0;
- complement: ``x -> m - x`` maps ``MFNCH(m, n, w)`` to ``MFNCH(m, N - n, 1/w)``, so ``n > N/2``
  is computed as ``N - n`` (not for the merged law, whose approximation is not symmetric);
- shift invariance: logits are centred at their maximum (the shift is detached; ``A`` moves by
  ``n`` times it), so every computation sees logits ``<= 0``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch.utils.checkpoint import checkpoint

from diffhypergeom.numerics.special import NEG_INF

__all__ = [
    "CHECKPOINT_ELEMENTS", "Canonical", "Engine", "Normalizer", "Window", "canonical_counts",
    "checkpoint_if_large", "distinct", "jacobian", "readable",
]

# (population [B, c], draws [B], theta [B, c]) -> A [B]: the user's urns' log-normalisers,
# or A and the sampling tree's levels (``tree.log_normalizer(..., return_levels=True)``)
Normalizer = Callable[[torch.Tensor, torch.Tensor, torch.Tensor],
                      torch.Tensor | tuple[torch.Tensor, list]]

# Above this many elements, an intermediate is recomputed in the backward pass instead of
# stored (torch.utils.checkpoint).
CHECKPOINT_ELEMENTS = 1 << 22


def readable(tensor: torch.Tensor) -> bool:
    """Whether this tensor's values can steer Python: not under a ``torch.func`` transform, where
    shapes and branches must not depend on data."""
    try:
        bool(tensor.reshape(-1)[:1].any())
    except RuntimeError:
        return False
    return True


def distinct(keys: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct values of ``keys`` (in ``[0, size)``), sorted, and each key's position among
    them: a presence mask over ``[0, size)`` when that is small, ``O(keys + size)``, else a sort
    (``torch.unique``)."""
    if size > 4 * keys.numel() + 4096:
        return torch.unique(keys, return_inverse=True)
    present = torch.zeros(size, dtype=torch.bool, device=keys.device)
    present[keys.reshape(-1)] = True
    return present.nonzero().squeeze(-1), (present.cumsum(0) - 1)[keys]


def checkpoint_if_large(fn, *tensors: torch.Tensor, elements: int) -> torch.Tensor:
    """``fn(*tensors)``; when gradients are being recorded and the computation touches more
    than ``CHECKPOINT_ELEMENTS`` elements, its intermediates are recomputed in the backward
    pass instead of stored."""
    recording = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    if recording and elements > CHECKPOINT_ELEMENTS:
        return checkpoint(fn, *tensors, use_reentrant=False)
    return fn(*tensors)


class Canonical(NamedTuple):
    """The canonical urn's counts (``canonical_counts``): the population with classes of weight
    zero emptied ``[B, c]``, the draws after the complement ``[B]``, and which urns are
    complemented ``[B]``."""

    population: torch.Tensor
    draws: torch.Tensor
    flip: torch.Tensor


def jacobian(output: torch.Tensor, point: torch.Tensor, create_graph: bool = False
             ) -> torch.Tensor:
    """``[..., c, c]``: ``d output[..., i] / d point[..., j]`` for ``output`` and ``point`` of one
    shape ``[..., c]`` (each batch entry's output depending on its own point), in one batched
    backward pass (``is_grads_batched``), or one pass per ``i`` where the graph does not batch;
    zero where ``output`` does not depend on ``point``.

    Example:
        >>> import torch
        >>> from diffhypergeom.numerics.base import jacobian
        >>> point = torch.tensor([[1.0, 2.0]], requires_grad=True)
        >>> jacobian(point.square() * point.flip(-1), point)  # [x^2 y, y^2 x]
        tensor([[[4., 1.],
                 [4., 4.]]])
    """
    classes = point.shape[-1]
    basis = torch.eye(classes, dtype=output.dtype, device=output.device)
    basis = basis.view((classes,) + (1,) * (output.dim() - 1) + (classes,)).expand(
        (classes,) + output.shape)
    try:
        (rows,) = torch.autograd.grad(output, point, basis, is_grads_batched=True,
                                      create_graph=create_graph, allow_unused=True)
        if rows is not None:
            return rows.movedim(0, -2)
    except RuntimeError:
        pass
    found = []
    for i in range(classes):
        (row,) = torch.autograd.grad(output[..., i].sum(), point, create_graph=create_graph,
                                     retain_graph=True, allow_unused=True)
        found.append(torch.zeros_like(point) if row is None else row)
    return torch.stack(found, -2)


def canonical_counts(population: torch.Tensor, draws: torch.Tensor, theta: torch.Tensor,
                     complement: bool = True, zero_weights: bool = True) -> Canonical:
    """The canonical urn's counts: the population with classes of weight zero emptied, the
    draws after the complement (``N - n`` where ``n > N/2``), and which urns are complemented.
    ``zero_weights=False`` promises no ``-inf`` in ``theta``: then nothing reads its values."""
    m = torch.where(theta > NEG_INF, population, torch.zeros_like(population)) \
        if zero_weights else population
    total = m.sum(-1)
    flip = (2 * draws > total) if complement else torch.zeros_like(draws, dtype=torch.bool)
    return Canonical(m, torch.where(flip, total - draws, draws), flip)


class Window(NamedTuple):
    """Log-probabilities ``log_prob[..., j]`` of the counts ``offset[...] + j``.

    Example:
        >>> import torch
        >>> from diffhypergeom.numerics.engines import Window
        >>> window = Window(torch.tensor([2]), torch.tensor([[0.25, 0.75]]).log())
        >>> window.counts()
        tensor([[2., 3.]], dtype=torch.float64)
        >>> window.dense(5).exp()  # the same over the counts 0..4
        tensor([[0.0000, 0.0000, 0.2500, 0.7500, 0.0000]])
        >>> window.at(torch.tensor([[3, 9]])).exp()  # at chosen counts
        tensor([[0.7500, 0.0000]])
    """

    offset: torch.Tensor
    log_prob: torch.Tensor

    def at(self, counts: torch.Tensor, fill: float = NEG_INF) -> torch.Tensor:
        """``[..., K]``: the entries at the integer ``counts [..., K]`` (``fill`` where the
        window has none); ``counts`` broadcasts against the window's batch ``[...]``."""
        j = counts - self.offset.unsqueeze(-1)
        width = self.log_prob.shape[-1]
        inside = (j >= 0) & (j < width)
        table = self.log_prob
        if table.shape[:-1] != j.shape[:-1]:
            table = table.expand(*j.shape[:-1], width)
        gathered = table.gather(-1, j.clamp(0, width - 1))
        return torch.where(inside, gathered, torch.full_like(gathered, fill))

    def dense(self, size: int, fill: float = NEG_INF) -> torch.Tensor:
        """``[..., size]``: the same entries over the counts ``0..size-1`` (``fill`` where the
        window has none)."""
        return self.at(torch.arange(size, device=self.offset.device), fill)

    def counts(self) -> torch.Tensor:
        """``[..., width]`` float64: the count of each entry."""
        j = torch.arange(self.log_prob.shape[-1], device=self.offset.device)
        return (self.offset.unsqueeze(-1) + j).to(torch.float64)


def _holds_graph(value) -> bool:
    if isinstance(value, torch.Tensor):
        return value.requires_grad or not value.is_floating_point()
    if isinstance(value, Window):
        return _holds_graph(value.log_prob)
    if isinstance(value, (list, tuple)) and value:
        return _holds_graph(value[0])
    return True


class Engine:
    """Base of the two engines: the canonical urn and a cache that knows about autograd.

    Args:
        population: ``[B, c]`` int64, balls per class.
        draws: ``[B]`` int64, balls drawn.
        theta: ``[B, c]`` float64 finite log-odds (may carry an autograd graph).

    Example:
        >>> import torch
        >>> from diffhypergeom.numerics.engines import Engine, FFTEngine
        >>> theta = torch.zeros(1, 2, dtype=torch.float64)  # equal weights: 2 of the 2 + 3 balls
        >>> engine = FFTEngine(torch.tensor([[2, 3]]), torch.tensor([2]), theta)
        >>> isinstance(engine, Engine), torch.cat(engine.moments())  # hypergeometric moments
        (True, tensor([[0.8000, 1.2000],
                [0.3600, 0.3600]], dtype=torch.float64))
    """

    name = "base"

    def __init__(self, population: torch.Tensor, draws: torch.Tensor, theta: torch.Tensor):
        self.population = population
        self.draws = draws
        self.theta = theta
        # theta is part of an autograd graph only if built while recording (a view taken
        # under no_grad reports requires_grad but is cut off from the logits)
        self.connected = theta.requires_grad and torch.is_grad_enabled()
        self.batch, self.num_classes = population.shape
        self.n_max = int(draws.max()) if draws.numel() else 0
        self.device = theta.device
        self._cache: dict = {}

    def _cached(self, key, compute):
        """``compute()``, once; again if gradients are recorded now but the cached value was
        computed without them (e.g. first asked for under ``torch.no_grad``)."""
        value = self._cache.get(key)
        recording = self.connected and torch.is_grad_enabled()
        if value is None or (recording and not _holds_graph(value)):
            value = compute()
            self._cache[key] = value
        return value

    # the interface; see the module docstring
    @property
    def log_normalizer(self) -> torch.Tensor:
        raise NotImplementedError

    def log_prob(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def log_marginals(self) -> list[Window]:
        raise NotImplementedError

    def conditional(self, i: int, rows: torch.Tensor) -> Window:
        raise NotImplementedError

    def entropy(self) -> torch.Tensor:
        raise NotImplementedError

    def moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, c]`` mean and variance of each class count, from the marginals."""
        def compute():
            means, variances = [], []
            for window in self.log_marginals():
                p, k = window.log_prob.exp(), window.counts()
                mean = (p * k).sum(-1)
                means.append(mean)
                variances.append((p * (k - mean.unsqueeze(-1)).square()).sum(-1))
            return torch.stack(means, -1), torch.stack(variances, -1)
        return self._cached("moments", compute)
