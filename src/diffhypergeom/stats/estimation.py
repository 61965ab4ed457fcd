"""Maximum likelihood of the logits of the Fisher or Wallenius law from observed counts:
``fit`` and its result, ``FitResult``, with standard errors from the observed information and
profile-likelihood confidence intervals.

The data are ``S`` draws ``x_s`` from urns ``(m_s, n_s)`` sharing one vector of logits:
``S`` draws from one urn (``population [c]``, ``draws`` an int), or one draw from each of
``S`` urns (``population [S, c]``, ``draws [S]``), or any mix that broadcasts. Only
differences of logits are identified; they are reported relative to class 0, whose logit is 0.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import torch

from diffhypergeom.laws.checks import TensorLike
from diffhypergeom.stats.checks import (
    check_alternative,
    check_law,
    check_level,
    critical_value,
    urn_rows,
)
from diffhypergeom.stats.likelihood import SharedLogitLikelihood
from diffhypergeom.stats.solvers import increasing_root, maximize

__all__ = ["FitResult", "fit", "profile_endpoint"]


@dataclass(eq=False)
class FitResult:
    """The maximum-likelihood fit of the logits (what ``fit`` returns).

    Attributes:
        logits: ``[c]`` float64, the estimates relative to class 0 (``logits[0] == 0``).
        stderr: ``[c]`` float64, their standard errors from the observed information (the
            inverse of minus the Hessian of the log-likelihood in ``logits[1:]``; for the Fisher
            law it equals the expected information, the summed covariances of the counts);
            ``stderr[0] == 0``.
        covariance: ``[c, c]`` float64, the estimates' covariance from the same information
            (row and column 0 are zero).
        log_likelihood: ``sum_s log p(x_s)`` at the estimates.
        iterations: Newton steps taken.
        converged: whether Newton's decrement fell below its tolerance (``fit`` warns when
            not).
    """

    logits: torch.Tensor
    stderr: torch.Tensor
    covariance: torch.Tensor
    log_likelihood: float
    iterations: int
    converged: bool
    _likelihood: SharedLogitLikelihood = field(repr=False)
    _value: float = field(repr=False)
    _bounds: dict = field(default_factory=dict, repr=False)

    def confidence_interval(self, level: float = 0.95, alternative: str = "two-sided"
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        """Profile-likelihood confidence intervals of each logit: ``(low, high)``, each ``[c]``
        (class 0's entries are 0).

        The interval of ``logits[j]`` holds the values ``t`` whose profile log-likelihood
        ``max {l(theta) : theta_j = t}`` lies within ``q / 2`` of the maximum, ``q =
        ndtri((1 + level) / 2) ** 2`` (the chi-square(1) quantile). One-sided
        (``alternative="less"``: ``(-inf, high)``; ``"greater"``: ``(low, inf)``) uses the
        signed root, ``q = ndtri(level) ** 2``. Each endpoint is a root of the profile found by
        safeguarded Newton steps (its slope is the partial derivative at the profile's
        maximum), the nuisance logits re-maximised at each step; exact to about 1e-10.

        Args:
            level: the confidence level, strictly between 0 and 1.
            alternative: ``"two-sided"`` (default), ``"less"`` or ``"greater"``.
        """
        level = check_level(level)
        alternative = check_alternative(alternative)
        z = critical_value(level, alternative)
        c = self.logits.numel()
        low = torch.zeros(c, dtype=torch.float64)
        high = torch.zeros(c, dtype=torch.float64)
        for j in range(1, c):
            low[j] = (-math.inf if alternative == "less" else self._bound(j, -1, z))
            high[j] = (math.inf if alternative == "greater" else self._bound(j, 1, z))
        return low, high

    def _bound(self, j: int, side: int, z: float) -> float:
        """The profile-likelihood endpoint of ``logits[j]`` on ``side`` (``-1``: low, ``1``:
        high) where the log-likelihood has fallen by ``z ** 2 / 2``."""
        key = (j, side, z)
        if key not in self._bounds:
            centre = float(self.logits[j])
            spread = float(self.stderr[j]) if float(self.stderr[j]) > 0 else 1.0
            self._bounds[key] = profile_endpoint(
                self._likelihood, j - 1, self._value, self.logits[1:], centre + side * abs(z) *
                spread, (centre, math.inf) if side > 0 else (-math.inf, centre), side, z)
        return self._bounds[key]


def profile_endpoint(likelihood: SharedLogitLikelihood, index: int, top: float,
                     start: torch.Tensor, guess: float, bracket: tuple[float, float],
                     side: int, z: float) -> float:
    """Where the profile log-likelihood of the free logit ``index`` falls ``z ** 2 / 2`` below
    ``top`` (its supremum), on ``side`` of it.

    Args:
        likelihood: the log-likelihood in the free logits ``[d]``.
        index: which free logit is profiled.
        top: the supremum of the log-likelihood (on ``likelihood``'s scale), reached at the
            maximum or, where it does not exist, in a limit.
        start: ``[d]`` free logits to start the nuisance maximisation from.
        guess: the first value of the profiled logit tried.
        bracket: ``(lower, upper)`` containing the endpoint; the profile falls monotonically
            from ``top`` across it in the direction ``side``.
        side: ``1``: the endpoint above the supremum (the drop grows with the logit), ``-1``:
            below.
        z: the normal quantile; the drop sought is ``z ** 2 / 2``.
    """
    others = [i for i in range(start.numel()) if i != index]
    nuisance = start[others].clone()
    target = 0.5 * z * z

    def profile(t: float) -> tuple[float, float]:
        nonlocal nuisance
        last: list = []

        def restricted(x: torch.Tensor, derivatives: bool):
            full = torch.cat([x[:index], x.new_tensor([t]), x[index:]])
            value, gradient, hessian = likelihood(full, derivatives)
            if not derivatives:
                return value, None, None
            last[:] = [value, float(gradient[index])]
            return value, gradient[others], hessian[others][:, others]

        nuisance = maximize(restricted, nuisance).x
        return last[0], last[1]

    def excess(t: float) -> tuple[float, float]:
        value, slope = profile(t)
        return side * (top - value - target), -side * slope

    return increasing_root(excess, guess, *bracket, xtol=1e-12, max_step=8.0)


def fit(law: type, population: TensorLike, draws: TensorLike, counts: TensorLike, *,
        max_iter: int = 100) -> FitResult:
    """Maximum-likelihood logits of ``law`` from observed counts.

    Args:
        law: the class ``MultivariateFisherNCHypergeometric`` or
            ``MultivariateWalleniusNCHypergeometric``.
        population: ``[..., c]`` balls per class of each draw's urn, broadcasting against
            ``counts``: ``[c]`` for ``S`` draws from one urn, ``[S, c]`` for one draw from each
            of ``S`` urns.
        draws: int or ``[...]``, balls drawn, broadcasting against ``counts.shape[:-1]``.
        counts: ``[..., c]`` observed counts (``[S, c]``: one draw per row), non-negative
            integers with ``counts <= population`` and ``counts.sum(-1) == draws``. Every row
            is one draw; all share the logits.
        max_iter: the most Newton steps.

    Returns:
        A ``FitResult``: ``logits`` and ``stderr`` (``[c]``, relative to class 0),
        ``covariance``, ``log_likelihood``, ``iterations``, ``converged`` and
        ``confidence_interval(level)`` (profile likelihood).

    Fisher's law is an exponential family in the logits with sufficient statistic ``x``: the
    likelihood equations are the moment match ``sum_s E_s[X] = sum_s x_s``, concave, solved by
    Newton's method with the exact summed covariance as (minus) the Hessian. Wallenius's law is
    not: Newton's method on its exact ``log_prob``, gradient and Hessian by autograd, with a
    Levenberg shift where the Hessian is not negative definite. Both start from Cornfield's
    approximation of the pooled counts and backtrack.

    Raises ``ValueError`` for bad input (naming the parameter), where the logits are not
    identified (a class whose count no urn lets vary), and where the estimate does not exist:
    when in every draw a set of classes has all its balls drawn or the other classes none (a
    count at its bound, such as ``x_i = m_i`` in every draw), the likelihood rises without end
    as that set's logits grow; the message names the classes.

    Example:
        Five draws from one urn:

        >>> import torch
        >>> from diffhypergeom import MultivariateFisherNCHypergeometric as Fisher
        >>> from diffhypergeom.stats import fit
        >>> counts = torch.tensor([[3, 5, 2], [4, 4, 2], [2, 6, 2], [3, 4, 3], [1, 7, 2]])
        >>> result = fit(Fisher, torch.tensor([8, 10, 6]), 10, counts)
        >>> [round(v, 4) for v in result.logits.tolist()]
        [0.0, 0.7764, 0.177]
        >>> [round(v, 4) for v in result.stderr.tolist()]
        [0.0, 0.4309, 0.4972]
        >>> low, high = result.confidence_interval(0.95)  # profile likelihood
        >>> [round(v, 4) for v in low.tolist()], [round(v, 4) for v in high.tolist()]
        ([0.0, -0.0566, -0.8073], [0.0, 1.6406, 1.1554])

        Every draw takes all 8 balls of class 0: its logit has no finite estimate.

        >>> fit(Fisher, torch.tensor([8, 10, 6]), 10, torch.tensor([[8, 2, 0], [8, 1, 1]]))
        ... # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: counts: the maximum-likelihood estimate does not exist: in every draw ...
    """
    fisher = check_law(law)
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int, got {max_iter!r}")
    population, draws, counts = urn_rows(population, draws, counts, "counts", integer=True)
    likelihood = SharedLogitLikelihood(fisher, population, draws, counts)
    likelihood.check_estimable()
    found = maximize(likelihood, likelihood.start(), max_iter=max_iter)
    if not found.converged:
        warnings.warn(f"fit: Newton's method did not converge in {found.iterations} steps "
                      f"(raise max_iter); the estimates are the last point reached",
                      RuntimeWarning, stacklevel=2)
    c = counts.shape[-1]
    information = -found.hessian
    covariance = torch.zeros(c, c, dtype=torch.float64)
    covariance[1:, 1:] = torch.linalg.inv(information)
    stderr = covariance.diagonal().clamp_min(0).sqrt()
    return FitResult(
        logits=likelihood.logits(found.x), stderr=stderr, covariance=covariance,
        log_likelihood=likelihood.log_likelihood(found.x), iterations=found.iterations,
        converged=found.converged, _likelihood=likelihood, _value=found.value)
