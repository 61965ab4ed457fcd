"""``MultivariateWalleniusNCHypergeometric``: the law of weighted sampling without replacement.

``n`` balls are drawn one at a time from an urn of ``m_i`` balls of class ``i``, each draw
taking a ball with probability proportional to its weight ``w_i = exp(logits_i)``: the law of
``torch.multinomial(ball_weights, n, replacement=False)``, of Gumbel-top-k and of
Plackett-Luce prefixes, counted per class. The probability of the counts ``x`` is

    p(x) = prod_i C(m_i, x_i) integral_0^1 prod_i (1 - t^(w_i / d))^x_i dt,
    d = sum_i w_i (m_i - x_i),

computed as ``integral_0^inf d prod_i Bin(x_i; m_i, 1 - e^{-w_i u}) du`` by the quadrature of
``diffhypergeom.numerics.wallenius`` (relative error below 1e-10, checked at every call; 2e-14
against exact recursions in the tests). It differs from the Fisher law, which draws the balls
together: for ``w = [1, 2, 3, 4]``, one ball each and ``n = 2``, ``P({3, 4})`` is 0.371 here
and 0.343 under Fisher.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from diffhypergeom.laws.base import MAX_DENSE, UrnDistribution, check_count_dtype, with_graph_of
from diffhypergeom.laws.checks import TensorLike, check_class_index, check_sample_shape
from diffhypergeom.laws.marginal import UrnMarginal
from diffhypergeom.numerics import support as support_module
from diffhypergeom.numerics import wallenius as quadrature
from diffhypergeom.numerics.marginals import support_bounds
from diffhypergeom.numerics.modes import exchange_mode, round_to_total
from diffhypergeom.numerics.special import NEG_INF

__all__ = ["ENTROPY_SAMPLES", "GAP", "MARGINAL_BLOCK", "MAX_SPREAD",
           "MultivariateWalleniusNCHypergeometric"]

# exact draws of the Monte Carlo entropy of urns whose support is too large to sum over
ENTROPY_SAMPLES = 4096
# logits further apart than this split an urn into tiers drawn one after the other
# (``_reduced``): a lighter ball goes before a heavier one with probability below e^-GAP
# (1e-87: nothing in float64)
GAP = 200.0
# widest spread of the drawable classes' logits that log_prob resolves (measured: 1e-11
# relative at 1e6, the quadrature's tolerance missed at 1e8)
MAX_SPREAD = 1e6
# counts of a marginal that share one set of quadrature nodes (``quadrature.log_prob_block``)
MARGINAL_BLOCK = 16


class MultivariateWalleniusNCHypergeometric(UrnDistribution):
    """Multivariate Wallenius noncentral hypergeometric distribution over class counts (see the
    module docstring).

    Args:
        population: ``[..., c]`` balls per class ``m`` (non-negative integers).
        draws: ``[...]`` or int, balls drawn ``n`` (``0 <= n <= sum m``).
        logits: ``[..., c]`` log-weights ``log w`` (finite); or ``weights`` ``[..., c]``,
            ``w >= 0`` (a zero weight: the class is never drawn). Only ratios of weights
            matter.
        engine: the engine of the Fisher laws the moments are mixed from
            (``diffhypergeom.numerics.engines``).
        max_support, validate_args: as in ``MultivariateFisherNCHypergeometric``.

    Shapes as in the Fisher class: ``batch_shape`` broadcasts ``population.shape[:-1]``,
    ``draws.shape`` and ``logits.shape[:-1]``; ``event_shape == (c,)``; counts come in the
    logits' floating dtype.

    Members:
        - ``log_prob``: exact (quadrature checked to 1e-10 relative), differentiable in the
          logits; correct deep in the tails.
        - ``sample``: exact draws by exponential clocks (``numerics.wallenius.clock_sample``),
          ``O(c log N)`` work per draw whatever the class sizes.
        - ``rsample``: the same draws carrying the gradient of the exact mean (``x + E[X] -
          E[X].detach()``): exact for linear losses, biased otherwise (it is not
          ``Cov(X)``-based: the law is not an exponential family).
        - ``mean``, ``variance``, ``covariance_matrix``: exact, as integrals over the time of
          the draw of Fisher moments (differentiable; the covariance costs ``2 c`` backward
          passes through the Fisher engine).
        - ``marginal(i)``, ``log_marginal(i)``: exact, from the same mixture (the Fisher
          marginals' derivative along ``w`` by double-backward).
        - ``entropy``: exact by summing over the support (at most ``max_support`` points);
          beyond that a Monte Carlo estimate with the exact ``log_prob``, said so.
        - ``enumerate_support``.

    Example:
        >>> import torch
        >>> from diffhypergeom import MultivariateWalleniusNCHypergeometric
        >>> urn = dict(population=torch.tensor([4, 5, 6]), draws=7,
        ...            weights=torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64))
        >>> d = MultivariateWalleniusNCHypergeometric(**urn)
        >>> d.mean
        tensor([1.8521, 3.5737, 1.5742], dtype=torch.float64)
        >>> round(float(d.log_prob(torch.tensor([2.0, 4.0, 1.0]))), 4)
        -1.6085
    """

    has_rsample = True

    def _flat(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per distinct urn: drawable population ``[B, c]`` (int64, zero where the weight is),
        draws ``[B]`` and log-weights ``[B, c]`` (float64; ``-inf`` for an empty class, which
        changes nothing whatever its logit)."""
        c, flat = self.num_classes, self.sharing.base_shape.numel()
        log_w = self.sharing.narrow(self.logits).reshape(flat, c).to(torch.float64)
        population = self.sharing.narrow(self.population).reshape(flat, c)
        population = torch.where(log_w > NEG_INF, population, torch.zeros_like(population))
        log_w = torch.where(population > 0, log_w, NEG_INF)
        return population, self.sharing.narrow(self.draws).reshape(flat), log_w

    def _reduced(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``_flat``'s urns with the classes that are drawn for sure set aside: where the
        logits fall apart by more than ``GAP`` (sorted, a gap between neighbours), every ball
        of the heavier tiers is drawn before any lighter one (to ``e^-GAP``, below float64's
        resolution), so the tiers that ``draws`` exhausts are ``fixed`` ``[B, c]`` and those
        after the one it ends in are never reached. Returns the population of that tier alone,
        the draws left for it, the log-weights and ``fixed``."""
        return _tiers(*self._flat())

    def log_prob(self, value: TensorLike) -> torch.Tensor:
        """``[*sample, *batch]``: the exact log-probability. With validation on, values outside
        the support raise a ``ValueError``; with ``validate_args=False`` they get ``-inf``, and
        non-integer counts inside the ranges the continuous (``lgamma``) extension."""
        x, inside, sample_shape = self._counts(value)
        population, draws, log_w = self._flat()
        self._check_spread(population, log_w)
        m = population.to(torch.float64).unsqueeze(0)
        x_safe = torch.where(inside.unsqueeze(-1), x, _greedy(population, draws).unsqueeze(0))
        out = quadrature.log_prob(x_safe, m, log_w.unsqueeze(0))
        # an urn with one point of support gives it probability one, exactly
        out = torch.where(_settled(population, draws), 0.0, out)
        out = torch.where(inside, out, NEG_INF)
        return self.sharing.unflatten_draws(out, sample_shape).to(self.logits.dtype)

    @staticmethod
    def _check_spread(population: torch.Tensor, log_w: torch.Tensor) -> None:
        """A ``ValueError`` where the drawable classes' logits spread beyond ``MAX_SPREAD``."""
        spread = float(quadrature.logit_spread(population, log_w).max()) \
            if population.numel() else 0.0
        if spread > MAX_SPREAD:
            raise ValueError(f"logits: the drawable classes' logits spread by {spread:.3g}; "
                             f"log_prob resolves spreads up to {MAX_SPREAD:.0e} (only "
                             f"differences matter)")

    def sample(self, sample_shape: Sequence[int] = torch.Size()) -> torch.Tensor:
        """Exact draws ``[*sample_shape, *batch, c]`` in the logits' floating dtype."""
        sample_shape = check_sample_shape(sample_shape)
        check_count_dtype(self.logits.dtype, self.draws)
        population, draws, log_w, fixed = self._reduced()
        counts = quadrature.clock_sample(population.to(torch.float64), draws, log_w.detach(),
                                         sample_shape.numel() * self.sharing.repeats) + fixed
        return self.sharing.unflatten_draws(counts, sample_shape, (self.num_classes,)
                                     ).to(self.logits.dtype)

    def rsample(self, sample_shape: Sequence[int] = torch.Size(), *, gradient: str = "mean"
                ) -> torch.Tensor:
        """Exact draws whose gradient is that of the exact mean (``gradient="mean"``, the only
        one): ``d x / d logits = d E[X] / d logits``."""
        if gradient != "mean":
            raise ValueError(f"gradient must be 'mean' for the Wallenius law, got {gradient!r}")
        mean = self.mean
        return self.sample(sample_shape) + (mean - mean.detach())

    # ------------------------------------------------------------------ moments
    def _mixture(self, population: torch.Tensor, draws: torch.Tensor, log_w: torch.Tensor
                 ) -> tuple[quadrature.Mixture | None, torch.Tensor]:
        """The Fisher mixture of the reduced urns (``_reduced``) that are not settled
        (``_settled``), and which those are ``[B]``."""
        settled = _settled(population, draws)
        if bool(settled.all()):
            return None, settled
        keep = ~settled
        return quadrature.mixture(population[keep], draws[keep], log_w[keep],
                                  self.engine), settled

    @property
    def mean(self) -> torch.Tensor:
        """Exact ``E[x]``, shape ``[..., c]``, differentiable in the logits."""
        population, draws, log_w, fixed = self._reduced()
        mix, settled = self._mixture(population, draws, log_w)
        mean = _greedy(population, draws) + fixed
        if mix is not None:
            mean = mean.index_put(((~settled).nonzero().squeeze(-1),),
                                  quadrature.mixture_mean(mix) + fixed[~settled])
        return with_graph_of(self.sharing.unflatten(mean, (self.num_classes,)
                                                    ).to(self.logits.dtype), self.logits)

    def marginal(self, i: int) -> UrnMarginal:
        """The law of class ``i``'s count, ``UrnMarginal`` (batch shape ``batch_shape``): exact
        ``log_prob``, tails (``cdf``, ``log_cdf``, ``log_sf``) and quantiles (``icdf``) in log
        space however small, ``mode``, and the table ``probs`` over ``0..max m_i``.

        For two classes ``log P(X_i = k)`` is ``log_prob`` of ``(k, n - k)``, computed a block
        of counts at a time on shared nodes (``numerics.wallenius.log_prob_block``). For more
        classes it is ``log_prob`` summed over the count vectors with ``x_i = k``
        (``numerics.wallenius.marginal_log_prob``): exact, for urns where those number at most
        ``max_support`` (``numerics.support.MAX_ENUMERATE_SUPPORT``) per count; beyond, the
        log-probabilities, tails, quantiles and mode raise a ``ValueError`` and only ``probs``
        is computed, from the Fisher mixture (``log_marginal``, about ``1e-12`` absolute)."""
        i = check_class_index(i, self.num_classes)
        population, draws, log_w = self._flat()
        self._check_spread(population, log_w)
        low, high = support_bounds(population, draws, i)
        m = population.to(torch.float64)
        zero = torch.zeros(len(draws), dtype=torch.float64, device=draws.device)
        centre = quadrature.mean_approximation(m, draws.to(torch.float64), log_w)[:, i]
        if self.num_classes > 2:
            limit = (support_module.MAX_ENUMERATE_SUPPORT if self.max_support is None
                     else self.max_support)

            def terms(rows: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
                return quadrature.marginal_log_prob(population[rows], draws[rows], log_w[rows],
                                                    i, counts, limit)

            def dense() -> torch.Tensor:
                return self.log_marginal(i)[1].exp()

            return UrnMarginal(self, i, terms, low, high, zero, dense, centre)
        j = 1 - i if self.num_classes == 2 else i

        def terms(rows: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
            x = torch.zeros(counts.shape + (self.num_classes,), dtype=torch.float64,
                            device=counts.device)
            x[..., j] = draws[rows].unsqueeze(-1).to(torch.float64) - counts
            x[..., i] = counts
            return torch.cat([quadrature.log_prob_block(x[:, a: a + MARGINAL_BLOCK], m[rows],
                                                         log_w[rows])
                              for a in range(0, counts.shape[-1], MARGINAL_BLOCK)], -1)

        return UrnMarginal(self, i, terms, low, high, zero, centre=centre)

    @property
    def mode(self) -> torch.Tensor:
        """``[..., c]``: the most probable count vector as far as moves of one ball from one
        class to another can tell (``numerics.modes.exchange_mode`` with the exact
        ``log_prob``, from Fog's approximate mean): no such move improves it, and of tied
        ones (within ``numerics.tails.TIE``) it is the lexicographically largest. For two
        classes this is BiasedUrn's ``modeWNCHypergeo``, exact where the law is unimodal (as
        ``numerics.tails`` assumes); for more it matched brute force on every small urn the
        tests enumerate, but the Wallenius law has no separable form that would prove it in
        general. Each step scores ``c (c - 1)`` count vectors."""
        population, draws, log_w = self._flat()
        self._check_spread(population, log_w)
        m = population.to(torch.float64)
        start = round_to_total(quadrature.mean_approximation(m, draws.to(torch.float64),
                                                             log_w.detach()), population, draws)

        def log_prob(x: torch.Tensor) -> torch.Tensor:
            return quadrature.log_prob(x, m, log_w.detach())

        found = exchange_mode(log_prob, start, population)
        return self.sharing.unflatten(found, (self.num_classes,)).to(self.logits.dtype)

    def log_marginal(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact marginal of class ``i`` as ``(offset [...], log_probs [..., W])`` with
        ``log p(x_i = offset + j) = log_probs[..., j]`` (here ``offset = 0``, ``W = max m_i +
        1``), from the Fisher mixture (differentiable in the logits)."""
        i = check_class_index(i, self.num_classes)
        offset, log_probs = self._log_marginals([i])
        return offset[..., 0], log_probs[..., 0, :]

    def log_marginals(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every class's exact marginal at once, from one Fisher mixture: ``(offset [..., c],
        log_probs [..., c, W])`` with ``offset = 0`` and ``W = max m + 1``."""
        return self._log_marginals(list(range(self.num_classes)))

    def _log_marginals(self, classes: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The marginals of ``classes``: ``(offset [..., C], log_probs [..., C, W])``, the logs
        of ``_marginal_probabilities``."""
        probs = self._marginal_probabilities(classes)
        log_probs = torch.where(probs > 0, probs.clamp_min(1e-300).log(), NEG_INF)
        offset = torch.zeros(self.batch_shape + (len(classes),), dtype=torch.int64,
                             device=log_probs.device)
        return offset, self.sharing.unflatten(log_probs, (len(classes), probs.shape[-1])
                                              ).to(self.logits.dtype)

    def _marginal_probabilities(self, classes: list[int]) -> torch.Tensor:
        """``[B, C, W]`` float64 per distinct urn: ``P(x_i = j)`` for the ``classes``, ``W =
        max m_i + 1``, from the Fisher mixture of the reduced urns."""
        population, draws, log_w, fixed = self._reduced()
        width = int(self.population[..., classes].max()) + 1 if population.numel() else 1
        if width * population.shape[0] * len(classes) > MAX_DENSE:
            raise ValueError(f"the marginals of classes {classes[:4]}... would hold {width:,} "
                             f"counts per urn and class")
        settled = _settled(population, draws)
        point = _greedy(population, draws).to(torch.int64)
        probs = torch.nn.functional.one_hot(point[:, classes], width).to(torch.float64)
        if not bool(settled.all()):
            keep = ~settled
            mix = quadrature.mixture(population[keep], draws[keep], log_w[keep], self.engine,
                                     marginals=True)
            found = quadrature.mixture_marginals(mix)
            pad = torch.nn.functional.pad
            marginal = torch.stack([pad(found[i], (0, width - found[i].shape[-1]))
                                    for i in classes], -2)
            probs = probs.index_put((keep.nonzero().squeeze(-1),), marginal.clamp_min(0))
        certain = torch.nn.functional.one_hot(fixed[:, classes], width).to(torch.float64)
        return torch.where((fixed[:, classes] > 0).unsqueeze(-1), certain, probs)

    @property
    def covariance_matrix(self) -> torch.Tensor:
        """Exact covariance, shape ``[..., c, c]`` (``2 c`` backward passes through the Fisher
        urns of the mixture)."""
        population, draws, log_w, _ = self._reduced()
        c = self.num_classes
        cov = torch.zeros(population.shape[0], c, c, dtype=torch.float64,
                          device=population.device)
        settled = _settled(population, draws)
        if not bool(settled.all()):
            keep = ~settled
            cov = cov.index_put((keep.nonzero().squeeze(-1),), quadrature.mixture_covariance(
                population[keep], draws[keep], log_w[keep], self.engine))
        return self.sharing.unflatten(cov, (c, c)).to(self.logits.dtype)

    @property
    def variance(self) -> torch.Tensor:
        """Exact ``Var[x_i]``, shape ``[..., c]``."""
        return self.covariance_matrix.diagonal(dim1=-2, dim2=-1)

    def entropy(self) -> torch.Tensor:
        """``[...]``: ``-E[log p(x)]``, exact by summing over the support when it has at most
        ``max_support`` points; beyond, a Monte Carlo estimate from ``ENTROPY_SAMPLES`` exact
        draws and the exact ``log_prob`` (not exact: its standard error is about the spread of
        ``log p`` over 64)."""
        try:
            points = self.enumerate_support(expand=False)
        except ValueError:
            return -self.log_prob(self.sample((ENTROPY_SAMPLES,))).mean(0)
        log_p = self.log_prob(points).to(torch.float64)
        terms = torch.where(log_p > NEG_INF, log_p.exp() * log_p, torch.zeros_like(log_p))
        return (-terms.sum(0)).to(self.logits.dtype)


def _tiers(population: torch.Tensor, draws: torch.Tensor, log_w: torch.Tensor
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``MultivariateWalleniusNCHypergeometric._reduced`` for flat urns ``[B, c]``."""
    key = torch.where(population > 0, log_w.detach(), NEG_INF)
    order = key.argsort(-1, descending=True)
    ranked, balls = key.gather(-1, order), population.gather(-1, order)
    jump = torch.zeros_like(ranked, dtype=torch.bool)
    jump[:, 1:] = (ranked[:, :-1] - ranked[:, 1:]) > GAP
    tier = jump.long().cumsum(-1)
    totals = torch.zeros_like(balls).scatter_add(-1, tier, balls)
    end = totals.cumsum(-1).gather(-1, tier)
    start = end - totals.gather(-1, tier)
    full = end <= draws.unsqueeze(-1)
    active = ~full & (start < draws.unsqueeze(-1))
    fixed = torch.zeros_like(population).scatter(-1, order, torch.where(full, balls, 0))
    kept = torch.zeros_like(population).scatter(-1, order, torch.where(active, balls, 0))
    log_w = torch.where(kept > 0, log_w, NEG_INF)
    return kept, draws - fixed.sum(-1), log_w, fixed


def _settled(population: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """``[B]``: the urns with one point of support (every drawable ball drawn, or at most one
    class drawable), where ``_greedy`` is the draw."""
    return (draws >= population.sum(-1)) | ((population > 0).sum(-1) <= 1)


def _greedy(population: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """``[B, c]`` float64: a point of each urn's support (classes filled in order)."""
    before = population.cumsum(-1) - population
    return (draws.unsqueeze(-1) - before).clamp(min=0).minimum(population).to(torch.float64)
