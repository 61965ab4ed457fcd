"""``UrnDistribution``: what every urn law of the library shares.

An urn holds ``m_i`` balls of class ``i`` (``i = 1..c``) with weights ``w_i = exp(logits_i)``;
``n`` balls are drawn, and a law gives the probability of the class counts ``x`` (``0 <= x_i <=
m_i``, ``sum_i x_i = n``). The laws differ in how the balls are drawn: together, biased by the
weights (Fisher: ``MultivariateFisherNCHypergeometric``), one at a time (Wallenius:
``MultivariateWalleniusNCHypergeometric``), or by the paper's merged sequence of univariate
Fisher steps (``MergedFisherNCHypergeometric``); ``RelaxedMultivariateFisherNCHypergeometric``
relaxes the Fisher draws to real counts.

This base class holds the parameters and their validation, the shapes (``batch_shape``
broadcasts ``population.shape[:-1]``, ``draws.shape`` and ``logits.shape[:-1]``;
``event_shape == (c,)``), a torch-style ``expand``, the support and its enumeration, and the
repr. Which batch dimensions repeat one urn is ``sharing`` (``laws.sharing.BatchSharing``); the
Fisher engines' plumbing is ``laws.engine_law.FisherEngineLaw``, the base of the three laws
that use it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.distributions import Distribution, constraints

from diffhypergeom.laws.checks import (
    TensorLike,
    as_count_tensor,
    as_float_tensor,
    broadcast_batch,
    broadcast_value,
    check_logits,
    check_not_meta,
    check_total,
    check_weights,
    expanded_shape,
)
from diffhypergeom.laws.sharing import BatchSharing
from diffhypergeom.numerics import support as support_module
from diffhypergeom.numerics.engines import ENGINES
from diffhypergeom.numerics.special import NEG_INF
from diffhypergeom.numerics.support import support_points, support_size

__all__ = [
    "CACHES", "MAX_DENSE", "REPR_ENTRIES", "UrnDistribution", "UrnSupport", "with_graph_of",
    "check_count_dtype",
    "show",
]

# a parameter with at most this many entries is shown by value in the repr
REPR_ENTRIES = 12
# Largest dense marginal (counts x urns) that ``marginal`` and ``log_marginal`` build.
MAX_DENSE = 1 << 26
# what a copy (``expand``, a class permutation) of an urn law must not inherit: it is computed
# per urn (``UrnDistribution.caches``; a subclass adds its own)
CACHES = ("_sharing",)


class UrnSupport(constraints.Constraint):
    """Integer vectors ``x`` with ``0 <= x_i <= m_i`` and ``sum_i x_i = n``: the ``support``
    of the discrete urn laws, as ``validate_args`` checks values against it.

    Example:
        >>> import torch
        >>> from diffhypergeom.laws.base import UrnSupport
        >>> support = UrnSupport(torch.tensor([4, 5, 6]), torch.tensor(7))
        >>> support
        UrnSupport(population=[4, 5, 6], draws=7)
        >>> support.check(torch.tensor([[2.0, 4.0, 1.0], [5.0, 1.0, 1.0], [2.5, 3.5, 1.0]]))
        tensor([ True, False, False])
    """

    is_discrete = True
    event_dim = 1

    def __init__(self, population: torch.Tensor, draws: torch.Tensor):
        self.population = population
        self.draws = draws
        super().__init__()

    def check(self, value: torch.Tensor) -> torch.Tensor:
        whole = (value == value.round()).all(-1)
        in_range = ((value >= 0) & (value <= self.population)).all(-1)
        return whole & in_range & (value.sum(-1) == self.draws)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(population={show(self.population)}, "
                f"draws={show(self.draws)})")


def show(tensor: torch.Tensor) -> str:
    """A tensor by value when it is small (floats rounded to 4 decimals), else by shape and
    dtype: how the reprs show parameters.

    Example:
        >>> import torch
        >>> from diffhypergeom.laws.base import show
        >>> show(torch.tensor([0.123456, 2.0])), show(torch.zeros(3, 5, dtype=torch.int64))
        ('[0.1235, 2.0]', '<(3, 5) int64>')
    """
    if tensor.numel() <= REPR_ENTRIES:
        values = tensor.detach().cpu()
        if values.is_floating_point():
            values = values.to(torch.float64).round(decimals=4)
        return str(values.tolist())
    return f"<{tuple(tensor.shape)} {str(tensor.dtype).removeprefix('torch.')}>"


def with_graph_of(value: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """``value``, joined to the graph of ``logits [..., c]`` with a zero gradient where it has
    none of its own (a degenerate urn's mean is constant), so that ``backward`` works as for
    any member instead of raising "does not require grad"."""
    if value.requires_grad or not (logits.requires_grad and torch.is_grad_enabled()):
        return value
    zero = (logits * 0).sum(-1)
    return value + zero.reshape(zero.shape + (1,) * (value.dim() - zero.dim())).to(value.dtype)


class UrnDistribution(Distribution):
    """An urn law over class counts (the base of the library's laws; not a law itself).

    Args:
        population: ``[..., c]`` balls per class ``m`` (non-negative integers).
        draws: ``[...]`` or int, balls drawn ``n`` (``0 <= n <= sum m``).
        logits: ``[..., c]`` log-weights ``log w`` (finite). Exactly one of ``logits`` and
            ``weights`` must be given; only differences of logits matter.
        weights: ``[..., c]`` weights ``w >= 0``; a zero weight means the class is never drawn.
        engine: ``"auto"`` (default), ``"logspace"`` or ``"fft"``
            (``diffhypergeom.numerics.engines``).
        max_support: the most points ``enumerate_support`` lists (``None``: the module-level
            ``diffhypergeom.numerics.support.MAX_ENUMERATE_SUPPORT`` at the time of the call).
        validate_args: as in ``torch.distributions``.

    Example:
        Every law of the library shares the shapes, the support and its enumeration:

        >>> import torch
        >>> from diffhypergeom import MultivariateFisherNCHypergeometric
        >>> from diffhypergeom.laws.base import UrnDistribution
        >>> d = MultivariateFisherNCHypergeometric(torch.tensor([4, 5, 6]), 7,
        ...                                        logits=torch.zeros(2, 3))  # two urns
        >>> isinstance(d, UrnDistribution), d.batch_shape, d.event_shape
        (True, torch.Size([2]), torch.Size([3]))
        >>> d.enumerate_support().shape  # the 26 count vectors of 7 draws from [4, 5, 6]
        torch.Size([26, 2, 3])
    """

    arg_constraints = {
        "population": constraints.independent(constraints.nonnegative_integer, 1),
        "draws": constraints.nonnegative_integer,
        "logits": constraints.real_vector,
    }
    has_enumerate_support = True
    # attributes computed per urn, which a copy recomputes (``_copy_with``)
    caches: tuple[str, ...] = CACHES

    def __init__(
        self,
        population: TensorLike,
        draws: TensorLike,
        logits: TensorLike | None = None,
        weights: TensorLike | None = None,
        *,
        engine: str = "auto",
        max_support: int | None = None,
        validate_args: bool | None = None,
    ):
        if (logits is None) == (weights is None):
            raise ValueError("pass exactly one of logits or weights")
        checking = (Distribution._validate_args if validate_args is None
                    else bool(validate_args))
        zero_weights = False
        if logits is not None:
            logits = as_float_tensor(logits, "logits")
            if checking:
                check_logits(logits)
        else:
            weights = as_float_tensor(weights, "weights")
            if checking:
                check_weights(weights)
            logits = _log_weights(weights)
            zero_weights = bool((weights == 0).any())
        if logits.dim() == 0:
            raise ValueError("logits/weights must have a class dimension: shape [..., c]")
        if logits.shape[-1] == 0:
            raise ValueError("logits/weights must have at least one class (shape [..., c] "
                             "with c >= 1)")
        population = as_count_tensor(population, "population", logits.device, checking)
        if population.dim() == 0:
            raise ValueError("population must have a class dimension: shape [..., c]")
        if population.shape[-1] != logits.shape[-1]:
            raise ValueError(
                f"population has {population.shape[-1]} classes (last dim) but logits/weights "
                f"have {logits.shape[-1]}")
        draws = as_count_tensor(draws, "draws", logits.device, checking)
        if not isinstance(engine, str) or engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
        self.max_support = _check_max_support(max_support)
        num_classes = logits.shape[-1]
        batch_shape = broadcast_batch(population.shape[:-1], draws.shape, logits.shape[:-1],
                                      names=("population", "draws", "logits"))
        self.population = population.expand(batch_shape + (num_classes,))
        self.draws = draws.expand(batch_shape)
        self.logits = logits.expand(batch_shape + (num_classes,))
        if checking:
            check_total(self.population)
            self._check_feasible()
        self.engine = engine
        self._zero_weights = zero_weights
        # kept only to give the gradient in a weight that is exactly zero its true value
        self._weights = weights.expand(batch_shape + (num_classes,)) if zero_weights else None
        # torch's own parameter check cannot reshape an empty batch; ours has run
        super().__init__(batch_shape, torch.Size((num_classes,)),
                         validate_args=checking and batch_shape.numel() > 0)
        self._validate_args = checking

    def _check_feasible(self) -> None:
        total = self.population.sum(-1)
        if bool((self.draws > total).any()):
            bad = (self.draws > total).nonzero()[0].tolist()
            raise ValueError(
                f"draws must be <= population.sum(-1) (the balls in the urn); at batch index "
                f"{bad}: draws={int(self.draws[tuple(bad)])} > {int(total[tuple(bad)])}")
        drawable = torch.where(self.logits > NEG_INF, self.population, 0).sum(-1)
        if bool((self.draws > drawable).any()):
            bad = (self.draws > drawable).nonzero()[0].tolist()
            raise ValueError(
                f"infeasible urn: the classes with weight > 0 hold {int(drawable[tuple(bad)])} "
                f"balls at batch index {bad}, fewer than draws={int(self.draws[tuple(bad)])}")

    # ------------------------------------------------------------------ torch plumbing
    def expand(self, batch_shape: Sequence[int], _instance=None):
        batch_shape = expanded_shape(batch_shape, self.batch_shape)
        event = batch_shape + self.event_shape
        weights = None if self._weights is None else self._weights.expand(event)
        return self._copy_with(self.population.expand(event), self.draws.expand(batch_shape),
                               self.logits.expand(event), weights, _instance)

    def _copy_with(self, population: torch.Tensor, draws: torch.Tensor, logits: torch.Tensor,
                   weights: torch.Tensor | None, _instance=None):
        """A distribution of this one's class and settings with these (already checked)
        parameters. Works for subclasses with their own ``__init__``: the copy carries every
        attribute of this one but the per-urn caches."""
        new = _instance if _instance is not None else type(self).__new__(type(self))
        new.__dict__.update({k: v for k, v in self.__dict__.items()
                             if k not in self.caches and k not in new.__dict__})
        new.population, new.draws, new.logits = population, draws, logits
        new._weights = weights
        Distribution.__init__(new, draws.shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @constraints.dependent_property(is_discrete=True, event_dim=1)
    def support(self) -> constraints.Constraint:
        return UrnSupport(self.population, self.draws)

    @property
    def weights(self) -> torch.Tensor:
        """The odds ``exp(logits)``, shape ``[..., c]``."""
        return self.logits.exp()

    @property
    def num_classes(self) -> int:
        return self.event_shape[0]

    def enumerate_support(self, expand: bool = True) -> torch.Tensor:
        """All count vectors of the support, in the floating dtype of the logits and in
        lexicographic order (class 0 slowest): ``[S, *batch_shape, c]`` (``expand=True``) or
        ``[S, 1, ..., 1, c]`` (``expand=False``). Points of probability zero (classes of weight
        0) are listed too.

        Needs the same ``population`` and ``draws`` in every batch element (only the logits may
        differ: Pyro enumerates a batch in lock-step over one list of values) and at most
        ``max_support`` points; ``ValueError`` otherwise, before anything is built."""
        c = self.num_classes
        populations = self.population.reshape(-1, c)
        draws = self.draws.reshape(-1)
        if draws.numel() == 0:
            raise ValueError("enumerate_support needs a non-empty batch; batch_shape is "
                             f"{tuple(self.batch_shape)}")
        if not (bool((populations == populations[0]).all())
                and bool((draws == draws[0]).all())):
            raise ValueError(
                "enumerate_support needs the same population and draws in every batch "
                "element (only the logits may differ across the batch); got "
                f"{len(torch.unique(populations, dim=0))} distinct populations and "
                f"{len(torch.unique(draws))} distinct draws over batch_shape "
                f"{tuple(self.batch_shape)}")
        population, n = populations[0].tolist(), int(draws[0])
        limit = (support_module.MAX_ENUMERATE_SUPPORT if self.max_support is None
                 else self.max_support)
        size, exact = support_size(population, n, stop_above=limit)
        if size > limit:
            shown = population if c <= 8 else population[:8] + ["..."]
            raise ValueError(
                f"enumerate_support: the support of the urn population={shown}, draws={n} has "
                f"{'' if exact else 'at least '}{size:,} points, above the limit of {limit:,}; "
                f"raise it with max_support=... in the constructor or by setting "
                f"diffhypergeom.numerics.support.MAX_ENUMERATE_SUPPORT (every point is one "
                f"log_prob evaluation per batch element)")
        values = support_points(population, n, self.population.device).to(self.logits.dtype)
        values = values.reshape((values.shape[0],) + (1,) * len(self.batch_shape) + (c,))
        if expand:
            values = values.expand((-1,) + self.batch_shape + (c,))
        return values

    def __repr__(self) -> str:
        shown = [f"population={show(self.population)}", f"draws={show(self.draws)}",
                 f"logits={show(self.logits)}"]
        shown += [f"{k}={v}" for k, v in self._repr_settings().items()]
        return f"{type(self).__name__}({', '.join(shown)})"

    def _repr_settings(self) -> dict[str, str]:
        """Settings of the law beside its parameters, for the repr."""
        return {} if self.engine == "auto" else {"engine": repr(self.engine)}

    # ------------------------------------------------------------------ engines and sharing
    @property
    def sharing(self) -> BatchSharing:
        """The batch dimensions that repeat one urn (computed once per distribution)."""
        found = self.__dict__.get("_sharing")
        if found is None:
            tensors = [self.population, self.draws, self.logits]
            if self._weights is not None:
                tensors.append(self._weights)
            found = self._sharing = BatchSharing(self.batch_shape, tensors)
        return found

    def _counts(self, value: TensorLike) -> tuple[torch.Tensor, torch.Tensor, torch.Size]:
        """``log_prob``'s argument checked and laid out per distinct urn: counts ``[S', B, c]``
        (float64), whether each can occur (``[S', B]``: inside the ranges, where a class of
        weight zero has none, with the right total; non-integer counts count as inside, for the
        continuous extension), and the sample shape."""
        value = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
        if value.dtype == torch.bool or value.is_complex():
            raise ValueError(f"value must hold real counts, got dtype {value.dtype}")
        check_not_meta(value, "value")
        if value.dim() == 0 or value.shape[-1] != self.num_classes:
            raise ValueError(f"value must have shape [..., {self.num_classes}] (the classes "
                             f"last), got {tuple(value.shape)}")
        shape = broadcast_value(value.shape, self.batch_shape + self.event_shape)
        if self._validate_args:
            self._validate_sample(value)
        x = value.to(torch.float64).expand(shape)
        sample_shape = shape[: len(shape) - len(self.batch_shape) - 1]
        x = self.sharing.flatten_draws(x, sample_shape)
        drawable = (torch.where(self.logits > NEG_INF, self.population, 0)
                    if self._zero_weights else self.population)
        m = self.sharing.narrow(drawable).reshape(1, -1, self.num_classes)
        draws = self.sharing.narrow(self.draws).reshape(1, -1).to(torch.float64)
        in_range = ((x >= 0) & (x <= m)).all(-1)
        tolerance = 1e-6 * (1 + draws)
        inside = in_range & ((x.sum(-1) - draws).abs() <= tolerance)
        return x, inside, sample_shape

def check_count_dtype(dtype: torch.dtype, draws: torch.Tensor, at_most: int | None = None
                      ) -> None:
    """Counts come in the logits' floating dtype: it must hold every count up to ``draws``
    (float64 always does: totals are at most ``2**53``). The samplers call it before drawing;
    ``at_most``, a bound on ``draws`` known without reading them (a k-subset's ``N``), spares
    reading them where the dtype holds it.

    Example:
        >>> import torch
        >>> from diffhypergeom.laws.base import check_count_dtype
        >>> torch.tensor(2049.0, dtype=torch.float16)  # float16 is exact up to 2048
        tensor(2048., dtype=torch.float16)
        >>> check_count_dtype(torch.float16, torch.tensor(2048))  # fine: returns None
        >>> check_count_dtype(torch.float16, torch.tensor(2049))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        ValueError: draws=2049 cannot be represented exactly in torch.float16 ...
    """
    if dtype == torch.float64:
        return
    largest = int(round(2 / torch.finfo(dtype).eps))
    if at_most is not None and at_most <= largest:
        return
    if draws.numel() and int(draws.max()) > largest:
        raise ValueError(f"draws={int(draws.max())} cannot be represented exactly in {dtype} "
                         f"(whole numbers up to {largest}); pass float64 logits or weights")



def _log_weights(weights: torch.Tensor) -> torch.Tensor:
    """``log w`` with ``-inf`` for ``w = 0`` and a zero (not NaN) gradient there: the law does
    not depend on a weight that is exactly zero (nor, to first order, on one that underflowed)."""
    positive = weights > 0
    safe = torch.where(positive, weights, torch.ones_like(weights))
    return torch.where(positive, safe.log(), torch.full_like(weights, NEG_INF))


def _check_max_support(max_support: int | None) -> int | None:
    if max_support is None:
        return None
    if isinstance(max_support, bool) or int(max_support) != max_support or max_support < 1:
        raise ValueError(f"max_support must be a positive integer or None, got {max_support!r}")
    return int(max_support)
