"""Generating-function tables of a batch of urns (DESIGN.md section 1).

For class ``i`` with ``m_i`` balls and log-odds ``theta_i``,
``G_i(t) = sum_k C(m_i, k) exp(k theta_i) t^k = (1 + w_i t)^m_i``. All polynomials are stored as
log-coefficients truncated to degree ``n_max`` (the largest number of draws in the batch):

- ``kernel(i)``: ``[B, K_i]``, the coefficients of ``G_i``, ``K_i = min(max m_i, n_max) + 1``;
- ``suffix``: ``[B, c + 1, n_max + 1]``, ``s_i = prod_{j >= i} G_j`` (``s_{c+1} = 1``);
- ``log_normalizer``: ``[B]``, ``A = log P0 = s_1[n]``, the log-partition function;
- ``conditional(i, rows)``: ``[B, n_max + 1, K_i]`` (or only the rows a sampler visits), the
  exact ``log p(x_i = k | r balls left)``;
- ``merged_conditional(i, rows)``: the same for the paper's merged-right-class approximation;
- ``log_marginals()``: ``[B, K_i]`` per class, the exact ``log p(x_i = k)``.

Tables are computed in float64 from ``theta`` (which keeps its autograd graph), once per
parameter set, and shared by every sample drawn from it. Cost ``O(n_max * sum_i K_i)``.
"""

from __future__ import annotations

import torch

from diffhypergeom.logspace import (
    NEG_INF,
    checkpoint_if_large,
    log_binomial,
    log_poly_mul,
    logsumexp,
    times_logit,
)


def _conditional_rows(kernel: torch.Tensor, right: torch.Tensor, rows: torch.Tensor
                      ) -> torch.Tensor:
    """``[U, K]``: for each flat row ``rows[u] = b * R + r``, the terms
    ``kernel[b, k] + right[b, r - k]`` (``-inf`` where ``r < k``), normalised over ``k``;
    rows with no feasible ``k`` stay ``-inf``.

    Args:
        kernel: ``[B, K]`` log-coefficients of the class's polynomial.
        right: ``[B, R]`` log-coefficients of the polynomial of the classes after it.
        rows: ``[U]`` int64 flat row indices into ``B x R``.
    """
    length, width = right.shape[-1], kernel.shape[-1]
    urn, remaining = rows // length, rows % length
    shift = remaining.unsqueeze(-1) - torch.arange(width, device=rows.device)
    gathered = right.reshape(-1)[urn.unsqueeze(-1) * length + shift.clamp_min(0)]
    terms = kernel[urn] + torch.where(shift >= 0, gathered, torch.full_like(gathered, NEG_INF))
    norm = logsumexp(terms, dim=-1).unsqueeze(-1)
    out = terms - torch.where(torch.isfinite(norm), norm, torch.zeros_like(norm))
    return torch.where(torch.isfinite(norm), out, torch.full_like(out, NEG_INF))


class UrnTables:
    """Tables for a flat batch of ``B`` urns with ``c`` classes.

    Args:
        population: ``[B, c]`` int64, balls per class ``m``.
        draws: ``[B]`` int64, balls drawn ``n``.
        theta: ``[B, c]`` float64 log-odds (``-inf`` for weight zero).
    """

    def __init__(self, population: torch.Tensor, draws: torch.Tensor, theta: torch.Tensor):
        self.population = population
        self.draws = draws
        self.theta = theta
        # theta is part of an autograd graph only if built while recording (a view taken
        # under no_grad reports requires_grad but is cut off from the logits)
        self.connected = theta.requires_grad and torch.is_grad_enabled()
        self.batch, self.num_classes = population.shape
        self.n_max = int(draws.max()) if draws.numel() else 0
        self.degrees = torch.arange(self.n_max + 1, device=theta.device, dtype=torch.float64)
        self._kernels: list[torch.Tensor | None] = [None] * self.num_classes
        self._suffix: torch.Tensor | None = None
        self._marginals: list[torch.Tensor] | None = None

    def _stale(self, cached: torch.Tensor | None) -> bool:
        """A cached table must be (re)built if missing, or if gradients are being recorded
        now but it was built without them (e.g. first used under ``torch.no_grad``)."""
        recording = self.connected and torch.is_grad_enabled()
        return cached is None or (recording and not cached.requires_grad)

    def width(self, i: int) -> int:
        """``K_i``: number of values class ``i`` can take in any urn of the batch."""
        return min(int(self.population[:, i].max()) if self.batch else 0, self.n_max) + 1

    def kernel(self, i: int) -> torch.Tensor:
        """``[B, K_i]``: ``log C(m_i, k) + k * theta_i``."""
        if self._stale(self._kernels[i]):
            k = self.degrees[: self.width(i)]
            m = self.population[:, i : i + 1].to(torch.float64)
            theta = self.theta[:, i : i + 1]
            self._kernels[i] = log_binomial(m, k) + times_logit(k, theta)
        return self._kernels[i]

    @property
    def suffix(self) -> torch.Tensor:
        """``[B, c + 1, n_max + 1]``: ``s_i[r]``, log-coefficients of ``prod_{j >= i} G_j``."""
        if self._stale(self._suffix):  # rebuilds stale kernels too, through self.kernel(i)
            current = self._unit()
            tables = [current]
            for i in reversed(range(self.num_classes)):
                current = log_poly_mul(current, self.kernel(i))
                tables.append(current)
            self._suffix = torch.stack(tables[::-1], dim=1)
        return self._suffix

    def _unit(self) -> torch.Tensor:
        unit = torch.full((self.batch, self.n_max + 1), NEG_INF, dtype=torch.float64,
                          device=self.theta.device)
        unit[:, 0] = 0.0
        return unit

    @property
    def log_normalizer(self) -> torch.Tensor:
        """``[B]``: ``A(theta) = log [t^n] prod_i G_i(t)``."""
        return self.suffix[:, 0].gather(-1, self.draws.unsqueeze(-1)).squeeze(-1)

    def conditional(self, i: int, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Exact ``log p(x_i = k | r)`` with ``r`` balls left to draw from classes ``i..c``:
        ``log C(m_i,k) + k theta_i + s_{i+1}[r-k] - s_i[r]``.

        Returns ``[B, n_max + 1, K_i]``, or ``[U, K_i]`` for the flat rows
        ``rows = b * (n_max + 1) + r`` only (what a sampler visits; far fewer when ``n`` is
        large)."""
        return self._rows(self.kernel(i), self.suffix[:, i + 1], rows)

    def merged_conditional(self, i: int, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Like ``conditional`` for the paper's Algorithm 1: class ``i`` against one merged
        class ``R = {i+1..c}`` with ``m_R = sum m_j`` and ``w_R = sum w_j m_j / m_R``, i.e. a
        univariate Fisher distribution; exact only when all weights are equal."""
        m_rest = self.population[:, i + 1 :].to(torch.float64)
        m_right = m_rest.sum(-1, keepdim=True)
        weighted = logsumexp(self.theta[:, i + 1 :] + m_rest.log(), dim=-1).unsqueeze(-1)
        theta_right = torch.where(m_right > 0, weighted - m_right.clamp_min(1).log(),
                                  torch.zeros_like(m_right))
        right = log_binomial(m_right, self.degrees) + times_logit(self.degrees, theta_right)
        return self._rows(self.kernel(i), right, rows)

    def _rows(self, kernel: torch.Tensor, right: torch.Tensor, rows: torch.Tensor | None
              ) -> torch.Tensor:
        full = rows is None
        if full:
            rows = torch.arange(self.batch * (self.n_max + 1), device=self.theta.device)
        table = checkpoint_if_large(_conditional_rows, kernel, right, rows,
                                    elements=rows.numel() * kernel.shape[-1])
        return table.view(self.batch, self.n_max + 1, -1) if full else table

    def log_marginals(self) -> list[torch.Tensor]:
        """Per class ``[B, K_i]``: exact ``log p(x_i = k)``, from prefix products ``p_{i-1}``
        and suffix products ``s_{i+1}``: ``p(x_i=k) ∝ C(m_i,k) w_i^k [t^(n-k)] p_{i-1} s_{i+1}``.
        """
        if self._marginals is None or self._stale(self._marginals[0]):
            self._marginals = self._compute_log_marginals()
        return self._marginals

    def _compute_log_marginals(self) -> list[torch.Tensor]:
        prefix = self._unit()
        out = []
        a = torch.arange(self.n_max + 1, device=self.theta.device)
        for i in range(self.num_classes):
            kernel = self.kernel(i)
            k = torch.arange(kernel.shape[-1], device=self.theta.device)
            # degree of the suffix factor: n - k - a, for prefix degree a
            degree = self.draws.view(-1, 1, 1) - k.view(1, -1, 1) - a.view(1, 1, -1)
            suffix = self.suffix[:, i + 1]
            gathered = suffix.gather(-1, degree.clamp_min(0).flatten(1)).view(degree.shape)
            gathered = torch.where(degree >= 0, gathered, torch.full_like(gathered, NEG_INF))
            rest = logsumexp(prefix.unsqueeze(1) + gathered, dim=-1)
            out.append(kernel + rest - self.log_normalizer.unsqueeze(-1))
            prefix = log_poly_mul(prefix, kernel)
        return out
