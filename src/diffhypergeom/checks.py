"""Argument checks that turn bad input into a ``ValueError`` naming the parameter and the
violated constraint."""

from __future__ import annotations

from collections.abc import Sequence

import torch

TensorLike = torch.Tensor | Sequence | int | float


def as_count_tensor(value: TensorLike, name: str, device: torch.device | None = None,
                    check: bool = True) -> torch.Tensor:
    """Counts (population, draws, a value of the support) as an int64 tensor.

    Accepts integer tensors and floating tensors or sequences holding whole numbers; rejects
    negative, non-integer, NaN and infinite entries (unless ``check=False``)."""
    try:
        tensor = torch.as_tensor(value, device=device)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{name} must be a tensor of non-negative integers, got {value!r}"
                         ) from err
    if tensor.dtype == torch.bool or tensor.is_complex():
        raise ValueError(f"{name} must hold non-negative integers, got dtype {tensor.dtype}")
    if not check:  # validate_args=False: no check that reads the values
        return tensor.to(torch.int64)
    if tensor.is_floating_point():
        if not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"{name} must be finite non-negative integers, got NaN or inf")
        if not bool((tensor == tensor.round()).all()):
            raise ValueError(f"{name} must be integers, got non-integer values "
                             f"{tensor[tensor != tensor.round()][:3].tolist()}")
    if bool((tensor < 0).any()):
        raise ValueError(f"{name} must be non-negative, got {tensor[tensor < 0][:3].tolist()}")
    return tensor.to(torch.int64)


def as_float_tensor(value: TensorLike, name: str) -> torch.Tensor:
    """A real floating tensor (integers are converted to the default dtype); complex, boolean
    and non-numeric input is rejected (a complex weight would otherwise lose its imaginary
    part silently)."""
    if isinstance(value, str):
        raise ValueError(f"{name} must be a real tensor of shape [..., c], got {value!r}")
    try:
        tensor = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{name} must be a real tensor of shape [..., c], got {value!r}"
                         ) from err
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise ValueError(f"{name} must be real numbers, got dtype {tensor.dtype}")
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.get_default_dtype())
    return tensor


def check_logits(logits: torch.Tensor) -> None:
    if bool(torch.isnan(logits).any()):
        raise ValueError("logits must not be NaN")
    if bool(torch.isinf(logits).any()):
        raise ValueError("logits must be finite (to exclude a class, pass weights with a zero "
                         "entry instead)")


def check_weights(weights: torch.Tensor) -> None:
    if bool(torch.isnan(weights).any()):
        raise ValueError("weights must not be NaN")
    if bool(torch.isinf(weights).any()):
        raise ValueError("weights must be finite")
    if bool((weights < 0).any()):
        raise ValueError(f"weights must be >= 0, got {weights[weights < 0][:3].tolist()}")


def broadcast_batch(*shapes: torch.Size, names: Sequence[str]) -> torch.Size:
    try:
        return torch.broadcast_shapes(*shapes)
    except RuntimeError as err:
        described = ", ".join(f"{n} {tuple(s)}" for n, s in zip(names, shapes, strict=True))
        raise ValueError(f"batch shapes do not broadcast: {described}") from err


def check_positive(value: float | torch.Tensor, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, torch.Tensor)):
        raise ValueError(f"{name} must be a float or a real tensor, finite and > 0, got "
                         f"{value!r}")
    tensor = torch.as_tensor(value)
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise ValueError(f"{name} must be real, got dtype {tensor.dtype}")
    if not bool(torch.isfinite(tensor).all()) or bool((tensor <= 0).any()):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")


def check_bool(value, name: str) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")


# Counts are handled as float64 inside the engines: totals must be exact there.
MAX_TOTAL = 2**53


def check_total(population: torch.Tensor) -> None:
    """``population.sum(-1)`` must not overflow int64 and must be exact in float64."""
    if population.numel() == 0:
        return
    total = population.to(torch.float64).sum(-1)
    if bool((total > MAX_TOTAL).any()):
        raise ValueError(f"population.sum(-1) must be <= 2**53 (counts are exact float64 "
                         f"integers), got {float(total.max()):.3g}")
