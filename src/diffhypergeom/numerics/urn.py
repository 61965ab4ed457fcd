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
- ``merged_conditional(i, rows)``: the same for the paper's merged-class approximation;
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
from functools import partial
from typing import NamedTuple

import torch
from torch.utils.checkpoint import checkpoint

from diffhypergeom.numerics.special import NEG_INF, times_logit

__all__ = [
    "CHECKPOINT_ELEMENTS", "Canonical", "Engine", "Normalizer", "Urn", "Window",
    "canonical_counts", "checkpoint_if_large", "distinct", "engine_log_normalizer", "readable",
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
    """

    offset: torch.Tensor
    log_prob: torch.Tensor

    def dense(self, size: int, fill: float = NEG_INF) -> torch.Tensor:
        """``[..., size]``: the same entries over the counts ``0..size-1`` (``fill`` where the
        window has none)."""
        k = torch.arange(size, device=self.offset.device)
        j = k - self.offset.unsqueeze(-1)
        inside = (j >= 0) & (j < self.log_prob.shape[-1])
        gathered = self.log_prob.gather(-1, j.clamp(0, self.log_prob.shape[-1] - 1))
        return torch.where(inside, gathered, torch.full_like(gathered, fill))

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

    def merged_conditional(self, i: int, rows: torch.Tensor) -> Window:
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


class Urn:
    """A user's flat batch of urns, computed through an engine on its canonical form.

    Args:
        population: ``[B, c]`` int64.
        draws: ``[B]`` int64.
        theta: ``[B, c]`` float64 logits (``-inf`` for weight zero).
        engine: the engine class to use.
        complement: compute ``n > N/2`` as ``N - n`` with weights ``1/w``.
        zero_weights: whether ``theta`` may hold ``-inf`` (weights of zero).
        normalizer: what ``mean`` differentiates (default: ``engine``'s log-normaliser).
        canonical: ``canonical_counts`` of these arguments, when the caller has them already.

    Example:
        A weight of zero empties its class; 4 draws of the 5 balls left are computed as 1 draw
        with weights ``1/w`` (``flip``):

        >>> import torch
        >>> from diffhypergeom.numerics.engines import LogspaceEngine, Urn
        >>> theta = torch.tensor([[1.0, 2.0, 0.0]], dtype=torch.float64).log()  # w_2 = 0
        >>> urn = Urn(torch.tensor([[2, 3, 4]]), torch.tensor([4]), theta, LogspaceEngine)
        >>> urn.flip, urn.log_normalizer.exp()  # P0 = [t^4] (1 + t)^2 (1 + 2t)^3 = 12 + 16
        (tensor([True]), tensor([28.0000], dtype=torch.float64))
        >>> urn.mean()  # x_1 = 2 or 3: E[x_1] = (2 * 12 + 3 * 16) / 28
        tensor([[1.4286, 2.5714, 0.0000]], dtype=torch.float64)
    """

    def __init__(self, population: torch.Tensor, draws: torch.Tensor, theta: torch.Tensor,
                 engine: type[Engine], complement: bool = True, zero_weights: bool = True,
                 normalizer: Normalizer | None = None, canonical: Canonical | None = None):
        self.normalizer = normalizer if normalizer is not None else partial(
            engine_log_normalizer, engine, complement, zero_weights)
        self._mean: torch.Tensor | None = None
        # the sampling tree, when the mean's normalizer built it (``tree.Level`` list)
        self.levels: list | None = None
        m, flipped_draws, flip = canonical if canonical is not None else canonical_counts(
            population, draws, theta, complement, zero_weights)
        has = m > 0
        any_flip = bool(flip.any())
        finite = torch.where(has, theta, torch.zeros_like(theta))
        low = torch.full_like(finite, NEG_INF)
        shift = torch.where(has, finite, low).detach().amax(-1)
        shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
        centred = torch.where(has, finite - shift.unsqueeze(-1), torch.zeros_like(finite))
        # A(theta) = A_canonical + n * shift + [flip] (sum_i m_i centred_i + n' * shift2)
        self._offset = draws.to(torch.float64) * shift
        self._x_shift = shift  # log_prob's gradient in x: natural minus canonical, per urn
        n, canonical = draws, centred
        if any_flip:
            n = flipped_draws
            signed = torch.where(flip.unsqueeze(-1), -centred, centred)
            shift2 = torch.where(has, signed, low).detach().amax(-1)
            shift2 = torch.where(torch.isfinite(shift2), shift2, torch.zeros_like(shift2))
            canonical = torch.where(has, signed - shift2.unsqueeze(-1), torch.zeros_like(signed))
            flipped = times_logit(m.to(torch.float64), centred).sum(-1) \
                + n.to(torch.float64) * shift2
            self._offset = self._offset + torch.where(flip, flipped, torch.zeros_like(shift))
            self._x_shift = shift - shift2
        self.population, self.draws, self.theta = population, draws, theta
        self.effective_population = m
        self.flip = flip
        self.any_flip = any_flip  # whether any urn of the batch is computed complemented
        self.engine = engine(m, n, canonical)
        self.connected = self.engine.connected
        self.batch, self.num_classes = population.shape

    @property
    def name(self) -> str:
        return self.engine.name

    def to_user(self, y: torch.Tensor) -> torch.Tensor:
        """Canonical counts ``[..., B, c]`` to the user's (``m - y`` where complemented)."""
        if not self.any_flip:
            return y
        m = self.effective_population.to(y.dtype)
        return torch.where(self.flip.unsqueeze(-1), m - y, y)

    @property
    def log_normalizer(self) -> torch.Tensor:
        """``A(theta) = log P0``, shape ``[B]``."""
        return self.engine.log_normalizer + self._offset

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``[S, B]`` for counts ``x [S, B, c]`` inside the support (float64)."""
        y = self.to_user(x)
        drift = (x.sum(-1) - self.draws.to(x.dtype)) * self._x_shift
        return self.engine.log_prob(y) + drift

    def log_marginals(self) -> list[Window]:
        """Per class, ``log p(x_i = k)`` in the user's counts."""
        windows = self.engine.log_marginals()
        if not self.any_flip:
            return windows
        return [self._flip_window(window, self.effective_population[:, i])
                for i, window in enumerate(windows)]

    def _flip_window(self, window: Window, m: torch.Tensor) -> Window:
        width = window.log_prob.shape[-1]
        flipped_offset = m - window.offset - (width - 1)
        offset = torch.where(self.flip, flipped_offset, window.offset)
        log_prob = torch.where(self.flip.unsqueeze(-1), window.log_prob.flip(-1),
                               window.log_prob)
        return Window(offset, log_prob)

    def mean(self) -> torch.Tensor:
        """``[B, c]``: ``E[x] = grad A(theta)``, by autograd through ``normalizer`` (by default
        this urn's engine), computed afresh. While gradients are recorded the result keeps its
        graph (so each backward pass has its own), and a backward pass through it is a
        Hessian-vector product of ``A`` (``g^T Cov(X)``): about the cost of ``A``, nothing
        ``c x c``. Under ``torch.func`` transforms, from the marginals."""
        recording = self.connected and torch.is_grad_enabled()
        if self._mean is not None and not recording:
            return self._mean
        if not readable(self.theta):
            return self.moments()[0]
        with torch.enable_grad():
            theta = self.theta if recording else self.theta.detach().requires_grad_()
            # a fresh computation: a cached A's graph may have been freed by a backward pass
            value = self.normalizer(self.population, self.draws, theta)
            if isinstance(value, tuple):
                value, self.levels = value
            (mean,) = torch.autograd.grad(value.sum(), theta,
                                          create_graph=recording, allow_unused=True)
        if mean is None:  # no urn depends on its logits (no class can be drawn)
            mean = torch.zeros_like(self.theta)
        if recording:  # not kept: a backward pass would free the graph it holds
            return mean
        self._mean = mean.detach()
        return self._mean

    def moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, c]`` mean and variance, from the marginals."""
        mean, variance = self.engine.moments()
        return self.to_user(mean), variance

    def entropy(self) -> torch.Tensor:
        return self.engine.entropy()


def engine_log_normalizer(engine: type[Engine], complement: bool, zero_weights: bool,
                          population: torch.Tensor, draws: torch.Tensor, theta: torch.Tensor
                          ) -> torch.Tensor:
    """``A(theta) [B]`` of the urns computed afresh by ``engine`` (a ``Normalizer`` once its
    first three arguments are bound with ``functools.partial``, which pickles)."""
    return Urn(population, draws, theta, engine, complement, zero_weights).log_normalizer
