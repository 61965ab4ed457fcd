"""The urn from its mean, after BiasedUrn's ``oddsMFNCHypergeo``/``oddsMWNCHypergeo`` (the odds
from observed mean counts, given the balls ``m`` and the draws ``n``) and
``numMFNCHypergeo``/``numMWNCHypergeo`` (the balls of each class from observed mean counts,
given the odds, the total ``N`` and ``n``): ``odds`` and ``num``.

BiasedUrn answers both with closed-form approximations of the mean, whatever the precision
asked for: Cornfield's for Fisher, ``mu_i (m_0 - mu_0) / (mu_0 (m_i - mu_i))``, and Manly's for
Wallenius, ``log(1 - mu_i / m_i) / log(1 - mu_0 / m_0)``. Here the mean equation is solved
exactly: ``odds`` finds the odds whose exact mean (``law.mean``) equals ``mu`` to 1e-10, by
Newton's method on the logits (the Jacobian of the mean is the covariance for Fisher, autograd
of the exact mean for Wallenius) started from those approximations; ``num`` finds whole ball
counts, since the laws are defined for whole counts only (BiasedUrn returns real ones).
"""

from __future__ import annotations

import math
import warnings

import torch

from diffhypergeom.laws import (
    MultivariateFisherNCHypergeometric,
    MultivariateWalleniusNCHypergeometric,
)
from diffhypergeom.laws.checks import TensorLike, as_count_tensor
from diffhypergeom.stats.checks import as_float64, check_law, urn_rows
from diffhypergeom.stats.solvers import increasing_root

__all__ = ["num", "odds"]


def _law(fisher: bool) -> type:
    return MultivariateFisherNCHypergeometric if fisher else MultivariateWalleniusNCHypergeometric


def _mean_and_jacobian(fisher: bool, population: torch.Tensor, draws: torch.Tensor,
                       logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``E[X] [B, c]`` and ``d E[X] / d logits [B, c, c]`` (row ``i``: the gradient of
    ``E[X_i]``) of independent urns."""
    if fisher:
        law = MultivariateFisherNCHypergeometric(population, draws, logits=logits,
                                                 validate_args=False)
        return law.mean, law.covariance_matrix
    with torch.enable_grad():
        theta = logits.detach().clone().requires_grad_()
        mean = MultivariateWalleniusNCHypergeometric(population, draws, logits=theta,
                                                     validate_args=False).mean
        rows = [torch.autograd.grad(mean[:, i].sum(), theta, retain_graph=True)[0]
                for i in range(mean.shape[-1])]
    return mean.detach(), torch.stack(rows, -2)


def odds(law: type, population: TensorLike, draws: TensorLike, mean: TensorLike, *,
         max_iter: int = 100) -> torch.Tensor:
    """The odds whose law has mean ``mean``: BiasedUrn's ``oddsMFNCHypergeo`` and
    ``oddsMWNCHypergeo``, exact.

    Args:
        law: the class ``MultivariateFisherNCHypergeometric`` or
            ``MultivariateWalleniusNCHypergeometric``.
        population: ``[..., c]`` balls per class ``m``, broadcasting against ``mean``.
        draws: int or ``[...]``, balls drawn ``n``.
        mean: ``[..., c]`` observed mean counts, summing to ``draws`` (to 1e-9); each urn is
            solved on its own.
        max_iter: the most Newton steps.

    Returns:
        ``[..., c]`` float64 odds ``exp(logits)``, scaled so that class 0 has odds 1 (only
        ratios matter; BiasedUrn scales to the class of largest variance), whose exact mean is
        ``mean`` (to 1e-10 relative). For Fisher they are the maximum-likelihood odds of draws
        averaging ``mean`` (the moment match of ``diffhypergeom.stats.fit``).

    The mean of every class must lie strictly inside the range its count can take,
    ``max(0, n - (N - m_i)) < mean_i < min(m_i, n)``: at a bound the odds are 0 or infinite
    (BiasedUrn returns those with a warning), and a class whose count is fixed (no balls, or
    all drawn) has no odds to find (BiasedUrn's ``NaN``); both are a ``ValueError`` here,
    naming the class.

    Example:
        >>> import torch
        >>> from diffhypergeom import MultivariateFisherNCHypergeometric as Fisher
        >>> from diffhypergeom.stats import odds
        >>> m = torch.tensor([20, 30, 20])
        >>> mu = Fisher(m, 24, weights=torch.tensor([1.0, 2.5, 1.8], dtype=torch.float64)).mean
        >>> odds(Fisher, m, 24, mu)
        tensor([1.0000, 2.5000, 1.8000], dtype=torch.float64)
    """
    fisher = check_law(law)
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int, got {max_iter!r}")
    target = as_float64(mean, "mean")
    shape = target.shape
    population, draws, target = urn_rows(population, draws, target, "mean", integer=False)
    m = population.to(torch.float64)
    n = draws.to(torch.float64).unsqueeze(-1)
    low = (n - (m.sum(-1, keepdim=True) - m)).clamp_min(0)
    high = torch.minimum(m, n)
    fixed = low == high
    if bool(fixed.any()):
        row, i = fixed.nonzero()[0].tolist()
        raise ValueError(f"mean: class {i}'s count is fixed at {int(low[row, i])} by population "
                         f"and draws (observation {row}), so its odds are not identified")
    edge = (target <= low) | (target >= high)
    if bool(edge.any()):
        row, i = edge.nonzero()[0].tolist()
        side = "least" if bool(target[row, i] <= low[row, i]) else "greatest"
        raise ValueError(
            f"mean: class {i}'s mean {float(target[row, i]):g} (observation {row}) is at the "
            f"{side} count it can take, so its odds relative to the others are "
            f"{'0' if side == 'least' else 'infinite'}; the mean must lie strictly inside "
            f"[{int(low[row, i])}, {int(high[row, i])}]")
    share = target / m
    start = ((share / (1 - share)).log() if fisher else (-(-share).log1p()).log())
    logits = start - start[:, :1]
    scale = 1e-13 * (1 + n.squeeze(-1))
    for _ in range(max_iter):
        expected, jacobian = _mean_and_jacobian(fisher, population, draws, logits)
        residual = (expected - target)[:, 1:]
        size = residual.abs().amax(-1)
        step = torch.linalg.solve(jacobian[:, 1:, 1:], -residual.unsqueeze(-1)).squeeze(-1)
        active = (size > scale) & (step.abs().amax(-1) > 1e-13)
        if not bool(active.any()):
            break
        length = torch.ones_like(size)
        for _ in range(40):
            trial = logits.clone()
            trial[:, 1:] += length.unsqueeze(-1) * step
            found = _law(fisher)(population, draws, logits=trial, validate_args=False).mean
            better = ((found - target)[:, 1:].abs().amax(-1)
                      <= (1 - 1e-4 * length) * size) | ~active
            if bool(better.all()):
                break
            length = torch.where(better, length, 0.5 * length)
        else:  # no decrease left above the mean's rounding: as close as float64 goes
            break
        logits = torch.where(active.unsqueeze(-1), trial, logits)
    else:
        warnings.warn(f"odds: Newton's method did not converge in {max_iter} steps (largest "
                      f"residual of the mean {float(size.max()):.3g})", RuntimeWarning,
                      stacklevel=2)
    return logits.exp().reshape(shape)


def _approximate_population(fisher: bool, total: int, mean: torch.Tensor,
                            weights: torch.Tensor) -> torch.Tensor:
    """``[c]`` float64: BiasedUrn's real-valued balls, ``mu_i (1 + 1 / (r w_i))`` (Cornfield)
    or ``mu_i / (1 - s^w_i)`` (Manly), ``r`` or ``s`` making them sum to ``total``."""
    def balls(u: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The balls and their derivative in ``u`` (``r = e^u``, ``s = e^-e^u``)."""
        if fisher:
            part = mean / (weights * math.exp(u))
            return mean + part, -part
        rate = weights * math.exp(u)
        left = -torch.expm1(-rate)
        return mean / left, -mean * rate * torch.exp(-rate) / left ** 2

    def gap(u: float) -> tuple[float, float]:
        found, slope = balls(u)
        return total - float(found.sum()), -float(slope.sum())

    if float(mean.sum()) >= total:
        return mean.clone()
    return balls(increasing_root(gap, 0.0, xtol=1e-14, max_step=8.0))[0]


def _whole(values: torch.Tensor, total: int) -> torch.Tensor:
    """``values`` rounded to non-negative integers summing to ``total`` (largest remainders)."""
    base = values.clamp_min(0).floor().to(torch.int64)
    short = total - int(base.sum())
    order = (values - base).argsort(descending=True)
    if short > 0:
        base[order[:short]] += 1
    while short < 0:
        i = int(base.argmax())
        base[i] -= 1
        short += 1
    return base


def _whole_number(value: TensorLike, name: str) -> int:
    """A non-negative whole number (an int, or a tensor or array holding one)."""
    tensor = as_count_tensor(value, name)
    if tensor.dim() != 0:
        raise ValueError(f"{name} must be a single non-negative integer, got shape "
                         f"{tuple(tensor.shape)}")
    return int(tensor)


def num(law: type, total: int, draws: int, odds: TensorLike, mean: TensorLike) -> torch.Tensor:
    """The ball counts whose law has mean ``mean``: BiasedUrn's ``numMFNCHypergeo`` and
    ``numMWNCHypergeo``, with whole counts and the exact mean.

    Args:
        law: the class ``MultivariateFisherNCHypergeometric`` or
            ``MultivariateWalleniusNCHypergeometric``.
        total: ``N``, the balls in the urn.
        draws: ``n <= N``, the balls drawn.
        odds: ``[c]`` the weights, finite and ``> 0``.
        mean: ``[..., c]`` observed mean counts, each ``>= 0``, each row summing to ``draws``
            (to 1e-9); each row is solved on its own.

    Returns:
        ``[..., c]`` int64 ball counts ``m`` summing to ``total`` whose exact mean ``E_m[X]``
        is nearest to ``mean`` (in the sum of squares) among the counts one transfer of balls
        between two classes away: BiasedUrn's approximate real-valued counts, rounded to
        whole ones, then moved by transfers of 2^k balls from one class to another while that
        brings the exact mean closer (``k`` grows after a success and shrinks after a failure;
        the search ends at a count that no single-ball transfer improves). On the tests this
        equals the best of all compositions of ``N`` for small urns.

    Example:
        >>> import torch
        >>> from diffhypergeom import MultivariateFisherNCHypergeometric as Fisher
        >>> from diffhypergeom.stats import num
        >>> w = torch.tensor([1.0, 2.5, 1.8], dtype=torch.float64)
        >>> mu = Fisher(torch.tensor([20, 30, 20]), 24, weights=w).mean
        >>> num(Fisher, 70, 24, w, mu)
        tensor([20, 30, 20])
    """
    fisher = check_law(law)
    total, draws = (_whole_number(value, name) for value, name in ((total, "total"),
                                                                    (draws, "draws")))
    if draws > total:
        raise ValueError(f"draws must be <= total, got draws={draws} > total={total}")
    weights = as_float64(odds, "odds")
    if weights.dim() != 1 or weights.numel() < 2:
        raise ValueError(f"odds must have shape [c] with c >= 2, got {tuple(weights.shape)}")
    if not bool(torch.isfinite(weights).all()) or bool((weights <= 0).any()):
        raise ValueError(f"odds must be finite and > 0, got {weights.tolist()}")
    target = as_float64(mean, "mean")
    c = weights.numel()
    if target.dim() == 0 or target.shape[-1] != c:
        raise ValueError(f"mean must have shape [..., {c}] (the classes of odds), got "
                         f"{tuple(target.shape)}")
    if not bool(torch.isfinite(target).all()) or bool((target < 0).any()):
        raise ValueError("mean must be finite and >= 0")
    rows = target.reshape(-1, c)
    off = (rows.sum(-1) - draws).abs() > 1e-9 * (1 + draws)
    if bool(off.any()):
        row = int(off.nonzero()[0, 0])
        raise ValueError(f"mean must sum to draws over the classes; row {row} sums to "
                         f"{float(rows[row].sum()):g}, draws={draws}")
    found = [_search(fisher, total, draws, weights, row) for row in rows]
    return torch.stack(found).reshape(target.shape)


def _search(fisher: bool, total: int, draws: int, weights: torch.Tensor, mean: torch.Tensor
            ) -> torch.Tensor:
    """One row of ``num``: rounding, then transfers of balls while the exact mean improves."""
    c = weights.numel()
    current = _whole(_approximate_population(fisher, total, mean, weights), total)
    logits = weights.log()

    def errors(populations: torch.Tensor) -> torch.Tensor:
        law = _law(fisher)(populations, draws, logits=logits.expand(len(populations), -1),
                           validate_args=False)
        return (law.mean - mean).square().sum(-1)

    best = float(errors(current.unsqueeze(0))[0])
    pairs = torch.tensor([(i, j) for i in range(c) for j in range(c) if i != j])
    moves = torch.zeros(len(pairs), c, dtype=torch.int64)
    moves[torch.arange(len(pairs)), pairs[:, 0]] = 1
    moves[torch.arange(len(pairs)), pairs[:, 1]] = -1
    size = 1
    while True:
        candidates = current + size * moves
        candidates = candidates[(candidates >= 0).all(-1)]
        found = errors(candidates) if len(candidates) else torch.empty(0)
        if len(found) and float(found.min()) < best * (1 - 1e-12):
            pick = int(found.argmin())
            current, best = candidates[pick], float(found[pick])
            size *= 2
        elif size > 1:
            size //= 2
        else:
            return current

