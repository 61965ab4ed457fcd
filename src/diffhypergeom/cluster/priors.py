"""The three cluster priors ``p(c; pi)`` over a batch of assignments ``c = (c_1..c_B)``.

All priors see assignments as one-hot (or relaxed one-hot) rows ``c`` [B, K] and expose:

* ``log_prob(c)``: ``log p(c)`` of the whole batch, a scalar;
* ``expected_log_prob(gamma, temperature)``: the ELBO term ``E_{q(c|X)}[log p(c)]`` for the
  variational posteriors ``gamma = q(c_i = k | x_i)`` [B, K]; exact for the factorised priors,
  a one-sample Gumbel-softmax estimate (the paper's Appendix C.3, L = 1) for the
  hypergeometric one;
* ``log_weights()``: per-sample log prior weights ``log p(c_i = k)`` [K] used in the VaDE
  posterior ``gamma_ik ∝ p(c_i = k) N(z_i; mu_k, sigma_k^2)``;
* ``cluster_weights()``: the normalised learned weights [K] (what Figure 3 of the paper shows).

Priors:

* ``CategoricalPrior``: ``log p(c) = sum_i log pi_{c_i}``, ``pi = softmax(logits)`` learnable.
* ``UniformPrior``: ``log p(c) = -B log K``, nothing to learn.
* ``HypergeometricPrior``: urn with ``K`` colours of ``B`` balls each, ``B`` balls drawn, colour
  weights ``w = exp(logits)`` learnable. The counts ``n_k = sum_i c_ik`` follow the MFNCH and
  every ordering of the assignments with the same counts is equally likely (exchangeable), so

      log p(c) = log MFNCH(n; m = (B, ..., B), draws = B, w) - log(B! / prod_k n_k!)

  with the multinomial coefficient in its lgamma form, so relaxed (non-integer) counts from a
  Gumbel-softmax sample of ``q(c|x)`` keep gradients to both the encoder and ``w`` (the core's
  ``log_prob`` uses the Gamma-function extension of ``C(m, x)``). Its per-sample weight is the
  probability that the first ball drawn has colour ``k``: ``w_k B / sum_j w_j B = softmax(w)``.

  With ``B`` balls per colour and ``B`` drawn, the MFNCH is close to the multinomial
  ``Mult(B, softmax(w))`` (finite-population factor ``(K-1)B / (KB-1)``, about 0.9 for K = 10,
  on the variances), so this prior is close to ``CategoricalPrior`` evaluated at one sample.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from diffhypergeom import MultivariateFisherNCHypergeometric

PRIORS = ("categorical", "uniform", "hypergeometric")


def _check_assignments(c: torch.Tensor, num_clusters: int) -> None:
    if c.dim() != 2 or c.shape[-1] != num_clusters:
        raise ValueError(f"assignments must have shape [B, {num_clusters}] (one-hot rows), "
                         f"got {tuple(c.shape)}")


class ClusterPrior(nn.Module):
    """Base class; ``num_clusters`` is K."""

    name = "base"

    def __init__(self, num_clusters: int):
        super().__init__()
        if num_clusters < 2:
            raise ValueError(f"num_clusters must be >= 2, got {num_clusters}")
        self.num_clusters = num_clusters

    def log_weights(self) -> torch.Tensor:
        raise NotImplementedError

    def cluster_weights(self) -> torch.Tensor:
        return self.log_weights().exp()

    def log_prob(self, c: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def expected_log_prob(self, gamma: torch.Tensor, temperature: float = 1.0,
                          hard: bool = False) -> torch.Tensor:
        """Exact ``E_q[log p(c)] = sum_i sum_k gamma_ik log p(c_i = k)`` for a factorised
        prior; ``gamma`` [B, K] rows summing to one."""
        _check_assignments(gamma, self.num_clusters)
        return (gamma * self.log_weights()).sum()


class _LearnableWeights(ClusterPrior):
    """A prior with learnable cluster weights ``pi = softmax(logits)``, ``[K]``."""

    def __init__(self, num_clusters: int, logits: torch.Tensor | None = None):
        super().__init__(num_clusters)
        init = torch.zeros(num_clusters) if logits is None else logits.detach().clone().float()
        self.logits = nn.Parameter(init)

    def log_weights(self) -> torch.Tensor:
        return torch.log_softmax(self.logits, -1)


class CategoricalPrior(_LearnableWeights):
    """i.i.d. categorical assignments with learnable ``pi = softmax(logits)``."""

    name = "categorical"

    def log_prob(self, c: torch.Tensor) -> torch.Tensor:
        _check_assignments(c, self.num_clusters)
        return (c * self.log_weights()).sum()


class UniformPrior(ClusterPrior):
    """i.i.d. uniform assignments: ``log p(c) = -B log K``; no parameters."""

    name = "uniform"

    def __init__(self, num_clusters: int):
        super().__init__(num_clusters)
        self.register_buffer("_log_w", torch.full((num_clusters,), -math.log(num_clusters)),
                             persistent=False)

    def log_weights(self) -> torch.Tensor:
        return self._log_w

    def log_prob(self, c: torch.Tensor) -> torch.Tensor:
        _check_assignments(c, self.num_clusters)
        return c.sum() * -math.log(self.num_clusters)


class HypergeometricPrior(_LearnableWeights):
    """Exchangeable prior whose cluster sizes follow the MFNCH with learnable weights."""

    name = "hypergeometric"

    def size_distribution(self, batch_size: int) -> MultivariateFisherNCHypergeometric:
        """MFNCH of the cluster sizes of a batch: ``K`` colours of ``B`` balls, ``B`` drawn."""
        population = torch.full((self.num_clusters,), batch_size, dtype=torch.long,
                                device=self.logits.device)
        return MultivariateFisherNCHypergeometric(population=population, draws=batch_size,
                                                  logits=self.logits, validate_args=False)

    def log_prob(self, c: torch.Tensor) -> torch.Tensor:
        """``log MFNCH(n) - log(B! / prod_k n_k!)`` with ``n = c.sum(0)`` [K]; relaxed rows
        give relaxed counts (still summing to B)."""
        _check_assignments(c, self.num_clusters)
        batch_size = c.shape[0]
        counts = c.sum(0)
        log_multinomial = math.lgamma(batch_size + 1) - torch.lgamma(counts + 1).sum()
        return self.size_distribution(batch_size).log_prob(counts) - log_multinomial

    def expected_log_prob(self, gamma: torch.Tensor, temperature: float = 1.0,
                          hard: bool = False) -> torch.Tensor:
        """One-sample estimate of ``E_q[log p(c)]``: ``c_i ~ GumbelSoftmax(gamma_i, tau)``
        (straight-through one-hot if ``hard``), then ``log_prob(c)``."""
        _check_assignments(gamma, self.num_clusters)
        c = nn.functional.gumbel_softmax(gamma.clamp_min(1e-12).log(), tau=temperature,
                                         hard=hard, dim=-1)
        return self.log_prob(c)


def make_prior(name: str, num_clusters: int) -> ClusterPrior:
    """A prior by name (``PRIORS``); learnable priors start at uniform weights."""
    classes = {"categorical": CategoricalPrior, "uniform": UniformPrior,
               "hypergeometric": HypergeometricPrior}
    if name not in classes:
        raise ValueError(f"unknown prior {name!r}; choose one of {PRIORS}")
    return classes[name](num_clusters)
