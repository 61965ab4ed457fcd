"""The interface between a dataset of factor-indexed images and the pair generator.

A source has ``factor_sizes`` (cardinality of each of the ``K`` discrete generative factors),
``factor_names``, ``num_channels`` and ``image_size``, and maps a batch of factor vectors
``[B, K]`` (int) to images ``[B, C, H, W]`` (float32 in ``[0, 1]``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["FactorImageSource"]


class FactorImageSource(ABC):
    """A deterministic map from discrete factor vectors to images."""

    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    num_channels: int
    image_size: int

    @property
    def num_factors(self) -> int:
        return len(self.factor_sizes)

    def check_factors(self, factors: np.ndarray) -> np.ndarray:
        """Validate ``factors`` ``[B, K]``: integers with ``0 <= factors[:, i] < sizes[i]``."""
        factors = np.asarray(factors)
        if factors.ndim != 2 or factors.shape[1] != self.num_factors:
            raise ValueError(f"factors must have shape [B, {self.num_factors}], got "
                             f"{factors.shape}")
        if not np.issubdtype(factors.dtype, np.integer):
            raise ValueError(f"factors must be integers, got dtype {factors.dtype}")
        sizes = np.asarray(self.factor_sizes)
        if factors.size and ((factors < 0).any() or (factors >= sizes).any()):
            raise ValueError(f"factors out of range: each column i must lie in [0, {sizes}[i])")
        return factors.astype(np.int64)

    @abstractmethod
    def _images(self, factors: np.ndarray) -> np.ndarray:
        """``[B, C, h, w]`` float32 in [0, 1] for validated factors (any native size)."""

    def images(self, factors: np.ndarray) -> torch.Tensor:
        """``[B, C, image_size, image_size]`` float32 tensor in ``[0, 1]``."""
        arr = torch.from_numpy(np.ascontiguousarray(self._images(self.check_factors(factors))))
        if arr.shape[-1] != self.image_size or arr.shape[-2] != self.image_size:
            arr = F.interpolate(arr, size=(self.image_size, self.image_size), mode="area")
        return arr

    def sample_factors(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """``[count, K]`` factor vectors drawn uniformly."""
        return np.stack([rng.integers(0, size, count) for size in self.factor_sizes], axis=1)
