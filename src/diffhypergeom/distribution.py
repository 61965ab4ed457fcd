"""``MultivariateFisherNCHypergeometric``: the exact, differentiable multivariate Fisher
noncentral hypergeometric distribution as a ``torch.distributions.Distribution``.

An urn holds ``m_i`` balls of class ``i`` (``i = 1..c``) with weights ``w_i = exp(logits_i)``;
``n`` balls are drawn. The probability of the class counts ``x`` is

    p(x; w) = prod_i C(m_i, x_i) w_i^x_i / P0,   0 <= x_i <= m_i,  sum_i x_i = n,

with ``P0 = [t^n] prod_i (1 + w_i t)^m_i``, computed by one of two engines
(``diffhypergeom.engines``): exact log-space tables for small urns, exponentially tilted
binomials and their characteristic function (FFT) for large ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch.distributions import Distribution, constraints

from diffhypergeom.checks import (
    TensorLike,
    as_count_tensor,
    as_float_tensor,
    broadcast_batch,
    check_bool,
    check_logits,
    check_positive,
    check_total,
    check_weights,
)
from diffhypergeom.engines import ENGINES, Urn, build
from diffhypergeom.engines.base import readable
from diffhypergeom.engines.tree import Level, build_tree, sample_tree, tree_work
from diffhypergeom.sampling import RelaxedDraw, rsample_sequential, sample_sequential
from diffhypergeom.special import NEG_INF

METHODS = ("exact", "merge")
# permuted copies of a distribution (one per class order) that ``rsample(permute=True)`` keeps
ORDER_CACHE = 24
# backward passes of hard ``rsample`` draws
GRADIENTS = ("mean", "gumbel", "gumbel-rao")
# Largest dense marginal (counts x urns) that ``marginal`` builds.
MAX_DENSE = 1 << 26
# Largest tree (elements its convolutions touch, ``tree.tree_work``) that ``sample`` builds.
TREE_WORK = float(1 << 30)
# Urns of fewer classes than this are drawn by the sequential sampler: its c - 1 steps cost less
# than the tree's bookkeeping there (the paper urn's exact draws: about twice as fast).
TREE_MIN_CLASSES = 8


class _UrnSupport(constraints.Constraint):
    """Integer vectors ``x`` with ``0 <= x_i <= m_i`` and ``sum_i x_i = n``."""

    is_discrete = True
    event_dim = 1

    def __init__(self, population: torch.Tensor, draws: torch.Tensor):
        self.population = population
        self.draws = draws
        super().__init__()

    def check(self, value: torch.Tensor) -> torch.Tensor:
        whole = (value == value.round()).all(-1)
        in_range = ((value >= 0) & (value <= self.population)).all(-1)
        return whole & in_range & (value.sum(-1) == self.draws)


class MultivariateFisherNCHypergeometric(Distribution):
    """Multivariate Fisher noncentral hypergeometric distribution over class counts.

    Args:
        population: ``[..., c]`` balls per class ``m`` (non-negative integers).
        draws: ``[...]`` or int, balls drawn ``n`` (``0 <= n <= sum m``).
        logits: ``[..., c]`` log-weights ``log w`` (finite). Exactly one of ``logits`` and
            ``weights`` must be given; only differences of logits matter.
        weights: ``[..., c]`` weights ``w >= 0``; a zero weight means the class is never drawn.
        temperature: default Gumbel-softmax temperature of ``rsample`` (> 0).
        hard: default of ``rsample``: straight-through (integer counts forward) if True.
        method: ``"exact"`` samples from the exact sequential conditionals; ``"merge"`` runs the
            paper's Algorithm 1, which merges the later classes into one and is exact only for
            equal weights. ``log_prob``, moments, marginals and KL are always exact.
        engine: ``"auto"`` (default) takes the cheaper of the two engines for this urn (see
            ``diffhypergeom.engines``); ``"logspace"``: exact tables, ``O(n * N)`` time and
            memory; ``"fft"``: tilted binomials, ``O(c * sigma)``, accurate to ~1e-14. Every
            member works with both.
        validate_args: as in ``torch.distributions``; when on, ``log_prob`` raises for values
            outside the support (otherwise they get ``-inf``).

    Shapes: ``batch_shape`` broadcasts ``population.shape[:-1]``, ``draws.shape`` and
    ``logits.shape[:-1]``; ``event_shape == (c,)``. Engines compute in float64; results have the
    floating dtype of ``logits``/``weights``.
    """

    arg_constraints = {"logits": constraints.real_vector}
    has_rsample = True

    def __init__(
        self,
        population: TensorLike,
        draws: TensorLike,
        logits: TensorLike | None = None,
        weights: TensorLike | None = None,
        temperature: float = 1.0,
        hard: bool = True,
        method: str = "exact",
        engine: str = "auto",
        validate_args: bool | None = None,
    ):
        if (logits is None) == (weights is None):
            raise ValueError("pass exactly one of logits or weights")
        checking = (Distribution._validate_args if validate_args is None
                    else bool(validate_args))
        zero_weights = False
        if logits is not None:
            logits = as_float_tensor(logits, "logits")
            if checking:
                check_logits(logits)
        else:
            weights = as_float_tensor(weights, "weights")
            if checking:
                check_weights(weights)
            logits = _log_weights(weights)
            zero_weights = bool((weights == 0).any())
        if logits.dim() == 0:
            raise ValueError("logits/weights must have a class dimension: shape [..., c]")
        if logits.shape[-1] == 0:
            raise ValueError("logits/weights must have at least one class (shape [..., c] "
                             "with c >= 1)")
        population = as_count_tensor(population, "population", logits.device, checking)
        if population.dim() == 0:
            raise ValueError("population must have a class dimension: shape [..., c]")
        if population.shape[-1] != logits.shape[-1]:
            raise ValueError(
                f"population has {population.shape[-1]} classes (last dim) but logits/weights "
                f"have {logits.shape[-1]}")
        draws = as_count_tensor(draws, "draws", logits.device, checking)
        if not isinstance(method, str) or method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        check_bool(hard, "hard")
        if not isinstance(engine, str) or engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
        check_positive(temperature, "temperature")
        num_classes = logits.shape[-1]
        batch_shape = broadcast_batch(population.shape[:-1], draws.shape, logits.shape[:-1],
                                      names=("population", "draws", "logits"))
        self.population = population.expand(batch_shape + (num_classes,))
        self.draws = draws.expand(batch_shape)
        self.logits = logits.expand(batch_shape + (num_classes,))
        if checking:
            check_total(self.population)
            self._check_feasible()
        self.temperature = temperature
        self.hard = hard
        self.method = method
        self.engine = engine
        self._zero_weights = zero_weights
        # kept only to give the gradient in a weight that is exactly zero its true value
        self._weights = weights.expand(batch_shape + (num_classes,)) if zero_weights else None
        self._urn_cache: Urn | None = None
        super().__init__(batch_shape, torch.Size((num_classes,)), validate_args=validate_args)
        # choose the engine now (it reads the urn's sizes and logits), so that compiled or
        # transformed code later finds it made; its tables are still computed on first use
        self._urn()

    def _check_feasible(self) -> None:
        total = self.population.sum(-1)
        if bool((self.draws > total).any()):
            bad = (self.draws > total).nonzero()[0].tolist()
            raise ValueError(
                f"draws must be <= population.sum(-1) (the balls in the urn); at batch index "
                f"{bad}: draws={int(self.draws[tuple(bad)])} > {int(total[tuple(bad)])}")
        drawable = torch.where(self.logits > NEG_INF, self.population, 0).sum(-1)
        if bool((self.draws > drawable).any()):
            bad = (self.draws > drawable).nonzero()[0].tolist()
            raise ValueError(
                f"infeasible urn: the classes with weight > 0 hold {int(drawable[tuple(bad)])} "
                f"balls at batch index {bad}, fewer than draws={int(self.draws[tuple(bad)])}")

    # ------------------------------------------------------------------ torch plumbing
    def expand(self, batch_shape: Sequence[int], _instance=None):
        batch_shape = torch.Size(batch_shape)
        event = batch_shape + self.event_shape
        new = self._copy_with(self.population.expand(event), self.draws.expand(batch_shape),
                              self.logits.expand(event), _instance)
        new._weights = None if self._weights is None else self._weights.expand(event)
        return new

    def _copy_with(self, population: torch.Tensor, draws: torch.Tensor, logits: torch.Tensor,
                   _instance=None) -> MultivariateFisherNCHypergeometric:
        """A distribution with these (already checked) parameters and this one's settings."""
        new = self._get_checked_instance(MultivariateFisherNCHypergeometric, _instance)
        new.population, new.draws, new.logits = population, draws, logits
        new.temperature, new.hard, new.method = self.temperature, self.hard, self.method
        new.engine = self.engine
        new._zero_weights = self._zero_weights
        new._weights = None
        new._urn_cache = None
        super(MultivariateFisherNCHypergeometric, new).__init__(
            draws.shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @constraints.dependent_property(is_discrete=True, event_dim=1)
    def support(self) -> constraints.Constraint:
        return _UrnSupport(self.population, self.draws)

    @property
    def weights(self) -> torch.Tensor:
        """``[..., c]``: ``exp(logits)``."""
        return self.logits.exp()

    @property
    def num_classes(self) -> int:
        return self.event_shape[0]

    def _urn(self) -> Urn:
        """The flattened batch, computed by its engine (built once; rebuilt when gradients are
        wanted but the cached one was built without them)."""
        want_grad = torch.is_grad_enabled() and self.logits.requires_grad
        cached = self._urn_cache
        if cached is None or (want_grad and not cached.connected):
            self._urn_cache = self._build_urn(self.logits.to(torch.float64))
        return self._urn_cache

    def _build_urn(self, theta: torch.Tensor) -> Urn:
        """The urns of ``theta [*batch, c]`` (float64), one per distinct urn: dimensions along
        which the batch repeats one urn (``expand``, Pyro plates) are computed once."""
        c = self.num_classes
        flat = self._base_shape().numel()
        return build(self.engine, self._narrow(self.population).reshape(flat, c),
                     self._narrow(self.draws).reshape(flat),
                     self._narrow(theta).reshape(flat, c), complement=self.method == "exact",
                     zero_weights=self._zero_weights)

    def _shared_dims(self) -> list[int]:
        """Batch dimensions of size > 1 along which every parameter is one tensor repeated
        (stride 0, as ``expand`` leaves it)."""
        tensors = [self.population, self.draws, self.logits]
        if self._weights is not None:
            tensors.append(self._weights)
        return [d for d, size in enumerate(self.batch_shape)
                if size > 1 and all(t.stride(d) == 0 for t in tensors)]

    def _base_shape(self) -> torch.Size:
        shared = self._shared_dims()
        return torch.Size(1 if d in shared else size for d, size in enumerate(self.batch_shape))

    def _narrow(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor [*batch, ...]`` at index 0 of each shared dimension."""
        for d in self._shared_dims():
            tensor = tensor.narrow(d, 0, 1)
        return tensor

    def _repeats(self) -> int:
        """How many batch entries each distinct urn stands for."""
        return self.batch_shape.numel() // max(self._base_shape().numel(), 1)

    def _unshared(self) -> MultivariateFisherNCHypergeometric:
        """This distribution with every batch entry's parameters its own (for the samplers that
        work on the whole batch)."""
        if not self._shared_dims():
            return self
        new = self._copy_with(self.population.contiguous(), self.draws.contiguous(),
                              self.logits.contiguous())
        new._weights = None if self._weights is None else self._weights.contiguous()
        return new

    @property
    def engine_name(self) -> str:
        """The engine that computes this distribution (``"auto"`` resolved)."""
        return self._urn().name

    def _conditional_fn(self, urn: Urn):
        engine = urn.engine
        return engine.conditional if self.method == "exact" else engine.merged_conditional

    def _unflatten(self, tensor: torch.Tensor, tail=()) -> torch.Tensor:
        """One value per distinct urn, ``[B, *tail]``, to ``[*batch, *tail]`` (repeated urns
        as expanded views)."""
        tail = tuple(tail)
        return tensor.reshape(self._base_shape() + tail).expand(self.batch_shape + tail)

    def _draw_layout(self) -> tuple[list[int], list[int]]:
        """The batch dimensions that repeat one urn, and the others."""
        shared = self._shared_dims()
        return shared, [d for d in range(len(self.batch_shape)) if d not in shared]

    def _unflatten_draws(self, tensor: torch.Tensor, sample_shape: torch.Size, tail=()
                         ) -> torch.Tensor:
        """Draws ``[S * repeats, B, *tail]`` of the distinct urns to ``[*sample_shape, *batch,
        *tail]``: each repeated urn's extra draws fill its repeats."""
        tail, batch = tuple(tail), self.batch_shape
        shared, rest = self._draw_layout()
        if not shared:
            return tensor.reshape(sample_shape + batch + tail)
        order = shared + rest
        x = tensor.reshape(sample_shape.numel(), *(batch[d] for d in order), *tail)
        perm = [0] + [1 + order.index(d) for d in range(len(batch))] \
            + list(range(1 + len(batch), x.dim()))
        return x.permute(perm).reshape(sample_shape + batch + tail)

    def _flatten_draws(self, x: torch.Tensor, sample_shape: torch.Size) -> torch.Tensor:
        """The inverse of ``_unflatten_draws`` for ``x [*sample_shape, *batch, c]``."""
        shared, rest = self._draw_layout()
        x = x.reshape(sample_shape.numel(), *self.batch_shape, x.shape[-1])
        x = x.permute([0] + [1 + d for d in shared + rest] + [x.dim() - 1])
        return x.reshape(-1, self._base_shape().numel(), x.shape[-1])

    # ------------------------------------------------------------------ densities
    def log_normalizer(self) -> torch.Tensor:
        """``[...]``: ``A(theta) = log P0``, the log-partition function (differentiable)."""
        value = self._unflatten(self._urn().log_normalizer)
        term = self._zero_weight_term()
        return (value if term is None else value + term).to(self.logits.dtype)

    def _zero_weight_term(self) -> torch.Tensor | None:
        """``[...]``, value 0: gives ``A``'s gradient in a weight that is exactly zero its true
        (one-sided) value ``m_i P0(n - 1) / P0(n)``, which ``log w`` cannot carry. Only for a
        distribution built from ``weights`` with a zero entry, while recording gradients."""
        found = self._zero_weight_slopes()
        if found is None:
            return None
        weights, slope, _ = found
        return (weights * slope).sum(-1)

    def _zero_weight_mean_term(self, mean: torch.Tensor) -> torch.Tensor | None:
        """``[..., c]``, value 0: the mean's gradient in a weight ``w_i`` that is exactly zero,
        ``m_i P0(n - 1) / P0(n) (E_{n-1}[X] + e_i - E_n[X])`` (one ball of class ``i`` enters
        the draw, to first order in ``w_i``)."""
        found = self._zero_weight_slopes()
        if found is None:
            return None
        weights, slope, below = found
        with torch.no_grad():
            shift = below._unflatten(below._urn().mean(), (self.num_classes,)) - mean.detach()
            step = shift.unsqueeze(-2) + torch.eye(self.num_classes, dtype=torch.float64,
                                                   device=mean.device)
        return ((weights * slope).unsqueeze(-1) * step).sum(-2)

    def _zero_weight_slopes(self) -> tuple[torch.Tensor, torch.Tensor,
                                           MultivariateFisherNCHypergeometric] | None:
        """For a distribution built from ``weights`` with a zero entry, while recording
        gradients: the weights (float64), ``m_i P0(n - 1) / P0(n)`` where ``w_i = 0`` (else 0)
        and the distribution with one draw fewer."""
        weights = self._weights
        if weights is None or not (weights.requires_grad and torch.is_grad_enabled()):
            return None
        with torch.no_grad():
            fewer = (self.draws - 1).clamp_min(0)
            below = self._copy_with(self.population, fewer, self.logits.detach())
            gap = (below._unflatten(below._urn().log_normalizer)
                   - self._unflatten(self._urn().log_normalizer))
            slope = self.population.to(torch.float64) * gap.exp().unsqueeze(-1)
            slope = torch.where((weights == 0) & (self.draws > 0).unsqueeze(-1), slope, 0.0)
        return weights.to(torch.float64), slope, below

    def log_prob(self, value: TensorLike) -> torch.Tensor:
        """Exact normalised log-PMF, ``[*sample, *batch]``; ``-inf`` outside the support.

        Differentiable in ``logits`` and in ``value``: non-integer values inside the ranges
        (relaxed counts with ``hard=False``) get the Gamma-function extension of ``C(m, x)``.
        They are outside the (integer) support, so scoring them needs ``validate_args=False``
        (torch validates by default); straight-through counts (``hard=True``) are integers.
        """
        value = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
        if value.dtype == torch.bool or value.is_complex():
            raise ValueError(f"value must hold real counts, got dtype {value.dtype}")
        if value.dim() == 0 or value.shape[-1] != self.num_classes:
            raise ValueError(f"value must have shape [..., {self.num_classes}] (the classes "
                             f"last), got {tuple(value.shape)}")
        try:
            shape = torch.broadcast_shapes(value.shape, self.batch_shape + self.event_shape)
        except RuntimeError as err:
            raise ValueError(f"value of shape {tuple(value.shape)} does not broadcast with "
                             f"batch_shape + event_shape "
                             f"{tuple(self.batch_shape + self.event_shape)}") from err
        if self._validate_args:
            self._validate_sample(value)
        urn = self._urn()
        x = value.to(torch.float64).expand(shape)
        sample_shape = shape[: len(shape) - len(self.batch_shape) - 1]
        x = self._flatten_draws(x, sample_shape)
        m = urn.effective_population
        in_range = (x >= 0) & (x <= m)
        x_safe = torch.where(in_range, x, torch.zeros_like(x))
        tolerance = 1e-6 * (1 + urn.draws.to(torch.float64))
        inside = in_range.all(-1) & ((x.sum(-1) - urn.draws).abs() <= tolerance)
        out = urn.log_prob(x_safe)
        out = torch.where(inside, out, torch.full_like(out, NEG_INF))
        out = self._unflatten_draws(out, sample_shape)
        term = self._zero_weight_term()
        return (out if term is None else out - term).to(self.logits.dtype)

    # ------------------------------------------------------------------ marginals, moments
    def marginal(self, i: int) -> torch.distributions.Categorical:
        """Exact marginal of class ``i``: a ``Categorical`` over the counts ``0..max m_i``
        (with batch shape ``batch_shape``)."""
        if not -self.num_classes <= i < self.num_classes:
            raise ValueError(f"class index i must be in [0, {self.num_classes}), got {i}")
        i = i % self.num_classes
        size = int(self.population[..., i].max()) + 1 if self.population.numel() else 1
        if size * self.batch_shape.numel() > MAX_DENSE:
            raise ValueError(f"marginal({i}) would hold {size:,} counts per urn; use "
                             f"log_marginal({i}), which keeps only the counts that can occur")
        window = self._urn().log_marginals()[i]
        return torch.distributions.Categorical(
            logits=self._unflatten(window.dense(size).to(self.logits.dtype), (size,)),
            validate_args=False)

    def log_marginal(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact marginal of class ``i`` where it can be non-negligible: ``(offset [...],
        log_probs [..., W])``, ``log p(x_i = offset + j) = log_probs[..., j]`` (``W`` is ``m_i
        + 1`` with the log-space engine, a window of ``O(sigma_i)`` counts with the FFT one)."""
        if not -self.num_classes <= i < self.num_classes:
            raise ValueError(f"class index i must be in [0, {self.num_classes}), got {i}")
        window = self._urn().log_marginals()[i % self.num_classes]
        width = window.log_prob.shape[-1]
        return (self._unflatten(window.offset),
                self._unflatten(window.log_prob.to(self.logits.dtype), (width,)))

    @property
    def mean(self) -> torch.Tensor:
        """``[..., c]``: exact ``E[x]`` (the gradient of the log-partition function)."""
        mean = self._unflatten(self._urn().mean(), (self.num_classes,))
        term = self._zero_weight_mean_term(mean)
        return (mean if term is None else mean + term).to(self.logits.dtype)

    @property
    def variance(self) -> torch.Tensor:
        """``[..., c]``: exact ``Var[x_i]``."""
        return self._unflatten(self._urn().moments()[1], (self.num_classes,)
                               ).to(self.logits.dtype)

    @property
    def covariance_matrix(self) -> torch.Tensor:
        """``[..., c, c]``: exact covariance, the Hessian of the log-partition function
        ``d E[x_i] / d theta_j`` (by autograd; differentiable when ``logits`` require grad)."""
        differentiable = self.logits.requires_grad and torch.is_grad_enabled()
        with torch.enable_grad():
            theta = self.logits.to(torch.float64)
            if not differentiable:
                theta = theta.detach().requires_grad_()
            urn = self._build_urn(theta)
            theta = urn.theta
            means = urn.mean()
            rows = [torch.autograd.grad(means[:, i].sum(), theta, retain_graph=True,
                                        create_graph=differentiable)[0]
                    for i in range(self.num_classes)]
        cov = torch.stack(rows, dim=-2)
        return self._unflatten(cov, (self.num_classes, self.num_classes)
                               ).to(self.logits.dtype)

    def entropy(self) -> torch.Tensor:
        """``[...]``: exact ``-E[log p(x)]``."""
        return self._unflatten(self._urn().entropy()).to(self.logits.dtype)

    # ------------------------------------------------------------------ sampling
    def _permuted(self, permute: bool) -> tuple[MultivariateFisherNCHypergeometric,
                                                torch.Tensor | None]:
        """This distribution with its classes in a random order, and the inverse order. The
        permuted copies (with their tables) are kept per order, the last ``ORDER_CACHE``."""
        if not permute:
            return self, None
        order = torch.randperm(self.num_classes, device=self.logits.device)
        key = tuple(order.tolist())
        cache = self.__dict__.setdefault("_order_cache", {})
        if key not in cache:
            permuted = self._copy_with(self.population[..., order], self.draws,
                                       self.logits[..., order])
            permuted._weights = None if self._weights is None else self._weights[..., order]
            if len(cache) >= ORDER_CACHE:
                cache.pop(next(iter(cache)))
            cache[key] = (permuted, torch.argsort(order))
        return cache[key]

    def _tree(self, urn: Urn) -> list[Level] | None:
        """The log-depth sampler's tree (``diffhypergeom.engines.tree``), built once, for the
        exact law; ``None`` where the sequential sampler is used instead: ``method="merge"``,
        fewer than ``TREE_MIN_CLASSES`` classes, under ``torch.func`` transforms, or where the
        tree's convolutions would cost more than ``TREE_WORK`` (few classes of very many balls,
        which the sequential FFT rows handle in ``O(sigma)`` per row)."""
        if (self.method != "exact" or self.num_classes < TREE_MIN_CLASSES
                or not readable(urn.theta)):
            return None
        cached = self.__dict__.get("_tree_levels")
        if cached is None:
            population, draws = urn.population, urn.draws
            with torch.no_grad():
                cached = (build_tree(population, draws, urn.theta)
                          if tree_work(population, draws) <= TREE_WORK else [])
            self._tree_levels = cached
        return cached or None

    @torch.compiler.disable
    def sample(self, sample_shape: Sequence[int] = torch.Size(), permute: bool = False
               ) -> torch.Tensor:
        """Exact draws (for ``method="exact"``), int64 ``[*sample_shape, *batch, c]``.

        ``permute=True`` visits the classes in a random order (one order per call)."""
        sample_shape = torch.Size(sample_shape)
        dist, inverse = self._permuted(permute)
        urn = dist._urn()
        levels = dist._tree(urn)
        num = sample_shape.numel() * dist._repeats()
        if levels is not None:
            counts = sample_tree(levels, urn.draws, self.num_classes, num)
        else:
            counts = sample_sequential(dist._conditional_fn(urn), urn.engine.draws,
                                       self.num_classes, num)
            counts = urn._to_user(counts)
        if inverse is not None:
            counts = counts[..., inverse]
        return dist._unflatten_draws(counts, sample_shape, (self.num_classes,))

    def rsample(self, sample_shape: Sequence[int] = torch.Size(),
                temperature: float | torch.Tensor | None = None, hard: bool | None = None,
                permute: bool = True, couple_rows: bool = False, gradient: str | None = None,
                rao_samples: int = 10) -> torch.Tensor:
        """Counts ``[*sample_shape, *batch, c]`` that always sum to ``draws`` and are
        differentiable in ``logits``.

        With ``hard=True`` (default) the forward values are integer draws (exact MFNCH draws for
        ``method="exact"``); ``gradient`` chooses the backward pass:

        - ``"mean"`` (the default for ``method="exact"``): the gradient of the exact mean,
          ``d x / d theta = d E[X] / d theta = Cov(X)``. It does not depend on a class order or
          a temperature; for linear ``f`` it is the exact gradient of ``E[f(X)]``, and for
          smooth ``f`` its bias is that of Stein's identity ``Cov(f(X), X) ~ Cov(X) E[grad f]``
          (the draws' departure from a Gaussian). On the urn of ``diffhypergeom gradients``:
          relative bias 0 (linear), 0.05-0.08 (quadratic, product, exponential), 0.16-0.20 on
          steep sigmoid steps, none through a hard step; spread of one draw 0-1.1 times the
          gradient's norm.
        - ``"gumbel"`` (``method="merge"``'s only one): straight-through Gumbel-softmax over the
          sequential conditionals at ``temperature``. ``permute=True`` visits the classes in a
          new random order per call (one order for all samples of the call, as in the published
          code); ``couple_rows=True`` gives the balls left for later classes a gradient path
          (centred difference of neighbouring conditional rows; three times the rows). On the
          same urn at ``temperature=0.5`` the bias on smooth ``f`` was 0.30-0.93 with a fixed
          order, 0.06-0.45 with coupling, and 0.04-0.07 averaged over random orders, where a
          single call's order gives it a spread of 3-4 times the gradient's norm per draw at
          64 draws per call (growing as the square root of the draws per call).
          ``couple_rows=True`` without a ``gradient`` selects this one.
        - ``"gumbel-rao"``: the same estimator Rao-Blackwellised over ``rao_samples`` draws of
          the Gumbel noise given each hard count (Paulus et al. 2021): the same bias, about half
          the spread with a fixed order, at ``rao_samples`` softmaxes per class.

        ``hard=False`` returns the soft Gumbel-softmax counts (``gradient="gumbel"`` implied)."""
        return self.rsample_detailed(sample_shape, temperature, hard, permute,
                                     _with_vectors=False, couple_rows=couple_rows,
                                     gradient=gradient, rao_samples=rao_samples).counts

    @torch.compiler.disable
    def rsample_detailed(self, sample_shape: Sequence[int] = torch.Size(),
                         temperature: float | torch.Tensor | None = None,
                         hard: bool | None = None, permute: bool = True,
                         _with_vectors: bool = True, couple_rows: bool = False,
                         gradient: str | None = None, rao_samples: int = 10) -> RelaxedDraw:
        """Like ``rsample``, also returning the per-class relaxed one-hot vectors and the
        log-probability of the draw (see ``RelaxedDraw``). With ``gradient="mean"`` the one-hot
        vector of class ``i`` carries the gradient of its exact marginal ``P(x_i = k)``."""
        temperature = self.temperature if temperature is None else temperature
        check_positive(temperature, "temperature")
        hard = self.hard if hard is None else hard
        check_bool(hard, "hard")
        check_bool(permute, "permute")
        check_bool(couple_rows, "couple_rows")
        gradient = self._check_gradient(gradient, hard, couple_rows)
        if isinstance(rao_samples, bool) or not isinstance(rao_samples, int) or rao_samples < 1:
            raise ValueError(f"rao_samples must be a positive int, got {rao_samples!r}")
        sample_shape = torch.Size(sample_shape)
        width = int(self.population.max()) + 1 if _with_vectors else None
        if width is not None and width * self.num_classes * self.batch_shape.numel() \
                * max(sample_shape.numel(), 1) > MAX_DENSE:
            raise ValueError(f"rsample_detailed's one-hot vectors would hold {width:,} counts "
                             f"per class and sample; use rsample for urns this large")
        _check_exact_in(self.logits.dtype, self.draws)
        temperature = self._per_draw(temperature, sample_shape)
        if gradient == "mean":
            return self._mean_straight_through(sample_shape, width)
        dist, inverse = self._unshared()._permuted(permute)
        urn = dist._urn()
        counts, vectors, log_prob = rsample_sequential(
            dist._conditional_fn(urn), urn.engine.draws, self.num_classes,
            sample_shape.numel(), temperature, hard, self.logits.dtype, width,
            urn.effective_population, couple_rows,
            rao_samples if gradient == "gumbel-rao" else 0)
        counts = urn._to_user(counts)
        if vectors is not None and urn._any_flip:
            vectors = _flip_vectors(vectors, urn)
        if inverse is not None:
            counts = counts[..., inverse]
            vectors = vectors[..., inverse, :] if vectors is not None else None
        counts = dist._unflatten_draws(counts, sample_shape, (self.num_classes,))
        if vectors is None:
            return RelaxedDraw(counts, None, None)
        return RelaxedDraw(counts, dist._unflatten_draws(vectors, sample_shape,
                                                         (self.num_classes, width)),
                           dist._unflatten_draws(log_prob, sample_shape))

    def _check_gradient(self, gradient: str | None, hard: bool, couple_rows: bool) -> str:
        """``gradient`` resolved: ``"mean"`` by default for exact hard draws, else
        ``"gumbel"``."""
        if gradient is None:
            return "mean" if hard and self.method == "exact" and not couple_rows else "gumbel"
        if not isinstance(gradient, str) or gradient not in GRADIENTS:
            raise ValueError(f"gradient must be one of {GRADIENTS}, got {gradient!r}")
        if gradient == "mean":
            if not hard:
                raise ValueError("gradient='mean' needs hard=True (soft counts are "
                                 "Gumbel-softmax relaxations: use gradient='gumbel')")
            if self.method != "exact":
                raise ValueError("gradient='mean' is the Jacobian of the exact law's mean; "
                                 "method='merge' draws from another law: use gradient='gumbel'")
            if couple_rows:
                raise ValueError("couple_rows only applies to the Gumbel gradients")
        if gradient == "gumbel-rao" and not hard:
            raise ValueError("gradient='gumbel-rao' needs hard=True (it averages the soft "
                             "sample over the noise given the hard one)")
        return gradient

    def _mean_straight_through(self, sample_shape: torch.Size, width: int | None
                               ) -> RelaxedDraw:
        """Exact draws whose gradient is that of ``E[X]`` (and of each class's marginal)."""
        dtype = self.logits.dtype
        mean = self.mean  # before sampling, so that the cached tables keep their gradient
        hard = MultivariateFisherNCHypergeometric.sample(self, sample_shape)  # int64 counts
        counts = hard.to(dtype) + (mean - mean.detach())
        if width is None:
            return RelaxedDraw(counts, None, None)
        urn = self._urn()
        probs = torch.stack([w.dense(width).exp() for w in urn.log_marginals()], dim=-2)
        probs = self._unflatten(probs.to(dtype), (self.num_classes, width))
        one_hot = F.one_hot(hard, width).to(dtype) + (probs - probs.detach())
        return RelaxedDraw(counts, one_hot, self.log_prob(hard))

    def _per_draw(self, temperature: float | torch.Tensor, sample_shape: torch.Size
                  ) -> float | torch.Tensor:
        """A tensor temperature broadcast to ``sample_shape + batch_shape`` and laid out as the
        samplers' ``[S, B, 1]``."""
        if not isinstance(temperature, torch.Tensor) or temperature.dim() == 0:
            return temperature
        shape = sample_shape + self.batch_shape
        try:
            expanded = temperature.expand(torch.broadcast_shapes(temperature.shape, shape))
        except RuntimeError as err:
            raise ValueError(f"temperature of shape {tuple(temperature.shape)} must broadcast "
                             f"with sample_shape + batch_shape {tuple(shape)}") from err
        if expanded.shape != shape:
            raise ValueError(f"temperature of shape {tuple(temperature.shape)} must broadcast "
                             f"to sample_shape + batch_shape {tuple(shape)}")
        return expanded.reshape(sample_shape.numel(), self.batch_shape.numel(), 1)

    def __repr__(self) -> str:
        return (f"MultivariateFisherNCHypergeometric(batch_shape={tuple(self.batch_shape)}, "
                f"classes={self.num_classes}, method={self.method!r}, "
                f"temperature={self.temperature}, hard={self.hard})")


def _flip_vectors(vectors: torch.Tensor, urn: Urn) -> torch.Tensor:
    """One-hot vectors ``[S, B, c, W]`` over canonical counts ``y`` to the user's counts
    ``x = m - y`` in the urns that were complemented."""
    width = vectors.shape[-1]
    m = urn.effective_population.unsqueeze(-1)  # [B, c, 1]
    index = m - torch.arange(width, device=vectors.device)
    inside = (index >= 0) & (index < width)
    flipped = vectors.gather(-1, index.clamp(0, width - 1).expand_as(vectors))
    flipped = torch.where(inside, flipped, torch.zeros_like(flipped))
    return torch.where(urn.flip.view(-1, 1, 1), flipped, vectors)


def _log_weights(weights: torch.Tensor) -> torch.Tensor:
    """``log w`` with ``-inf`` for ``w = 0`` and a zero (not NaN) gradient there: the law does
    not depend on a weight that is exactly zero (nor, to first order, on one that underflowed)."""
    positive = weights > 0
    safe = torch.where(positive, weights, torch.ones_like(weights))
    return torch.where(positive, safe.log(), torch.full_like(weights, NEG_INF))


def _check_exact_in(dtype: torch.dtype, draws: torch.Tensor) -> None:
    """Relaxed counts come in the logits' dtype: it must hold every count up to ``draws``."""
    largest = int(round(2 / torch.finfo(dtype).eps))
    if draws.numel() and int(draws.max()) > largest:
        raise ValueError(f"draws={int(draws.max())} cannot be represented exactly in {dtype} "
                         f"(whole numbers up to {largest}); pass float32 or float64 logits")
