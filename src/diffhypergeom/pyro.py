"""``MultivariateFisherNCHypergeometric`` as a Pyro distribution (importing this module needs
``pyro-ppl``: ``pip install -e '.[pyro]'``; ``import diffhypergeom`` alone never imports Pyro).

The law is the core one (``diffhypergeom.MultivariateFisherNCHypergeometric``): ``n`` balls are
drawn from an urn of ``m_i`` balls of class ``i`` with weights ``w_i = exp(logits_i)``, and

    p(x) = prod_i C(m_i, x_i) w_i^x_i / P0,   0 <= x_i <= m_i,  sum_i x_i = n.

Parameters: ``population`` ``[..., c]`` (``m``, non-negative integers), ``draws`` int or
``[...]`` (``n``), exactly one of ``logits`` / ``weights`` ``[..., c]``, and the core's
``temperature``, ``hard``, ``method``, ``engine``, ``validate_args``; plus ``max_support``
(see below). Shapes: ``batch_shape`` broadcasts ``population.shape[:-1]``, ``draws.shape`` and
``logits.shape[:-1]``; ``event_shape == (c,)``; ``sample`` and ``rsample`` give counts
``[*sample_shape, *batch_shape, c]``.

Counts come in the floating dtype of the logits from ``sample``, ``rsample`` and
``enumerate_support`` alike (the core's ``sample`` gives int64), as from Pyro's ``Multinomial``
and ``Binomial``: Pyro takes a site's value from any of the three (``__call__`` uses ``rsample``,
``init_to_sample`` and ``Predictive`` use ``sample``, ``TraceEnum_ELBO`` ``enumerate_support``),
and int64 counts would silently truncate float arguments downstream (``Normal(x[..., 0], 1.5)``
has scale 1 when ``x`` is int64). float32 holds counts exactly up to ``2**24``; use float64
logits for larger urns.

On top of the core class this one is a ``TorchDistributionMixin``: it can be called (``d()``),
so it works at latent ``pyro.sample`` sites, and has ``to_event``, ``mask``, ``expand_by``, and
``expand`` returning this class. ``has_rsample`` is True: at a latent site Pyro draws with
``rsample`` (with ``hard=True``, the default, exact integer draws whose gradient is that of the
exact mean), so ELBOs get pathwise (biased for non-linear terms, see the core's ``rsample``)
gradients; call
``d.has_rsample_(False)`` for score-function gradients instead. With ``hard=False`` the relaxed
counts are outside the integer support: build the distribution with ``validate_args=False``.

``enumerate_support(expand=True)`` (``has_enumerate_support = True``) lists every count vector
of the support, ``[S, *batch_shape, c]`` (``[S, 1, ..., 1, c]`` with ``expand=False``), in
lexicographic order, so ``TraceEnum_ELBO`` can sum a small urn out exactly. All batch elements
must share ``population`` and ``draws`` (only the logits may differ: Pyro enumerates a batch in
lock-step over one list of values). Points of zero probability (classes of weight 0) are
listed too and get ``log_prob = -inf``. The support may hold at most ``max_support`` points
(constructor keyword, kept by ``expand``; default ``None``: the module-level
``MAX_ENUMERATE_SUPPORT``, 100,000, which can be reassigned); beyond that ``enumerate_support``
raises a ``ValueError`` with the size of the support, before building anything.

Example: a latent urn summed out exactly (``-loss`` is the log-evidence ``log p(y)``)::

    import pyro, pyro.distributions as dist, torch
    from diffhypergeom.pyro import MultivariateFisherNCHypergeometric as MFNCH
    def model():  # x: 5 balls from an urn of 4 + 4 + 4, weights 1, 3, 0.5; y sees x[1] + noise
        x = pyro.sample("x", MFNCH([4] * 3, 5, weights=[1, 3, .5]), infer={"enumerate": "parallel"})
        pyro.sample("y", dist.Normal(x[..., 1], 1.0), obs=torch.tensor(3.0))
    print(-pyro.infer.TraceEnum_ELBO(max_plate_nesting=0).loss(model, lambda: None))  # -1.19996
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pyro.distributions.torch_distribution import TorchDistributionMixin
from pyro.distributions.util import broadcast_shape

from diffhypergeom import distribution as _core
from diffhypergeom.checks import TensorLike
from diffhypergeom.support import support_points as _support_points
from diffhypergeom.support import support_size

__all__ = ["MAX_ENUMERATE_SUPPORT", "MultivariateFisherNCHypergeometric", "support_size"]

# Default largest support that ``enumerate_support`` lists (a distribution's ``max_support``
# overrides it). Reassign ``diffhypergeom.pyro.MAX_ENUMERATE_SUPPORT`` to change the default.
MAX_ENUMERATE_SUPPORT = 100_000


class MultivariateFisherNCHypergeometric(_core.MultivariateFisherNCHypergeometric,
                                         TorchDistributionMixin):
    """The multivariate Fisher noncentral hypergeometric distribution for Pyro.

    Same constructor as ``diffhypergeom.MultivariateFisherNCHypergeometric``, plus
    ``max_support``: the most support points ``enumerate_support`` may list (``None``: the
    module-level ``MAX_ENUMERATE_SUPPORT`` at the time of the call). See the module docstring.
    """

    has_enumerate_support = True

    def __init__(self, population: TensorLike, draws: TensorLike,
                 logits: TensorLike | None = None, weights: TensorLike | None = None, *,
                 max_support: int | None = None, **kwargs):
        """``kwargs``: the core's ``temperature``, ``hard``, ``method``, ``engine``,
        ``validate_args``."""
        self.max_support = _check_max_support(max_support)
        super().__init__(population, draws, logits=logits, weights=weights, **kwargs)

    def _copy_with(self, population: torch.Tensor, draws: torch.Tensor, logits: torch.Tensor,
                   _instance=None) -> MultivariateFisherNCHypergeometric:
        # The core builds copies for ``expand`` and for the class permutations of
        # ``sample``/``rsample``; with its own ``__init__`` this class must hand the core an
        # instance of itself (torch's ``_get_checked_instance`` rule), carrying its extras.
        new = self._get_checked_instance(MultivariateFisherNCHypergeometric, _instance)
        new.max_support = self.max_support
        if "has_rsample" in self.__dict__:  # set by ``has_rsample_``
            new.has_rsample = self.has_rsample
        return super()._copy_with(population, draws, logits, _instance=new)

    @classmethod
    def infer_shapes(cls, population, draws=(), logits=None, weights=None, **kwargs):
        """``(batch_shape, event_shape)`` from the shapes of the constructor's tensors."""
        params = logits if logits is not None else weights
        shapes = [population[:-1], draws] + ([params[:-1]] if params is not None else [])
        return torch.Size(broadcast_shape(*shapes)), torch.Size(population[-1:])

    def sample(self, sample_shape: Sequence[int] = torch.Size(), permute: bool = False
               ) -> torch.Tensor:
        """Exact draws (for ``method="exact"``) ``[*sample_shape, *batch_shape, c]``, as the
        core's but in the floating dtype of the logits, like ``rsample`` (see the module
        docstring)."""
        return super().sample(sample_shape, permute=permute).to(self.logits.dtype)

    def enumerate_support(self, expand: bool = True) -> torch.Tensor:
        """All count vectors of the support, in the floating dtype of the logits and in
        lexicographic order: ``[S, *batch_shape, c]`` (``expand=True``) or
        ``[S, 1, ..., 1, c]`` (``expand=False``).

        Needs the same ``population`` and ``draws`` in every batch element and at most
        ``max_support`` (default ``MAX_ENUMERATE_SUPPORT``) points; ``ValueError`` otherwise."""
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
                "element (only the logits may differ across the batch: Pyro enumerates a "
                "batch in lock-step over one list of count vectors); got "
                f"{len(torch.unique(populations, dim=0))} distinct populations and "
                f"{len(torch.unique(draws))} distinct draws over batch_shape "
                f"{tuple(self.batch_shape)}")
        population, n = populations[0].tolist(), int(draws[0])
        limit = MAX_ENUMERATE_SUPPORT if self.max_support is None else self.max_support
        size, exact = support_size(population, n, stop_above=limit)
        if size > limit:
            shown = population if c <= 8 else population[:8] + ["..."]
            raise ValueError(
                f"enumerate_support: the support of the urn population={shown}, draws={n} has "
                f"{'' if exact else 'at least '}{size:,} points, above the limit of {limit:,}; "
                f"raise it with max_support=... in the constructor or by setting "
                f"diffhypergeom.pyro.MAX_ENUMERATE_SUPPORT (every point is one log_prob "
                f"evaluation per batch element)")
        values = _support_points(population, n, self.population.device).to(self.logits.dtype)
        values = values.reshape((values.shape[0],) + (1,) * len(self.batch_shape) + (c,))
        if expand:
            values = values.expand((-1,) + self.batch_shape + (c,))
        return values


def _check_max_support(max_support: int | None) -> int | None:
    if max_support is None:
        return None
    if isinstance(max_support, bool) or int(max_support) != max_support or max_support < 1:
        raise ValueError(f"max_support must be a positive integer or None, got {max_support!r}")
    return int(max_support)
