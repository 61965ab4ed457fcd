"""The log-space engine: exact generating-function tables (``docs/design/index.md`` section 1).

For class ``i``, ``G_i(t) = sum_k C(m_i, k) exp(k theta_i) t^k = (1 + w_i t)^m_i``. Polynomials
are stored as log-coefficients truncated to degree ``n_max`` (the largest draw in the batch):

- ``kernel(i)``: ``[B, K_i]``, the coefficients of ``G_i``, ``K_i = min(max m_i, n_max) + 1``;
- ``suffix``: ``[B, c + 1, n_max + 1]``, ``s_i = prod_{j >= i} G_j`` (``s_{c+1} = 1``);
- ``A = log P0 = s_1[n]``; the conditional row ``(b, r)`` of class ``i`` is
  ``log C(m_i,k) + k theta_i + s_{i+1}[r-k] - s_i[r]``; marginals come from prefix and suffix
  products.

Exact to rounding for any urn, with no approximation at all, but time and memory grow as
``O(n_max * sum_i K_i)``: the engine for small and medium urns.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from diffhypergeom.numerics.base import Engine, Window, checkpoint_if_large
from diffhypergeom.numerics.special import (
    NEG_INF,
    log_binomial,
    log_binomial_row,
    logsumexp,
    times_logit,
)

__all__ = [
    "LOGSPACE_MAGNITUDE", "LogspaceEngine", "conditional_rows", "estimated_bytes", "log_poly_mul",
    "logit_magnitude", "product_levels", "product_work",
]

# The tables add and subtract log-weights as large as (logit spread) * draws
# (``logit_magnitude``); above this their rounding (eps times that) exceeds 1e-10.
LOGSPACE_MAGNITUDE = 1e6


def logit_magnitude(population: torch.Tensor, draws: torch.Tensor, theta: torch.Tensor
                    ) -> float:
    """Largest ``(max - min logit over the classes that can be drawn) * draws`` in the batch:
    the size of the log-weights the log-space tables add and subtract."""
    if theta.numel() == 0:
        return 0.0
    usable = (theta > NEG_INF) & (population > 0)
    top = torch.where(usable, theta, torch.full_like(theta, NEG_INF)).amax(-1)
    bottom = torch.where(usable, theta, torch.full_like(theta, float("inf"))).amin(-1)
    spread = torch.where(usable.any(-1), top - bottom, torch.zeros_like(top))
    magnitude = (spread.detach() * draws.to(spread.dtype)).max()
    try:
        return float(magnitude)
    except RuntimeError:  # under torch.func transforms the logits' values cannot be read
        return 0.0


def _mul_truncated(a: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    length = kernel.shape[-1]
    padded = F.pad(a, (length - 1, 0), value=NEG_INF)
    # windows[..., r, j] = a[r + j - (length - 1)], so j = length - 1 - k pairs with kernel[k]
    windows = padded.unfold(-1, length, 1)
    return logsumexp(windows + kernel.flip(-1).unsqueeze(-2), dim=-1)


def log_poly_mul(a: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Coefficients ``0..R-1`` of the product of two polynomials, in log space:
    ``out[r] = logsumexp_k(kernel[k] + a[r - k])`` for ``a [..., R]``, ``kernel [..., K]``.
    Costs ``O(R * K)`` per batch element."""
    if a.shape[:-1] != kernel.shape[:-1]:
        batch = torch.broadcast_shapes(a.shape[:-1], kernel.shape[:-1])
        a = a.expand(*batch, a.shape[-1])
        kernel = kernel.expand(*batch, kernel.shape[-1])
    return checkpoint_if_large(_mul_truncated, a, kernel,
                               elements=a.numel() * kernel.shape[-1])


def conditional_rows(kernel: torch.Tensor, right: torch.Tensor, rows: torch.Tensor
                      ) -> torch.Tensor:
    """``[U, K]``: for each flat row ``rows[u] = b * R + r``, the terms
    ``kernel[b, k] + right[b, r - k]`` (``-inf`` where ``r < k``), normalised over ``k``;
    rows with no feasible ``k`` stay ``-inf``."""
    length, width = right.shape[-1], kernel.shape[-1]
    urn, remaining = rows // length, rows % length
    shift = remaining.unsqueeze(-1) - torch.arange(width, device=rows.device)
    gathered = right.reshape(-1)[urn.unsqueeze(-1) * length + shift.clamp_min(0)]
    terms = kernel[urn] + torch.where(shift >= 0, gathered, torch.full_like(gathered, NEG_INF))
    norm = logsumexp(terms, dim=-1).unsqueeze(-1)
    out = terms - torch.where(torch.isfinite(norm), norm, torch.zeros_like(norm))
    return torch.where(torch.isfinite(norm), out, torch.full_like(out, NEG_INF))


def product_levels(population: torch.Tensor, theta: torch.Tensor, n_max: int,
                   width: int | None = None) -> list[torch.Tensor]:
    """The balanced product tree of the generating functions ``G_i``, leaves first: level ``l``
    is ``[B, 2^(L - l), W_l]``, the log-coefficients ``0 .. W_l - 1`` of each node's product
    (classes padded with ``G = 1`` to a power of two; ``W_l = min(W_(l-1) * 2 - 1, n_max + 1)``,
    so coefficients past ``n_max`` are dropped; ``W_0 = width``, by default ``min(max m, n_max)
    + 1``). ``ceil(log2 c)`` batched products, differentiable twice in ``theta``."""
    batch, classes = population.shape
    if width is None:
        width = min(int(population.max()) if population.numel() else 0, n_max) + 1
    k = torch.arange(width, device=theta.device, dtype=torch.float64)
    tables = (log_binomial_row(population.unsqueeze(-1), width)
              + times_logit(k, theta.unsqueeze(-1)))
    size = 1 << max(classes - 1, 0).bit_length()
    unit = torch.full((width,), NEG_INF, dtype=torch.float64, device=theta.device)
    unit[0] = 0.0
    levels = [torch.cat([tables, unit.expand(batch, size - classes, width)], 1)]
    while levels[-1].shape[1] > 1:
        tables = levels[-1]
        wider = min(2 * width - 1, n_max + 1)
        left = F.pad(tables[:, 0::2], (0, wider - width), value=NEG_INF)
        levels.append(log_poly_mul(left, tables[:, 1::2]))
        width = wider
    return levels


def product_work(population: torch.Tensor, draws: torch.Tensor) -> int:
    """Elements ``product_levels`` touches: ``sum`` over parents of ``W_parent * W_child``."""
    if population.numel() == 0:
        return 0
    batch, classes = population.shape
    n_max = int(draws.max())
    width, nodes = min(int(population.max()), n_max) + 1, 1 << max(classes - 1, 0).bit_length()
    work = 0
    while nodes > 1:
        nodes //= 2
        wider = min(2 * width - 1, n_max + 1)
        work += nodes * wider * width
        width = wider
    return work * batch


def estimated_bytes(population: torch.Tensor, draws: torch.Tensor) -> int:
    """Peak memory of this engine for canonical urns, with gradients (an estimate)."""
    batch, classes = population.shape
    n_max = int(draws.max()) if draws.numel() else 0
    widest = int(torch.minimum(population.max(0).values, torch.tensor(n_max)).max()) + 1 \
        if population.numel() else 1
    suffix = batch * (classes + 1) * (n_max + 1)
    convolution = batch * (n_max + 1) * widest  # the [R, K] windows of one class
    return 8 * (3 * suffix + 2 * convolution)


class LogspaceEngine(Engine):
    """Exact log-space generating-function tables; see the module docstring.

    Example:
        >>> import torch
        >>> from diffhypergeom.numerics.engines import LogspaceEngine
        >>> theta = torch.tensor([[1.0, 3.0, 2.0]], dtype=torch.float64).log()
        >>> engine = LogspaceEngine(torch.tensor([[3, 1, 2]]), torch.tensor([2]), theta)
        >>> engine.log_normalizer.exp()  # P0: 3 + 9 + 12 + 12 + 4 over the five x with sum 2
        tensor([40.], dtype=torch.float64)
        >>> engine.log_marginals()[0].log_prob.exp()  # P(x_0 = k) = [16, 21, 3] / 40
        tensor([[0.4000, 0.5250, 0.0750]], dtype=torch.float64)
    """

    name = "logspace"

    def __init__(self, population: torch.Tensor, draws: torch.Tensor, theta: torch.Tensor):
        super().__init__(population, draws, theta)
        self.degrees = torch.arange(self.n_max + 1, device=self.device, dtype=torch.float64)
        largest = population.max(0).values if self.batch else torch.zeros(
            self.num_classes, dtype=torch.int64)
        self._widths = (largest.clamp_max(self.n_max) + 1).tolist()

    def width(self, i: int) -> int:
        """``K_i``: number of values class ``i`` can take in any urn of the batch."""
        return self._widths[i]

    def kernel(self, i: int) -> torch.Tensor:
        """``[B, K_i]``: ``log C(m_i, k) + k * theta_i``."""
        def compute():
            width = self.width(i)
            k = self.degrees[:width]
            log_c = log_binomial_row(self.population[:, i : i + 1], width)
            return log_c + times_logit(k, self.theta[:, i : i + 1])
        return self._cached(("kernel", i), compute)

    @property
    def suffix(self) -> torch.Tensor:
        """The log-coefficients ``s_i[r]`` of ``prod_{j >= i} G_j``, shape
        ``[B, c + 1, n_max + 1]``."""
        def compute():
            current = self._unit()
            tables = [current]
            for i in reversed(range(self.num_classes)):
                current = log_poly_mul(current, self.kernel(i))
                tables.append(current)
            return torch.stack(tables[::-1], dim=1)
        return self._cached("suffix", compute)

    def _unit(self) -> torch.Tensor:
        unit = torch.full((self.batch, self.n_max + 1), NEG_INF, dtype=torch.float64,
                          device=self.device)
        unit[:, 0] = 0.0
        return unit

    @property
    def log_normalizer(self) -> torch.Tensor:
        """The log-normaliser ``s_1[n]``, from the suffix tables when they exist (the sequential
        sampler builds them), else from a balanced product tree over the classes,
        ``ceil(log2 c)`` batched products (differentiable twice, for the mean's Hessian-vector
        products)."""
        def compute():
            recording = self.connected and torch.is_grad_enabled()
            suffix = self._cache.get("suffix")
            table = suffix[:, 0] if suffix is not None and (
                suffix.requires_grad or not recording) else self._product()
            return table.gather(-1, self.draws.unsqueeze(-1)).squeeze(-1)
        return self._cached("log_normalizer", compute)

    def _product(self) -> torch.Tensor:
        """``[B, n_max + 1]``: log-coefficients of ``prod_i G_i``, multiplied pairwise."""
        root = product_levels(self.population, self.theta, self.n_max,
                              max(self._widths, default=1))[-1][:, 0]
        return F.pad(root, (0, self.n_max + 1 - root.shape[-1]), value=NEG_INF)

    def log_prob(self, y: torch.Tensor) -> torch.Tensor:
        m = self.population.to(torch.float64)
        terms = log_binomial(m, y) + times_logit(y, self.theta)
        return terms.sum(-1) - self.log_normalizer

    def _rows(self, kernel: torch.Tensor, right: torch.Tensor, rows: torch.Tensor) -> Window:
        table = checkpoint_if_large(conditional_rows, kernel, right, rows,
                                    elements=rows.numel() * kernel.shape[-1])
        return Window(torch.zeros_like(rows), table)

    def conditional(self, i: int, rows: torch.Tensor) -> Window:
        return self._rows(self.kernel(i), self.suffix[:, i + 1], rows)

    def log_marginals(self) -> list[Window]:
        """``p(x_i=k) ∝ C(m_i,k) w_i^k [t^(n-k)] p_{i-1} s_{i+1}`` with prefix products
        ``p_{i-1}`` and suffix products ``s_{i+1}``."""
        return self._cached("marginals", self._compute_log_marginals)

    def _compute_log_marginals(self) -> list[Window]:
        prefix = self._unit()
        out = []
        a = torch.arange(self.n_max + 1, device=self.device)
        zero = torch.zeros(self.batch, dtype=torch.int64, device=self.device)
        for i in range(self.num_classes):
            kernel = self.kernel(i)
            k = torch.arange(kernel.shape[-1], device=self.device)
            # degree of the suffix factor: n - k - a, for prefix degree a
            degree = self.draws.view(-1, 1, 1) - k.view(1, -1, 1) - a.view(1, 1, -1)
            suffix = self.suffix[:, i + 1]
            gathered = suffix.gather(-1, degree.clamp_min(0).flatten(1)).view(degree.shape)
            gathered = torch.where(degree >= 0, gathered, torch.full_like(gathered, NEG_INF))
            rest = logsumexp(prefix.unsqueeze(1) + gathered, dim=-1)
            out.append(Window(zero, kernel + rest - self.log_normalizer.unsqueeze(-1)))
            prefix = log_poly_mul(prefix, kernel)
        return out

    def entropy(self) -> torch.Tensor:
        """``A - sum_i E[v_i(y_i)]`` with ``v_i(k) = log C(m_i, k) + k theta_i``, each term
        taken relative to its value at the marginal's mode (``A`` and the ``v_i`` are large and
        nearly cancel; the marginals carry a relative error of ``eps * |A|``, which would
        otherwise multiply the large values)."""
        entropy = self.log_normalizer
        for i, window in enumerate(self.log_marginals()):  # windows over the kernel's counts
            p = window.log_prob.exp()
            v = self.kernel(i)
            v = torch.where(torch.isfinite(v), v, torch.zeros_like(v))
            mode = v.gather(-1, window.log_prob.detach().argmax(-1, keepdim=True))
            entropy = entropy - mode.squeeze(-1) - (p * (v - mode)).sum(-1)
        return entropy
