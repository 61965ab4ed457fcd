"""The support of the MFNCH, ``{x : 0 <= x_i <= m_i, sum_i x_i = n}``: its size and its points,
for what sums over it exactly (Pyro's ``enumerate_support``, the ``"exact"`` gradient
estimator)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["MAX_ENUMERATE_SUPPORT", "support_points", "support_size"]

# Default largest support that ``enumerate_support`` lists (a distribution's ``max_support``
# overrides it). Reassign ``diffhypergeom.numerics.support.MAX_ENUMERATE_SUPPORT`` to change
# the default.
MAX_ENUMERATE_SUPPORT = 100_000


def support_size(population: Sequence[int], draws: int, stop_above: int | None = None
                 ) -> tuple[int, bool]:
    """The number of count vectors ``x`` with ``0 <= x_i <= m_i`` and ``sum x = n``.

    Returns ``(count, True)``, exact (Python integers), or ``(lower_bound, False)`` with
    ``lower_bound > stop_above`` once counting further would hold more than ``stop_above``
    partial sums or the count is known to exceed ``1000 * stop_above`` (so a huge support
    costs ``O(c * stop_above)`` work at most). Classes are added one at a time, keeping only
    the partial sums that the remaining classes can still complete, so every kept partial
    vector extends to a point of the support: the running total never decreases and bounds
    the count from below; and every partial sum in the window is reachable, so the window's
    width bounds it too.

    Example:
        >>> from diffhypergeom.numerics.support import support_size
        >>> support_size([4, 5, 6], 7)
        (26, True)
    """
    m = sorted(int(v) for v in population)
    total, n = sum(m), int(draws)
    if not 0 <= n <= total:
        return 0, True
    n = min(n, total - n)  # x -> m - x maps the support for n onto the one for N - n
    lo, ways, done = 0, np.ones(1, dtype=object), 0  # ways[j]: partial vectors summing to lo+j
    for mk in m:
        done += mk
        new_lo, new_hi = max(0, n - (total - done)), min(n, done)
        if stop_above is not None and new_hi - new_lo + 1 > stop_above:
            return new_hi - new_lo + 1, False
        prefix = np.concatenate([np.zeros(1, dtype=object), np.cumsum(ways)])
        s = np.arange(new_lo, new_hi + 1) - lo
        ways = prefix[np.clip(s + 1, 0, len(ways))] - prefix[np.clip(s - mk, 0, len(ways))]
        lo = new_lo
        if stop_above is not None and (running := int(ways.sum())) > 1000 * stop_above:
            return running, False
    return int(ways.sum()), True


def support_points(population: list[int], draws: int, device: torch.device) -> torch.Tensor:
    """``[S, c]`` int64: every ``x`` with ``0 <= x_i <= m_i``, ``sum x = n``, in lexicographic
    order (class 0 slowest). Built class by class from the completable partial vectors, so no
    intermediate holds more than ``S`` rows.

    Example:
        >>> import torch
        >>> from diffhypergeom.numerics.support import support_points, support_size
        >>> support_points([1, 2, 2], 3, torch.device("cpu"))  # 0 <= x <= (1, 2, 2), sum x = 3
        tensor([[0, 1, 2],
                [0, 2, 1],
                [1, 0, 2],
                [1, 1, 1],
                [1, 2, 0]])
        >>> support_size([1, 2, 2], 3)
        (5, True)
    """
    rest = torch.tensor(population, dtype=torch.int64, device=device).flip(0).cumsum(0).flip(0)
    points = torch.zeros(1, 0, dtype=torch.int64, device=device)
    sums = torch.zeros(1, dtype=torch.int64, device=device)
    for i, mi in enumerate(population):
        after = int(rest[i + 1]) if i + 1 < len(population) else 0
        low = (draws - sums - after).clamp(min=0)
        high = (draws - sums).clamp(max=mi)
        counts = high - low + 1
        parent = torch.repeat_interleave(torch.arange(len(sums), device=device), counts)
        starts = counts.cumsum(0) - counts
        xi = low[parent] + torch.arange(len(parent), device=device) - starts[parent]
        points = torch.cat([points[parent], xi.unsqueeze(-1)], dim=-1)
        sums = sums[parent] + xi
    return points
