"""Argument checks that turn bad input into a ``ValueError`` naming the parameter and the
violated constraint."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "MAX_TOTAL", "TensorLike", "as_count_tensor", "as_float_tensor", "broadcast_batch",
    "broadcast_value", "check_bool", "check_class_index", "check_labels", "check_logits",
    "check_not_meta", "check_positive", "check_sample_shape", "check_total",
    "check_weights", "subset_urn",
    "expanded_shape", "on_device",
]

TensorLike = torch.Tensor | np.ndarray | Sequence | int | float


def as_count_tensor(value: TensorLike, name: str, device: torch.device | None = None,
                    check: bool = True) -> torch.Tensor:
    """Counts (population, draws, a value of the support) as an int64 tensor.

    Accepts integer tensors and floating tensors or sequences holding whole numbers (numpy
    scalars and arrays included); rejects negative, non-integer, NaN and infinite entries
    (unless ``check=False``); the result is on ``device`` (the logits' device).

    Example:
        >>> import numpy as np
        >>> from diffhypergeom.laws.checks import as_count_tensor
        >>> as_count_tensor(np.array([3.0, 5.0, 0.0]), "population")
        tensor([3, 5, 0])
        >>> as_count_tensor([2, -1], "draws")
        Traceback (most recent call last):
        ...
        ValueError: draws must be non-negative, got [-1]
    """
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63:
        return torch.tensor(value, dtype=torch.int64, device=device)  # a Python int, quickly
    if isinstance(value, torch.Tensor):
        tensor = on_device(value, name, device)
    else:
        tensor = _convert(value, name, "a tensor of non-negative integers", device)
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
    part silently).

    Example:
        >>> import torch
        >>> from diffhypergeom.laws.checks import as_float_tensor
        >>> as_float_tensor([1, 2], "weights")
        tensor([1., 2.])
        >>> as_float_tensor(torch.tensor([1 + 2j]), "weights")
        Traceback (most recent call last):
        ...
        ValueError: weights must be real numbers, got dtype torch.complex64
    """
    if isinstance(value, str):
        raise ValueError(f"{name} must be a real tensor of shape [..., c], got {value!r}")
    tensor = (value if isinstance(value, torch.Tensor)
              else _convert(value, name, "a real tensor of shape [..., c]"))
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise ValueError(f"{name} must be real numbers, got dtype {tensor.dtype}")
    check_not_meta(tensor, name)
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.get_default_dtype())
    return tensor


def check_not_meta(tensor: torch.Tensor, name: str) -> None:
    """A ``ValueError`` for a tensor on the ``meta`` device: it holds no values, and every law
    reads its parameters' values (to choose an engine, to check the urn)."""
    if tensor.device.type == "meta":
        raise ValueError(f"{name} is on the meta device, which holds no values; the laws read "
                         f"their parameters' values, so build them on a real device")


def check_sample_shape(sample_shape: object) -> torch.Size:
    """``sample_shape`` as a ``torch.Size`` of non-negative ints, else a ``ValueError`` naming
    it.

    Example:
        >>> from diffhypergeom.laws.checks import check_sample_shape
        >>> check_sample_shape((2, 3))
        torch.Size([2, 3])
        >>> check_sample_shape((-1,))
        Traceback (most recent call last):
        ...
        ValueError: sample_shape must be a sequence of non-negative ints, got (-1,)
    """
    try:
        shape = torch.Size(sample_shape)
    except TypeError as err:
        raise ValueError(f"sample_shape must be a sequence of non-negative ints, got "
                         f"{sample_shape!r}") from err
    if any(size < 0 for size in shape):
        raise ValueError(f"sample_shape must be a sequence of non-negative ints, got "
                         f"{tuple(sample_shape)!r}")
    return shape


def expanded_shape(batch_shape: object, current: torch.Size) -> torch.Size:
    """``batch_shape`` for ``expand``: a ``torch.Size`` that ``current`` broadcasts to, else a
    ``ValueError`` naming it (torch's own error names neither)."""
    shape = check_sample_shape(batch_shape) if not isinstance(batch_shape, torch.Size) \
        else batch_shape
    try:
        if torch.broadcast_shapes(current, shape) == shape:
            return shape
    except RuntimeError:
        pass
    raise ValueError(f"batch_shape {tuple(shape)} is not one the batch shape {tuple(current)} "
                     f"expands to (torch.expand rules: equal sizes, or 1, aligned from the "
                     f"right)")


def subset_urn(logits: TensorLike, k: TensorLike, checking: bool
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The urn of a k-subset law (``KSubset``, ``GumbelTopK``): ``(logits, k, population)``
    with ``population = ones(N)``, after the checks its urn law would otherwise repeat. Finite
    logits and counts ``k`` are checked when ``checking`` (``validate_args``); ``k <= N`` always,
    a ``ValueError`` naming ``k``: no subset exists, and the laws would otherwise give all
    ``N`` items or fail deep inside."""
    logits = as_float_tensor(logits, "logits")
    if logits.dim() == 0:
        raise ValueError("logits must have an item dimension: shape [..., N]")
    k = as_count_tensor(k, "k", logits.device, checking)
    if checking:
        check_logits(logits)
    items = logits.shape[-1]
    if k.numel() and bool((k > items).any()):
        raise ValueError(f"k must be <= N = {items} (the items), got {k.max().item()}")
    return logits, k, torch.ones(items, dtype=torch.int64, device=logits.device)


def check_class_index(i: object, classes: int) -> int:
    """A class index ``-classes <= i < classes`` (a Python or NumPy int, not a bool), as
    ``0 <= i < classes``; a ``TypeError`` or ``ValueError`` naming ``i`` otherwise."""
    if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
        raise TypeError(f"class index i must be an int, got {type(i).__name__} {i!r}")
    if not -classes <= i < classes:
        raise ValueError(f"class index i must be in [0, {classes}), got {i}")
    return int(i) % classes


def check_labels(value: object, name: str = "value") -> torch.Tensor:
    """Block labels as a tensor of whole numbers: strings, booleans and complex numbers are a
    ``TypeError`` naming ``name``."""
    if isinstance(value, str) or (isinstance(value, Sequence) and any(
            isinstance(v, str) for v in value)):
        raise TypeError(f"{name} must hold integer block labels, got a string {value!r}")
    z = value if isinstance(value, torch.Tensor) else _convert(
        value, name, "a tensor of integer block labels")
    if z.dtype == torch.bool or z.is_complex():
        raise TypeError(f"{name} must hold integer block labels, got dtype {z.dtype}")
    return z


def on_device(tensor: torch.Tensor, name: str, device: torch.device | str | None
              ) -> torch.Tensor:
    """``tensor`` on ``device`` (the logits' device; unchanged when ``None``). A tensor that
    cannot be moved there (a ``meta`` tensor, say) is a ``ValueError`` with torch's reason.

    Example:
        >>> import torch
        >>> from diffhypergeom.laws.checks import on_device
        >>> x = torch.tensor([1, 2])
        >>> on_device(x, "population", None) is x, on_device(x, "population", "meta").device
        (True, device(type='meta'))
        >>> meta = torch.empty(2, device="meta")  # holds no data
        >>> on_device(meta, "population", "cpu")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: population is on device meta and cannot be moved to the logits' device cpu (...)
    """
    if device is None or tensor.device == torch.device(device):
        return tensor
    try:
        return tensor.to(device)
    except (RuntimeError, NotImplementedError) as err:
        raise ValueError(f"{name} is on device {tensor.device} and cannot be moved to the "
                         f"logits' device {torch.device(device)} ({err})") from err


def _convert(value: object, name: str, expected: str,
             device: torch.device | None = None) -> torch.Tensor:
    """``torch.as_tensor(value, device=device)`` for a value that is not a tensor; a value it
    cannot convert is a ``ValueError`` naming the parameter, with torch's reason."""
    try:
        return torch.as_tensor(value, device=device)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{name} must be {expected}, got {value!r} ({err})") from err


def check_logits(logits: torch.Tensor) -> None:
    """Logits must be finite: no NaN, and no ``-inf`` (a class is excluded by a zero weight).

    Example:
        >>> import torch
        >>> from diffhypergeom.laws.checks import check_logits
        >>> check_logits(torch.tensor([0.0, -2.5]))  # fine: returns None
        >>> check_logits(torch.tensor([0.0, float("-inf")]))  # doctest: +NORMALIZE_WHITESPACE
        Traceback (most recent call last):
        ...
        ValueError: logits must be finite (to exclude a class, pass weights with a zero entry
            instead)
    """
    if bool(torch.isfinite(logits).all()):
        return
    if bool(torch.isnan(logits).any()):
        raise ValueError("logits must not be NaN")
    if bool(torch.isinf(logits).any()):
        raise ValueError("logits must be finite (to exclude a class, pass weights with a zero "
                         "entry instead)")


def check_weights(weights: torch.Tensor) -> None:
    """Weights must be finite and ``>= 0`` (a zero weight excludes its class).

    Example:
        >>> import torch
        >>> from diffhypergeom.laws.checks import check_weights
        >>> check_weights(torch.tensor([0.0, 2.5]))  # fine: returns None
        >>> check_weights(torch.tensor([0.5, -1.0]))
        Traceback (most recent call last):
        ...
        ValueError: weights must be >= 0, got [-1.0]
    """
    if bool(torch.isnan(weights).any()):
        raise ValueError("weights must not be NaN")
    if bool(torch.isinf(weights).any()):
        raise ValueError("weights must be finite")
    if bool((weights < 0).any()):
        raise ValueError(f"weights must be >= 0, got {weights[weights < 0][:3].tolist()}")


def broadcast_batch(*shapes: torch.Size, names: Sequence[str]) -> torch.Size:
    """The common batch shape of ``shapes`` (the parameters' batch shapes); a ``ValueError``
    naming each parameter (``names``, in order) with its shape where they do not broadcast.

    Example:
        >>> import torch
        >>> from diffhypergeom.laws.checks import broadcast_batch
        >>> broadcast_batch(torch.Size([4, 1]), torch.Size([3]), names=["population", "draws"])
        torch.Size([4, 3])
        >>> broadcast_batch(torch.Size([2]), torch.Size([3]), names=["population", "draws"])
        Traceback (most recent call last):
        ...
        ValueError: batch shapes do not broadcast: population (2,), draws (3,)
    """
    longest = max(shapes, key=len)
    if all(longest[len(longest) - len(s):] == s for s in shapes):  # the common case, quickly
        return torch.Size(longest)
    try:
        return torch.broadcast_shapes(*shapes)
    except RuntimeError as err:
        described = ", ".join(f"{n} {tuple(s)}" for n, s in zip(names, shapes, strict=True))
        raise ValueError(f"batch shapes do not broadcast: {described}") from err


def broadcast_value(shape: torch.Size, target: torch.Size) -> torch.Size:
    """The shape a ``value`` of ``shape`` scored against ``batch_shape + event_shape``
    (``target``) takes; a ``ValueError`` naming both where they do not broadcast.

    Example:
        >>> import torch
        >>> from diffhypergeom.laws.checks import broadcast_value
        >>> broadcast_value(torch.Size([3]), torch.Size([2, 3]))
        torch.Size([2, 3])
        >>> broadcast_value(torch.Size([4]), torch.Size([2, 3]))
        Traceback (most recent call last):
        ...
        ValueError: value of shape (4,) does not broadcast with batch_shape + event_shape (2, 3)
    """
    try:
        return torch.broadcast_shapes(shape, target)
    except RuntimeError as err:
        raise ValueError(f"value of shape {tuple(shape)} does not broadcast with "
                         f"batch_shape + event_shape {tuple(target)}") from err


def check_positive(value: float | torch.Tensor, name: str) -> None:
    """A finite real number > 0 (Python or numpy, not a bool) or a real tensor of them.

    Example:
        >>> import torch
        >>> from diffhypergeom.laws.checks import check_positive
        >>> check_positive(torch.tensor([0.5, 2.0]), "temperature")  # fine: returns None
        >>> check_positive(0.0, "temperature")
        Traceback (most recent call last):
        ...
        ValueError: temperature must be finite and > 0, got 0.0
    """
    if (isinstance(value, (bool, np.bool_))
            or not isinstance(value, (int, float, np.integer, np.floating, torch.Tensor))):
        raise ValueError(f"{name} must be a float or a real tensor, finite and > 0, got "
                         f"{value!r}")
    tensor = torch.as_tensor(value)
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise ValueError(f"{name} must be real, got dtype {tensor.dtype}")
    if not bool(torch.isfinite(tensor).all()) or bool((tensor <= 0).any()):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")


def check_bool(value: object, name: str) -> None:
    """``True`` or ``False``, Python's or numpy's.

    Example:
        >>> import numpy as np
        >>> from diffhypergeom.laws.checks import check_bool
        >>> check_bool(np.bool_(True), "hard")  # fine: returns None
        >>> check_bool(1, "hard")
        Traceback (most recent call last):
        ...
        ValueError: hard must be True or False, got 1
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")


# Counts are handled as float64 inside the engines: totals must be exact there.
MAX_TOTAL = 2**53


def check_total(population: torch.Tensor) -> None:
    """``population.sum(-1)`` must not overflow int64 and must be exact in float64.

    Example:
        >>> import torch
        >>> from diffhypergeom.laws.checks import check_total
        >>> check_total(torch.tensor([[2**52, 2**52]]))  # a total of 2**53: fine
        >>> check_total(torch.tensor([[2**53, 2**52]]))  # doctest: +NORMALIZE_WHITESPACE
        Traceback (most recent call last):
        ...
        ValueError: population.sum(-1) must be <= 2**53 (counts are exact float64 integers),
            got 1.35e+16
    """
    if population.numel() == 0:
        return
    total = population.to(torch.float64).sum(-1)
    if bool((total > MAX_TOTAL).any()):
        raise ValueError(f"population.sum(-1) must be <= 2**53 (counts are exact float64 "
                         f"integers), got {float(total.max()):.3g}")
