"""Argument checks of ``diffhypergeom.stats``: which law, a confidence level, and observed counts
or means laid out against their urns. Each bad input is a ``ValueError`` naming the parameter
and the constraint."""

from __future__ import annotations

import math

import numpy as np
import torch

from diffhypergeom.laws import (
    MultivariateFisherNCHypergeometric,
    MultivariateWalleniusNCHypergeometric,
)
from diffhypergeom.laws.checks import TensorLike, as_count_tensor, as_float_tensor

__all__ = ["ALTERNATIVES", "as_float64", "check_alternative", "check_law", "check_level",
           "critical_value", "urn_rows"]

ALTERNATIVES = ("two-sided", "less", "greater")


def check_law(law: object) -> bool:
    """``True`` for ``MultivariateFisherNCHypergeometric``, ``False`` for
    ``MultivariateWalleniusNCHypergeometric`` (the classes, not instances); a ``ValueError``
    naming ``law`` otherwise.

    Example:
        >>> from diffhypergeom import MultivariateFisherNCHypergeometric
        >>> from diffhypergeom.stats.checks import check_law
        >>> check_law(MultivariateFisherNCHypergeometric)
        True
        >>> check_law("fisher")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: law must be the class MultivariateFisherNCHypergeometric or ...
    """
    if law is MultivariateFisherNCHypergeometric:
        return True
    if law is MultivariateWalleniusNCHypergeometric:
        return False
    raise ValueError(f"law must be the class MultivariateFisherNCHypergeometric or "
                     f"MultivariateWalleniusNCHypergeometric, got {law!r}")


def check_level(level: object, name: str = "level") -> float:
    """A confidence level: a real number strictly between 0 and 1.

    Example:
        >>> from diffhypergeom.stats.checks import check_level
        >>> check_level(0.9)
        0.9
        >>> check_level(1.0, "confidence_level")
        Traceback (most recent call last):
        ...
        ValueError: confidence_level must be a number strictly between 0 and 1, got 1.0
    """
    if isinstance(level, torch.Tensor) and level.numel() == 1 and not level.is_complex():
        level = float(level)
    if (isinstance(level, (bool, np.bool_))
            or not isinstance(level, (int, float, np.integer, np.floating))
            or not 0.0 < float(level) < 1.0 or math.isnan(float(level))):
        raise ValueError(f"{name} must be a number strictly between 0 and 1, got {level!r}")
    return float(level)


def as_float64(value: TensorLike, name: str) -> torch.Tensor:
    """Real numbers as a float64 CPU tensor: a tensor keeps its values (``float32`` ones
    widened), anything else is read by numpy, so that Python floats keep their 53 bits (torch
    would read them as ``float32``); complex, boolean and non-numeric input is a
    ``ValueError`` naming ``name``.

    Example:
        >>> from diffhypergeom.stats.checks import as_float64
        >>> as_float64([0.1, 2], "mean").tolist()
        [0.1, 2.0]
        >>> as_float64([1j, 2], "mean")
        Traceback (most recent call last):
        ...
        ValueError: mean must be real numbers, got dtype complex128
    """
    if not isinstance(value, torch.Tensor):
        try:
            array = np.asarray(value)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name} must be real numbers, got {value!r} ({err})") from err
        if array.dtype.kind not in "iuf":
            raise ValueError(f"{name} must be real numbers, got dtype {array.dtype}")
        value = torch.from_numpy(array.astype(np.float64))
    return as_float_tensor(value, name).to(device="cpu", dtype=torch.float64)


def check_alternative(alternative: object) -> str:
    """One of ``"two-sided"``, ``"less"``, ``"greater"`` (as in scipy)."""
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
    return str(alternative)


def critical_value(level: float, alternative: str) -> float:
    """The standard normal quantile of an interval at ``level``: ``ndtri((1 + level) / 2)``
    two-sided, ``ndtri(level)`` one-sided (``alternative`` checked already)."""
    p = (1 + level) / 2 if alternative == "two-sided" else level
    return float(torch.special.ndtri(torch.tensor(p, dtype=torch.float64)))


def urn_rows(population: TensorLike, draws: TensorLike, observed: TensorLike, name: str,
             integer: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Observed counts (``integer=True``) or means against their urns, one row per observation.

    Args:
        population: ``[..., c]`` balls per class, broadcasting against ``observed``.
        draws: int or ``[...]``, balls drawn, broadcasting against ``observed.shape[:-1]``.
        observed: ``[..., c]`` counts or means; its leading shape is the observations'.
        name: the name of ``observed`` in the messages.
        integer: whether ``observed`` must hold whole numbers.

    Returns:
        ``population [S, c]`` and ``draws [S]`` (int64) and ``observed [S, c]`` (int64 counts
        or float64 means), ``S`` the number of observations, on the CPU. Every observation
        lies in its urn's range (``0 <= x <= m``) and sums to its draws (means to 1e-9
        relative).
    """
    if integer:
        values = as_count_tensor(observed, name).cpu()
    else:
        values = as_float64(observed, name)
        if not bool(torch.isfinite(values).all()):
            raise ValueError(f"{name} must be finite, got NaN or inf")
    population = as_count_tensor(population, "population", values.device)
    draws = as_count_tensor(draws, "draws", values.device)
    if values.dim() == 0:
        raise ValueError(f"{name} must have shape [..., c] (the classes last), got a scalar")
    c = values.shape[-1]
    if c < 2:
        raise ValueError(f"{name} must have at least 2 classes (shape [..., c], c >= 2), got "
                         f"shape {tuple(values.shape)}")
    if population.dim() == 0 or population.shape[-1] != c:
        raise ValueError(f"population must have shape [..., {c}] (the classes of {name}), got "
                         f"{tuple(population.shape)}")
    batch = values.shape[:-1]
    try:
        shape = torch.broadcast_shapes(batch, population.shape[:-1], draws.shape)
    except RuntimeError as err:
        raise ValueError(f"population {tuple(population.shape)}, draws {tuple(draws.shape)} "
                         f"and {name} {tuple(values.shape)} do not broadcast") from err
    if shape != batch:
        raise ValueError(f"population {tuple(population.shape)} and draws "
                         f"{tuple(draws.shape)} must broadcast to the leading shape of {name}, "
                         f"{tuple(batch)} (one urn per observation)")
    if math.prod(batch) == 0:
        raise ValueError(f"{name} holds no observation (shape {tuple(values.shape)})")
    population = population.expand(batch + (c,)).reshape(-1, c)
    draws = draws.expand(batch).reshape(-1)
    values = values.reshape(-1, c)
    total = population.sum(-1)
    if bool((draws > total).any()):
        row = int((draws > total).nonzero()[0, 0])
        raise ValueError(f"draws must be <= population.sum(-1); at observation {row}: "
                         f"draws={int(draws[row])} > {int(total[row])}")
    outside = ((values < 0) | (values > population)).any(-1)
    if bool(outside.any()):
        row = int(outside.nonzero()[0, 0])
        raise ValueError(f"{name} must lie in 0 <= x <= population; observation {row} is "
                         f"{values[row].tolist()} against population {population[row].tolist()}")
    sums = values.sum(-1).to(torch.float64)
    gap = (sums - draws.to(torch.float64)).abs()
    off = gap > (0 if integer else 1e-9 * (1 + draws.to(torch.float64)))
    if bool(off.any()):
        row = int(off.nonzero()[0, 0])
        raise ValueError(f"{name} must sum to draws over the classes; observation {row} sums "
                         f"to {float(sums[row]):g}, draws={int(draws[row])}")
    return population, draws, values
