"""Generating-function tables of a batch of urns (DESIGN.md section 1).

For class ``i`` with ``m_i`` balls and log-odds ``theta_i``,
``G_i(t) = sum_k C(m_i, k) exp(k theta_i) t^k = (1 + w_i t)^m_i``. All polynomials are stored as
log-coefficients truncated to degree ``n_max`` (the largest number of draws in the batch):

- ``kernel(i)``: ``[B, K_i]``, the coefficients of ``G_i``, ``K_i = min(max m_i, n_max) + 1``;
- ``suffix``: ``[B, c + 1, n_max + 1]``, ``s_i = prod_{j >= i} G_j`` (``s_{c+1} = 1``);
- ``log_normalizer``: ``[B]``, ``A = log P0 = s_1[n]``, the log-partition function;
- ``conditional(i)``: ``[B, n_max + 1, K_i]``, the exact ``log p(x_i = k | r balls left)``;
- ``merged_conditional(i)``: the same for the paper's merged-right-class approximation;
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


def _shifted_windows(right: torch.Tensor, length: int) -> torch.Tensor:
    """``[B, R] -> [B, R, length]`` with ``out[b, r, k] = right[b, r - k]`` (``-inf`` if
    ``r < k``)."""
    padded = torch.nn.functional.pad(right, (length - 1, 0), value=NEG_INF)
    return padded.unfold(-1, length, 1).flip(-1)


def _conditional_rows(kernel: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """``[B, R, K]``: ``kernel[k] + right[r - k]``, normalised over ``k`` (row-wise
    logsumexp subtracted); infeasible rows stay ``-inf``."""
    terms = kernel.unsqueeze(-2) + _shifted_windows(right, kernel.shape[-1])
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
        self.batch, self.num_classes = population.shape
        self.n_max = int(draws.max()) if draws.numel() else 0
        self.degrees = torch.arange(self.n_max + 1, device=theta.device, dtype=torch.float64)
        self._kernels: list[torch.Tensor | None] = [None] * self.num_classes
        self._suffix: torch.Tensor | None = None
        self._marginals: list[torch.Tensor] | None = None

    def width(self, i: int) -> int:
        """``K_i``: number of values class ``i`` can take in any urn of the batch."""
        return min(int(self.population[:, i].max()) if self.batch else 0, self.n_max) + 1

    def kernel(self, i: int) -> torch.Tensor:
        """``[B, K_i]``: ``log C(m_i, k) + k * theta_i``."""
        if self._kernels[i] is None:
            k = self.degrees[: self.width(i)]
            m = self.population[:, i : i + 1].to(torch.float64)
            theta = self.theta[:, i : i + 1]
            self._kernels[i] = log_binomial(m, k) + times_logit(k, theta)
        return self._kernels[i]

    @property
    def suffix(self) -> torch.Tensor:
        """``[B, c + 1, n_max + 1]``: ``s_i[r]``, log-coefficients of ``prod_{j >= i} G_j``."""
        if self._suffix is None:
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

    def conditional(self, i: int) -> torch.Tensor:
        """``[B, n_max + 1, K_i]``: exact ``log p(x_i = k | r)`` with ``r`` balls left to draw
        from classes ``i..c``: ``log C(m_i,k) + k theta_i + s_{i+1}[r-k] - s_i[r]``."""
        kernel = self.kernel(i)
        return checkpoint_if_large(_conditional_rows, kernel, self.suffix[:, i + 1],
                                   elements=kernel.numel() * (self.n_max + 1))

    def merged_conditional(self, i: int) -> torch.Tensor:
        """``[B, n_max + 1, K_i]``: the paper's Algorithm 1. Class ``i`` against one merged
        class ``R = {i+1..c}`` with ``m_R = sum m_j`` and ``w_R = sum w_j m_j / m_R``, i.e. a
        univariate Fisher distribution; exact only when all weights are equal."""
        kernel = self.kernel(i)
        m_rest = self.population[:, i + 1 :].to(torch.float64)
        m_right = m_rest.sum(-1, keepdim=True)
        weighted = logsumexp(self.theta[:, i + 1 :] + m_rest.log(), dim=-1).unsqueeze(-1)
        theta_right = torch.where(m_right > 0, weighted - m_right.clamp_min(1).log(),
                                  torch.zeros_like(m_right))
        right = log_binomial(m_right, self.degrees) + times_logit(self.degrees, theta_right)
        return checkpoint_if_large(_conditional_rows, kernel, right,
                                   elements=kernel.numel() * (self.n_max + 1))

    def log_marginals(self) -> list[torch.Tensor]:
        """Per class ``[B, K_i]``: exact ``log p(x_i = k)``, from prefix products ``p_{i-1}``
        and suffix products ``s_{i+1}``: ``p(x_i=k) ∝ C(m_i,k) w_i^k [t^(n-k)] p_{i-1} s_{i+1}``.
        """
        if self._marginals is None:
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
