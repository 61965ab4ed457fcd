"""``MergedFisherNCHypergeometric``: the law that the paper's sampler (Algorithm 1 of Sutter et
al., ICLR 2023) draws from, as a distribution of its own.

The classes are visited in order. Class ``i`` takes ``x_i`` of the ``r_i`` balls still to draw
from a univariate Fisher law against one merged class ``R_i = {i+1..c}`` holding ``M_i =
sum_{j>i} m_j`` balls of the mean weight ``W_i = sum_{j>i} w_j m_j / M_i``; the last class takes
what is left:

    p(x) = prod_{i<c} C(m_i, x_i) w_i^x_i C(M_i, r_i - x_i) W_i^(r_i - x_i) / Z_i(r_i),
    r_1 = n,  r_{i+1} = r_i - x_i,  x_c = r_c.

It equals the multivariate Fisher law only when all weights are equal (``docs/design/index.md``,
"The paper's sampler"); it depends on the class order. It is the baseline the library is
compared with, so it keeps its own ``log_prob`` and sampler.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch

from diffhypergeom.laws.base import check_count_dtype
from diffhypergeom.laws.checks import TensorLike, check_sample_shape
from diffhypergeom.laws.engine_law import FisherEngineLaw
from diffhypergeom.laws.gradients import Gradient
from diffhypergeom.numerics.base import Engine, Window, checkpoint_if_large, distinct
from diffhypergeom.numerics.engines import Urn
from diffhypergeom.numerics.fft import budget, count_window, solve_saddle, tail_halfwidth
from diffhypergeom.numerics.logspace import conditional_rows
from diffhypergeom.numerics.special import (
    NEG_INF,
    log_binomial,
    log_binomial_pmf,
    logsumexp,
    times_logit,
)

__all__ = ["MergedFisherNCHypergeometric", "merged_conditional"]


class MergedFisherNCHypergeometric(FisherEngineLaw):
    """The paper's merged sequential law over class counts (see the module docstring).

    Args: as ``MultivariateFisherNCHypergeometric`` (``population [..., c]``, ``draws``,
    ``logits`` or ``weights [..., c]``, ``engine``, ``max_support``, ``validate_args``), and
    ``gradient`` (``"gumbel"``, the default, or ``"gumbel-rao"``) with ``temperature``,
    ``couple_rows`` and ``rao_samples``. The class order is the order of the last dimension.

    Members:
        - ``sample``: exact draws of this law (floating counts);
        - ``log_prob``: its exact log-probability, differentiable in the logits;
        - ``rsample``: the same draws with a straight-through Gumbel gradient (``gradient``
          ``"gumbel"`` or ``"gumbel-rao"``, as in the paper; no mean gradient: the law's mean
          has no closed form);
        - ``mean``, ``variance``, ``entropy``: exact, by summing over the support, which must
          have at most ``max_support`` points (``ValueError`` beyond: estimate them from
          ``sample`` instead);
        - ``enumerate_support``: the support, shared with the Fisher law.

    Example:
        >>> import torch
        >>> from diffhypergeom import MergedFisherNCHypergeometric
        >>> urn = dict(population=torch.tensor([4, 5, 6]), draws=7,
        ...            weights=torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64))
        >>> d = MergedFisherNCHypergeometric(**urn)
        >>> d.mean  # not the Fisher law's [1.9046, 3.2862, 1.8092]
        tensor([1.7365, 3.3636, 1.8999], dtype=torch.float64)
        >>> round(float(d.log_prob(torch.tensor([2.0, 4.0, 1.0]))), 4)
        -1.9191
    """

    has_rsample = True
    # the merged approximation is not symmetric under x -> m - x
    complement = False

    def __init__(self, population: TensorLike, draws: TensorLike,
                 logits: TensorLike | None = None, weights: TensorLike | None = None, *,
                 engine: str = "auto", gradient: str = "gumbel",
                 temperature: float | torch.Tensor | None = None,
                 couple_rows: bool | None = None, rao_samples: int | None = None,
                 max_support: int | None = None, validate_args: bool | None = None):
        self.gradient = _merged_gradient(Gradient(gradient, temperature, None, couple_rows,
                                                  rao_samples))
        super().__init__(population, draws, logits, weights, engine=engine,
                         max_support=max_support, validate_args=validate_args)

    def _conditional(self, urn: Urn):
        return functools.partial(merged_conditional, urn.engine)

    def log_prob(self, value: TensorLike) -> torch.Tensor:
        """``[*sample, *batch]``: the exact log-probability of integer counts under this law
        (``-inf`` off the support with ``validate_args=False``; non-integer counts included)."""
        x, inside, sample_shape = self._counts(value)
        inside = inside & (x == x.round()).all(-1)
        urn = self._urn()
        y = torch.where(inside.unsqueeze(-1), x, torch.zeros_like(x)).to(torch.int64)
        samples, batch = y.shape[:2]
        rows_per_urn = int(urn.draws.max()) + 1 if batch else 1
        remaining = urn.draws.expand(samples, batch)
        out = torch.zeros(samples, batch, dtype=torch.float64, device=x.device)
        conditional = self._conditional(urn)
        for i in range(self.num_classes - 1):
            flat = torch.arange(batch, device=x.device) * rows_per_urn + remaining
            rows, position = distinct(flat, batch * rows_per_urn)
            window = conditional(i, rows)
            j = y[..., i] - window.offset[position]
            width = window.log_prob.shape[-1]
            found = window.log_prob[position, j.clamp(0, width - 1)]
            out = out + torch.where((j >= 0) & (j < width), found, NEG_INF)
            remaining = remaining - y[..., i]
        out = torch.where(inside, out, NEG_INF)
        return self.sharing.unflatten_draws(out, sample_shape).to(self.logits.dtype)

    def sample(self, sample_shape: Sequence[int] = torch.Size()) -> torch.Tensor:
        """Exact draws of this law, ``[*sample_shape, *batch, c]`` in the logits' dtype."""
        sample_shape = check_sample_shape(sample_shape)
        check_count_dtype(self.logits.dtype, self.draws)
        urn = self._urn()
        counts = urn.sample(sample_shape.numel() * self.sharing.repeats, self._conditional(urn))
        return self.sharing.unflatten_draws(counts, sample_shape, (self.num_classes,)
                                     ).to(self.logits.dtype)

    def rsample(self, sample_shape: Sequence[int] = torch.Size(), *,
                gradient: str | None = None, temperature: float | torch.Tensor | None = None,
                couple_rows: bool | None = None, rao_samples: int | None = None
                ) -> torch.Tensor:
        """Exact draws of this law with the paper's straight-through Gumbel-softmax gradient
        over its conditionals (``gradient="gumbel"``, ``temperature`` default 1.0) or its
        Gumbel-Rao average (``"gumbel-rao"``), as chosen in the constructor; the keywords
        override that choice for one call, as in ``MultivariateFisherNCHypergeometric.rsample``,
        without ``permute`` (the class order is part of this law)."""
        chosen = _merged_gradient(self.gradient.override(
            gradient, temperature=temperature, couple_rows=couple_rows, rao_samples=rao_samples))
        settings, _ = chosen._replace(permute=False).settings()
        return self._gumbel_draw(check_sample_shape(sample_shape), settings, False, None).counts

    # ------------------------------------------------------------------ by enumeration
    def _enumerated(self, member: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The support ``[S, 1.., c]`` and its probabilities ``[S, *batch, 1]`` (float64)."""
        try:
            points = self.enumerate_support(expand=False)
        except ValueError as err:
            raise ValueError(f"{member} of the merged law is computed by summing over the "
                             f"support, which is too large here ({err}); estimate it from "
                             f"sample() instead") from err
        probs = self.log_prob(points).to(torch.float64).exp().unsqueeze(-1)
        return points.to(torch.float64), probs

    @property
    def mean(self) -> torch.Tensor:
        """Exact ``E[x]``, shape ``[..., c]``, by summing over the support."""
        points, probs = self._enumerated("mean")
        return (probs * points).sum(0).to(self.logits.dtype)

    @property
    def variance(self) -> torch.Tensor:
        """Exact ``Var[x_i]``, shape ``[..., c]``, by summing over the support."""
        points, probs = self._enumerated("variance")
        mean = (probs * points).sum(0)
        return (probs * (points - mean).square()).sum(0).to(self.logits.dtype)

    def entropy(self) -> torch.Tensor:
        """``[...]``: exact ``-E[log p(x)]``, by summing over the support."""
        points, probs = self._enumerated("entropy")
        probs = probs.squeeze(-1)
        terms = torch.where(probs > 0, probs * probs.log(), torch.zeros_like(probs))
        return (-terms.sum(0)).to(self.logits.dtype)


def _merged_gradient(chosen: Gradient) -> Gradient:
    """``chosen`` checked for the merged law: a Gumbel gradient (its options checked too)."""
    if chosen.name == "mean":
        raise ValueError("gradient='mean' needs the law's exact mean, which the merged law "
                         "does not have in closed form; use 'gumbel' or 'gumbel-rao'")
    chosen._replace(permute=False).settings()
    return chosen


def merged_conditional(engine: Engine, i: int, rows: torch.Tensor) -> Window:
    """The paper's Algorithm 1 over an engine's canonical urns: class ``i`` against one merged
    class ``R = {i+1..c}`` with ``m_R = sum m_j`` and ``w_R = sum w_j m_j / m_R``, a univariate
    Fisher law per visited row ``rows = b * (n_max + 1) + r`` (``r`` balls left). Exact only
    when all weights are equal. The log-space engine's urns get whole rows from log-space
    terms; the FFT engine's a two-class urn tilted at each row's own saddle point, over the
    Bernstein window of ``k``."""
    length = engine.n_max + 1
    urn, remaining = rows // length, rows % length
    m = engine.population.to(torch.float64)
    m_rest = m[:, i + 1:]
    m_right = m_rest.sum(-1)
    # an empty class: -inf in the log-space tables, a finite 1e-300 for the saddle point
    log_m = m_rest.log() if engine.name == "logspace" else m_rest.clamp_min(1e-300).log()
    weighted = logsumexp(engine.theta[:, i + 1:] + log_m, -1)
    theta_right = torch.where(m_right > 0, weighted - m_right.clamp_min(1).log(),
                              torch.zeros_like(m_right))
    if engine.name == "logspace":
        degrees = torch.arange(length, device=rows.device, dtype=torch.float64)
        right = log_binomial(m_right.unsqueeze(-1), degrees) \
            + times_logit(degrees, theta_right.unsqueeze(-1))
        kernel = engine.kernel(i)
        table = checkpoint_if_large(conditional_rows, kernel, right, rows,
                                    elements=rows.numel() * kernel.shape[-1])
        return Window(torch.zeros_like(rows), table)
    pair_m = torch.stack([m[urn, i], m_right[urn]], -1)
    theta = torch.stack([engine.theta[urn, i], theta_right[urn]], -1)
    tau = solve_saddle(pair_m, remaining.to(torch.float64), theta.detach())
    z = theta + tau.unsqueeze(-1)
    log_p, log_q = torch.nn.functional.logsigmoid(z), torch.nn.functional.logsigmoid(-z)
    with torch.no_grad():
        p = torch.sigmoid(z)
        variance = pair_m * p * (1 - p)
        t = tail_halfwidth(variance[:, 0].sqrt(), budget(variance.sum(-1).sqrt()))
        r = remaining.to(torch.float64)
        lo, hi = count_window(pair_m[:, 0] * p[:, 0], t, (r - pair_m[:, 1]).clamp_min(0),
                              torch.minimum(pair_m[:, 0], r))
        width = int((hi - lo + 1).max()) if rows.numel() else 1
    k = lo.unsqueeze(-1) + torch.arange(width, device=rows.device)
    terms = (log_binomial_pmf(k, pair_m[:, :1], log_p[:, :1], log_q[:, :1])
             + log_binomial_pmf(remaining.unsqueeze(-1) - k, pair_m[:, 1:], log_p[:, 1:],
                                log_q[:, 1:]))
    norm = logsumexp(terms, -1)
    norm = torch.where(torch.isfinite(norm), norm, torch.zeros_like(norm))
    return Window(lo, terms - norm.unsqueeze(-1))
