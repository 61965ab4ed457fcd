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
from diffhypergeom.numerics.base import (
    Canonical,
    Engine,
    Normalizer,
    Window,
    canonical_counts,
    readable,
)
from diffhypergeom.numerics.fft import FFTEngine
from diffhypergeom.numerics.logspace import LOGSPACE_MAGNITUDE, LogspaceEngine, logit_magnitude
from diffhypergeom.numerics.sampling import (
    ConditionalFn,
    GumbelSettings,
    rsample_sequential,
    sample_sequential,
)
from diffhypergeom.numerics.special import NEG_INF, times_logit

__all__ = [
    "ENGINES", "Engine", "FFTEngine", "LogspaceEngine", "TREE_MIN_CLASSES", "TREE_WORK", "Urn",
    "Window", "build", "choose", "engine_log_normalizer", "estimated_costs",
]

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
# Largest tree (elements its convolutions touch, ``tree.tree_work``) that ``Urn.sample`` builds.
TREE_WORK = float(1 << 30)
# Urns of fewer classes than this are drawn by the sequential sampler: its c - 1 steps cost less
# than the tree's bookkeeping there (the paper urn's exact draws: about twice as fast).
TREE_MIN_CLASSES = 8


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
    if not readable(theta):
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
    if needed > limit:
        other_needed = (_fft if other == "fft" else _logspace).estimated_bytes(m, n)
        if engine == "auto" and other_needed <= limit:
            name, other, needed = other, name, other_needed
        else:
            gib = 2 ** 30
            advice = (f"use engine={other!r} (about {other_needed / gib:,.1f} GiB)"
                      if other_needed <= limit else
                      f"engine={other!r} would need about {other_needed / gib:,.1f} GiB too; "
                      f"the spread of the counts sets the cost, so a smaller urn or fewer "
                      f"draws is what fits")
            raise ValueError(
                f"engine={name!r} would need about {needed / gib:,.1f} GiB for this urn (the "
                f"device has {limit / gib:,.1f} GiB); {advice}")
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


class Urn:
    """A user's flat batch of urns, computed through an engine on its canonical form.

    Args:
        population: ``[B, c]`` int64.
        draws: ``[B]`` int64.
        theta: ``[B, c]`` float64 logits (``-inf`` for weight zero).
        engine: the engine class to use.
        complement: compute ``n > N/2`` as ``N - n`` with weights ``1/w``.
        zero_weights: whether ``theta`` may hold ``-inf`` (weights of zero).
        normalizer: what ``mean`` differentiates (default: ``engine``'s log-normaliser).
        canonical: ``canonical_counts`` of these arguments, when the caller has them already.

    Example:
        A weight of zero empties its class; 4 draws of the 5 balls left are computed as 1 draw
        with weights ``1/w`` (``flip``):

        >>> import torch
        >>> from diffhypergeom.numerics.engines import LogspaceEngine, Urn
        >>> theta = torch.tensor([[1.0, 2.0, 0.0]], dtype=torch.float64).log()  # w_2 = 0
        >>> urn = Urn(torch.tensor([[2, 3, 4]]), torch.tensor([4]), theta, LogspaceEngine)
        >>> urn.flip, urn.log_normalizer.exp()  # P0 = [t^4] (1 + t)^2 (1 + 2t)^3 = 12 + 16
        (tensor([True]), tensor([28.0000], dtype=torch.float64))
        >>> urn.mean()  # x_1 = 2 or 3: E[x_1] = (2 * 12 + 3 * 16) / 28
        tensor([[1.4286, 2.5714, 0.0000]], dtype=torch.float64)
    """

    def __init__(self, population: torch.Tensor, draws: torch.Tensor, theta: torch.Tensor,
                 engine: type[Engine], complement: bool = True, zero_weights: bool = True,
                 normalizer: Normalizer | None = None, canonical: Canonical | None = None):
        self.normalizer = normalizer if normalizer is not None else partial(
            engine_log_normalizer, engine, complement, zero_weights)
        self._mean: torch.Tensor | None = None
        # the sampling tree, when the mean's normalizer built it (``tree.Level`` list)
        # the sampling tree's levels: from the mean's normaliser when it is the tree's, else
        # built by the first ``sample`` that uses the tree ([] where it would not pay)
        self.levels: list[_tree.Level] | None = None
        m, flipped_draws, flip = canonical if canonical is not None else canonical_counts(
            population, draws, theta, complement, zero_weights)
        has = m > 0
        any_flip = bool(flip.any())
        finite = torch.where(has, theta, torch.zeros_like(theta))
        low = torch.full_like(finite, NEG_INF)
        shift = torch.where(has, finite, low).detach().amax(-1)
        shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
        centred = torch.where(has, finite - shift.unsqueeze(-1), torch.zeros_like(finite))
        # A(theta) = A_canonical + n * shift + [flip] (sum_i m_i centred_i + n' * shift2)
        self._offset = draws.to(torch.float64) * shift
        self._x_shift = shift  # log_prob's gradient in x: natural minus canonical, per urn
        n, canonical = draws, centred
        if any_flip:
            n = flipped_draws
            signed = torch.where(flip.unsqueeze(-1), -centred, centred)
            shift2 = torch.where(has, signed, low).detach().amax(-1)
            shift2 = torch.where(torch.isfinite(shift2), shift2, torch.zeros_like(shift2))
            canonical = torch.where(has, signed - shift2.unsqueeze(-1), torch.zeros_like(signed))
            flipped = times_logit(m.to(torch.float64), centred).sum(-1) \
                + n.to(torch.float64) * shift2
            self._offset = self._offset + torch.where(flip, flipped, torch.zeros_like(shift))
            self._x_shift = shift - shift2
        self.population, self.draws, self.theta = population, draws, theta
        self.effective_population = m
        self.flip = flip
        self.any_flip = any_flip  # whether any urn of the batch is computed complemented
        self.engine = engine(m, n, canonical)
        self.connected = self.engine.connected
        self.batch, self.num_classes = population.shape

    @property
    def name(self) -> str:
        return self.engine.name

    def tree(self) -> list[_tree.Level] | None:
        """The log-depth sampler's levels (``tree``), built once; ``None`` where the sequential
        sampler is used instead: fewer than ``TREE_MIN_CLASSES`` classes, under ``torch.func``
        transforms, or where the tree's convolutions would cost more than ``TREE_WORK`` (few
        classes of very many balls, which the sequential FFT rows handle in ``O(sigma)`` per
        row)."""
        if self.num_classes < TREE_MIN_CLASSES or not readable(self.theta):
            return None
        if self.levels is None:
            with torch.no_grad():
                self.levels = (_tree.build_tree(self.population, self.draws, self.theta)
                               if _tree.tree_work(self.population, self.draws) <= TREE_WORK
                               else [])
        return self.levels or None

    def sample(self, num_samples: int, conditional: ConditionalFn | None = None
               ) -> torch.Tensor:
        """``[num_samples, B, c]`` int64 exact draws in the user's counts: by the log-depth tree
        where it is built (``tree``), else by the sequential sampler over ``conditional``
        (default: this urn's exact conditionals; another law passes its own rows, over the
        canonical urn, as ``conditional(i, rows) -> Window``)."""
        if conditional is None:
            levels = self.tree()
            if levels is not None:
                return _tree.sample_tree(levels, self.draws, self.num_classes, num_samples)
            conditional = self.engine.conditional
        counts = sample_sequential(conditional, self.engine.draws, self.num_classes,
                                   num_samples)
        return self.to_user(counts)

    def relaxed_sample(self, num_samples: int, settings: GumbelSettings, dtype: torch.dtype,
                       width: int | None = None, conditional: ConditionalFn | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Gumbel-softmax over the sequential conditionals (``sampling.rsample_sequential``)
        in the user's counts: counts ``[S, B, c]`` and, when ``width`` is given, the one-hot
        vectors ``[S, B, c, width]`` and the draws' log-probability ``[S, B]``."""
        counts, vectors, log_prob = rsample_sequential(
            conditional if conditional is not None else self.engine.conditional,
            self.engine.draws, self.num_classes, num_samples, settings, dtype, width,
            self.effective_population)
        counts = self.to_user(counts)
        if vectors is not None and self.any_flip:
            vectors = self._flip_one_hot(vectors)
        return counts, vectors, log_prob

    def _flip_one_hot(self, vectors: torch.Tensor) -> torch.Tensor:
        """One-hot vectors ``[S, B, c, W]`` over canonical counts ``y`` to the user's counts
        ``x = m - y`` in the urns that were complemented."""
        width = vectors.shape[-1]
        m = self.effective_population.unsqueeze(-1)  # [B, c, 1]
        index = m - torch.arange(width, device=vectors.device)
        inside = (index >= 0) & (index < width)
        flipped = vectors.gather(-1, index.clamp(0, width - 1).expand_as(vectors))
        flipped = torch.where(inside, flipped, torch.zeros_like(flipped))
        return torch.where(self.flip.view(-1, 1, 1), flipped, vectors)

    def to_user(self, y: torch.Tensor) -> torch.Tensor:
        """Canonical counts ``[..., B, c]`` to the user's (``m - y`` where complemented)."""
        if not self.any_flip:
            return y
        m = self.effective_population.to(y.dtype)
        return torch.where(self.flip.unsqueeze(-1), m - y, y)

    @property
    def log_normalizer(self) -> torch.Tensor:
        """``A(theta) = log P0``, shape ``[B]``."""
        return self.engine.log_normalizer + self._offset

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``[S, B]`` for counts ``x [S, B, c]`` inside the support (float64)."""
        y = self.to_user(x)
        drift = (x.sum(-1) - self.draws.to(x.dtype)) * self._x_shift
        return self.engine.log_prob(y) + drift

    def log_marginals(self) -> list[Window]:
        """Per class, ``log p(x_i = k)`` in the user's counts."""
        windows = self.engine.log_marginals()
        if not self.any_flip:
            return windows
        return [self._flip_window(window, self.effective_population[:, i])
                for i, window in enumerate(windows)]

    def _flip_window(self, window: Window, m: torch.Tensor) -> Window:
        width = window.log_prob.shape[-1]
        flipped_offset = m - window.offset - (width - 1)
        offset = torch.where(self.flip, flipped_offset, window.offset)
        log_prob = torch.where(self.flip.unsqueeze(-1), window.log_prob.flip(-1),
                               window.log_prob)
        below = offset < 0
        if bool(below.any()):
            # a flipped window of a class with fewer balls than its width reaches below zero,
            # where every entry is -inf: start it at zero instead
            shifted = Window(offset, log_prob)
            offset = offset.clamp_min(0)
            log_prob = shifted.at(offset.unsqueeze(-1) + torch.arange(width,
                                                                      device=offset.device))
        return Window(offset, log_prob)

    def mean(self) -> torch.Tensor:
        """``[B, c]``: ``E[x] = grad A(theta)``, by autograd through ``normalizer`` (by default
        this urn's engine), computed afresh. While gradients are recorded the result keeps its
        graph (so each backward pass has its own), and a backward pass through it is a
        Hessian-vector product of ``A`` (``g^T Cov(X)``): about the cost of ``A``, nothing
        ``c x c``. Under ``torch.func`` transforms, from the marginals."""
        recording = self.connected and torch.is_grad_enabled()
        if self._mean is not None and not recording:
            return self._mean
        if not readable(self.theta):
            return self.moments()[0]
        with torch.enable_grad():
            theta = self.theta if recording else self.theta.detach().requires_grad_()
            # a fresh computation: a cached A's graph may have been freed by a backward pass
            value = self.normalizer(self.population, self.draws, theta)
            if isinstance(value, tuple):
                value, self.levels = value
            (mean,) = torch.autograd.grad(value.sum(), theta,
                                          create_graph=recording, allow_unused=True)
        if mean is None:  # no urn depends on its logits (no class can be drawn)
            mean = torch.zeros_like(self.theta)
        if recording:  # not kept: a backward pass would free the graph it holds
            return mean
        self._mean = mean.detach()
        return self._mean

    def moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, c]`` mean and variance, from the marginals."""
        mean, variance = self.engine.moments()
        return self.to_user(mean), variance

    def entropy(self) -> torch.Tensor:
        return self.engine.entropy()


def engine_log_normalizer(engine: type[Engine], complement: bool, zero_weights: bool,
                          population: torch.Tensor, draws: torch.Tensor, theta: torch.Tensor
                          ) -> torch.Tensor:
    """``A(theta) [B]`` of the urns computed afresh by ``engine`` (a ``Normalizer`` once its
    first three arguments are bound with ``functools.partial``, which pickles)."""
    return Urn(population, draws, theta, engine, complement, zero_weights).log_normalizer
