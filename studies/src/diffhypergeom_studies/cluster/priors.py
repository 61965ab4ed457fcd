"""The cluster priors ``p(c; pi)`` over a batch of assignments ``c = (c_1..c_B)``.

All priors see assignments as one-hot (or relaxed one-hot) rows ``c`` [B, K] and expose:

* ``log_prob(c)``: ``log p(c)`` of the whole batch, a scalar;
* ``expected_log_prob(gamma)``: the ELBO term ``E_{q(c|X)}[log p(c)]``, exactly, for the
  variational posteriors ``gamma = q(c_i = k | x_i)`` [B, K] (independent rows);
* ``sampled_log_prob(gamma, temperature, hard)``: the same term estimated from one
  Gumbel-softmax sample of ``q(c|X)`` (the paper's Appendix C.3, L = 1), for every prior alike;
* ``log_weights()``: the per-sample marginal ``log p(c_i = k)`` [K], the prior weight in the
  VaDE posterior ``gamma_ik ∝ p(c_i = k) N(z_i; mu_k, sigma_k^2)``;
* ``cluster_weights()``: that marginal as probabilities [K] (what Figure 3 of the paper shows);
* ``match_marginal(p)``: set the parameters so that the per-sample marginal is ``p`` [K];
  ``start_at(p)``: the initialisation from estimated proportions (the data set's urn also takes
  its ball counts from them).

Priors (``PRIORS``):

* ``categorical``: ``log p(c) = sum_i log pi_{c_i}``, ``pi = softmax(logits)`` learnable.
* ``uniform``: ``log p(c) = -B log K``, nothing to learn.
* ``hypergeometric``: the paper's urn, ``K`` colours of ``B`` balls each, ``B`` drawn, colour
  weights ``w = exp(logits)`` learnable. The counts ``n_k = sum_i c_ik`` follow the MFNCH and
  every ordering of the assignments with the same counts is equally likely (exchangeable), so

      log p(c) = log MFNCH(n; m, draws = B, w) - log(B! / prod_k n_k!)

  with the multinomial coefficient in its lgamma form, so relaxed (non-integer) counts keep
  gradients to both the encoder and ``w``. By exchangeability the per-sample marginal is
  ``E[n_k] / B`` (the exact MFNCH mean), not ``softmax(w)``. With ``B`` balls per colour the
  MFNCH is close to ``Mult(B, E[n] / B)`` (variances times about ``(K-1)B / (KB-1)``, 0.9 for
  K = 10), so this prior is close to the categorical one.
* ``hypergeometric-dataset``: the same law with the urn of the data set instead: colour ``k``
  holds ``max(round(N p_k), B)`` balls for a training set of ``N`` samples and proportions
  ``p`` (uniform, or the GMM's weights with ``match_marginal``), and learnable Fisher weights
  starting central. Its ball counts carry the imbalance; the floor ``B`` keeps every assignment
  of a batch possible (a colour with fewer balls than ``B`` would give ``log p = -inf`` to a
  batch with more samples in that cluster).

The exact ``E_q[log p(c)]`` of the hypergeometric priors: with ``c_i ~ Cat(gamma_i)``
independent, ``log p(c) = sum_k [lgamma(m_k + 1) - lgamma(m_k - n_k + 1) + n_k log w_k]
- log P_0(w) - lgamma(B + 1)`` is a sum of functions of single counts, so its expectation
needs only each count's marginal law, the Poisson-binomial of ``gamma_{., k}`` (``count_pmf``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from diffhypergeom import MultivariateFisherNCHypergeometric

__all__ = [
    "CategoricalPrior", "ClusterPrior", "HypergeometricPrior", "PI_INITS", "PRIORS",
    "PRIOR_ESTIMATORS", "UniformPrior", "check_prior_options", "count_pmf", "dataset_population",
    "make_prior",
]

PRIORS = ("categorical", "uniform", "hypergeometric", "hypergeometric-dataset")
PRIOR_ESTIMATORS = ("exact", "gumbel")
PI_INITS = ("uniform", "gmm")


def check_prior_options(prior_estimator: str, pi_init: str, hard: bool) -> None:
    """``ValueError`` unless ``prior_estimator`` is in ``PRIOR_ESTIMATORS``, ``pi_init`` in
    ``PI_INITS``, and ``hard`` comes with the Gumbel estimator."""
    if prior_estimator not in PRIOR_ESTIMATORS:
        raise ValueError(f"prior_estimator must be one of {PRIOR_ESTIMATORS}, "
                         f"got {prior_estimator!r}")
    if pi_init not in PI_INITS:
        raise ValueError(f"pi_init must be one of {PI_INITS}, got {pi_init!r}")
    if hard and prior_estimator != "gumbel":
        raise ValueError("hard (straight-through assignments) needs prior_estimator "
                         "'gumbel' (--prior-estimator gumbel)")


def _check_assignments(c: torch.Tensor, num_clusters: int) -> None:
    if c.dim() != 2 or c.shape[-1] != num_clusters:
        raise ValueError(f"assignments must have shape [B, {num_clusters}] (one-hot rows), "
                         f"got {tuple(c.shape)}")


def _check_proportions(p: torch.Tensor, num_clusters: int) -> torch.Tensor:
    p = torch.as_tensor(p, dtype=torch.float64).detach().cpu()
    if p.shape != (num_clusters,) or not torch.all(p > 0) or abs(p.sum().item() - 1) > 1e-4:
        raise ValueError(f"proportions must be [{num_clusters}] positive values summing to 1, "
                         f"got {p.tolist()}")
    return p / p.sum()


def count_pmf(gamma: torch.Tensor) -> torch.Tensor:
    """Law of each count ``n_k = sum_i c_ik`` for independent ``c_i ~ Cat(gamma_i)``:
    ``P(n_k = j)`` [K, B + 1] for ``gamma`` [B, K] (Poisson-binomial, by recursion over rows;
    differentiable)."""
    batch, k = gamma.shape
    pmf = torch.cat([gamma.new_ones(k, 1), gamma.new_zeros(k, batch)], -1)
    for row in gamma:
        g = row.unsqueeze(-1)
        pmf = pmf * (1 - g) + nn.functional.pad(pmf[:, :-1], (1, 0)) * g
    return pmf


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

    def expected_log_prob(self, gamma: torch.Tensor) -> torch.Tensor:
        """Exact ``E_q[log p(c)] = sum_i sum_k gamma_ik log p(c_i = k)`` for a factorised
        prior; ``gamma`` [B, K] rows summing to one."""
        _check_assignments(gamma, self.num_clusters)
        return (gamma * self.log_weights()).sum()

    def sampled_log_prob(self, gamma: torch.Tensor, temperature: float = 1.0,
                         hard: bool = False) -> torch.Tensor:
        """One-sample estimate of ``E_q[log p(c)]``: ``c_i ~ GumbelSoftmax(gamma_i, tau)``
        (straight-through one-hot if ``hard``), then ``log_prob(c)``."""
        _check_assignments(gamma, self.num_clusters)
        c = nn.functional.gumbel_softmax(gamma.clamp_min(1e-12).log(), tau=temperature,
                                         hard=hard, dim=-1)
        return self.log_prob(c)

    def match_marginal(self, proportions: torch.Tensor) -> None:
        """Set the parameters so that ``cluster_weights()`` is ``proportions`` [K]."""
        raise NotImplementedError

    def start_at(self, proportions: torch.Tensor) -> None:
        """Initialise from estimated cluster proportions [K] (e.g. a GMM's weights)."""
        self.match_marginal(proportions)


class _LearnableWeights(ClusterPrior):
    """A prior with learnable cluster logits, ``[K]``."""

    def __init__(self, num_clusters: int, logits: torch.Tensor | None = None):
        super().__init__(num_clusters)
        init = torch.zeros(num_clusters) if logits is None else logits.detach().clone().float()
        self.logits = nn.Parameter(init)


class CategoricalPrior(_LearnableWeights):
    """i.i.d. categorical assignments with learnable ``pi = softmax(logits)``."""

    name = "categorical"

    def log_weights(self) -> torch.Tensor:
        return torch.log_softmax(self.logits, -1)

    def log_prob(self, c: torch.Tensor) -> torch.Tensor:
        _check_assignments(c, self.num_clusters)
        return (c * self.log_weights()).sum()

    def match_marginal(self, proportions: torch.Tensor) -> None:
        p = _check_proportions(proportions, self.num_clusters)
        with torch.no_grad():
            self.logits.copy_(p.log().to(self.logits))


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

    def match_marginal(self, proportions: torch.Tensor) -> None:
        """Nothing to set: the uniform prior has no parameters."""


class HypergeometricPrior(_LearnableWeights):
    """Exchangeable prior whose cluster sizes in a batch of ``batch_size`` follow the MFNCH
    with learnable weights ``exp(logits)`` [K]; the urn holds ``population`` [K] balls
    (default: ``B`` per colour for a batch of ``B``, the paper's urn, stored as zeros)."""

    name = "hypergeometric"

    def __init__(self, num_clusters: int, batch_size: int = 128,
                 logits: torch.Tensor | None = None, population: torch.Tensor | None = None,
                 dataset_size: int | None = None):
        super().__init__(num_clusters, logits)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.dataset_size = dataset_size
        init = torch.zeros(num_clusters, dtype=torch.long) if population is None else population
        self.register_buffer("population", torch.as_tensor(init, dtype=torch.long).clone())
        if population is not None:
            self._check_population(self.population)

    def _check_population(self, population: torch.Tensor) -> None:
        if population.shape != (self.num_clusters,) or population.min() < self.batch_size:
            raise ValueError(f"population must be [{self.num_clusters}] ball counts >= "
                             f"batch_size={self.batch_size} (so that every assignment of a "
                             f"batch is possible), got {population.tolist()}")

    def urn(self, batch_size: int) -> torch.Tensor:
        """Ball counts [K] of the urn a batch of ``batch_size`` is drawn from."""
        if self.population.any():
            return self.population
        return torch.full((self.num_clusters,), batch_size, dtype=torch.long,
                          device=self.logits.device)

    def size_distribution(self, batch_size: int) -> MultivariateFisherNCHypergeometric:
        """MFNCH of the cluster sizes of a batch of ``batch_size``."""
        return MultivariateFisherNCHypergeometric(population=self.urn(batch_size),
                                                  draws=batch_size, logits=self.logits,
                                                  validate_args=False)

    def log_weights(self) -> torch.Tensor:
        """``log(E[n_k] / B)``, the exchangeable per-sample marginal at ``batch_size``."""
        return (self.size_distribution(self.batch_size).mean / self.batch_size).log()

    def log_prob(self, c: torch.Tensor) -> torch.Tensor:
        """``log MFNCH(n) - log(B! / prod_k n_k!)`` with ``n = c.sum(0)`` [K]; relaxed rows
        give relaxed counts (still summing to B)."""
        _check_assignments(c, self.num_clusters)
        batch_size = c.shape[0]
        counts = c.sum(0)
        log_multinomial = math.lgamma(batch_size + 1) - torch.lgamma(counts + 1).sum()
        return self.size_distribution(batch_size).log_prob(counts) - log_multinomial

    def expected_log_prob(self, gamma: torch.Tensor) -> torch.Tensor:
        """Exact ``E_q[log p(c)]`` from the counts' Poisson-binomial marginals."""
        _check_assignments(gamma, self.num_clusters)
        batch_size = gamma.shape[0]
        balls = self.urn(batch_size).to(gamma.dtype)
        if balls.min() < batch_size:
            raise ValueError(f"a batch of {batch_size} does not fit the urn "
                             f"{balls.long().tolist()}")
        j = torch.arange(batch_size + 1, dtype=gamma.dtype, device=gamma.device)
        e_lgamma = (count_pmf(gamma) * torch.lgamma(balls.unsqueeze(-1) - j + 1)).sum()
        log_norm = self.size_distribution(batch_size).log_normalizer()
        return (torch.lgamma(balls + 1).sum() - e_lgamma + (gamma.sum(0) * self.logits).sum()
                - log_norm - math.lgamma(batch_size + 1))

    def set_population(self, population: torch.Tensor) -> None:
        """Fix the urn's ball counts [K] (each at least ``batch_size``)."""
        population = torch.as_tensor(population, dtype=torch.long).to(self.population.device)
        self._check_population(population)
        self.population.copy_(population)

    def match_marginal(self, proportions: torch.Tensor, tol: float = 1e-6,
                       max_steps: int = 50) -> None:
        """Newton's method on the logits for ``E[n] = B p``: ``d E[n] / d logits`` is the
        MFNCH covariance (singular along the all-ones direction: least squares)."""
        p = _check_proportions(proportions, self.num_clusters)
        target = p * self.batch_size
        balls = self.urn(self.batch_size).cpu().double()
        if torch.any(target >= balls):
            raise ValueError(f"proportions {p.tolist()} need more than the urn's "
                             f"{balls.long().tolist()} balls of a colour")
        logits = (p / balls).log()
        for _ in range(max_steps):
            law = MultivariateFisherNCHypergeometric(population=balls.long(),
                                                     draws=self.batch_size, logits=logits,
                                                     validate_args=False)
            residual = target - law.mean
            if residual.abs().max() < tol * self.batch_size:
                break
            step = torch.linalg.pinv(law.covariance_matrix) @ residual
            logits = logits + step.clamp(-2.0, 2.0)
        else:
            raise RuntimeError(f"match_marginal did not converge for {p.tolist()}")
        with torch.no_grad():
            self.logits.copy_((logits - logits.mean()).to(self.logits))

    def start_at(self, proportions: torch.Tensor) -> None:
        """The data set's urn (``dataset_size`` given) first takes ``max(round(N p_k), B)``
        balls of colour ``k``; then the weights match the marginal."""
        if self.dataset_size is not None:
            self.set_population(dataset_population(_check_proportions(
                proportions, self.num_clusters), self.dataset_size, self.batch_size))
        self.match_marginal(proportions)


def make_prior(name: str, num_clusters: int, batch_size: int = 128,
               dataset_size: int | None = None) -> ClusterPrior:
    """A prior by name (``PRIORS``) at uniform weights; ``hypergeometric-dataset`` needs the
    training-set size ``dataset_size`` (its urn holds ``max(dataset_size // K, B)`` balls per
    colour until ``set_population``)."""
    if name == "categorical":
        return CategoricalPrior(num_clusters)
    if name == "uniform":
        return UniformPrior(num_clusters)
    if name == "hypergeometric":
        return HypergeometricPrior(num_clusters, batch_size)
    if name == "hypergeometric-dataset":
        if dataset_size is None or dataset_size < 1:
            raise ValueError(f"the hypergeometric-dataset prior needs dataset_size >= 1, "
                             f"got {dataset_size}")
        balls = max(dataset_size // max(num_clusters, 1), batch_size)
        return HypergeometricPrior(num_clusters, batch_size,
                                   population=torch.full((num_clusters,), balls),
                                   dataset_size=dataset_size)
    raise ValueError(f"unknown prior {name!r}; choose one of {PRIORS}")


def dataset_population(proportions: torch.Tensor, dataset_size: int,
                       batch_size: int) -> torch.Tensor:
    """Ball counts ``max(round(N p_k), B)`` [K] of the data set's urn."""
    p = torch.as_tensor(proportions, dtype=torch.float64)
    return (p * dataset_size).round().long().clamp_min(batch_size)
