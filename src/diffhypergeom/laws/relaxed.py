"""``RelaxedMultivariateFisherNCHypergeometric``: real-valued Gumbel-softmax counts that relax
the Fisher law's draws, as ``RelaxedOneHotCategorical`` relaxes ``OneHotCategorical``.

The classes are visited in a random order (one per call, as in the paper's published code).
Class ``i`` gets the soft count ``sum_k k softmax((alpha + g) / tau)_k`` over the exact
conditional ``alpha_k = log p(x_i = k | r)`` of the Fisher law, ``g`` Gumbel noise and ``r`` the
balls left after the earlier classes' *hard* counts ``argmax(alpha + g)``; the last class
takes the rest, and counts that leave the box ``0 <= x_i <= m_i`` are projected back onto
``{0 <= x_i <= m_i, sum_i x_i = n}``. As ``tau -> 0`` the soft counts tend to exact draws of
``MultivariateFisherNCHypergeometric``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.distributions import constraints

from diffhypergeom.laws.base import UrnSupport
from diffhypergeom.laws.checks import TensorLike, check_bool, check_positive, check_sample_shape
from diffhypergeom.laws.engine_law import FisherEngineLaw
from diffhypergeom.numerics.sampling import GumbelSettings

__all__ = ["RelaxedMultivariateFisherNCHypergeometric", "UrnHull"]


class UrnHull(UrnSupport):
    """Real vectors ``x`` with ``0 <= x_i <= m_i`` and ``sum_i x_i = n`` (up to rounding): the
    convex hull of ``UrnSupport``, and the support of the relaxed law's soft counts.

    Example:
        >>> import torch
        >>> from diffhypergeom.laws.relaxed import (
        ...     RelaxedMultivariateFisherNCHypergeometric, UrnHull)
        >>> hull = UrnHull(torch.tensor([4, 5, 6]), torch.tensor(7))
        >>> hull.check(torch.tensor([[1.5, 3.5, 2.0], [4.5, 1.5, 1.0], [2.0, 4.0, 1.5]]))
        tensor([ True, False, False])
        >>> d = RelaxedMultivariateFisherNCHypergeometric(hull.population, 7,
        ...                                               logits=torch.zeros(3), temperature=0.5)
        >>> d.support, bool(d.support.check(d.rsample((100,))).all())
        (UrnHull(population=[4, 5, 6], draws=7), True)
    """

    is_discrete = False

    def check(self, value: torch.Tensor) -> torch.Tensor:
        in_range = ((value >= 0) & (value <= self.population)).all(-1)
        tolerance = 1e-4 * (1 + self.draws.to(value.dtype))
        return in_range & ((value.sum(-1) - self.draws).abs() <= tolerance)


class RelaxedMultivariateFisherNCHypergeometric(FisherEngineLaw):
    """Soft counts relaxing the multivariate Fisher law (see the module docstring).

    Args:
        population, draws, logits, weights, engine, validate_args: as in
            ``MultivariateFisherNCHypergeometric``.
        temperature: ``tau > 0``, a float or a tensor broadcasting to ``batch_shape`` (it may
            require grad: the soft counts are differentiable in it).
        permute: visit the classes in a new random order per call (default True); with False,
            in the order of the last dimension.

    Members: ``rsample`` (soft counts ``[*sample_shape, *batch, c]``, differentiable in the
    logits and the temperature) and ``sample`` (the same without gradients). The support is the
    real hull ``UrnHull``. The soft counts have no density in closed form: ``log_prob``,
    ``mean``, ``variance`` and ``entropy`` raise ``NotImplementedError``. A surrogate loss may
    score soft counts with the exact law's continuous extension,
    ``MultivariateFisherNCHypergeometric(..., validate_args=False).log_prob(x)``, which is not
    this law's density.

    Example:
        >>> import torch
        >>> from diffhypergeom import RelaxedMultivariateFisherNCHypergeometric
        >>> urn = dict(population=torch.tensor([4, 5, 6]), draws=7,
        ...            weights=torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64))
        >>> d = RelaxedMultivariateFisherNCHypergeometric(**urn, temperature=0.5)
        >>> y = d.rsample((2,))  # soft counts, each row summing to the 7 draws
        >>> y.shape, bool(torch.allclose(y.sum(-1), torch.tensor(7.0, dtype=y.dtype)))
        (torch.Size([2, 3]), True)
    """

    has_rsample = True
    has_enumerate_support = False
    # members of the exact law this one cannot give (``diffhypergeom.estimators.lacking``)
    lacks = frozenset({"log_prob", "mean", "variance", "entropy", "enumerate_support",
                       "log_marginal", "log_marginals", "marginal"})

    def __init__(self, population: TensorLike, draws: TensorLike,
                 logits: TensorLike | None = None, weights: TensorLike | None = None, *,
                 temperature: float | torch.Tensor, permute: bool = True, engine: str = "auto",
                 validate_args: bool | None = None):
        check_positive(temperature, "temperature")
        check_bool(permute, "permute")
        self.temperature = temperature
        self.permute = bool(permute)
        super().__init__(population, draws, logits, weights, engine=engine,
                         validate_args=validate_args)
        if isinstance(temperature, torch.Tensor) and temperature.dim():
            try:
                torch.broadcast_shapes(temperature.shape, self.batch_shape)
            except RuntimeError as err:
                raise ValueError(f"temperature of shape {tuple(temperature.shape)} does not "
                                 f"broadcast with batch_shape {tuple(self.batch_shape)}"
                                 ) from err

    @constraints.dependent_property(is_discrete=False, event_dim=1)
    def support(self) -> constraints.Constraint:
        return UrnHull(self.population, self.draws)

    def _repr_settings(self) -> dict[str, str]:
        settings = {"temperature": repr(self.temperature)}
        if not self.permute:
            settings["permute"] = "False"
        return settings | super()._repr_settings()

    def rsample(self, sample_shape: Sequence[int] = torch.Size()) -> torch.Tensor:
        """Soft counts ``[*sample_shape, *batch, c]`` (floating, summing to ``draws``)."""
        settings = GumbelSettings(self.temperature, hard=False)
        return self._gumbel_draw(check_sample_shape(sample_shape), settings, self.permute,
                                 None).counts

    def sample(self, sample_shape: Sequence[int] = torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)

    def enumerate_support(self, expand: bool = True) -> torch.Tensor:
        raise NotImplementedError("the relaxed counts are real vectors: their support (the hull "
                                  "UrnHull) cannot be enumerated")

    def log_prob(self, value: TensorLike) -> torch.Tensor:
        raise NotImplementedError(
            "the relaxed counts have no density in closed form; score hard draws with "
            "MultivariateFisherNCHypergeometric, or soft counts with its continuous "
            "extension (MultivariateFisherNCHypergeometric(..., validate_args=False).log_prob)")

    @property
    def mean(self) -> torch.Tensor:
        raise NotImplementedError("the relaxed counts' mean has no closed form; estimate it "
                                  "from rsample()")

    @property
    def variance(self) -> torch.Tensor:
        raise NotImplementedError("the relaxed counts' variance has no closed form; estimate "
                                  "it from rsample()")

    def entropy(self) -> torch.Tensor:
        raise NotImplementedError("the relaxed counts have no density in closed form, hence "
                                  "no entropy")
