"""The two solvers of ``diffhypergeom.stats``, in float64 torch: the root of an increasing
function of one variable (safeguarded Newton: a Newton step where it stays inside the bracket,
bisection or doubling where it does not), and the maximum of a smooth function of several
(Newton with a Levenberg shift where the Hessian is not negative definite, and backtracking).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch

__all__ = ["NEAR", "Maximum", "increasing_root", "maximize"]

# ``maximize`` takes full Newton steps once the predicted rise (the Newton decrement) is below
# this: the quadratic model is then exact to far below what a line search could resolve
NEAR = 1e-8


def increasing_root(func: Callable[[float], tuple[float, float]], start: float,
                    lower: float = -math.inf, upper: float = math.inf, *,
                    xtol: float = 1e-13, max_step: float = math.inf,
                    max_iter: int = 400) -> float:
    """The root of ``func``, increasing on ``(lower, upper)``, where it changes sign.

    Args:
        func: ``x -> (value, slope)``; ``value`` increasing in ``x`` with one sign change in
            ``(lower, upper)``; ``slope`` its derivative (used for Newton steps only, so an
            inexact or zero slope slows the search without misleading it).
        start: the first point tried, inside ``(lower, upper)``.
        lower, upper: a bracket (``func < 0`` at ``lower``, ``> 0`` at ``upper``); infinite ends
            are searched by doubling steps.
        xtol: the search stops when a step is below ``xtol * (1 + |x|)``.
        max_step: the longest Newton step (a trust region against the huge steps of a flat
            tail).

    Example:
        >>> from diffhypergeom.stats.solvers import increasing_root
        >>> round(increasing_root(lambda x: (x ** 3 - 2.0, 3 * x * x), 1.0), 12)  # 2 ** (1 / 3)
        1.259921049895
    """
    low, high = lower, upper
    x, reach = start, 1.0
    for _ in range(max_iter):
        value, slope = func(x)
        if value == 0.0 or math.isnan(value):
            if math.isnan(value):
                raise ValueError(f"increasing_root: the function is NaN at {x!r}")
            return x
        if value < 0:
            low = x
        else:
            high = x
        proposal = math.nan
        if slope > 0 and math.isfinite(slope):
            proposal = x - max(-max_step, min(max_step, value / slope))
        if not low < proposal < high:
            if math.isfinite(low) and math.isfinite(high):
                proposal = 0.5 * (low + high)
            else:
                reach *= 2.0
                proposal = x + reach if value < 0 else x - reach
        if abs(proposal - x) <= xtol * (1.0 + abs(x)) or proposal in (low, high):
            return proposal
        x = proposal
    raise ValueError(f"increasing_root: no convergence in {max_iter} steps (bracket "
                     f"[{low!r}, {high!r}])")


class Maximum(NamedTuple):
    """What ``maximize`` found.

    Attributes:
        x: ``[d]`` the point.
        value: the function there.
        gradient: ``[d]`` its gradient there.
        hessian: ``[d, d]`` its Hessian there.
        iterations: the Newton steps taken.
        converged: whether the Newton decrement fell below the tolerance.
    """

    x: torch.Tensor
    value: float
    gradient: torch.Tensor
    hessian: torch.Tensor
    iterations: int
    converged: bool


def maximize(func: Callable[[torch.Tensor, bool], tuple[float, torch.Tensor | None,
                                                         torch.Tensor | None]],
             start: torch.Tensor, *, max_iter: int = 100, gtol: float = 1e-9) -> Maximum:
    """The maximum of a smooth function of ``d`` variables by Newton's method.

    Args:
        func: ``(x [d], derivatives) -> (value, gradient [d], hessian [d, d])``; the last two
            may be ``None`` when ``derivatives`` is false (a line-search probe).
        start: ``[d]`` float64, the first point.
        max_iter: the most Newton steps.
        gtol: converged once the Newton decrement ``g . H^-1 g`` is below ``gtol ** 2`` (on the
            scale of the value's rounding: the point is then exact to ``gtol / sqrt(curvature)``).

    Where ``-H`` is not positive definite a multiple of the identity is added (a Levenberg
    step). Steps backtrack until the value rises by a tenth of the predicted rise, except near
    the maximum (decrement below ``NEAR``), where full steps are taken.

    Example:
        >>> import torch
        >>> from diffhypergeom.stats.solvers import maximize
        >>> def f(x, derivatives):  # -(x0 - 1)^2 - 2 (x1 + 3)^2
        ...     g = torch.stack([-2 * (x[0] - 1), -4 * (x[1] + 3)])
        ...     h = torch.diag(torch.tensor([-2.0, -4.0], dtype=torch.float64))
        ...     return float(-(x[0] - 1) ** 2 - 2 * (x[1] + 3) ** 2), g, h
        >>> found = maximize(f, torch.zeros(2, dtype=torch.float64))
        >>> [round(v, 12) for v in found.x.tolist()], found.converged
        ([1.0, -3.0], True)
    """
    x = start.to(torch.float64).clone()
    value, gradient, hessian = func(x, True)
    dim = x.numel()
    eye = torch.eye(dim, dtype=torch.float64)
    for iteration in range(max_iter + 1):
        if dim == 0:
            return Maximum(x, value, gradient, hessian, iteration, True)
        step, decrement = _newton_step(gradient, hessian, eye)
        if decrement <= gtol * gtol:
            return Maximum(x, value, gradient, hessian, iteration, True)
        if iteration == max_iter:
            break
        if decrement > NEAR:
            length, moved = 1.0, False
            for _ in range(60):
                if func(x + length * step, False)[0] >= value + 0.1 * length * decrement:
                    moved = True
                    break
                length *= 0.5
            if not moved:  # no rise left above rounding: as far as float64 goes
                converged = decrement <= 1e-10 * (1.0 + abs(value))
                return Maximum(x, value, gradient, hessian, iteration, converged)
            step = length * step
        x = x + step
        value, gradient, hessian = func(x, True)
        if float(step.abs().max()) <= 1e-13 * (1.0 + float(x.abs().max())):
            return Maximum(x, value, gradient, hessian, iteration + 1, True)
    return Maximum(x, value, gradient, hessian, max_iter, False)


def _newton_step(gradient: torch.Tensor, hessian: torch.Tensor, eye: torch.Tensor
                 ) -> tuple[torch.Tensor, float]:
    """The ascent step ``(-H + mu I)^-1 g`` with the smallest ``mu >= 0`` (of ``0, 1e-8
    |H|, ...``) that makes the matrix positive definite, and its decrement ``g . step``."""
    scale = float(hessian.abs().max()) if hessian.numel() else 1.0
    shift = 0.0
    for _ in range(40):
        factor, info = torch.linalg.cholesky_ex(-hessian + shift * eye)
        if int(info) == 0:
            step = torch.cholesky_solve(gradient.unsqueeze(-1), factor).squeeze(-1)
            return step, float(gradient @ step)
        shift = max(2 * shift, 1e-8 * max(scale, 1.0))
    raise ValueError("maximize: the Hessian has no usable positive-definite shift (NaN?)")
