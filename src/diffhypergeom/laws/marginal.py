"""``UrnMarginal``: the law of one class count ``X_i`` of an urn law, ``dist.marginal(i)``, with
exact tails and quantiles.

The urn law knows ``log P(X_i = k)`` exactly at any count of the support (the Fisher law from
its normalisers, the Wallenius law from its integral), however small; this class sums those
log-probabilities in log space from a value outward (``numerics.tails``), so ``cdf``,
``log_cdf``, ``log_sf`` and ``icdf`` keep their relative accuracy at ``1e-300`` and far below,
where BiasedUrn's absolute precision and scipy's Wallenius ``logpmf`` give out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch.distributions import Distribution, constraints

from diffhypergeom.laws.base import MAX_DENSE, UrnDistribution
from diffhypergeom.laws.checks import TensorLike, check_not_meta, check_sample_shape
from diffhypergeom.numerics.special import NEG_INF
from diffhypergeom.numerics.tails import LogTerms, log_total, log_walk, unimodal_mode
from diffhypergeom.numerics.wallenius import log1mexp

__all__ = ["QUANTILE_TIE", "UrnMarginal"]

HALF = math.log(0.5)
# ``icdf``: a tail within this (relative) of its target reaches it (rounding of exact ties)
QUANTILE_TIE = 1e-12


class UrnMarginal(Distribution):
    """The law of the count ``X_i`` of class ``i`` in an urn law, batched over its urns:

        P(X_i = k) = sum of p(x) over the count vectors x with x_i = k,   k = low .. high,
        low = max(0, n - sum_{j != i} m_j),   high = min(m_i, n)

    (a class of weight zero counts as empty). For two classes this is the univariate law of
    BiasedUrn's ``dFNCHypergeo`` / ``dWNCHypergeo`` and scipy's ``nchypergeom_fisher`` /
    ``nchypergeom_wallenius`` with odds ``w_i / w_j``.

    ``MultivariateFisherNCHypergeometric.marginal(i)`` and
    ``MultivariateWalleniusNCHypergeometric.marginal(i)`` build it; the arguments are theirs:

    Args:
        law: the urn law, ``batch_shape [...]``, ``event_shape (c,)``.
        i: the class, ``0 <= i < c``.
        terms: ``(rows [b], counts [b, K]) -> [b, K]`` float64, the exact ``log P(X_i = k)`` of
            the law's distinct urns ``rows`` (``law.sharing``) at counts inside their support,
            less ``log_normalizer``; differentiable in the logits.
        low, high: ``[B]`` int64, the support of each distinct urn.
        log_normalizer: ``[B]``, what ``terms`` leave out; ``None``: their sum over the
            support (walked from the mode).
        dense: ``() -> [..., W]``: ``probs`` over the counts ``0..W-1`` when the law computes
            it its own way (``None``: from ``terms``).
        centre: ``[B]``, about where the mode is (tells which side of a value is the shorter
            walk; any value gives exact results); ``None``: the sign of ``terms`` at the value.

    Shapes: ``batch_shape`` is the law's, ``event_shape`` is ``()``; a ``value`` broadcasts
    with ``batch_shape`` as in torch and gives ``[*sample, *batch]``. Results come in the law's
    floating dtype (computed in float64).

    Members:
        - ``log_prob(value)``: exact ``log P(X_i = value)``. With validation on (torch's
          default), values outside the support (non-integers included) raise a
          ``ValueError``; without, they get ``-inf``.
        - ``cdf``, ``log_cdf``: ``P(X_i <= value)``; ``sf``, ``log_sf``: ``P(X_i > value)``
          (scipy's ``sf`` and ``logsf``). They take any real value: the step function at
          ``floor(value)``, so 0 and 1 (``-inf`` and 0 in log) beyond the support. Exact to
          rounding (``1e-13`` relative where the law's own probabilities are; the Wallenius
          quadrature holds ``1e-10``), deep tails included; differentiable in the logits.
        - ``icdf(q)``: the smallest count ``k`` with ``P(X_i <= k) >= q`` (``icdf(0) = low``);
          ``q`` outside ``[0, 1]`` is a ``ValueError``.
        - ``mode``: the most probable count; of tied counts (log-probabilities within
          ``numerics.tails.TIE``) the largest.
        - ``mean``, ``variance``: the law's exact moments of class ``i``; ``sample``: the law's
          exact draws of class ``i``.
        - ``enumerate_support``: ``low..high`` (the same in every batch element, else a
          ``ValueError``).
        - ``probs``, ``logits``: the table ``P(X_i = k)``, ``k = 0..max m_i``, ``[..., W]`` (the
          ``Categorical`` that ``marginal`` returned before 0.2).

    Example:
        >>> import torch
        >>> from diffhypergeom import MultivariateWalleniusNCHypergeometric as Wallenius
        >>> urn = Wallenius(torch.tensor([10000, 10000]), 10000,
        ...                 weights=torch.tensor([3.0, 1.0], dtype=torch.float64))
        >>> x = urn.marginal(0)
        >>> round(float(x.log_prob(9990)), 6)  # scipy's logpmf gives -inf here
        -7355.285342
        >>> round(float(x.log_sf(9990)), 6), int(x.mode), int(x.icdf(torch.tensor(0.5)))
        (-7367.468898, 6823, 6823)
    """

    arg_constraints: dict = {}
    has_enumerate_support = True

    def __init__(self, law: UrnDistribution, i: int, terms: LogTerms, low: torch.Tensor,
                 high: torch.Tensor, log_normalizer: torch.Tensor | None = None,
                 dense: Callable[[], torch.Tensor] | None = None,
                 centre: torch.Tensor | None = None):
        self.law, self.index = law, i
        self.low, self.high = low, high
        self._terms, self._dense, self._centre = terms, dense, centre
        if log_normalizer is None:
            with torch.no_grad():
                start = unimodal_mode(terms, low, high)
            log_normalizer = log_total(terms, low, high, start)
        self.log_normalizer = log_normalizer
        super().__init__(law.batch_shape, torch.Size(), validate_args=False)
        self._validate_args = law._validate_args

    def _log_p(self, rows: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """Exact ``log P(X_i = counts)`` ``[b, K]`` for the distinct urns ``rows``."""
        return self._terms(rows, counts) - self.log_normalizer[rows].unsqueeze(-1)

    # ------------------------------------------------------------------ layout
    def _flat(self, value: TensorLike, name: str = "value"
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Size]:
        """``value`` broadcast with the batch, per distinct urn: values ``[E]`` float64, the
        distinct urn of each ``[E]``, and the sample shape."""
        value = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
        if value.dtype == torch.bool or value.is_complex():
            raise ValueError(f"{name} must hold real numbers, got dtype {value.dtype}")
        check_not_meta(value, name)
        try:
            shape = torch.broadcast_shapes(value.shape, self.batch_shape)
        except RuntimeError as err:
            raise ValueError(f"{name} of shape {tuple(value.shape)} does not broadcast with "
                             f"batch_shape {tuple(self.batch_shape)}") from err
        if bool(torch.isnan(value).any()):
            raise ValueError(f"{name} must not be NaN")
        sample_shape = shape[: len(shape) - len(self.batch_shape)]
        x = value.to(device=self.low.device, dtype=torch.float64).expand(shape)
        x = self.law.sharing.flatten_draws(x.unsqueeze(-1), sample_shape)[..., 0]  # [S, B]
        rows = torch.arange(x.shape[1], device=x.device).expand(x.shape)
        return x.reshape(-1), rows.reshape(-1), sample_shape

    def _out(self, flat: torch.Tensor, sample_shape: torch.Size) -> torch.Tensor:
        laid = flat.reshape(-1, self.law.sharing.distinct)
        return self.law.sharing.unflatten_draws(laid, sample_shape).to(self.law.logits.dtype)

    # ------------------------------------------------------------------ probabilities
    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self) -> constraints.Constraint:
        unflatten = self.law.sharing.unflatten
        return constraints.integer_interval(unflatten(self.low), unflatten(self.high))

    def log_prob(self, value: TensorLike) -> torch.Tensor:
        """``[*sample, *batch]``: the exact ``log P(X_i = value)`` (class docstring)."""
        if self._validate_args:
            self._validate_sample(value if isinstance(value, torch.Tensor)
                                  else torch.as_tensor(value))
        x, rows, sample_shape = self._flat(value)
        inside = (x == x.round()) & (x >= self.low[rows]) & (x <= self.high[rows])
        counts = torch.where(inside, x, self.low[rows].to(torch.float64))
        out = torch.where(inside, self._log_p(rows, counts.unsqueeze(-1))[:, 0], NEG_INF)
        return self._out(out, sample_shape)

    def _log_tail(self, x: torch.Tensor, rows: torch.Tensor, step: int) -> torch.Tensor:
        """``[E]``: ``log P(X_i >= x)`` (``step = +1``) or ``log P(X_i <= x)`` (``step =
        -1``) for whole numbers ``x [E]`` (int64) of the distinct urns ``rows``. Summed from
        ``x`` outward, or as one less the other side where ``x`` is before the mode (the other
        side is then the shorter walk, and at most one half, so nothing cancels)."""
        low, high = self.low[rows], self.high[rows]
        first, last = (low, high) if step > 0 else (high, low)
        out = torch.where((x - last) * step > 0, NEG_INF, 0.0).to(torch.float64)
        inner = ((x - first) * step > 0) & ((x - last) * step <= 0)
        if not bool(inner.any()):
            return out
        at = inner.nonzero().squeeze(-1)
        e, r = x[at], rows[at]

        def terms(index: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
            return self._log_p(r[index], counts)

        if self._centre is not None:
            before_mode = (e - step - self._centre[r]) * step < 0
        else:
            with torch.no_grad():
                every = torch.arange(len(at), device=at.device)
                pair = terms(every, torch.stack([e - step, e], -1).to(torch.float64))
                before_mode = pair[:, 1] > pair[:, 0]
        value = torch.zeros(len(at), dtype=torch.float64, device=at.device)
        direct = ~before_mode
        if bool(before_mode.any()):
            short = before_mode.nonzero().squeeze(-1)
            other = log_walk(lambda index, counts: terms(short[index], counts), e[short] - step,
                             first[at][short], -step)
            small = other.detach() <= HALF
            value = value.index_put((short[small],), log1mexp(-other[small]))
            direct = direct.index_put((short[~small],), torch.tensor(True))
        if bool(direct.any()):
            long = direct.nonzero().squeeze(-1)
            value = value.index_put((long,), log_walk(
                lambda index, counts: terms(long[index], counts), e[long], last[at][long], step))
        return out.index_put((at,), value)

    def log_cdf(self, value: TensorLike) -> torch.Tensor:
        """``[*sample, *batch]``: ``log P(X_i <= value)`` (``value`` any real; class
        docstring)."""
        x, rows, sample_shape = self._flat(value)
        whole = x.clamp(-1, float(self.high.max()) + 1).floor().to(torch.int64)
        return self._out(self._log_tail(whole, rows, -1), sample_shape)

    def log_sf(self, value: TensorLike) -> torch.Tensor:
        """``[*sample, *batch]``: ``log P(X_i > value)``, scipy's ``logsf`` (``value`` any
        real; class docstring)."""
        x, rows, sample_shape = self._flat(value)
        whole = x.clamp(-1, float(self.high.max()) + 1).floor().to(torch.int64) + 1
        return self._out(self._log_tail(whole, rows, +1), sample_shape)

    def cdf(self, value: TensorLike) -> torch.Tensor:
        """``P(X_i <= value)``, ``[*sample, *batch]``."""
        return self.log_cdf(value).exp()

    def sf(self, value: TensorLike) -> torch.Tensor:
        """``P(X_i > value)``, ``[*sample, *batch]``."""
        return self.log_sf(value).exp()

    @torch.no_grad()
    def icdf(self, value: TensorLike) -> torch.Tensor:
        """``[*sample, *batch]``: the smallest count ``k`` with ``P(X_i <= k) >= value``, for
        ``value`` in ``[0, 1]`` (a ``ValueError`` otherwise): BiasedUrn's ``qFNCHypergeo`` /
        ``qWNCHypergeo``. A bisection over the support on exact tails: below one half on
        ``log P(X_i <= k) >= log q``, above on ``log P(X_i > k) <= log(1 - q)``, so
        quantiles near 1 are resolved. A tail within ``QUANTILE_TIE`` (relative) of its target
        reaches it: a ``q`` that equals ``P(X_i <= k)`` in exact arithmetic (the median 1/2 of a
        symmetric urn) gives ``k`` whichever way the sums round."""
        q, rows, sample_shape = self._flat(value, "q")
        if bool(((q < 0) | (q > 1)).any()):
            raise ValueError(f"q must be in [0, 1], got {q[(q < 0) | (q > 1)][:3].tolist()}")
        lo, hi = self.low[rows].clone(), self.high[rows].clone()
        lower = q <= 0.5
        log_q = torch.where(lower, q.log() - QUANTILE_TIE, torch.log1p(-q) + QUANTILE_TIE)
        while True:
            open_ = lo < hi
            if not bool(open_.any()):
                return self._out(lo.to(torch.float64), sample_shape)
            at = open_.nonzero().squeeze(-1)
            mid = (lo[at] + hi[at]) // 2
            below = lower[at]
            reached = torch.empty(len(at), dtype=torch.bool, device=at.device)
            if bool(below.any()):
                reached[below] = self._log_tail(mid[below], rows[at][below], -1) >= \
                    log_q[at][below]
            if bool((~below).any()):
                reached[~below] = self._log_tail(mid[~below] + 1, rows[at][~below], +1) <= \
                    log_q[at][~below]
            hi[at] = torch.where(reached, mid, hi[at])
            lo[at] = torch.where(reached, lo[at], mid + 1)

    # ------------------------------------------------------------------ summaries
    @property
    def mode(self) -> torch.Tensor:
        """``[...]``: the most probable count (the largest of tied ones), BiasedUrn's
        ``modeFNCHypergeo`` / ``modeWNCHypergeo``."""
        found = unimodal_mode(self._log_p, self.low, self.high)
        return self.law.sharing.unflatten(found).to(self.law.logits.dtype)

    @property
    def mean(self) -> torch.Tensor:
        """``[...]``: exact ``E[X_i]`` (the law's)."""
        return self.law.mean[..., self.index]

    @property
    def variance(self) -> torch.Tensor:
        """``[...]``: exact ``Var[X_i]`` (the law's)."""
        return self.law.variance[..., self.index]

    def sample(self, sample_shape: Sequence[int] = torch.Size()) -> torch.Tensor:
        """Exact draws ``[*sample_shape, *batch]``: class ``i`` of the law's draws."""
        return self.law.sample(check_sample_shape(sample_shape))[..., self.index]

    def enumerate_support(self, expand: bool = True) -> torch.Tensor:
        """The counts ``low..high``, ``[W, *batch]`` (``expand=True``) or ``[W, 1, ..., 1]``;
        the support must be the same in every batch element."""
        if self.low.numel() == 0 or not (bool((self.low == self.low[0]).all())
                                         and bool((self.high == self.high[0]).all())):
            raise ValueError("enumerate_support needs the same support low..high of X_i in "
                             "every batch element (and a non-empty batch)")
        values = torch.arange(int(self.low[0]), int(self.high[0]) + 1, device=self.low.device)
        values = values.to(self.law.logits.dtype).reshape((-1,) + (1,) * len(self.batch_shape))
        return values.expand((-1,) + self.batch_shape) if expand else values

    @property
    def logits(self) -> torch.Tensor:
        """``[..., W]``: ``log P(X_i = k)`` for ``k = 0..W-1``, ``W = max m_i + 1`` over the
        batch (``-inf`` outside each support), exact."""
        width = int(self.law.population[..., self.index].max()) + 1
        if width * len(self.low) > MAX_DENSE:
            raise ValueError(f"the table of class {self.index}'s marginal would hold {width:,} "
                             f"counts per urn; its log_prob, cdf and log_sf take any count")
        counts = torch.arange(width, device=self.low.device)
        inside = (counts >= self.low.unsqueeze(-1)) & (counts <= self.high.unsqueeze(-1))
        safe = torch.where(inside, counts, self.low.unsqueeze(-1)).to(torch.float64)
        rows = torch.arange(len(self.low), device=self.low.device)
        table = torch.where(inside, self._log_p(rows, safe), NEG_INF)
        return self.law.sharing.unflatten(table, (width,)).to(self.law.logits.dtype)

    @property
    def probs(self) -> torch.Tensor:
        """``[..., W]``: ``P(X_i = k)`` for ``k = 0..W-1``: ``logits.exp()``, or the law's own
        table (``dense``: the Wallenius mixture for more than two classes, or the Fisher table
        that carries the gradient in a weight that is exactly zero)."""
        if self._dense is not None:
            return self._dense()
        return self.logits.exp()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(class {self.index} of {type(self.law).__name__}, "
                f"batch_shape={tuple(self.batch_shape)})")
