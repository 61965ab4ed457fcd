"""Two implementations of one idea, the generating function ``prod_i (1 + w_i t)^m_i``, behind
one interface (``base.Engine``):

- ``"logspace"`` (``LogspaceEngine``): exact log-space polynomial tables, ``O(n * sum_i m_i)``
  time and memory; no approximation at all; best for small urns.
- ``"fft"`` (``FFTEngine``): exponentially tilted binomials and their characteristic function,
  cost ``O(c * sigma)`` where ``sigma`` is the standard deviation of the draw; accurate to
  ~1e-14 (the rule is in ``fft``'s docstring); best for large urns.
- ``"auto"`` estimates both costs and takes the cheaper one (``choose``): the log-space engine
  costs about ``(n' + 1) * sum_i (min(m_i, n') + 1)`` log-space multiply-adds per urn
  (``n' = min(n, N - n)`` after the complement), the FFT engine about
  ``FFT_COST * c * (FFT_BASE + 2 t)`` where ``t`` is the Bernstein half-width of the widest
  class (``~9 sigma_i``); batches whose log-space work is below ``TINY_WORK`` (``2^20``; a few
  milliseconds either way) stay on the log-space engine without the estimates. ``auto`` never
  builds a table proportional to ``n * N``. Urns whose logits spread so far that the log-space
  tables would lose digits (``(max - min logit) * n > 1e6``) go to the FFT engine.
"""

from __future__ import annotations

import os
from functools import partial

import torch

from diffhypergeom.numerics import fft as _fft
from diffhypergeom.numerics import logspace as _logspace
from diffhypergeom.numerics import tree as _tree
from diffhypergeom.numerics.fft import FFTEngine
from diffhypergeom.numerics.logspace import LOGSPACE_MAGNITUDE, LogspaceEngine, logit_magnitude
from diffhypergeom.numerics.urn import (
    Canonical,
    Engine,
    Normalizer,
    Urn,
    Window,
    canonical_counts,
    engine_log_normalizer,
)
from diffhypergeom.numerics.urn import readable as _readable

ENGINES = ("auto", "logspace", "fft")
_CLASSES: dict[str, type[Engine]] = {"logspace": LogspaceEngine, "fft": FFTEngine}

# Relative cost of the FFT engine's per-class work (complex arithmetic, matrix products) and its
# fixed per-class overhead, calibrated with benchmarks/bench_engines.py on the 2-core CPU.
FFT_COST = 40.0
FFT_BASE = 1000.0
# Batches whose log-space work is below this go to the log-space engine without estimates.
TINY_WORK = 1 << 20
# Above LOGSPACE_MAGNITUDE (logspace.logit_magnitude) "auto" takes the FFT engine, which works
# with tilted probabilities instead. Above MAX_MAGNITUDE float64 overflows.
# With "auto", log-space urns whose work (as above) exceeds this take the mean (the gradient of
# A, and its Hessian-vector products in rsample's backward) from the tree's log-normaliser or
# the FFT engine's (O(c F) for the few dozen frequencies F that the draw needs), not from the
# log-space tables.
GRADIENT_WORK = float(1 << 22)
# Relative cost per class and frequency of the FFT log-normaliser's gradients against the
# tree's per element (calibrated with benchmarks/bench_subsets.py).
FFT_GRADIENT_COST = 8.0
MAX_MAGNITUDE = 1e290


def estimated_costs(population: torch.Tensor, draws: torch.Tensor, theta: torch.Tensor,
                    complement: bool = True, zero_weights: bool = True,
                    canonical: Canonical | None = None) -> dict[str, float]:
    """Work estimates (in log-space multiply-adds) of both engines for a flat batch.

    Example:
        >>> import torch
        >>> from diffhypergeom.numerics.engines import estimated_costs
        >>> theta = torch.zeros(1, 3, dtype=torch.float64)
        >>> costs = estimated_costs(torch.tensor([[200, 200, 200]]), torch.tensor([180]), theta)
        >>> {name: round(cost) for name, cost in costs.items()}  # logspace: 181 * (3 * 181)
        {'logspace': 98283, 'fft': 137475}
    """
    m, n, _ = canonical if canonical is not None else canonical_counts(
        population, draws, theta, complement, zero_weights)
    n_col = n.unsqueeze(-1).to(torch.float64)
    logspace = ((n_col[..., 0] + 1) * (torch.minimum(m.to(torch.float64), n_col) + 1).sum(-1)
                ).sum()
    widest = _fft.widest_window(m, n, _fft.LAMBDA)
    fft = (FFT_COST * m.shape[-1] * (FFT_BASE + widest)).sum()
    return {"logspace": float(logspace), "fft": float(fft)}


def choose(population: torch.Tensor, draws: torch.Tensor, theta: torch.Tensor,
           complement: bool = True, zero_weights: bool = True,
           canonical: Canonical | None = None) -> str:
    """The engine ``"auto"`` takes: the one with the smaller estimated cost.

    Example:
        >>> import torch
        >>> from diffhypergeom.numerics.engines import choose
        >>> halves, theta = torch.tensor([[10**6, 10**6]]), torch.zeros(1, 2, dtype=torch.float64)
        >>> # n = 2 * 10**6 - 5 is computed as its complement, 5 draws
        >>> [choose(halves, torch.tensor([n]), theta) for n in (5, 10**6, 2 * 10**6 - 5)]
        ['logspace', 'fft', 'logspace']
    """
    costs = estimated_costs(population, draws, theta, complement, zero_weights, canonical)
    return "logspace" if costs["logspace"] <= costs["fft"] else "fft"


def _tiny(population: torch.Tensor, draws: torch.Tensor) -> bool:
    """Urns so small that the log-space tables are certainly the cheaper engine and fit (an
    upper bound on their cost, in two reductions instead of the full estimates)."""
    if draws.numel() == 0:
        return True
    bound = (int(draws.max()) + 1) * (int(population.sum(-1).max()) + population.shape[-1])
    return bound * draws.numel() <= TINY_WORK


def memory_limit(device: torch.device) -> int:
    """Bytes an engine may plan to use on ``device``: the device's total memory."""
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 1 << 40


def build(engine: str, population: torch.Tensor, draws: torch.Tensor, theta: torch.Tensor,
          complement: bool = True, zero_weights: bool = True) -> Urn:
    """An ``Urn`` for a flat batch (``population [B, c]``, ``draws [B]``, ``theta [B, c]``
    float64), computed by ``engine`` (one of ``ENGINES``). ``zero_weights=False`` promises that
    ``theta`` holds no ``-inf``; then no decision reads the logits' values (``torch.func``).

    Raises ``ValueError`` before allocating anything if the engine's tables cannot fit in the
    device's memory.

    Example:
        >>> import torch
        >>> from diffhypergeom.numerics.engines import build, choose
        >>> theta = torch.tensor([[1.0, 10.0, 1.0]], dtype=torch.float64).log()
        >>> urn = build("auto", torch.tensor([[200, 200, 200]]), torch.tensor([180]), theta)
        >>> urn.name, urn.mean()
        ('logspace', tensor([[ 27.9667, 124.0665,  27.9667]], dtype=torch.float64))
        >>> choose(torch.tensor([[10**6, 10**6]]), torch.tensor([10**6]),
        ...        torch.zeros(1, 2, dtype=torch.float64))
        'fft'
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if not _readable(theta):
        if engine == "fft":
            raise ValueError("engine='fft' cannot run under torch.func transforms (its "
                             "saddle-point search depends on the logits' values); use "
                             "engine='logspace' or 'auto'")
        engine = "logspace"
    magnitude = logit_magnitude(population, draws, theta)
    if magnitude > MAX_MAGNITUDE:
        raise ValueError(f"logit differences times draws reach {magnitude:.3g}: beyond "
                         f"{MAX_MAGNITUDE:.0e} the computation overflows float64; bring the "
                         f"logits closer together (only their differences matter)")
    precise = magnitude <= LOGSPACE_MAGNITUDE
    normalizer: Normalizer | None = None
    if engine == "auto" and precise and _tree.whole_tables(population, draws, theta):
        normalizer = partial(_tree.log_normalizer, return_levels=True)
    name = "fft"
    if (engine != "fft" and (precise or engine != "auto")) and _tiny(population, draws):
        return Urn(population, draws, theta, LogspaceEngine, complement, zero_weights,
                   normalizer)
    canonical = canonical_counts(population, draws, theta, complement, zero_weights)
    if engine == "auto" and precise:
        name = choose(population, draws, theta, complement, zero_weights, canonical=canonical)
    elif engine != "auto":
        name = engine
    m, n, _ = canonical
    module = _logspace if name == "logspace" else _fft
    needed, limit = module.estimated_bytes(m, n), memory_limit(theta.device)
    other = "fft" if name == "logspace" else "logspace"
    if needed > limit and engine == "auto":
        other_needed = (_fft if other == "fft" else _logspace).estimated_bytes(m, n)
        if other_needed <= limit:
            name, other, needed = other, name, other_needed
    if needed > limit:
        raise ValueError(
            f"engine={name!r} would need about {needed / 2**30:,.1f} GiB for this urn "
            f"(the device has {limit / 2**30:,.1f} GiB); use engine={other!r} or 'auto'")
    if engine == "auto" and normalizer is None:
        # chosen when the mean is asked for, not at every construction
        normalizer = partial(_deferred_normalizer, name, m, n, complement, zero_weights)
    return Urn(population, draws, theta, _CLASSES[name], complement, zero_weights, normalizer,
               canonical)


def _deferred_normalizer(name: str, m: torch.Tensor, n: torch.Tensor, complement: bool,
                         zero_weights: bool, p: torch.Tensor, d: torch.Tensor, t: torch.Tensor
                         ) -> torch.Tensor | tuple[torch.Tensor, list]:
    return _mean_normalizer(name, m, n, complement, zero_weights)(p, d, t)


def _mean_normalizer(name: str, m: torch.Tensor, n: torch.Tensor, complement: bool,
                     zero_weights: bool) -> Normalizer:
    """What ``"auto"`` differentiates for the mean (and, twice, for ``rsample``'s backward):
    the log-space tables of small log-space urns, else the tree's log-normaliser
    (``tree.log_normalizer``) or the FFT engine's ``O(c F)`` one, whichever is estimated
    cheaper."""
    engine: type[Engine] = FFTEngine
    if name == "logspace":
        work = ((n + 1) * (torch.minimum(m, n.unsqueeze(-1)) + 1).sum(-1)).sum()
        engine = LogspaceEngine if float(work) <= GRADIENT_WORK else FFTEngine
    if engine is FFTEngine:
        fft_work = FFT_GRADIENT_COST * m.shape[-1] * float(
            _fft.widest_window(m.sum(-1, keepdim=True), n, _fft.LAMBDA).max()) * m.shape[0]
        if _tree.tree_work(m, n) <= fft_work:
            return partial(_tree.log_normalizer, return_levels=True)
    return partial(engine_log_normalizer, engine, complement, zero_weights)


__all__ = ["ENGINES", "Engine", "FFTEngine", "LogspaceEngine", "Urn", "Window", "build",
           "choose", "estimated_costs"]
