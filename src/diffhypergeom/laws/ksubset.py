"""``KSubset``: the k-subset law (conditional Poisson sampling), the multivariate Fisher law
with one ball per item, with members computed as independent Bernoulli variables conditioned on
their sum (``numerics.bernoulli``).

With ``m_i = 1`` and ``n = k`` the Fisher law is ``p(S) = prod_{i in S} w_i / e_k(w)`` over
subsets of size ``k``. Every member of ``MultivariateFisherNCHypergeometric`` works here; the
ones a gradient estimate calls each step are computed in a few batched tensor operations:

- ``sample``: exact draws by rejection from tilted Bernoulli proposals (one in about ``2.5
  sigma`` is kept, ``sigma^2 = sum_i p_i (1 - p_i)``);
- ``log_normalizer``, ``log_prob``: ``log e_k(w)`` from the tilted sum's characteristic function
  (``O(N L)``, ``L <= N + 1`` points), differentiable twice;
- ``mean`` (the inclusion probabilities ``P(i in S)``, the gradient of ``log e_k``),
  ``variance`` (``mu (1 - mu)``) and ``log_marginals`` (Bernoulli marginals);
- ``rsample``: with the default gradient, these draws carrying the gradient of the exact
  inclusion probabilities (a Hessian-vector product of ``log e_k``).

The engine is chosen only when another member needs it. Urns where a draw by rejection would
cost more than ``bernoulli.REJECTION_WORK`` proposal elements (about ``N = 1,000`` items and
``k = 50``: there the log-depth tree draws, and its root gives the mean, for the same cost),
logits that are not finite, a forced ``engine=``, ``torch.func`` transforms, or a batch whose
transform would exceed ``bernoulli.MAX_TRANSFORM`` elements take the Fisher law's own members.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.distributions import Distribution

from diffhypergeom.laws.base import with_graph_of
from diffhypergeom.laws.checks import (
    TensorLike,
    check_sample_shape,
    subset_urn,
)
from diffhypergeom.laws.engine_law import eager
from diffhypergeom.laws.fisher import MultivariateFisherNCHypergeometric
from diffhypergeom.numerics import bernoulli
from diffhypergeom.numerics.base import jacobian, readable
from diffhypergeom.numerics.special import NEG_INF, log_binomial

__all__ = ["KSubset"]


class KSubset(MultivariateFisherNCHypergeometric):
    """The k-subset law over ``N`` items (module docstring): ``x [..., N]`` ``k``-hot.

    Args:
        logits: ``[..., N]`` per-item log-weights ``log w_i`` (finite; only differences
            matter).
        k: int or ``[...]`` ints, the subset size ``0 <= k <= N``.
        engine, gradient, temperature, permute, couple_rows, rao_samples, validate_args: as in
            ``MultivariateFisherNCHypergeometric`` (``population`` is ``ones(N)``).

    Example:
        >>> import torch
        >>> from diffhypergeom.laws.ksubset import KSubset
        >>> d = KSubset(torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64).log(), 2)
        >>> d.mean  # P(i in S): w_i e_1(w without i) / e_2(w), e_2(w) = 35
        tensor([0.2571, 0.4571, 0.6000, 0.6857], dtype=torch.float64)
        >>> round(float(d.log_prob(torch.tensor([0, 0, 1, 1])).exp()), 4)  # 12 / 35
        0.3429
        >>> d.sample((3,)).sum(-1)
        tensor([2., 2., 2.], dtype=torch.float64)
    """

    engine_at_construction = False
    caches = MultivariateFisherNCHypergeometric.caches + ("_tilted", "_inclusion", "_normalizer")

    def __init__(self, logits: TensorLike, k: TensorLike, *, engine: str = "auto",
                 gradient: str = "mean", temperature: float | torch.Tensor | None = None,
                 permute: bool | None = None, couple_rows: bool | None = None,
                 rao_samples: int | None = None, validate_args: bool | None = None):
        checking = (Distribution._validate_args if validate_args is None
                    else bool(validate_args))
        logits, k, population = subset_urn(logits, k, checking)
        # subset_urn made the checks the Fisher law would repeat (an urn of ones)
        super().__init__(population, k, logits=logits, engine=engine, gradient=gradient,
                         temperature=temperature, permute=permute, couple_rows=couple_rows,
                         rao_samples=rao_samples, validate_args=False)
        self._validate_args = checking

    # ------------------------------------------------------------------ the fast members
    def _bernoulli(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, torch.Tensor
                                  ] | None:
        """Per distinct urn: the logits ``[B, N]`` (float64, with their graph), ``k [B]``, the
        tilt ``tau [B]``, the transform's length and ``log P(sum = k)`` by the normal
        approximation (detached; it sizes the draws' rounds), computed once; ``None`` where the
        Fisher law's own members are used instead (module docstring)."""
        theta = self.sharing.narrow(self.logits).reshape(-1, self.num_classes)
        theta = theta.to(torch.float64)
        k = self.sharing.narrow(self.draws).reshape(-1)
        found = self.__dict__.get("_tilted")
        if found is None:
            # validated logits are finite already (check_logits in the constructor)
            usable = (self.engine == "auto" and readable(theta)
                      and (self._validate_args or bool(torch.isfinite(theta).all())))
            if usable:
                tilt = bernoulli.tilted(theta, k)
                tau = tilt.tau
                usable = bernoulli.rejection_pays(tilt, theta.shape[-1])
            if usable:
                length = bernoulli.transform_length(theta, k, tau)
                usable = theta.numel() * length <= bernoulli.MAX_TRANSFORM
            if usable:  # the draws' rounds are sized without the transform
                found = (tau, length, bernoulli.acceptance(tilt))
            else:
                found = ()
            self._tilted = found
        if not found:
            return None
        return theta, k, found[0], found[1], found[2]

    def _log_normalizer(self) -> torch.Tensor:
        """``[B]`` float64: ``log e_k`` per distinct urn, computed on first use and kept (with
        its graph wherever gradients are recorded)."""
        theta, k, tau, length, _ = self._bernoulli()
        cached = self.__dict__.get("_normalizer")
        recording = torch.is_grad_enabled() and theta.requires_grad
        if cached is not None and (cached.requires_grad or not recording):
            return cached
        self._normalizer = bernoulli.log_normalizer(theta, k, tau, length=length)
        return self._normalizer

    def log_normalizer(self) -> torch.Tensor:
        """``[...]``: ``A = log e_k(w)``, differentiable (twice)."""
        if self._bernoulli() is None:
            return super().log_normalizer()
        return self.sharing.unflatten(self._log_normalizer()).to(self.logits.dtype)

    def log_prob(self, value: TensorLike) -> torch.Tensor:
        """Exact ``log p(S)``, ``[*sample, *batch]``, as the Fisher law's (validation, ``-inf``
        off the support, the continuous extension between 0 and 1)."""
        tilted = self._bernoulli()
        if tilted is None:
            return super().log_prob(value)
        x, inside, sample_shape = self._counts(value)
        theta = tilted[0]
        x = torch.where(inside.unsqueeze(-1), x, torch.zeros_like(x))
        terms = (x * theta).sum(-1)
        if not self._validate_args:  # validated values are 0/1, where log C(1, x) = 0
            terms = terms + log_binomial(torch.ones_like(x), x).sum(-1)
        out = torch.where(inside, terms - self._log_normalizer(), NEG_INF)
        return self.sharing.unflatten_draws(out, sample_shape).to(self.logits.dtype)

    def sample_with_score(self, sample_shape: Sequence[int] = torch.Size(),
                          normalized: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact draws ``[*sample_shape, *batch, N]`` (the logits' dtype) and their
        ``log_prob``, ``[*sample_shape, *batch]``, without ``log_prob``'s validation of values
        the law drew itself.

        ``normalized=False`` leaves out ``log e_k(w)``, the same for every draw of an urn: the
        score ``theta . x`` serves estimators whose weights on the draws of an urn sum to zero
        (a leave-one-out baseline), where that term's gradient cancels."""
        sample_shape = check_sample_shape(sample_shape)
        x = self.sample(sample_shape)
        score = (x * self.logits).sum(-1)
        if normalized:
            score = score - self.log_normalizer()
        return x, score

    def _inclusion_and_exclusion(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``P(i in S)`` and ``P(i not in S)``, ``[B, N]`` float64 per distinct urn, each without
        cancellation (``bernoulli.log_sum_probability``); differentiable while gradients are
        recorded (the backward pass is a Hessian-vector product of ``log e_k``)."""
        theta, k, tau, length, _ = self._bernoulli()
        recording = torch.is_grad_enabled() and theta.requires_grad
        cached = self.__dict__.get("_inclusion")
        if cached is not None and not recording:
            return cached
        with torch.enable_grad():
            point = theta if recording else theta.detach().requires_grad_()
            found = bernoulli.inclusion(point, k, tau, length, create_graph=recording)
        if not recording:
            found = tuple(t.detach() for t in found)
            self._inclusion = found
        return found

    @property
    def mean(self) -> torch.Tensor:
        """The inclusion probabilities ``P(i in S)``, ``[..., N]``: the gradient of
        ``log e_k(w)`` (differentiable: its backward pass is a Hessian-vector product)."""
        if self._bernoulli() is None:
            return super().mean
        inside, _ = self._inclusion_and_exclusion()
        return with_graph_of(self.sharing.unflatten(inside, (self.num_classes,)
                                                    ).to(self.logits.dtype), self.logits)

    @property
    def variance(self) -> torch.Tensor:
        """``P(i in S) P(i not in S)``, ``[..., N]``: each item's indicator is a Bernoulli
        variable (from the tree's inclusion probabilities where the Fisher law's members
        serve)."""
        if self._bernoulli() is None:
            inside = self.mean
            return inside * (1 - inside)
        inside, outside = self._inclusion_and_exclusion()
        return self.sharing.unflatten(inside * outside, (self.num_classes,)
                                      ).to(self.logits.dtype)

    @property
    def covariance_matrix(self) -> torch.Tensor:
        """Exact ``Cov(X)``, ``[..., N, N]``: the Jacobian of the inclusion probabilities, one
        batched backward pass (differentiable when the logits require grad)."""
        tilted = self._bernoulli()
        if tilted is None:
            return super().covariance_matrix
        theta, k, tau, length, _ = tilted
        differentiable = torch.is_grad_enabled() and theta.requires_grad
        items = self.num_classes
        with torch.enable_grad():
            point = theta if differentiable else theta.detach().requires_grad_()
            mean, _ = bernoulli.inclusion(point, k, tau, length, create_graph=True)
            covariance = jacobian(mean, point, create_graph=differentiable)      # [B, N, N]
        return self.sharing.unflatten(covariance, (items, items)).to(self.logits.dtype)

    def log_marginals(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every item's marginal at once: ``(offset [..., N], log_probs [..., N, 2])`` with
        ``offset = 0`` and ``log_probs = [log P(i not in S), log P(i in S)]``. Where the Fisher
        law's members serve (module docstring), from its inclusion probabilities ``mu`` (the
        tree's) as ``[1 - mu, mu]``, exact to rounding in absolute terms, instead of its
        marginals one class at a time."""
        if self._bernoulli() is None:
            inside = self.mean
            probs = torch.stack([1 - inside, inside], -1).clamp(0, 1)
        else:
            inside, outside = self._inclusion_and_exclusion()
            probs = self.sharing.unflatten(torch.stack([outside, inside], -1),
                                           (self.num_classes, 2)).to(self.logits.dtype)
        log_probs = torch.where(probs > 0, probs.clamp_min(torch.finfo(probs.dtype).tiny).log(),
                                NEG_INF)
        offset = torch.zeros(probs.shape[:-1], dtype=torch.int64, device=probs.device)
        return offset, log_probs

    @eager
    def _sample_counts(self, sample_shape: torch.Size, permute: bool = False) -> torch.Tensor:
        """Exact draws, int64 ``[*sample_shape, *batch, N]``: by rejection where the proposals
        fit, else the Fisher law's sampler (the class order does not change the law)."""
        tilted = self._bernoulli()
        num = sample_shape.numel() * self.sharing.repeats
        count = None if tilted is None else bernoulli.proposals(tilted[4], num, self.num_classes)
        if count is None:
            return super()._sample_counts(sample_shape, permute)
        theta, k, tau, length, _ = tilted
        counts = bernoulli.sample(theta.detach(), k, num, tau, count)
        return self.sharing.unflatten_draws(counts, sample_shape, (self.num_classes,))
