"""``FisherEngineLaw``: the urn laws that the Fisher engines compute (the Fisher law, the
paper's merged law and the relaxed counts), as one base beside ``UrnDistribution``.

It holds what only those laws use: the engine's ``Urn`` of the batch's distinct urns (built
once, rebuilt when gradients are wanted of a cache built without them), the engine chosen, the
class permutations of the sequential samplers and their Gumbel-softmax draws. The Wallenius law
needs none of it: it is an ``UrnDistribution`` of its own.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

import torch

from diffhypergeom.laws.base import UrnDistribution, check_count_dtype
from diffhypergeom.laws.checks import TensorLike
from diffhypergeom.numerics.engines import Urn, build
from diffhypergeom.numerics.sampling import ConditionalFn, GumbelSettings, RelaxedDraw

__all__ = ["FisherEngineLaw", "ORDER_CACHE", "eager"]

# permuted copies of a distribution (one per class order) that ``_permuted`` keeps
ORDER_CACHE = 24


def eager(method: Callable) -> Callable:
    """``torch.compiler.disable(method)``, applied at the first call made once
    ``torch._dynamo`` is loaded: decorating at import time would load it (about 2 s), and code
    is compiled only after it has been loaded.

    Example:
        >>> from diffhypergeom.laws.engine_law import eager
        >>> twice = eager(lambda x: 2 * x)
        >>> twice(21)  # a plain call; inside torch.compile'd code it runs eagerly, untraced
        42
    """
    disabled: list[Callable] = []

    @functools.wraps(method)
    def call(*args, **kwargs):
        if "torch._dynamo" not in sys.modules:
            return method(*args, **kwargs)
        if not disabled:
            disabled.append(torch.compiler.disable(method))
        return disabled[0](*args, **kwargs)

    return call


class FisherEngineLaw(UrnDistribution):
    """An urn law computed by the Fisher engines (``diffhypergeom.numerics.engines``); the base
    of ``MultivariateFisherNCHypergeometric``, ``MergedFisherNCHypergeometric`` and
    ``RelaxedMultivariateFisherNCHypergeometric``. Its arguments are ``UrnDistribution``'s; the
    engine is chosen at construction (it reads the urn's sizes and logits), so that compiled or
    transformed code later finds it made, and its tables are computed on first use.

    Example:
        >>> import torch
        >>> from diffhypergeom import MultivariateFisherNCHypergeometric
        >>> from diffhypergeom.laws.engine_law import FisherEngineLaw
        >>> d = MultivariateFisherNCHypergeometric(torch.tensor([10**6, 10**6]), 10**6,
        ...                                        logits=torch.zeros(2))
        >>> isinstance(d, FisherEngineLaw), d.engine_name  # "auto" took the FFT engine
        (True, 'fft')
    """

    # the engines may compute ``n > N/2`` as ``N - n`` with weights ``1/w`` (the law is
    # symmetric under ``x -> m - x``)
    complement = True
    # choose the engine in the constructor (a law with its own fast paths may defer it to the
    # first member that needs it)
    engine_at_construction = True
    caches = UrnDistribution.caches + ("_urn_cache", "_order_cache")

    def __init__(self, population: TensorLike, draws: TensorLike,
                 logits: TensorLike | None = None, weights: TensorLike | None = None, *,
                 engine: str = "auto", max_support: int | None = None,
                 validate_args: bool | None = None):
        super().__init__(population, draws, logits, weights, engine=engine,
                         max_support=max_support, validate_args=validate_args)
        if self.engine_at_construction:
            self._urn()

    def _urn(self) -> Urn:
        """The distinct urns of the batch, computed by their engine (built once; rebuilt when
        gradients are wanted but the cached one was built without them)."""
        want_grad = torch.is_grad_enabled() and self.logits.requires_grad
        cached = self.__dict__.get("_urn_cache")
        if cached is None or (want_grad and not cached.connected):
            self._urn_cache = self._build_urn(self.logits.to(torch.float64))
        return self._urn_cache

    def _build_urn(self, theta: torch.Tensor) -> Urn:
        """The urns of ``theta [*batch, c]`` (float64), one per distinct urn: dimensions along
        which the batch repeats one urn (``expand``, Pyro plates) are computed once."""
        c = self.num_classes
        flat = self.sharing.base_shape.numel()
        return build(self.engine, self.sharing.narrow(self.population).reshape(flat, c),
                     self.sharing.narrow(self.draws).reshape(flat),
                     self.sharing.narrow(theta).reshape(flat, c), complement=self.complement,
                     zero_weights=self._zero_weights)

    @property
    def engine_name(self) -> str:
        """The engine that computes this distribution (``"auto"`` resolved)."""
        return self._urn().name

    def _unshared(self):
        """This distribution with every batch entry's parameters its own (for the samplers that
        work on the whole batch)."""
        if not self.sharing.shared:
            return self
        weights = None if self._weights is None else self._weights.contiguous()
        return self._copy_with(self.population.contiguous(), self.draws.contiguous(),
                               self.logits.contiguous(), weights)

    def _permuted(self, permute: bool):
        """This distribution with its classes in a random order, and the inverse order. The
        permuted copies (with their tables) are kept per order, the last ``ORDER_CACHE``."""
        if not permute:
            return self, None
        order = torch.randperm(self.num_classes, device=self.logits.device)
        key = tuple(order.tolist())
        cache = self.__dict__.setdefault("_order_cache", {})
        if key not in cache:
            weights = None if self._weights is None else self._weights[..., order]
            permuted = self._copy_with(self.population[..., order], self.draws,
                                       self.logits[..., order], weights)
            if len(cache) >= ORDER_CACHE:
                cache.pop(next(iter(cache)))
            cache[key] = (permuted, torch.argsort(order))
        return cache[key]

    def _per_draw(self, temperature: float | torch.Tensor, sample_shape: torch.Size
                  ) -> float | torch.Tensor:
        """A tensor temperature broadcast to ``sample_shape + batch_shape`` and laid out as the
        samplers' ``[S, B, 1]``."""
        if not isinstance(temperature, torch.Tensor) or temperature.dim() == 0:
            return temperature
        shape = sample_shape + self.batch_shape
        try:
            expanded = temperature.expand(torch.broadcast_shapes(temperature.shape, shape))
        except RuntimeError as err:
            raise ValueError(f"temperature of shape {tuple(temperature.shape)} must broadcast "
                             f"with sample_shape + batch_shape {tuple(shape)}") from err
        if expanded.shape != shape:
            raise ValueError(f"temperature of shape {tuple(temperature.shape)} must broadcast "
                             f"to sample_shape + batch_shape {tuple(shape)}")
        return expanded.reshape(sample_shape.numel(), self.batch_shape.numel(), 1)

    def _conditional(self, urn: Urn) -> ConditionalFn | None:
        """The rows the sequential samplers walk, ``conditional(i, rows) -> Window``: ``None``
        for the law's exact conditionals (the engine's own); the merged law has its own."""
        return None

    def _gumbel_draw(self, sample_shape: torch.Size, settings: GumbelSettings, permute: bool,
                     width: int | None) -> RelaxedDraw:
        """Gumbel-softmax over the sequential conditionals (``sampling.rsample_sequential``),
        in a random class order per call if ``permute``; the one-hot vectors and the draw's
        log-probability too when ``width`` is given."""
        check_count_dtype(self.logits.dtype, self.draws)
        settings = settings._replace(temperature=self._per_draw(settings.temperature,
                                                                 sample_shape))
        dist, inverse = self._unshared()._permuted(permute)
        urn = dist._urn()
        counts, vectors, log_prob = urn.relaxed_sample(
            sample_shape.numel(), settings, self.logits.dtype, width, dist._conditional(urn))
        if inverse is not None:
            counts = counts[..., inverse]
            vectors = vectors[..., inverse, :] if vectors is not None else None
        counts = dist.sharing.unflatten_draws(counts, sample_shape, (self.num_classes,))
        if vectors is None:
            return RelaxedDraw(counts, None, None)
        sharing = dist.sharing
        return RelaxedDraw(counts, sharing.unflatten_draws(vectors, sample_shape,
                                                           (self.num_classes, width)),
                           sharing.unflatten_draws(log_prob, sample_shape))
