"""Pairs of images and which of their ``K`` factors they share (Locatello et al., 2020).

Two protocols (``PAIRS``):

* ``"fixed"``: draw a factor vector ``v1`` uniformly; choose ``K - s`` factors uniformly
  without replacement and give each a *different* value, uniformly among the other values; the
  remaining ``s`` factors are shared. ``s`` is fixed per dataset.
* ``"locatello"``: disentanglement_lib's ``simple_dynamics`` with parameter ``k``: per pair,
  ``k_obs = k`` (or uniform on ``1..K-1`` when ``k = -1``); with probability 1/2 one factor,
  otherwise ``k_obs`` factors (uniformly without replacement) are redrawn uniformly over *all*
  their values (so a redrawn factor keeps its value with probability ``1 / size``). Half the
  pairs thus change at most one factor; the number shared varies per pair.

Pairs are generated lazily: batch ``b`` of a ``PairBatches`` dataset is a pure function of
``(seed, stream, b)``, so nothing but the current batch is held in memory, data loading is
reproducible and any number of batches can be made. The ``shared`` mask is the truth per pair
(``f1 == f2``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from diffhypergeom_studies.weak.sources import FactorImageSource

__all__ = ["PAIRS", "PairBatches", "make_locatello_pairs", "make_pairs"]


def make_pairs(rng: np.random.Generator, factor_sizes: tuple[int, ...], num_shared: int,
               count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` factor pairs sharing exactly ``num_shared`` factors.

    Returns ``(f1, f2, shared)``: ``f1, f2`` int64 ``[count, K]``, ``shared`` bool ``[count, K]``
    (``shared.sum(1) == num_shared`` and ``f1 == f2`` exactly where ``shared``).
    """
    sizes = np.asarray(factor_sizes, dtype=np.int64)
    num_factors = len(sizes)
    if not 0 <= num_shared <= num_factors:
        raise ValueError(f"num_shared (s) must be in [0, {num_factors}] (K factors), "
                         f"got {num_shared}")
    if (sizes < 2).any():
        raise ValueError(f"every factor needs >= 2 values to be changed, got sizes {tuple(sizes)}")
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    f1 = np.stack([rng.integers(0, size, count) for size in sizes], axis=1)
    # a uniformly random subset of K - s factors per pair: the K - s smallest of K uniforms
    order = np.argsort(rng.random((count, num_factors)), axis=1)
    changed = np.zeros((count, num_factors), dtype=bool)
    np.put_along_axis(changed, order[:, : num_factors - num_shared], True, axis=1)
    shift = 1 + np.floor(rng.random((count, num_factors)) * (sizes - 1)).astype(np.int64)
    f2 = np.where(changed, (f1 + shift) % sizes, f1)
    return f1, f2, ~changed


PAIRS = ("fixed", "locatello")


def make_locatello_pairs(rng: np.random.Generator, factor_sizes: tuple[int, ...], k: int,
                         count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` pairs by ``simple_dynamics`` with parameter ``k`` (``-1``: random per pair).

    Returns ``(f1, f2, shared)`` as ``make_pairs``; ``shared`` is ``f1 == f2``.
    """
    sizes = np.asarray(factor_sizes, dtype=np.int64)
    num_factors = len(sizes)
    if not (k == -1 or 1 <= k <= num_factors):
        raise ValueError(f"k (factors redrawn) must be -1 (random) or in [1, {num_factors}] "
                         f"(K factors), got {k}")
    if k == -1 and num_factors < 2:
        raise ValueError("k = -1 draws k from 1..K-1, which needs K >= 2 factors")
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    f1 = np.stack([rng.integers(0, size, count) for size in sizes], axis=1)
    k_obs = rng.integers(1, num_factors, count) if k == -1 else np.full(count, k)
    redrawn_count = np.where(rng.random(count) < 0.5, 1, k_obs)
    order = np.argsort(rng.random((count, num_factors)), axis=1)
    redrawn = np.arange(num_factors) < redrawn_count[:, None]  # first ones of a random order
    chosen = np.zeros((count, num_factors), dtype=bool)
    np.put_along_axis(chosen, order, redrawn, axis=1)
    fresh = np.floor(rng.random((count, num_factors)) * sizes).astype(np.int64)
    f2 = np.where(chosen, fresh, f1)
    return f1, f2, f1 == f2


class PairBatches(Dataset):
    """Map-style dataset whose item ``b`` is a whole batch of pairs (use
    ``DataLoader(..., batch_size=None)``), by the ``pairs`` protocol (``num_shared`` for
    ``"fixed"``, ``k`` for ``"locatello"``).

    Item: dict with ``x1, x2`` ``[B, C, H, W]`` float32 in [0, 1], ``f1, f2`` ``[B, K]`` int64,
    ``shared`` ``[B, K]`` bool.
    """

    def __init__(self, source: FactorImageSource, num_shared: int, batch_size: int,
                 num_batches: int, seed: int = 0, stream: int = 0, pairs: str = "fixed",
                 k: int = -1):
        if batch_size < 1 or num_batches < 1:
            raise ValueError(f"batch_size and num_batches must be >= 1, got {batch_size}, "
                             f"{num_batches}")
        if pairs not in PAIRS:
            raise ValueError(f"pairs must be one of {PAIRS}, got {pairs!r}")
        self.source, self.pairs, self.k = source, pairs, int(k)
        self.num_shared = int(num_shared)
        self._make(np.random.default_rng(0), 0)  # validates s or k
        self.batch_size = int(batch_size)
        self.num_batches = int(num_batches)
        self.seed = int(seed)
        self.stream = int(stream)  # separates training, validation and test pairs of a seed

    def __len__(self) -> int:
        return self.num_batches

    def _make(self, rng: np.random.Generator, count: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.pairs == "locatello":
            return make_locatello_pairs(rng, self.source.factor_sizes, self.k, count)
        return make_pairs(rng, self.source.factor_sizes, self.num_shared, count)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.num_batches:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, self.stream, index])
        f1, f2, shared = self._make(rng, self.batch_size)
        return {"x1": self.source.images(f1), "x2": self.source.images(f2),
                "f1": torch.from_numpy(f1), "f2": torch.from_numpy(f2),
                "shared": torch.from_numpy(shared)}
