"""Gradient estimators of ``d/dtheta E_{X ~ p_theta}[f(X)]`` for the MFNCH, behind one call.

    >>> loss = surrogate_loss(dist, f, num_samples=64, estimator="reinforce-loo")
    >>> loss.backward()  # gradients reach dist's logits, and f's own parameters

The MFNCH is an exponential family in ``theta = logits`` with sufficient statistic ``x``, so the
score of a draw is exactly ``x - E[X]`` (``log_prob``'s gradient): an exact score is what makes
unbiased estimators available here (``docs/design.md`` section 5). ``ESTIMATORS``:

- ``"pathwise"``: ``rsample`` with the library's defaults (exact draws carrying the gradient of
  the exact mean; ``rsample``'s keywords pass through): low spread, exact for linear ``f``,
  biased for curved ones and blind to steps (``diffhypergeom gradients`` measures how much);
- ``"reinforce-loo"``: exact draws and the exact score, ``(f(x_s) - b_s) (x_s - E[X])`` with the
  leave-one-out baseline ``b_s`` = mean of ``f`` over the other samples (Kool et al. 2019):
  unbiased for any ``f``, step functions included; needs ``num_samples >= 2``;
- ``"reinforce-cv"``: the same exact draws and score with a control variate fitted to ``f``,
  leave-one-out, whose own gradient is exact: unbiased for any ``f``, with a lower spread
  (``_reinforce_cv``); needs ``num_samples >= 2``;
- ``"exact"``: the expectation itself, ``sum_x p(x) f(x)`` over the whole support: the exact
  gradient (no bias, no spread) at the cost of one ``f`` evaluation per support point; for
  small supports (at most ``max_support`` points, default ``MAX_EXACT_SUPPORT``).

``f`` maps counts ``[S, *batch, c]`` (in the logits' floating dtype) to ``[S, *batch]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from diffhypergeom.distribution import MultivariateFisherNCHypergeometric
from diffhypergeom.support import support_points, support_size

ESTIMATORS = ("pathwise", "reinforce-loo", "reinforce-cv", "exact")

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


def surrogate_loss(dist: MultivariateFisherNCHypergeometric,
                   f: Callable[[torch.Tensor], torch.Tensor], num_samples: int = 64,
                   estimator: str = "reinforce-loo", max_support: int | None = None,
                   **rsample_kwargs) -> torch.Tensor:
    """A scalar whose gradient estimates ``d/dtheta sum_b E[f_b(X)]`` (``theta``: ``dist``'s
    logits, and any parameters inside ``f``).

    Its value is the sample mean of ``f`` summed over the batch (the exact ``E[f]`` for
    ``"exact"``, where ``num_samples`` is not used).

    Args:
        dist: the distribution (any batch shape).
        f: counts ``[S, *batch, c]`` to values ``[S, *batch]``.
        num_samples: draws per urn.
        estimator: one of ``ESTIMATORS``.
        max_support: for ``"exact"``, the most support points to sum over (default
            ``MAX_EXACT_SUPPORT``).
        rsample_kwargs: passed to ``rsample`` by ``"pathwise"`` (``temperature``, ``hard``,
            ``permute``).
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive int, got {num_samples!r}")
    if rsample_kwargs and estimator != "pathwise":
        raise ValueError(f"{sorted(rsample_kwargs)} only apply to estimator='pathwise'")
    if estimator == "pathwise":
        values = _evaluate(f, dist.rsample((num_samples,), **rsample_kwargs))
        return values.mean(0).sum()
    if estimator in ("reinforce-loo", "reinforce-cv"):
        if num_samples < 2:
            raise ValueError(f"estimator={estimator!r} needs num_samples >= 2 (each draw's "
                             f"baseline comes from the others)")
        return (_reinforce_loo if estimator == "reinforce-loo" else _reinforce_cv)(
            dist, f, num_samples)
    return _exact(dist, f, MAX_EXACT_SUPPORT if max_support is None else max_support)


def _evaluate(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    values = f(x)
    expected = x.shape[:-1]
    if values.shape != expected:
        raise ValueError(f"f must map counts {tuple(x.shape)} to values {tuple(expected)} "
                         f"(one per draw and urn), got {tuple(values.shape)}")
    return values


def _reinforce_loo(dist: MultivariateFisherNCHypergeometric,
                   f: Callable[[torch.Tensor], torch.Tensor], num_samples: int) -> torch.Tensor:
    x = dist.sample((num_samples,)).to(dist.logits.dtype)
    values = _evaluate(f, x)
    centred = values.detach()
    baseline = (centred.sum(0, keepdim=True) - centred) / (num_samples - 1)
    log_prob = dist.log_prob(x)  # its gradient in the logits is the exact score x - E[X]
    score_term = (centred - baseline) * (log_prob - log_prob.detach())
    return (values + score_term).mean(0).sum()


def _reinforce_cv(dist: MultivariateFisherNCHypergeometric,
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
    counts = dist.sample((num_samples,))
    draws, x = counts.to(dist.logits.dtype), counts.to(torch.float64)
    values = _evaluate(f, draws)
    flat_x = x.reshape(num_samples, batch, c).transpose(0, 1)  # [B, S, c]
    v = values.detach().to(torch.float64).reshape(num_samples, batch).T  # [B, S]
    mu = mean.detach()
    sd = dist.variance.detach().to(torch.float64).reshape(batch, c).sqrt()
    safe_sd = torch.where(sd > 0, sd, torch.ones_like(sd))
    z = (flat_x - mu.unsqueeze(1)) / safe_sd.unsqueeze(1)
    # phi(x_s) . E_theta[phi(X)] per block (standardised counts, count indicators): with the
    # fitted weights, its gradient is that of the control variate's expectation
    expected_z = (mean - mu) / safe_sd
    kappa_z = (z * expected_z.unsqueeze(1)).sum(-1)
    kappa_p = torch.zeros_like(kappa_z)
    for i in range(c):
        offset, log_probs = dist.log_marginal(i)
        offset = offset.reshape(batch, 1)
        log_probs = log_probs.to(torch.float64).reshape(batch, -1)
        j = flat_x[..., i].long() - offset
        inside = (j >= 0) & (j < log_probs.shape[-1])
        gathered = log_probs.gather(-1, j.clamp(0, log_probs.shape[-1] - 1)).exp()
        kappa_p = kappa_p + torch.where(inside, gathered, torch.zeros_like(gathered))
    spread = (flat_x - mu.unsqueeze(1)).square().sum(-1)
    total_var = sd.square().sum(-1, keepdim=True)
    weights = torch.where(total_var > 0, spread / torch.where(total_var > 0, total_var, 1.0),
                          torch.ones_like(spread)).clamp_min(1e-3)
    loo_residual, beta = torch.empty_like(v), torch.empty_like(v)
    kappa_group = torch.zeros_like(kappa_z)
    groups = -(-num_samples // CV_GROUP)  # of equal sizes, each at most CV_GROUP and >= 2
    bounds = [round(g * num_samples / groups) for g in range(groups + 1)]
    for group in map(slice, bounds[:-1], bounds[1:]):
        xs, zs, w, vs = flat_x[:, group], z[:, group], weights[:, group], v[:, group]
        size = vs.shape[-1]
        same = (xs.unsqueeze(2) == xs.unsqueeze(1)).sum(-1).to(torch.float64)
        shrink = max(1.0, CV_SHRINK / size)
        # fewer than 2 draws per class: only the constant (a leave-one-out baseline)
        if size >= 2 * c:
            linear, indicator = max(shrink, 2.0 * c - size), shrink * max(1.0, c / 4)
        else:
            linear = indicator = math.inf
        kernel = CV_CONSTANT + zs @ zs.transpose(1, 2) / linear + same / indicator
        system = kernel + torch.diag_embed(1 / w)
        inverse = torch.cholesky_inverse(torch.linalg.cholesky(system))
        solved = (inverse @ vs.unsqueeze(-1)).squeeze(-1)
        loo = solved / inverse.diagonal(dim1=-2, dim2=-1)  # f(x_s) - a_{-s} . phi(x_s)
        loo_residual[:, group] = loo
        kappa_group[:, group] = (CV_CONSTANT + kappa_z[:, group] / linear
                                 + kappa_p[:, group] / indicator)
        beta[:, group] = ((inverse @ (vs - loo / size).unsqueeze(-1)).squeeze(-1)
                          * size / num_samples)
    log_prob = dist.log_prob(draws).to(torch.float64)
    score = (log_prob - log_prob.detach()).reshape(num_samples, batch).T
    score_term = (loo_residual * score).mean(-1)
    control = (beta * kappa_group).sum(-1)
    extra = (score_term + control - control.detach()).sum()
    return values.mean(0).sum() + extra.to(values.dtype)


def _exact(dist: MultivariateFisherNCHypergeometric, f: Callable[[torch.Tensor], torch.Tensor],
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
