"""``BatchSharing``: batch dimensions that repeat one urn are computed once.

``expand`` and Pyro's plates repeat one urn along batch dimensions by stride-0 views. A law
computes only its distinct urns (a flat batch ``[B, ...]``) and lays the results back out over
the whole batch as expanded views; the draws of a repeated urn are drawn all at once
(``repeats`` per distinct urn and sample) and spread over its repeats.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["BatchSharing"]


class BatchSharing:
    """Which batch dimensions repeat one urn, and the layouts between the batch and its
    distinct urns.

    Args:
        batch_shape: the law's batch shape.
        tensors: the law's parameters ``[*batch_shape, ...]``; a dimension of size > 1 is shared
            when every one of them has stride 0 along it.

    Example:
        >>> import torch
        >>> from diffhypergeom.laws.sharing import BatchSharing
        >>> logits = torch.randn(3, 1, 4).expand(3, 5, 4)  # 3 urns, each repeated 5 times
        >>> sharing = BatchSharing(torch.Size([3, 5]), [logits])
        >>> sharing.shared, sharing.base_shape, sharing.repeats
        ([1], torch.Size([3, 1]), 5)
        >>> sharing.narrow(logits).shape, sharing.unflatten(torch.zeros(3)).shape
        (torch.Size([3, 1, 4]), torch.Size([3, 5]))
    """

    def __init__(self, batch_shape: torch.Size, tensors: Sequence[torch.Tensor]):
        self.batch_shape = torch.Size(batch_shape)
        self.shared = [d for d, size in enumerate(self.batch_shape)
                       if size > 1 and all(t.stride(d) == 0 for t in tensors)]
        self.rest = [d for d in range(len(self.batch_shape)) if d not in self.shared]
        self.base_shape = torch.Size(1 if d in self.shared else size
                                     for d, size in enumerate(self.batch_shape))
        self.distinct = self.base_shape.numel()
        self.repeats = self.batch_shape.numel() // max(self.distinct, 1)

    def narrow(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor [*batch, ...]`` at index 0 of each shared dimension."""
        for d in self.shared:
            tensor = tensor.narrow(d, 0, 1)
        return tensor

    def unflatten(self, tensor: torch.Tensor, tail: Sequence[int] = ()) -> torch.Tensor:
        """One value per distinct urn, ``[B, *tail]``, to ``[*batch, *tail]`` (repeated urns
        as expanded views)."""
        tail = tuple(tail)
        return tensor.reshape(self.base_shape + tail).expand(self.batch_shape + tail)

    def unflatten_draws(self, tensor: torch.Tensor, sample_shape: torch.Size,
                        tail: Sequence[int] = ()) -> torch.Tensor:
        """Draws ``[S * repeats, B, *tail]`` of the distinct urns to ``[*sample_shape, *batch,
        *tail]``: each repeated urn's extra draws fill its repeats."""
        tail, batch = tuple(tail), self.batch_shape
        if not self.shared:
            return tensor.reshape(sample_shape + batch + tail)
        order = self.shared + self.rest
        x = tensor.reshape(sample_shape.numel(), *(batch[d] for d in order), *tail)
        perm = [0] + [1 + order.index(d) for d in range(len(batch))] \
            + list(range(1 + len(batch), x.dim()))
        return x.permute(perm).reshape(sample_shape + batch + tail)

    def flatten_draws(self, x: torch.Tensor, sample_shape: torch.Size) -> torch.Tensor:
        """The inverse of ``unflatten_draws`` for ``x [*sample_shape, *batch, c]``."""
        x = x.reshape(sample_shape.numel(), *self.batch_shape, x.shape[-1])
        x = x.permute([0] + [1 + d for d in self.shared + self.rest] + [x.dim() - 1])
        return x.reshape(x.shape[0] * max(self.repeats, 1), self.distinct, x.shape[-1])
