"""``MultivariateFisherNCHypergeometric``: the exact, differentiable multivariate Fisher
noncentral hypergeometric distribution as a ``torch.distributions.Distribution``.

An urn holds ``m_i`` balls of class ``i`` (``i = 1..c``) with weights ``w_i = exp(logits_i)``;
``n`` balls are drawn. The probability of the class counts ``x`` is

    p(x; w) = prod_i C(m_i, x_i) w_i^x_i / P0,   0 <= x_i <= m_i,  sum_i x_i = n,

with ``P0 = [t^n] prod_i (1 + w_i t)^m_i``, computed by one of two engines
(``diffhypergeom.numerics.engines``): exact log-space tables for small urns, exponentially tilted
binomials and their characteristic function (FFT) for large ones.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch.distributions import register_kl

from diffhypergeom.laws.base import MAX_DENSE, check_count_dtype, with_graph_of
from diffhypergeom.laws.checks import TensorLike, check_bool, check_class_index, check_sample_shape
from diffhypergeom.laws.engine_law import FisherEngineLaw, eager
from diffhypergeom.laws.gradients import Gradient
from diffhypergeom.laws.marginal import UrnMarginal
from diffhypergeom.numerics.base import Window
from diffhypergeom.numerics.marginals import fisher_class_terms, support_bounds
from diffhypergeom.numerics.modes import fisher_mode
from diffhypergeom.numerics.sampling import RelaxedDraw
from diffhypergeom.numerics.special import NEG_INF, times_logit

__all__ = [
    "MultivariateFisherNCHypergeometric", "kl_mfnch_mfnch",
]



class MultivariateFisherNCHypergeometric(FisherEngineLaw):
    """Multivariate Fisher noncentral hypergeometric distribution over class counts.

    ``n`` balls are drawn together from an urn of ``m_i`` balls of class ``i``, biased by the
    weights ``w_i``: ``p(x) = prod_i C(m_i, x_i) w_i^x_i / P0`` on ``0 <= x_i <= m_i``,
    ``sum_i x_i = n`` (``docs/design/index.md`` section 1).

    Args:
        population: ``[..., c]`` balls per class ``m`` (non-negative integers).
        draws: ``[...]`` or int, balls drawn ``n`` (``0 <= n <= sum m``).
        logits: ``[..., c]`` log-weights ``log w`` (finite). Exactly one of ``logits`` and
            ``weights`` must be given; only differences of logits matter.
        weights: ``[..., c]`` weights ``w >= 0``; a zero weight means the class is never drawn.
        engine: ``"auto"`` (default) takes the cheaper of the two engines for this urn (see
            ``diffhypergeom.numerics.engines``); ``"logspace"``: exact tables, ``O(n * N)`` time and
            memory; ``"fft"``: tilted binomials, ``O(c * sigma)``, accurate to ~1e-14. Every
            member works with both.
        gradient: the pathwise gradient ``rsample(sample_shape)`` gives: ``"mean"``
            (default), ``"gumbel"`` or ``"gumbel-rao"`` (``rsample`` describes each;
            ``diffhypergeom.laws.gradients``).
        temperature, permute, couple_rows, rao_samples: that gradient's options (``None``: its
            default); an option the chosen gradient does not use is a ``ValueError``.
        max_support: the most points ``enumerate_support`` lists (default
            ``diffhypergeom.numerics.support.MAX_ENUMERATE_SUPPORT``).
        validate_args: as in ``torch.distributions``; when on, ``log_prob`` raises for values
            outside the support.

    Shapes: ``batch_shape`` broadcasts ``population.shape[:-1]``, ``draws.shape`` and
    ``logits.shape[:-1]``; ``event_shape == (c,)``. Counts (``sample``, ``rsample``,
    ``enumerate_support``) come in the floating dtype of the logits, as from torch's
    ``Multinomial``. Engines compute in float64; results have the floating dtype of
    ``logits``/``weights``.

    Every member is exact: ``sample``, ``rsample``'s forward values, ``log_prob``, ``mean``,
    ``variance``, ``covariance_matrix``, ``entropy``, the marginals and the KL divergence.
    How ``rsample`` forms its gradient is chosen per call (``gradient=``); soft counts are
    another law: ``RelaxedMultivariateFisherNCHypergeometric``.

    Weights of exactly zero: the gradients of ``log_normalizer``, ``log_prob``, ``mean``,
    ``variance``, ``covariance_matrix`` and the marginals in such a weight are their one-sided
    limits (``w -> 0+``), from one first-order mixture (``_zero_weight_tangent``). Infinite
    limits are reported as 0: the entropy's and the KL divergence's (``w log w``), and a
    marginal's at a count of probability zero that becomes possible (in log space).

    Example:
        >>> import torch
        >>> from diffhypergeom import MultivariateFisherNCHypergeometric
        >>> urn = dict(population=torch.tensor([4, 5, 6]), draws=7,
        ...            weights=torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64))
        >>> d = MultivariateFisherNCHypergeometric(**urn)
        >>> d.mean
        tensor([1.9046, 3.2862, 1.8092], dtype=torch.float64)
        >>> round(float(d.log_prob(torch.tensor([2.0, 4.0, 1.0]))), 4)
        -1.8608
        >>> d.sample((3,)).sum(-1)
        tensor([7., 7., 7.], dtype=torch.float64)
    """

    has_rsample = True

    def __init__(self, population: TensorLike, draws: TensorLike,
                 logits: TensorLike | None = None, weights: TensorLike | None = None, *,
                 engine: str = "auto", gradient: str = "mean",
                 temperature: float | torch.Tensor | None = None, permute: bool | None = None,
                 couple_rows: bool | None = None, rao_samples: int | None = None,
                 max_support: int | None = None, validate_args: bool | None = None):
        self.gradient = Gradient(gradient, temperature, permute, couple_rows, rao_samples)
        self.gradient.settings()  # checked now, not at the first rsample
        super().__init__(population, draws, logits, weights, engine=engine,
                         max_support=max_support, validate_args=validate_args)

    def _repr_settings(self) -> dict[str, str]:
        settings = super()._repr_settings()
        if self.gradient != Gradient():
            chosen = {k: v for k, v in self.gradient._asdict().items() if v is not None}
            settings |= {k if k != "name" else "gradient": repr(v) for k, v in chosen.items()}
        return settings

    # ------------------------------------------------------------------ densities
    def log_normalizer(self) -> torch.Tensor:
        """``[...]``: ``A(theta) = log P0``, the log-partition function (differentiable)."""
        value = self.sharing.unflatten(self._urn().log_normalizer)
        term = self._zero_weight_term()
        return (value if term is None else value + term).to(self.logits.dtype)

    def _zero_weight_term(self) -> torch.Tensor | None:
        """``[...]``, value 0: gives ``A``'s gradient in a weight that is exactly zero its true
        (one-sided) value ``m_i P0(n - 1) / P0(n)``, which ``log w`` cannot carry."""
        found = self._zero_weight_tangent()
        return None if found is None else found[0].sum(-1)

    def _zero_weight_tangent(self) -> tuple[torch.Tensor, MultivariateFisherNCHypergeometric
                                            ] | None:
        """What every member's gradient in a weight that is exactly zero is built from.

        To first order in a zero weight ``w_i``, the law is the mixture ``(1 - eps_i) p +
        eps_i p_i``, ``eps_i = w_i m_i P0(n - 1) / P0(n)``, where ``p_i`` draws one ball of class
        ``i`` and ``n - 1`` from the urn as it is. Returns ``eps [..., c]`` (float64, value 0,
        carrying that gradient) and the law with one draw fewer; ``None`` unless this
        distribution was built from ``weights`` with a zero entry and gradients are recorded.
        """
        weights = self._weights
        if weights is None or not (weights.requires_grad and torch.is_grad_enabled()):
            return None
        with torch.no_grad():
            fewer = (self.draws - 1).clamp_min(0)
            below = self._copy_with(self.population, fewer, self.logits.detach(), None)
            gap = (below.sharing.unflatten(below._urn().log_normalizer)
                   - self.sharing.unflatten(self._urn().log_normalizer))
            slope = self.population.to(torch.float64) * gap.exp().unsqueeze(-1)
            slope = torch.where((weights == 0) & (self.draws > 0).unsqueeze(-1), slope, 0.0)
        return weights.to(torch.float64) * slope, below

    def _zero_weight_shift(self, below: MultivariateFisherNCHypergeometric, mean: torch.Tensor
                           ) -> torch.Tensor:
        """``[..., c, c]``: ``E_{p_i}[X] - E_p[X]`` in row ``i`` (detached)."""
        with torch.no_grad():
            shifted = below.sharing.unflatten(below._urn().mean(), (self.num_classes,))
            return (shifted - mean.detach()).unsqueeze(-2) + torch.eye(
                self.num_classes, dtype=torch.float64, device=mean.device)

    def log_prob(self, value: TensorLike) -> torch.Tensor:
        """Exact normalised log-PMF, ``[*sample, *batch]``.

        With validation on (torch's default), values outside the support raise a
        ``ValueError``. With ``validate_args=False`` they get ``-inf`` outside the ranges
        ``0 <= x_i <= m_i`` or off the total ``n``, and non-integer values inside (not points of
        the law) get the continuous extension of the PMF through ``lgamma`` (``C(m, x) =
        Gamma(m + 1) / (Gamma(x + 1) Gamma(m - x + 1))``), as surrogate losses on relaxed
        counts use it. Differentiable in ``logits`` and in ``value``.
        """
        x, inside, sample_shape = self._counts(value)
        urn = self._urn()
        x_safe = torch.where(inside.unsqueeze(-1), x, torch.zeros_like(x))
        out = torch.where(inside, urn.log_prob(x_safe), NEG_INF)
        out = self.sharing.unflatten_draws(out, sample_shape)
        term = self._zero_weight_term()
        return (out if term is None else out - term).to(self.logits.dtype)

    # ------------------------------------------------------------------ marginals, moments
    def marginal(self, i: int) -> UrnMarginal:
        """The law of class ``i``'s count, ``UrnMarginal`` (batch shape ``batch_shape``): exact
        ``log_prob``, tails (``cdf``, ``log_cdf``, ``log_sf``) and quantiles (``icdf``) in log
        space however small, ``mode``, and the table ``probs`` over ``0..max m_i``.

        ``log P(X_i = k) = log C(m_i, k) + k theta_i + A_{-i}(n - k) - A(n)``
        (``numerics.marginals``): for two classes a closed form, normalised by summing it over
        the support; for more, the log-space engine's own marginals where it computes the urn
        (exact at every count), else one urn without class ``i`` per count, each computed at
        its own saddle point. The one-sided gradient in a weight that is exactly zero
        (``_zero_weight_tangent``) is carried by ``probs`` only."""
        i = check_class_index(i, self.num_classes)
        c = self.num_classes
        flat = self.sharing.base_shape.numel()
        theta = self.sharing.narrow(self.logits).reshape(flat, c).to(torch.float64)
        population = self.sharing.narrow(self.population).reshape(flat, c)
        population = torch.where(theta > NEG_INF, population, 0)
        draws = self.sharing.narrow(self.draws).reshape(flat)
        low, high = support_bounds(population, draws, i)
        shift = torch.where(population > 0, theta, NEG_INF).detach().amax(-1, keepdim=True)
        shift = torch.where(torch.isfinite(shift), shift, 0.0)
        theta = theta - shift
        dense = None
        if self._zero_weight_tangent() is not None:
            size = int(self.population[..., i].max()) + 1 if self.population.numel() else 1
            dense = functools.partial(self._tangent_marginal, i, size)
        log_normalizer = None
        if c > 2 and self._urn().name == "logspace":
            window = self._urn().log_marginals()[i]

            def terms(rows: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
                return Window(window.offset[rows], window.log_prob[rows]).at(counts.long())

            log_normalizer = torch.zeros(flat, dtype=torch.float64, device=theta.device)
        else:
            def terms(rows: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
                return fisher_class_terms(population[rows], draws[rows], theta[rows], i, counts,
                                          self.engine)

        return UrnMarginal(self, i, terms, low, high, log_normalizer, dense)

    def _tangent_marginal(self, i: int, size: int) -> torch.Tensor:
        """``[*batch, size]``: ``P(X_i = k)`` with the first-order term of the weights that
        are exactly zero, in linear space: a count of probability zero keeps its term ``eps
        p_i(k)``, which log space would lose."""
        if size * self.batch_shape.numel() > MAX_DENSE:
            raise ValueError(f"marginal({i}).probs would hold {size:,} counts per urn; use "
                             f"log_marginal({i}), which keeps only the counts that can occur")
        eps, below = self._zero_weight_tangent()
        probs = self._dense_marginal(self, i, size)
        with torch.no_grad():
            other = self._dense_marginal(below, i, size)
            fixed = probs.detach()
            shifted = torch.nn.functional.pad(other, (1, 0))[..., :size]
        own = eps[..., i].unsqueeze(-1)
        probs = (probs + (eps.sum(-1, keepdim=True) - own) * (other - fixed)
                 + own * (shifted - fixed))
        return probs.to(self.logits.dtype)

    @property
    def mode(self) -> torch.Tensor:
        """``[..., c]``: the most probable count vector, exact (``numerics.modes.fisher_mode``:
        the law is a sum of concave terms, so no better move of one ball means the maximum);
        of tied ones (log-probabilities within ``numerics.tails.TIE``) the lexicographically
        largest. For two classes BiasedUrn's ``modeFNCHypergeo`` (``x_1``)."""
        c = self.num_classes
        flat = self.sharing.base_shape.numel()
        theta = self.sharing.narrow(self.logits).reshape(flat, c).to(torch.float64).detach()
        population = self.sharing.narrow(self.population).reshape(flat, c)
        population = torch.where(theta > NEG_INF, population, 0)
        found = fisher_mode(population, self.sharing.narrow(self.draws).reshape(flat), theta)
        return self.sharing.unflatten(found, (c,)).to(self.logits.dtype)

    @staticmethod
    def _dense_marginal(dist: MultivariateFisherNCHypergeometric, i: int, size: int
                        ) -> torch.Tensor:
        """``[*batch, size]`` float64: ``P(X_i = k)`` of ``dist``'s own urns (no zero-weight
        term), ``k = 0 .. size - 1``."""
        window = dist._urn().log_marginals()[i]
        return dist.sharing.unflatten(Window(window.offset, window.log_prob).dense(size),
                                      (size,)).exp()

    def log_marginal(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact marginal of class ``i`` where it can be non-negligible: ``(offset [...],
        log_probs [..., W])``, ``log p(x_i = offset + j) = log_probs[..., j]`` (``W`` is ``m_i
        + 1`` with the log-space engine, a window of ``O(sigma_i)`` counts with the FFT one)."""
        offset, log_prob = self._marginal_window(check_class_index(i, self.num_classes))
        if self._zero_weight_tangent() is None:
            width = log_prob.shape[-1]
            sharing = self.sharing
            offset, log_prob = sharing.unflatten(offset), sharing.unflatten(log_prob, (width,))
        return offset, log_prob.to(self.logits.dtype)

    def log_marginals(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every class's exact marginal at once: ``(offset [..., c], log_probs [..., c, W])``
        with ``log p(x_i = offset_i + j) = log_probs[..., i, j]`` (the windows of
        ``log_marginal``, from one computation of the engine, padded with ``-inf`` to the
        widest)."""
        windows = [self.log_marginal(i) for i in range(self.num_classes)]
        width = max(log_prob.shape[-1] for _, log_prob in windows)
        log_probs = torch.stack([F.pad(log_prob, (0, width - log_prob.shape[-1]), value=NEG_INF)
                                 for _, log_prob in windows], -2)
        return torch.stack([offset for offset, _ in windows], -1), log_probs

    def _marginal_window(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Class ``i``'s log-marginal window, float64: per distinct urn (``[B]``, ``[B, W]``),
        or, while a weight that is exactly zero carries a gradient, per batch entry
        (``[*batch]``, ``[*batch, W]``) with that weight's first-order term (the mixture of
        ``_zero_weight_tangent``; at counts of probability zero the limit is infinite in log
        space and the term is 0)."""
        window = self._urn().log_marginals()[i]
        found = self._zero_weight_tangent()
        if found is None:
            return window.offset, window.log_prob
        eps, below = found
        width = window.log_prob.shape[-1]
        offset = self.sharing.unflatten(window.offset)
        log_prob = self.sharing.unflatten(window.log_prob, (width,))
        with torch.no_grad():
            other = below._urn().log_marginals()[i]
            other_offset = below.sharing.unflatten(other.offset)
            other_log_prob = below.sharing.unflatten(other.log_prob, (other.log_prob.shape[-1],))
            counts = offset.unsqueeze(-1) + torch.arange(width, device=offset.device)
            finite = torch.isfinite(log_prob)

            component = Window(other_offset, other_log_prob)

            def ratio(at: torch.Tensor) -> torch.Tensor:
                """``p_j(k) / p(k) - 1`` for the mixture component's counts ``at``."""
                found = component.at(at)
                return torch.where(finite, (found - log_prob.detach()).exp() - 1, 0.0)

            step_other, step_self = ratio(counts), ratio(counts - 1)
        own = eps[..., i]
        term = (eps.sum(-1) - own).unsqueeze(-1) * step_other + own.unsqueeze(-1) * step_self
        return offset, log_prob + term

    @property
    def mean(self) -> torch.Tensor:
        """Exact ``E[x]``, shape ``[..., c]`` (the gradient of the log-partition function)."""
        mean = self.sharing.unflatten(self._urn().mean(), (self.num_classes,))
        found = self._zero_weight_tangent()
        if found is not None:
            eps, below = found
            shift = self._zero_weight_shift(below, mean)
            mean = mean + (eps.unsqueeze(-1) * shift).sum(-2)
        return with_graph_of(mean.to(self.logits.dtype), self.logits)

    @property
    def variance(self) -> torch.Tensor:
        """Exact ``Var[x_i]``, shape ``[..., c]``: from the marginals, or, for an urn whose
        marginals are too wide to compute (``fft.MAX_TRANSFORM_WORK``), the diagonal of the
        Hessian of the log-partition function (``c`` backward passes)."""
        variance = self._plain_variance(self)
        found = self._zero_weight_tangent()
        if found is not None:
            eps, below = found
            with torch.no_grad():
                mean = self.sharing.unflatten(self._urn().mean(), (self.num_classes,))
                below_variance = self._plain_variance(below)
                step = (below_variance - variance.detach()).unsqueeze(-2) \
                    + self._zero_weight_shift(below, mean).square()
            variance = variance + (eps.unsqueeze(-1) * step).sum(-2)
        return variance.to(self.logits.dtype)

    @staticmethod
    def _plain_variance(dist: MultivariateFisherNCHypergeometric) -> torch.Tensor:
        """``[..., c]`` float64: ``dist``'s variance without the zero-weight term."""
        try:
            return dist.sharing.unflatten(dist._urn().moments()[1], (dist.num_classes,))
        except ValueError:  # marginals beyond the transform's limit: the Hessian needs none
            differentiable = dist.logits.requires_grad and torch.is_grad_enabled()
            return dist._covariance(differentiable).diagonal(dim1=-2, dim2=-1)

    @property
    def covariance_matrix(self) -> torch.Tensor:
        """Exact covariance, shape ``[..., c, c]``: the Hessian of the log-partition function
        ``d E[x_i] / d theta_j`` (by autograd; differentiable when ``logits`` require grad).
        The only member that builds ``c x c``."""
        cov = self._covariance(self.logits.requires_grad and torch.is_grad_enabled())
        found = self._zero_weight_tangent()
        if found is not None:
            eps, below = found
            with torch.no_grad():
                mean = self.sharing.unflatten(self._urn().mean(), (self.num_classes,))
                shift = self._zero_weight_shift(below, mean)
                step = (below._covariance(False) - cov.detach()).unsqueeze(-3) \
                    + shift.unsqueeze(-1) * shift.unsqueeze(-2)
            cov = cov + (eps[..., None, None] * step).sum(-3)
        return cov.to(self.logits.dtype)

    def _covariance(self, differentiable: bool) -> torch.Tensor:
        """``[..., c, c]`` float64: the Hessian of ``A``, one autograd row per class."""
        with torch.enable_grad():
            theta = self.logits.to(torch.float64)
            if not differentiable:
                theta = theta.detach().requires_grad_()
            urn = self._build_urn(theta)
            theta = urn.theta
            means = urn.mean()
            rows = [torch.zeros_like(theta)] * self.num_classes
            if means.requires_grad:  # an urn with one point of support has none to take
                rows = [torch.autograd.grad(means[:, i].sum(), theta, retain_graph=True,
                                            create_graph=differentiable, allow_unused=True)[0]
                        for i in range(self.num_classes)]
                rows = [torch.zeros_like(theta) if row is None else row for row in rows]
        c = self.num_classes
        return self.sharing.unflatten(torch.stack(rows, dim=-2), (c, c))

    def entropy(self) -> torch.Tensor:
        """``[...]``: exact ``-E[log p(x)]``."""
        return self.sharing.unflatten(self._urn().entropy()).to(self.logits.dtype)

    def _kl_to(self, other: MultivariateFisherNCHypergeometric) -> torch.Tensor:
        """``KL(self || other)`` for the same urn and batch shape (``kl_mfnch_mfnch``)."""
        difference = other.logits.to(torch.float64) - self.logits.to(torch.float64)
        mean = self.sharing.unflatten(self._urn().mean(), (self.num_classes,))
        # classes self never draws contribute nothing, whatever other's weight
        inner = times_logit(mean, torch.where(mean == 0, 0.0, difference)).sum(-1)
        kl = (other.sharing.unflatten(other._urn().log_normalizer)
              - self.sharing.unflatten(self._urn().log_normalizer) - inner)
        return kl.to(torch.promote_types(self.logits.dtype, other.logits.dtype))

    # ------------------------------------------------------------------ sampling
    def sample(self, sample_shape: Sequence[int] = torch.Size(), permute: bool = False
               ) -> torch.Tensor:
        """Exact draws ``[*sample_shape, *batch, c]`` in the floating dtype of the logits.

        ``permute=True`` visits the classes in a random order (one order per call; the law is
        the same, only which sampler rows are computed changes)."""
        check_bool(permute, "permute")
        check_count_dtype(self.logits.dtype, self.draws)
        return self._sample_counts(check_sample_shape(sample_shape), permute).to(self.logits.dtype)

    @eager
    def _sample_counts(self, sample_shape: torch.Size, permute: bool = False) -> torch.Tensor:
        """Exact draws, int64 ``[*sample_shape, *batch, c]`` (``Urn.sample``: the log-depth tree
        where it pays, else the sequential sampler)."""
        dist, inverse = self._permuted(permute)
        counts = dist._urn().sample(sample_shape.numel() * dist.sharing.repeats)
        if inverse is not None:
            counts = counts[..., inverse]
        return dist.sharing.unflatten_draws(counts, sample_shape, (self.num_classes,))

    def rsample(self, sample_shape: Sequence[int] = torch.Size(), *,
                gradient: str | None = None, temperature: float | torch.Tensor | None = None,
                permute: bool | None = None, couple_rows: bool | None = None,
                rao_samples: int | None = None) -> torch.Tensor:
        """Exact draws ``[*sample_shape, *batch, c]`` (floating, summing to ``draws``) whose
        backward pass is the pathwise gradient chosen in the constructor (``gradient=`` and its
        options; ``diffhypergeom.laws.gradients``), which is what ``rsample(sample_shape)``
        gives to torch and Pyro code. The same keywords here override that choice for one call
        (a different ``gradient`` starts from its own defaults). The gradients:

        - ``"mean"`` (default): the gradient of the exact mean, ``d x / d theta = d E[X] /
          d theta = Cov(X)`` (a Hessian-vector product of the log-normaliser; nothing
          ``c x c``). It has no class order and no temperature; for linear ``f`` it is the
          exact gradient of ``E[f(X)]``, and for smooth ``f`` its bias is that of Stein's
          identity ``Cov(f(X), X) ~ Cov(X) E[grad f]``. On the urn of ``diffhypergeom
          gradients``: relative bias 0 (linear), 0.05-0.08 (quadratic, product, exponential),
          0.16-0.20 on steep sigmoid steps, none through a hard step.
        - ``"gumbel"``: straight-through Gumbel-softmax over the sequential conditionals at
          ``temperature`` (default 1.0; a tensor broadcasting to ``sample_shape + batch_shape``
          may be learnt). ``permute`` (default True) visits the classes in a new random order
          per call (one order for all samples of the call, as in the published code);
          ``couple_rows=True`` (default False) gives the balls left for later classes a
          gradient path (three times the rows). On the same urn at ``temperature=0.5`` the
          bias on smooth ``f`` was 0.30-0.93 with a fixed order, 0.06-0.45 with coupling, and
          0.04-0.07 averaged over random orders.
        - ``"gumbel-rao"``: the same, Rao-Blackwellised over ``rao_samples`` (default 10)
          draws of the Gumbel noise given each hard count (Paulus et al. 2021): the same bias,
          about half the spread with a fixed order.

        Keywords that do not apply to the chosen gradient raise a ``ValueError``. The forward
        values are exact draws of this law whatever the gradient; for soft (non-integer)
        Gumbel-softmax counts use ``RelaxedMultivariateFisherNCHypergeometric``."""
        chosen = self.gradient.override(gradient, temperature=temperature, permute=permute,
                                        couple_rows=couple_rows, rao_samples=rao_samples)
        return self._rsample(check_sample_shape(sample_shape), chosen, None).counts

    def rsample_detailed(self, sample_shape: Sequence[int] = torch.Size(), *,
                         gradient: str | None = None,
                         temperature: float | torch.Tensor | None = None,
                         permute: bool | None = None, couple_rows: bool | None = None,
                         rao_samples: int | None = None) -> RelaxedDraw:
        """Like ``rsample`` (the constructor's gradient, or these keywords), also returning the
        per-class relaxed one-hot vectors and the log-probability of the draw (see
        ``RelaxedDraw``). With ``gradient="mean"`` the one-hot
        vector of class ``i`` carries the gradient of its exact marginal ``P(x_i = k)``."""
        sample_shape = check_sample_shape(sample_shape)
        width = int(self.population.max()) + 1 if self.population.numel() else 1
        if width * self.num_classes * self.batch_shape.numel() \
                * max(sample_shape.numel(), 1) > MAX_DENSE:
            raise ValueError(f"rsample_detailed's one-hot vectors would hold {width:,} counts "
                             f"per class and sample; use rsample for urns this large")
        chosen = self.gradient.override(gradient, temperature=temperature, permute=permute,
                                        couple_rows=couple_rows, rao_samples=rao_samples)
        return self._rsample(sample_shape, chosen, width)

    @eager
    def _rsample(self, sample_shape: torch.Size, chosen: Gradient, width: int | None
                 ) -> RelaxedDraw:
        settings, permute = chosen.settings()
        if settings is None:
            check_count_dtype(self.logits.dtype, self.draws)
            return self._mean_straight_through(sample_shape, width)
        return self._gumbel_draw(sample_shape, settings, permute, width)

    def _mean_straight_through(self, sample_shape: torch.Size, width: int | None
                               ) -> RelaxedDraw:
        """Exact draws whose gradient is that of ``E[X]`` (and of each class's marginal)."""
        dtype = self.logits.dtype
        mean = self.mean  # before sampling, so that the cached tables keep their gradient
        hard = self._sample_counts(sample_shape)
        counts = hard.to(dtype) + (mean - mean.detach())
        if width is None:
            return RelaxedDraw(counts, None, None)
        urn = self._urn()
        probs = torch.stack([w.dense(width).exp() for w in urn.log_marginals()], dim=-2)
        probs = self.sharing.unflatten(probs.to(dtype), (self.num_classes, width))
        one_hot = F.one_hot(hard, width).to(dtype) + (probs - probs.detach())
        return RelaxedDraw(counts, one_hot, self.log_prob(hard))


@register_kl(MultivariateFisherNCHypergeometric, MultivariateFisherNCHypergeometric)
def kl_mfnch_mfnch(p: MultivariateFisherNCHypergeometric, q: MultivariateFisherNCHypergeometric
                   ) -> torch.Tensor:
    """Exact ``KL(p || q)``, ``[*batch]`` with the batch shapes broadcast; ``p`` and ``q`` must
    share population and draws. MFNCH is an exponential family in ``theta = logits`` with
    sufficient statistic ``x``, so ``KL = A(phi) - A(theta) - (phi - theta) . E_theta[x]``.
    Computed in float64 from both log-normalisers and ``p``'s mean, and returned in the
    promoted dtype of their logits.

    Example:
        ``torch.distributions.kl_divergence`` dispatches to it; the same KL as a sum over the 26
        points of the support:

        >>> import torch
        >>> from diffhypergeom import MultivariateFisherNCHypergeometric as Fisher
        >>> p = Fisher(torch.tensor([4, 5, 6]), 7,
        ...            weights=torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64))
        >>> q = Fisher(p.population, p.draws, logits=torch.zeros(3, dtype=torch.float64))
        >>> x = p.enumerate_support()
        >>> (torch.distributions.kl_divergence(p, q),
        ...  (p.log_prob(x).exp() * (p.log_prob(x) - q.log_prob(x))).sum())
        (tensor(0.6601, dtype=torch.float64), tensor(0.6601, dtype=torch.float64))
    """
    if p.event_shape != q.event_shape:
        raise ValueError(f"kl_divergence needs equal event shapes (classes), got "
                         f"{tuple(p.event_shape)} and {tuple(q.event_shape)}")
    try:
        batch = torch.broadcast_shapes(p.batch_shape, q.batch_shape)
    except RuntimeError as err:
        raise ValueError(f"kl_divergence: batch shapes {tuple(p.batch_shape)} and "
                         f"{tuple(q.batch_shape)} do not broadcast") from err
    p, q = (d if d.batch_shape == batch else d.expand(batch) for d in (p, q))
    if not (bool((p.population == q.population).all()) and bool((p.draws == q.draws).all())):
        raise ValueError("kl_divergence needs two distributions with the same population and "
                         "draws (only the weights may differ)")
    return p._kl_to(q)
