"""``GumbelTopK``: the law of Gumbel-top-k subsets (``topk(logits + Gumbel noise, k)``: ``k``
items drawn one at a time without replacement, each with probability proportional to
``exp(logits)``), the multivariate Wallenius law with one ball per item.

Every member of ``MultivariateWalleniusNCHypergeometric`` works here (the exact ``log_prob``
of a subset, the covariance, the entropy). The inclusion probabilities ``P(i in S)`` (``mean``,
``variance``, the Bernoulli marginals) come from the exponential race for all items at once
(``numerics.race``: milliseconds where the Wallenius law's Fisher mixture takes a pass per
class). Two members are computed the way the draws are made:

- ``sample``: ``topk`` of Gumbel-perturbed logits, one batched sort;
- ``sample_with_score``: the same draws and the log-probability of the *order* in which they
  were drawn, ``log PL(o_1..o_k) = sum_j (theta_{o_j} - log sum_{i not in o_1..o_{j-1}}
  e^{theta_i})`` (Plackett-Luce). A subset is a function of its order, so ``f(S) grad log
  PL(order)`` is an unbiased score-function term for ``E[f(S)]``; it costs a sort and a
  cumulative ``logsumexp`` where the subset's own ``log_prob`` is an integral per draw. The
  estimators of ``diffhypergeom.estimators`` use it when a law has it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.distributions import Distribution

from diffhypergeom.laws.base import check_count_dtype, with_graph_of
from diffhypergeom.laws.checks import (
    TensorLike,
    check_sample_shape,
    subset_urn,
)
from diffhypergeom.laws.wallenius import MultivariateWalleniusNCHypergeometric
from diffhypergeom.numerics import race
from diffhypergeom.numerics.special import NEG_INF

__all__ = ["EXP_SPREAD", "GumbelTopK"]

# ``sample_with_score`` sums the weights ``exp(logits - max)`` directly where the logits spread
# over at most this fraction of ``-log(tiny)`` of their dtype (78 in float32, 637 in float64)
EXP_SPREAD = 0.9


class GumbelTopK(MultivariateWalleniusNCHypergeometric):
    """The law of Gumbel-top-k subsets of ``N`` items (module docstring): ``x [..., N]``
    ``k``-hot.

    Args:
        logits: ``[..., N]`` per-item log-weights (finite; only differences matter).
        k: int or ``[...]`` ints, the subset size ``0 <= k <= N``.
        validate_args: as in ``torch.distributions``.

    Example:
        >>> import torch
        >>> from diffhypergeom.laws.topk import GumbelTopK
        >>> d = GumbelTopK(torch.tensor([1.0, 2.0, 3.0, 4.0]).log(), 2)
        >>> round(float(d.log_prob(torch.tensor([0, 0, 1, 1])).exp()), 4)  # 26 / 70
        0.3714
        >>> x, log_order = d.sample_with_score((3,))
        >>> x.sum(-1), log_order.shape
        (tensor([2., 2., 2.]), torch.Size([3]))
    """

    caches = MultivariateWalleniusNCHypergeometric.caches + ("_exp_safe",)

    def __init__(self, logits: TensorLike, k: TensorLike, *,
                 validate_args: bool | None = None):
        checking = (Distribution._validate_args if validate_args is None
                    else bool(validate_args))
        logits, k, population = subset_urn(logits, k, checking)
        # subset_urn made the checks the Wallenius law would repeat (an urn of ones)
        super().__init__(population, k, logits=logits, validate_args=False)
        self._validate_args = checking

    def log_prob(self, value: TensorLike) -> torch.Tensor:
        """Exact ``log p(S)``, ``[*sample, *batch]``, as the Wallenius law's (validation,
        ``-inf`` off the support), for all values on one time grid (``race.log_prob``); values
        that are not 0/1 (``validate_args=False``) and logits the grid does not serve
        (``race.serves``) take the Wallenius law's quadrature."""
        theta = self.sharing.narrow(self.logits).reshape(-1, self.num_classes)
        x, inside, sample_shape = self._counts(value)
        if not (race.serves(theta.detach()) and bool(((x == 0) | (x == 1)).all())):
            return super().log_prob(value)
        k = self.sharing.narrow(self.draws).reshape(-1, 1)
        first = (torch.arange(self.num_classes, device=x.device) < k).to(x.dtype)   # [B, N]
        x = torch.where(inside.unsqueeze(-1), x, first)
        out = torch.where(inside, race.log_prob(x, theta), NEG_INF)
        return self.sharing.unflatten_draws(out, sample_shape).to(self.logits.dtype)

    @property
    def mode(self) -> torch.Tensor:
        """``[..., N]``: the most probable subset, the ``k`` items of largest logit, exact (of
        items with equal logits at the boundary the earlier ones: the lexicographically
        largest mask, as the Wallenius law's ``mode``). Swapping a chosen item ``a`` for an
        unchosen ``b`` with ``w_b > w_a`` raises every term of ``p(S) = sum over orders of S
        of prod_t w_{s_t} / (W - w_{s_1} - ... - w_{s_{t-1}})``: the order with ``b`` in
        ``a``'s place has a larger factor there and smaller denominators after it."""
        order = torch.sort(self.logits.detach(), dim=-1, descending=True, stable=True).indices
        rank = torch.empty_like(order).scatter_(-1, order, torch.arange(
            self.num_classes, device=order.device).expand_as(order).contiguous())
        return (rank < self.draws.unsqueeze(-1)).to(self.logits.dtype)

    def _ranks(self, sample_shape: torch.Size) -> torch.Tensor:
        """The order of the items by Gumbel-perturbed logits, ``[*sample, *batch, N]``."""
        logits = self.logits.detach()
        keys = logits.expand(sample_shape + logits.shape)
        keys = keys - torch.empty_like(keys).exponential_().log()
        return keys.argsort(-1, descending=True)

    def _first(self, order: torch.Tensor) -> torch.Tensor:
        """``[*batch, N]`` bool: whether each place of an order is among the first ``k``."""
        return torch.arange(self.num_classes, device=order.device) < self.draws.unsqueeze(-1)

    def _chosen(self, order: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
        """``k``-hot masks ``[..., N]`` of the first ``k`` items of each order (``first``:
        ``_first``)."""
        chosen = torch.zeros(order.shape, dtype=self.logits.dtype, device=order.device)
        return chosen.scatter(-1, order, first.expand(order.shape).to(chosen.dtype))

    def sample(self, sample_shape: Sequence[int] = torch.Size()) -> torch.Tensor:
        """Exact draws ``[*sample_shape, *batch, N]``: ``topk`` of Gumbel-perturbed logits."""
        sample_shape = check_sample_shape(sample_shape)
        check_count_dtype(self.logits.dtype, self.draws, at_most=self.num_classes)
        with torch.no_grad():
            order = self._ranks(sample_shape)
            return self._chosen(order, self._first(order))

    def sample_with_score(self, sample_shape: Sequence[int] = torch.Size(),
                          normalized: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact draws ``[*sample_shape, *batch, N]`` and the Plackett-Luce log-probability of
        the order they were drawn in, ``[*sample_shape, *batch]``, differentiable in the logits
        (its gradient is an unbiased score for any function of the subset). ``normalized`` is
        accepted for the estimators' sake (``KSubset.sample_with_score``); the order's
        probability has no term that every draw shares, so it is always normalised."""
        sample_shape = check_sample_shape(sample_shape)
        check_count_dtype(self.logits.dtype, self.draws, at_most=self.num_classes)
        order = self._ranks(sample_shape)
        logits = self.logits.expand(order.shape).gather(-1, order)
        shift = self._exp_shift()
        if shift is not None:  # the weights' suffix sums, cheaper than logcumsumexp
            remaining = (logits - shift).exp().flip(-1).cumsum(-1).flip(-1).log() + shift
        else:
            remaining = logits.flip(-1).logcumsumexp(-1).flip(-1)
        first = self._first(order)
        log_order = torch.where(first, logits - remaining, 0.0).sum(-1)
        return self._chosen(order, first), log_order

    def _exp_shift(self) -> torch.Tensor | None:
        """The largest logit of the batch (detached), where all logits lie within
        ``EXP_SPREAD`` of it, so that the weights ``exp(logits - shift)`` are normal numbers
        of the logits' dtype, none rounded to zero; ``None`` otherwise, infinite logits
        included (computed once)."""
        found = self.__dict__.get("_exp_safe")
        if found is None:
            theta = self.logits.detach()
            found = ()
            if theta.numel():
                low, high = torch.aminmax(theta)
                if float(high - low) <= EXP_SPREAD * -math.log(torch.finfo(theta.dtype).tiny):
                    found = (high,)
            self._exp_safe = found
        return found[0] if found else None

    # ------------------------------------------------------------------ inclusion
    def _inclusion(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``P(i in S)`` and ``P(i not in S)`` ``[B, N]`` float64 per distinct urn, from the
        exponential race (with the logits' graph); ``None`` for logits that are not finite or
        spread beyond ``race.MAX_SPREAD`` (then the Wallenius law's members serve)."""
        theta = self.sharing.narrow(self.logits).reshape(-1, self.num_classes)
        if not race.serves(theta.detach()):
            return None
        return race.inclusion(theta, self.sharing.narrow(self.draws).reshape(-1))

    @property
    def mean(self) -> torch.Tensor:
        """The inclusion probabilities ``P(i in S)``, ``[..., N]``, differentiable in the
        logits."""
        found = self._inclusion()
        if found is None:
            return super().mean
        return with_graph_of(self.sharing.unflatten(found[0], (self.num_classes,)
                                                    ).to(self.logits.dtype), self.logits)

    @property
    def variance(self) -> torch.Tensor:
        """``P(i in S) P(i not in S)``, ``[..., N]``."""
        found = self._inclusion()
        if found is None:
            return super().variance
        return self.sharing.unflatten(found[0] * found[1], (self.num_classes,)
                                      ).to(self.logits.dtype)

    def _marginal_probabilities(self, classes: list[int]) -> torch.Tensor:
        """The Bernoulli marginals of ``classes``, ``[B, C, 2]`` per distinct urn: ``[P(i not
        in S), P(i in S)]``."""
        found = self._inclusion()
        if found is None:
            return super()._marginal_probabilities(classes)
        return torch.stack([found[1], found[0]], -1)[:, classes]
