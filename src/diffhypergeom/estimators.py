"""Gradient estimators of ``d/dtheta E_{X ~ p_theta}[f(X)]`` for the MFNCH, behind one call.

    >>> import torch
    >>> from diffhypergeom import MultivariateFisherNCHypergeometric
    >>> from diffhypergeom.estimators import surrogate_loss
    >>> logits = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    >>> dist = MultivariateFisherNCHypergeometric(torch.tensor([4, 5, 6]), 7, logits=logits)
    >>> f = lambda x: x[..., 0]  # E[f] = E[x_0]
    >>> loss = surrogate_loss(dist, f, num_samples=64, estimator="reinforce-loo")
    >>> loss.backward()  # gradients reach dist's logits, and f's own parameters
    >>> exact = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    >>> surrogate_loss(MultivariateFisherNCHypergeometric(torch.tensor([4, 5, 6]), 7,
    ...                logits=exact), f, estimator="exact").backward()
    >>> exact.grad  # Cov(X)[0]: the gradient reinforce-loo estimates without bias
    tensor([ 0.7822, -0.3556, -0.4267], dtype=torch.float64)

The MFNCH is an exponential family in ``theta = logits`` with sufficient statistic ``x``, so the
score of a draw is exactly ``x - E[X]`` (``log_prob``'s gradient): an exact score is what makes
unbiased estimators available here (``docs/design/index.md`` section 5). ``ESTIMATORS``:

- ``"pathwise"``: ``rsample`` with the library's defaults (exact draws carrying the gradient of
  the exact mean; ``rsample``'s keywords pass through): low spread, exact for linear ``f``,
  biased for curved ones and blind to steps (``diffhypergeom gradients`` measures how much);
- ``"delta"``: no draws: the gradient of the second-order delta method, ``E[f(X)] ≈ f(mu) +
  tr(H_f(mu) Cov(X)) / 2`` with the exact mean and covariance (``f`` twice differentiable; its
  Hessian by ``c`` double-backward passes). Exact for quadratic ``f`` (then the expansion is
  ``E[f]`` itself), no spread; its bias elsewhere is that of the third and higher terms, and it
  sees no step (a hard threshold has a zero Hessian and gradient almost everywhere);
  ``num_samples`` is not used;
- ``"reinforce-loo"``: exact draws and the exact score, ``(f(x_s) - b_s) (x_s - E[X])`` with the
  leave-one-out baseline ``b_s`` = mean of ``f`` over the other samples (Kool et al. 2019):
  unbiased for any ``f``, step functions included; needs ``num_samples >= 2``;
- ``"reinforce-cv"``: the same exact draws and score with a control variate fitted to ``f``,
  leave-one-out, whose own gradient is exact: unbiased for any ``f``, with a lower spread
  (``_reinforce_cv``); needs ``num_samples >= 2``;
- ``"reinforce-linear"``: the same exact draws and score with the control variate of ``f``'s
  linearisation at the exact mean, ``a c . x`` with ``c = grad f(E[X])``, its coefficient ``a``
  and a baseline fitted leave-one-out (``_reinforce_linear``); the control variate's own
  gradient ``d/dtheta (c . E[X])`` is exact (for the Fisher law ``Cov(X) c``, a Hessian-vector
  product).
  Unbiased for any ``f``; exact for linear ``f`` and nearly so for smooth ones; with an ``f``
  that has no gradient (a hard step) ``c = 0`` and it is ``"reinforce-loo"``. ``f`` is called
  once more, at the mean ``[1, *batch, c]``; needs ``num_samples >= 2``;
- ``"exact"``: the expectation itself, ``sum_x p(x) f(x)`` over the whole support: the exact
  gradient (no bias, no spread) at the cost of one ``f`` evaluation per support point; for
  small supports (at most ``max_support`` points, default ``MAX_EXACT_SUPPORT``).

Which to use, as measured (``benchmarks/bench_estimators.py``: ``N = 16`` items, ``k = 5``,
logits ``~ N(0, 1)``, seed 0, for ``k_subset`` and ``gumbel_top_k``; the relative bias of the
mean of 200 estimates, Monte Carlo noise about 0.02-0.08 for the unbiased ones):

==============  ==========  =============  ==============  ======================
estimator       linear f    quadratic f    max of chosen   hard threshold
==============  ==========  =============  ==============  ======================
``pathwise``    0.00        0.02-0.05      1.2-1.3         1.00 (zero gradient)
``delta``       0.00        0.00           4.8-5.0         1.00 (zero gradient)
score-function  0 (noise)   0 (noise)      0 (noise)       0 (noise)
==============  ==========  =============  ==============  ======================

At the peers' time per estimate the score-function estimators win on linear and quadratic
``f`` and lose on the max and the threshold to biased peers with a lower spread (the results
page has the tables). ``"reinforce-loo"`` is the default: the cheapest unbiased estimate
(the conditional Poisson law's ``log e_k`` cancels out of it, and the Gumbel-top-k law's draws
are scored by their order); ``"reinforce-linear"`` pays the inclusion probabilities' gradient
(2-3 ms at ``N = 16``) for no spread on linear ``f``; ``"reinforce-cv"`` pays a kernel fit and
loses at equal time except on linear ``f`` at 64 draws.

``f`` maps counts ``[S, *batch, c]`` (in the logits' floating dtype) to ``[S, *batch]``.
The score-function estimators take a law's ``sample_with_score`` where it has one: draws and
the log-probability of the finer event they were drawn as (Gumbel-top-k subsets and the order
of their items, ``laws.topk.GumbelTopK``), an unbiased score that is cheaper than the set's own
``log_prob``.
The Wallenius law takes every estimator (its exact marginals serve ``"reinforce-cv"``);
``"pathwise"`` and ``"reinforce-loo"`` also serve ``RandomPartition`` through its own
``rsample`` and exact ``log_prob`` (its ``f`` maps labels ``[S, *batch, N]``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch.distributions import Distribution

from diffhypergeom.laws.base import UrnDistribution
from diffhypergeom.numerics.base import Window, jacobian
from diffhypergeom.numerics.support import support_points, support_size

__all__ = [
    "CV_CONSTANT", "CV_GROUP", "CV_SHRINK", "ESTIMATORS", "MAX_EXACT_SUPPORT", "NEEDS", "lacking",
    "surrogate_loss",
]

ESTIMATORS = ("pathwise", "delta", "reinforce-loo", "reinforce-cv", "reinforce-linear", "exact")
# what each estimator needs of the law: its members (checked before any work)
NEEDS = {
    "pathwise": ("rsample",),
    "delta": ("mean", "covariance_matrix"),
    "reinforce-loo": ("sample", "log_prob"),
    "reinforce-cv": ("sample", "log_prob", "mean", "variance", "log_marginals"),
    "reinforce-linear": ("sample", "log_prob", "mean"),
    "exact": ("enumerate_support", "log_prob", "population", "draws"),
}

# Largest support that the "exact" estimator sums over (each point is one f evaluation).
MAX_EXACT_SUPPORT = 100_000
# "reinforce-cv" fits its control variate on equal groups of at most this many draws
# (O(group^3)).
CV_GROUP = 256
# ... with ridge penalties that shrink the fit towards the leave-one-out mean of "reinforce-loo"
# when the draws are few for the features (see _reinforce_cv)
CV_SHRINK = 64
# ... and a penalty of 1 / CV_CONSTANT on the constant (next to none)
CV_CONSTANT = 100


def lacking(dist: Distribution, estimator: str) -> list[str]:
    """The members that ``estimator`` needs (``NEEDS``) and ``dist`` does not have: torch's
    ``has_rsample`` and ``has_enumerate_support`` flags, members left at torch's
    ``NotImplementedError`` default, and those a law lists in its ``lacks``.

    Example:
        >>> import torch
        >>> from diffhypergeom import MergedFisherNCHypergeometric
        >>> from diffhypergeom.estimators import lacking
        >>> merged = MergedFisherNCHypergeometric([4, 5, 6], 7, logits=torch.zeros(3))
        >>> lacking(merged, "reinforce-loo"), lacking(merged, "reinforce-cv")
        ([], ['log_marginals'])
    """
    missing = []
    for member in NEEDS[estimator]:
        if member == "rsample":
            absent = not dist.has_rsample
        elif member == "enumerate_support":
            absent = not dist.has_enumerate_support
        else:
            found = getattr(type(dist), member, None)
            absent = (found is None and member not in vars(dist)) \
                or found is getattr(Distribution, member, object())
        if absent or member in getattr(dist, "lacks", ()):
            missing.append(member)
    return missing


def surrogate_loss(dist: Distribution,
                   f: Callable[[torch.Tensor], torch.Tensor], num_samples: int = 64,
                   estimator: str = "reinforce-loo", max_support: int | None = None,
                   **rsample_kwargs) -> torch.Tensor:
    """A scalar whose gradient estimates ``d/dtheta sum_b E[f_b(X)]`` (``theta``: ``dist``'s
    logits, and any parameters inside ``f``).

    Its value is the sample mean of ``f`` summed over the batch (the exact ``E[f]`` for
    ``"exact"``, and its second-order expansion for ``"delta"``; neither uses
    ``num_samples``).

    Args:
        dist: the distribution (any batch shape). Each estimator names what it needs of it in
            ``NEEDS`` and checks it before any work (``ValueError`` naming the missing
            member): ``"pathwise"`` any law with ``rsample``; ``"reinforce-loo"`` any law with
            ``sample`` and an exact ``log_prob`` (e.g. ``RandomPartition``, the merged law);
            ``"reinforce-cv"`` the laws with exact marginals (Fisher, Wallenius);
            ``"exact"`` the urn laws with an enumerable support.
        f: counts ``[S, *batch, c]`` to values ``[S, *batch]``.
        num_samples: draws per urn.
        estimator: one of ``ESTIMATORS``.
        max_support: for ``"exact"``, the most support points to sum over (default
            ``MAX_EXACT_SUPPORT``).
        rsample_kwargs: passed to ``rsample`` by ``"pathwise"``, a per-call override of the
            gradient chosen in the law's constructor (``gradient``, ``temperature``,
            ``permute``, ``couple_rows``, ``rao_samples``).
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive int, got {num_samples!r}")
    if rsample_kwargs and estimator != "pathwise":
        raise ValueError(f"{sorted(rsample_kwargs)} only apply to estimator='pathwise'")
    missing = lacking(dist, estimator)
    if missing:
        usable = [name for name in ESTIMATORS if not lacking(dist, name)]
        raise ValueError(f"estimator={estimator!r} needs {', '.join(missing)} of the law, which "
                         f"{type(dist).__name__} does not have; estimators this law takes: "
                         f"{usable}")
    if estimator == "pathwise":
        values = _evaluate(f, dist.rsample((num_samples,), **rsample_kwargs))
        return values.mean(0).sum()
    if estimator == "delta":
        return _delta(dist, f)
    if estimator in ("reinforce-loo", "reinforce-cv", "reinforce-linear"):
        if num_samples < 2:
            raise ValueError(f"estimator={estimator!r} needs num_samples >= 2 (each draw's "
                             f"baseline comes from the others)")
        method = {"reinforce-loo": _reinforce_loo, "reinforce-cv": _reinforce_cv,
                  "reinforce-linear": _reinforce_linear}[estimator]
        return method(dist, f, num_samples)
    return _exact(dist, f, MAX_EXACT_SUPPORT if max_support is None else max_support)


def _evaluate(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    values = f(x)
    expected = x.shape[:-1]
    if values.shape != expected:
        raise ValueError(f"f must map counts {tuple(x.shape)} to values {tuple(expected)} "
                         f"(one per draw and urn), got {tuple(values.shape)}")
    return values


def _delta(dist: Distribution, f: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``sum_b [f(mu) + tr(H_f(mu) Cov(X)) / 2]``, differentiable through the exact ``mu`` and
    ``Cov(X)`` (and through ``H_f``'s dependence on ``mu``)."""
    mean = dist.mean
    covariance = dist.covariance_matrix
    point = mean.unsqueeze(0)
    with torch.enable_grad():
        if not point.requires_grad:  # f's Hessian is wanted even where the logits are fixed
            point = point.detach().requires_grad_()
        value = _evaluate(f, point)[0]
        if not value.requires_grad:
            return value.sum()
        (slope,) = torch.autograd.grad(value.sum(), point, create_graph=True, allow_unused=True)
        if slope is None or not slope.requires_grad:
            return value.sum()
        hessian = jacobian(slope, point, create_graph=True)[0]              # [*batch, c, c]
    return (value + 0.5 * (hessian * covariance).sum((-2, -1))).sum()


def _draw_with_score(dist: Distribution, num_samples: int, normalized: bool = True
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """``num_samples`` exact draws and a log-probability whose gradient is an unbiased score
    for functions of them: the law's ``sample_with_score`` where it has one (the draws with the
    probability of the finer event they were drawn as, e.g. the order of Gumbel-top-k), else
    ``sample`` and ``log_prob``. ``normalized=False`` lets the law leave out a term that every
    draw of an urn shares (its log-normaliser): only for weights that sum to zero over the
    draws of each urn."""
    with_score = getattr(dist, "sample_with_score", None)
    if with_score is not None:
        return with_score((num_samples,), normalized=normalized)
    x = dist.sample((num_samples,))
    return x, dist.log_prob(x)


def _linear_coefficients(f: Callable[[torch.Tensor], torch.Tensor], mean: torch.Tensor
                         ) -> torch.Tensor:
    """``c = grad f`` at the point ``mean [*batch, c]`` (detached; zero where ``f`` has no
    gradient there)."""
    point = mean.detach().unsqueeze(0).requires_grad_()
    with torch.enable_grad():
        value = _evaluate(f, point)
        if not value.requires_grad:
            return torch.zeros_like(mean.detach())
        (slope,) = torch.autograd.grad(value.sum(), point, allow_unused=True)
    return torch.zeros_like(mean.detach()) if slope is None else slope[0].detach()


def _reinforce_linear(dist: Distribution, f: Callable[[torch.Tensor], torch.Tensor],
                      num_samples: int) -> torch.Tensor:
    """REINFORCE with the linearisation of ``f`` at the exact mean as control variate.

    With ``u = c . x``, ``c = grad f(E[X])``, draw ``s`` gets the coefficient ``a_{-s}`` and
    baseline ``b_{-s}`` fitted on the *other* draws (a weighted regression of ``f`` on ``u``,
    weights ``||x - mu||^2``, the score's size), so that
    ``(f_s - a_{-s} u_s - b_{-s}) (x_s - mu)`` has mean ``grad E[f] - a_{-s} grad E[u]``;
    ``mean_s a_{-s} d/dtheta (c . E[X])`` adds the second term back exactly."""
    mean = dist.mean  # with its graph: the control variate's gradient goes through it
    slope = _linear_coefficients(f, mean)
    x, log_prob = _draw_with_score(dist, num_samples)
    values = _evaluate(f, x)
    flat = (num_samples, -1)
    y = values.detach().to(torch.float64).reshape(flat)
    u = (x * slope).sum(-1).to(torch.float64).reshape(flat)
    centred = x.to(torch.float64) - mean.detach().to(torch.float64)
    w = centred.square().sum(-1).reshape(flat).clamp_min(1e-12)
    others = 1 - torch.eye(num_samples, dtype=torch.float64, device=y.device)
    weight = others @ w
    y_bar, u_bar = (others @ (w * y)) / weight, (others @ (w * u)) / weight
    covariance = others @ (w * y * u) - weight * y_bar * u_bar
    variance = others @ (w * u * u) - weight * u_bar * u_bar
    coefficient = torch.where(variance > 1e-12 * weight * (1 + u_bar.square()),
                              covariance / variance.clamp_min(1e-300), 0.0)
    baseline = (others @ y - coefficient * (others @ u)) / (num_samples - 1)
    residual = (y - coefficient * u - baseline).reshape(values.shape).to(values.dtype)
    score_term = residual * (log_prob - log_prob.detach())
    control = coefficient.mean(0).reshape(values.shape[1:]).to(mean.dtype) \
        * (mean * slope).sum(-1)
    return (values + score_term).mean(0).sum() + (control - control.detach()).sum()


def _reinforce_loo(dist: Distribution, f: Callable[[torch.Tensor], torch.Tensor],
                   num_samples: int) -> torch.Tensor:
    # for the Fisher law log_prob's gradient is the exact score x - E[X]; the leave-one-out
    # weights sum to zero over the draws, so the log-normaliser's gradient cancels
    x, log_prob = _draw_with_score(dist, num_samples, normalized=False)
    values = _evaluate(f, x)
    centred = values.detach()
    baseline = (centred.sum(0, keepdim=True) - centred) / (num_samples - 1)
    score_term = (centred - baseline) * (log_prob - log_prob.detach())
    return (values + score_term).mean(0).sum()


class _Features(NamedTuple):
    """The draws ``x`` of each urn, ``[B, S, c]``, and what the control variate needs of them.

    ``z``: the standardised counts ``(x - mu) / sd``; ``weights``: the regression weights
    ``[B, S]``; ``kappa_z`` and ``kappa_p``: ``phi(x_s) . E_theta[phi(X)]`` for the standardised
    counts and for the count indicators, ``[B, S]``, carrying the gradient of ``E_theta[phi(X)]``.
    """

    x: torch.Tensor
    z: torch.Tensor
    weights: torch.Tensor
    kappa_z: torch.Tensor
    kappa_p: torch.Tensor


class _Fit(NamedTuple):
    """The leave-one-out fit, ``[B, S]`` per urn and draw.

    ``residual``: ``f(x_s) - a_{-s} . phi(x_s)``; ``beta`` and ``kappa``: the dual weights and
    ``phi(x_s) . E_theta[phi(X)]`` (penalised), whose products summed over the draws have the
    gradient of ``E_theta[abar . phi(X)]``."""

    residual: torch.Tensor
    beta: torch.Tensor
    kappa: torch.Tensor


def _reinforce_cv(dist: UrnDistribution,
                  f: Callable[[torch.Tensor], torch.Tensor], num_samples: int) -> torch.Tensor:
    """REINFORCE with a leave-one-out control variate whose expectation is known exactly.

    ``f`` is fitted by weighted ridge regression on the features ``phi(x)``: a constant, the
    standardised counts ``z_i = (x_i - mu_i) / sd_i`` and, per class, the indicator of each
    count (an additive model ``sum_i h_i(x_i)``), with weights ``||x - mu||^2 / tr Cov(X)`` (the
    score's size). Ridge penalties, with ``S`` draws and ``s0 = max(1, CV_SHRINK / S)``:
    ``1 / CV_CONSTANT`` on the constant, ``max(s0, 2 c - S)`` on the ``c`` standardised counts
    (their degrees of freedom stay below about half the draws) and ``s0 max(1, c / 4)`` on the
    indicators (one block per class); with fewer than ``2 c`` draws only the constant is
    fitted (a weighted leave-one-out baseline). With ``a_{-s}`` fitted
    without draw ``s``,

        g = mean_s (f(x_s) - a_{-s} . phi(x_s)) (x_s - mu) + d/dtheta E_theta[abar . phi(X)],

    ``abar = mean_s a_{-s}``, is unbiased (``a_{-s}`` is independent of ``x_s``), and the last
    term is exact: ``E[phi(X)]`` is ``1``, ``(E[X] - mu) / sd`` and the exact marginals
    ``P(X_i = k)``. Computed in the draws' space (kernel form, ``S x S`` per urn and group of
    at most ``CV_GROUP`` draws), so the cost does not grow with the counts' range.
    """
    c, batch = dist.num_classes, dist.batch_shape.numel()
    mean = dist.mean.to(torch.float64).reshape(batch, c)  # first: the tables keep a gradient
    counts, log_prob = _draw_with_score(dist, num_samples)
    draws = counts.to(dist.logits.dtype)
    values = _evaluate(f, draws)
    x = counts.to(torch.float64).reshape(num_samples, batch, c).transpose(0, 1)
    v = values.detach().to(torch.float64).reshape(num_samples, batch).T
    fit = _fit_control_variate(_cv_features(dist, x, mean), v)
    log_prob = log_prob.to(torch.float64)
    score = (log_prob - log_prob.detach()).reshape(num_samples, batch).T
    score_term = (fit.residual * score).mean(-1)
    control = (fit.beta * fit.kappa).sum(-1)
    extra = (score_term + control - control.detach()).sum()
    return values.mean(0).sum() + extra.to(values.dtype)


def _cv_features(dist: UrnDistribution, x: torch.Tensor,
                 mean: torch.Tensor) -> _Features:
    """The features of the draws ``x`` ``[B, S, c]``, standardised with ``dist``'s detached
    moments; ``mean`` ``[B, c]`` (with its gradient) gives ``E_theta`` of the standardised
    counts."""
    mu = mean.detach()
    sd = dist.variance.detach().to(torch.float64).reshape(mu.shape).sqrt()
    safe_sd = torch.where(sd > 0, sd, torch.ones_like(sd))
    z = (x - mu.unsqueeze(1)) / safe_sd.unsqueeze(1)
    expected_z = (mean - mu) / safe_sd
    kappa_z = (z * expected_z.unsqueeze(1)).sum(-1)
    kappa_p = _marginal_probabilities(dist, x)
    return _Features(x, z, _score_weights(x, mu, sd), kappa_z, kappa_p)


def _marginal_probabilities(dist: UrnDistribution,
                            x: torch.Tensor) -> torch.Tensor:
    """``sum_i P(X_i = x_i)`` for each draw ``x`` ``[B, S, c]``, from the exact marginals (with
    their gradient); a count outside a marginal's range adds zero."""
    offset, log_probs = dist.log_marginals()
    classes = dist.num_classes
    marginals = Window(offset.reshape(x.shape[0], classes),
                       log_probs.to(torch.float64).reshape(x.shape[0], classes, -1))
    return marginals.at(x.long().transpose(1, 2)).exp().sum(1)


def _score_weights(x: torch.Tensor, mu: torch.Tensor, sd: torch.Tensor) -> torch.Tensor:
    """The regression weight of each draw, ``||x - mu||^2 / tr Cov(X)`` (the score's size; 1
    in an urn without spread), at least ``1e-3``."""
    spread = (x - mu.unsqueeze(1)).square().sum(-1)
    total_var = sd.square().sum(-1, keepdim=True)
    has_spread = total_var > 0
    return torch.where(has_spread, spread / torch.where(has_spread, total_var, 1.0),
                       torch.ones_like(spread)).clamp_min(1e-3)


def _fit_control_variate(features: _Features, v: torch.Tensor) -> _Fit:
    """The leave-one-out fit of the values ``v`` ``[B, S]``, on equal groups of at most
    ``CV_GROUP`` draws (each fitted on its own), put back in the draws' order."""
    num_samples = v.shape[-1]
    fits = [_fit_group(features, v, group, num_samples) for group in _groups(num_samples)]
    return _Fit(*(torch.cat(parts, -1) for parts in zip(*fits, strict=True)))


def _groups(num_samples: int) -> list[slice]:
    """Consecutive slices of the draws, as equal as can be, each at most ``CV_GROUP`` long (and
    at least 2 long for ``num_samples >= 2``)."""
    groups = -(-num_samples // CV_GROUP)
    bounds = [round(g * num_samples / groups) for g in range(groups + 1)]
    return list(map(slice, bounds[:-1], bounds[1:]))


def _ridge_penalties(size: int, c: int) -> tuple[float, float]:
    """The penalties on the standardised counts and on the count indicators for a group of
    ``size`` draws; infinite (only the constant is fitted) below 2 draws per class."""
    if size < 2 * c:
        return math.inf, math.inf
    shrink = max(1.0, CV_SHRINK / size)
    return max(shrink, 2.0 * c - size), shrink * max(1.0, c / 4)


def _fit_group(features: _Features, v: torch.Tensor, group: slice, num_samples: int) -> _Fit:
    """The kernel ridge regression of ``v`` on the draws of ``group``: each draw's
    leave-one-out residual, from the inverse of the regularised kernel matrix, and the dual
    weights (scaled to the share of the group among ``num_samples`` draws)."""
    xs, zs, w, vs = (features.x[:, group], features.z[:, group], features.weights[:, group],
                     v[:, group])
    size = vs.shape[-1]
    linear, indicator = _ridge_penalties(size, xs.shape[-1])
    same = (xs.unsqueeze(2) == xs.unsqueeze(1)).sum(-1).to(torch.float64)
    kernel = CV_CONSTANT + zs @ zs.transpose(1, 2) / linear + same / indicator
    inverse = torch.cholesky_inverse(torch.linalg.cholesky(kernel + torch.diag_embed(1 / w)))
    loo = (inverse @ vs.unsqueeze(-1)).squeeze(-1) / inverse.diagonal(dim1=-2, dim2=-1)
    kappa = (CV_CONSTANT + features.kappa_z[:, group] / linear
             + features.kappa_p[:, group] / indicator)
    beta = (inverse @ (vs - loo / size).unsqueeze(-1)).squeeze(-1) * size / num_samples
    return _Fit(loo, beta, kappa)


def _exact(dist: UrnDistribution, f: Callable[[torch.Tensor], torch.Tensor],
           limit: int) -> torch.Tensor:
    c = dist.num_classes
    populations = dist.population.reshape(-1, c)
    draws = dist.draws.reshape(-1)
    # one support per distinct urn; each urn of the batch sums over its own
    urns = torch.unique(torch.cat([populations, draws.unsqueeze(-1)], -1), dim=0)
    sizes = [support_size(u[:-1].tolist(), int(u[-1]), stop_above=limit) for u in urns]
    if any(size > limit for size, _ in sizes):
        size, exact = max(sizes)
        raise ValueError(f"estimator='exact' would sum over {'' if exact else 'at least '}"
                         f"{size:,} support points, above max_support={limit:,}; use "
                         f"'reinforce-loo' or raise max_support")
    points_by_urn = [support_points(u[:-1].tolist(), int(u[-1]), dist.logits.device)
                     for u in urns]
    width = max(p.shape[0] for p in points_by_urn)
    # a common list of points per urn (padded with the urn's first point, weighted zero)
    flat_points = torch.empty(width, populations.shape[0], c, dtype=torch.int64,
                              device=dist.logits.device)
    valid = torch.zeros(width, populations.shape[0], dtype=torch.bool,
                        device=dist.logits.device)
    for u, points in zip(urns, points_by_urn, strict=True):
        members = ((populations == u[:-1]).all(-1) & (draws == u[-1])).nonzero().squeeze(-1)
        padded = torch.cat([points, points[:1].expand(width - points.shape[0], c)])
        flat_points[:, members] = padded.unsqueeze(1)
        valid[: points.shape[0], members] = True
    x = flat_points.reshape((width,) + dist.batch_shape + (c,)).to(dist.logits.dtype)
    mask = valid.reshape((width,) + dist.batch_shape)
    probs = dist.log_prob(x).exp()
    values = _evaluate(f, x)
    total = torch.where(mask, probs * values, torch.zeros_like(values)).sum(0)
    return total.sum()
