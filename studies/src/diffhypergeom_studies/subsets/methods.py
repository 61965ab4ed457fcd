"""The gradient estimators compared, behind one signature: ``build(k, samples)`` gives
``loss(logits, f)``, a scalar whose gradient is the method's estimate of
``d/dtheta mean_b E[f_b(z_b)]``, with ``logits [B, N]`` (one urn of ``N`` items per row), ``z``
a k-hot draw and ``f`` mapping k-hot ``z [S, B, N]`` (in the logits' dtype) to losses
``[S, B]``. ``f`` may hold network parameters (a classifier, a decoder): every method's value is
the sample mean of ``f``, so its gradient reaches them too.

The library's methods call ``diffhypergeom.estimators.surrogate_loss`` on
``diffhypergeom.subsets.k_subset`` (the conditional Poisson law) or ``gumbel_top_k`` (the
Wallenius law of Gumbel-top-k); ``peers`` builds the peers'. The control ``no-gradient`` draws
exact subsets and gives the logits no gradient: the floor a method must beat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from diffhypergeom.estimators import surrogate_loss
from diffhypergeom.subsets import gumbel_top_k, k_subset
from diffhypergeom_studies.subsets.names import CONTROL_METHODS, LIBRARY_METHODS

__all__ = ["Loss", "Method", "Objective", "control_method", "library_method", "top_k_mask"]

Objective = Callable[[torch.Tensor], torch.Tensor]
# f: k-hot z [S, B, N] -> losses [S, B]; a loss: (logits [B, N], f) -> scalar
Loss = Callable[[torch.Tensor, Objective], torch.Tensor]


@dataclass(frozen=True)
class Method:
    """A named estimator: ``family`` is ``"library"``, ``"peer"`` or ``"control"``;
    ``build(k, samples)`` returns its ``Loss``."""

    name: str
    family: str
    description: str
    build: Callable[[int, int], Loss]


def library_method(name: str) -> Method:
    """One of ``names.LIBRARY_METHODS``.

    Example:
        >>> import torch
        >>> from diffhypergeom_studies.subsets.methods import library_method
        >>> loss = library_method("reinforce-loo").build(2, 8)
        >>> logits = torch.zeros(3, 5, requires_grad=True)
        >>> value = loss(logits, lambda z: z[..., 0])  # mean P(item 0 chosen) = 2 / 5
        >>> value.backward()
        >>> tuple(logits.grad.shape)
        (3, 5)
    """
    if name not in LIBRARY_METHODS:
        raise ValueError(f"unknown library method {name!r}; known: {list(LIBRARY_METHODS)}")
    law, estimator = ((gumbel_top_k, "reinforce-loo") if name == "gumbel-loo"
                      else (k_subset, name))

    def build(k: int, samples: int) -> Loss:
        def loss(logits: torch.Tensor, f: Objective) -> torch.Tensor:
            value = surrogate_loss(law(logits, k), f, num_samples=samples, estimator=estimator)
            return value / logits.shape[0]  # surrogate_loss sums over the urns
        return loss

    return Method(name, "library", LIBRARY_METHODS[name], build)


def control_method(name: str) -> Method:
    """One of ``names.CONTROL_METHODS``: ``no-gradient`` (exact draws of ``k_subset``, no
    gradient to the logits)."""
    if name not in CONTROL_METHODS:
        raise ValueError(f"unknown control method {name!r}; known: {list(CONTROL_METHODS)}")

    def build(k: int, samples: int) -> Loss:
        def loss(logits: torch.Tensor, f: Objective) -> torch.Tensor:
            z = k_subset(logits.detach(), k).sample((samples,))
            return f(z.to(logits.dtype)).mean()
        return loss

    return Method(name, "control", CONTROL_METHODS[name], build)


def top_k_mask(logits: torch.Tensor, k: int) -> torch.Tensor:
    """The deterministic k-hot mask of the ``k`` largest logits per row (evaluation).

    Example:
        >>> import torch
        >>> from diffhypergeom_studies.subsets.methods import top_k_mask
        >>> top_k_mask(torch.tensor([[0.1, 3.0, -1.0, 2.0]]), 2)
        tensor([[0., 1., 0., 1.]])
    """
    indices = logits.topk(k, dim=-1).indices
    return torch.zeros_like(logits).scatter_(-1, indices, 1.0)
