"""A PNG grid of a factor-image source: one row per factor, that factor varying (evenly spaced
values) while the others stay at a seeded base vector."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from diffhypergeom_studies.runs import write_bytes_atomic
from diffhypergeom_studies.weak.sources import FactorImageSource

__all__ = ["factor_grid", "render_factor_grid"]


def factor_grid(source: FactorImageSource, columns: int = 8, seed: int = 0
                ) -> tuple[np.ndarray, list[list[int]]]:
    """Factor vectors ``[K, columns, K]`` (row ``i``: factor ``i`` varying) and the values
    shown per row (``min(columns, size_i)`` evenly spaced; shorter rows repeat the last)."""
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    base = source.sample_factors(np.random.default_rng(seed), 1)[0]
    grid = np.repeat(base[None, None], source.num_factors, 0).repeat(columns, 1)
    shown = []
    for i, size in enumerate(source.factor_sizes):
        values = np.unique(np.linspace(0, size - 1, min(columns, size)).round().astype(int))
        shown.append(values.tolist())
        grid[i, :, i] = np.concatenate([values, np.full(columns - len(values), values[-1])])
    return grid, shown


def render_factor_grid(source: FactorImageSource, path: str | Path, columns: int = 8,
                       seed: int = 0) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid, shown = factor_grid(source, columns, seed)
    k = source.num_factors
    images = source.images(grid.reshape(-1, k)).numpy().reshape(k, columns, source.num_channels,
                                                                  source.image_size,
                                                                  source.image_size)
    fig, axes = plt.subplots(k, columns, figsize=(1.1 * columns + 1.5, 1.1 * k),
                             squeeze=False)
    for i in range(k):
        for j in range(columns):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(shown[i]):
                ax.axis("off")
                continue
            img = images[i, j].transpose(1, 2, 0)
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1)
            ax.set_title(str(shown[i][j]), fontsize=6, pad=1)
        axes[i, 0].set_ylabel(source.factor_names[i], fontsize=7, rotation=0, ha="right",
                              va="center")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return write_bytes_atomic(path, buffer.getvalue())
