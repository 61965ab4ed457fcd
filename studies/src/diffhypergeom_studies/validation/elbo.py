"""The ELBO gradient a latent Fisher site gets in Pyro, with each available gradient, against the
exact gradient (issue 18: which default ``Trace_ELBO`` should get).

Model: ``x ~ MFNCH(m, n, prior logits)`` latent, ``y_j ~ Normal(x_0 - x_2, sigma)`` observed.
Guide: ``x ~ MFNCH(m, n, phi)``. The support is small, so the ELBO

    L(phi) = sum_x q_phi(x) [log p(x) + sum_j log N(y_j; x_0 - x_2, sigma) - log q_phi(x)]

and its gradient are computed exactly by enumeration (autograd through ``log_prob`` of every
support point). Each estimator's gradient is ``Trace_ELBO(...).differentiable_loss`` with
``particles`` vectorised particles per call (a ``pyro.plate`` over the particles: the urn is
computed once per call), averaged over ``calls`` calls:

- ``"mean"``: ``has_rsample_(True)``: Pyro calls ``rsample()`` (exact draws, the gradient of the
  exact mean);
- ``"gumbel"``: ``has_rsample_(True)`` on a law built with ``gradient="gumbel",
  temperature=tau`` (what ``rsample()`` then gives);
- ``"score"``: the Pyro class's default (``has_rsample = False``): Pyro's score-function
  (REINFORCE) term, no baseline.

Reported per estimator: the relative bias ``||mean - exact|| / ||exact||`` with the standard
error of that mean (``sqrt(tr Cov / calls) / ||exact||``), and the spread of a one-particle
estimate (``sqrt(particles tr Cov) / ||exact||``). Run it with
``python -m diffhypergeom_studies.validation.elbo``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["ESTIMATORS", "ElboConfig", "estimated_gradients", "exact_gradient", "main", "run"]

ESTIMATORS = ("mean", "gumbel", "score")


@dataclass(frozen=True)
class ElboConfig:
    population: tuple[int, ...] = (4, 4, 4)
    draws: int = 5
    prior: tuple[float, ...] = (0.0, 0.0, 0.0)
    guide: tuple[float, ...] = (0.3, -0.2, 0.1)
    observations: tuple[float, ...] = (3.0, 2.5, 3.5)
    noise: float = 1.0
    temperature: float = 0.5
    calls: int = 2000
    particles: int = 100
    seed: int = 0
    estimators: tuple[str, ...] = field(default=ESTIMATORS)


def _model_and_guide(config: ElboConfig, phi: torch.Tensor, estimator: str):
    import pyro
    import pyro.distributions as dist

    from diffhypergeom.pyro import MultivariateFisherNCHypergeometric as Fisher

    population = torch.tensor(config.population)
    prior = torch.tensor(config.prior, dtype=torch.float64)
    y = torch.tensor(config.observations, dtype=torch.float64)

    def model():
        x = pyro.sample("x", Fisher(population, config.draws, logits=prior))
        with pyro.plate("obs", len(y), dim=-1):
            pyro.sample("y", dist.Normal(x[..., 0] - x[..., 2], config.noise), obs=y)

    def guide():
        # the gradient is the constructor's: Pyro calls rsample() with no keywords
        options = ({"gradient": "gumbel", "temperature": config.temperature}
                   if estimator == "gumbel" else {})
        law = Fisher(population, config.draws, logits=phi, **options)
        law.has_rsample_(estimator != "score")
        pyro.sample("x", law)

    return model, guide


def exact_gradient(config: ElboConfig) -> tuple[float, np.ndarray]:
    """The ELBO and its gradient in the guide's logits, by enumerating the support."""
    from diffhypergeom import MultivariateFisherNCHypergeometric as Fisher

    phi = torch.tensor(config.guide, dtype=torch.float64, requires_grad=True)
    population = torch.tensor(config.population)
    q = Fisher(population, config.draws, logits=phi)
    p = Fisher(population, config.draws, logits=torch.tensor(config.prior, dtype=torch.float64))
    x = q.enumerate_support()
    y = torch.tensor(config.observations, dtype=torch.float64)
    diff = (x[:, 0] - x[:, 2]).unsqueeze(-1)
    likelihood = (-0.5 * ((y - diff) / config.noise).square()
                  - math.log(config.noise * math.sqrt(2 * math.pi))).sum(-1)
    log_q = q.log_prob(x)
    elbo = (log_q.exp() * (p.log_prob(x) + likelihood - log_q)).sum()
    (grad,) = torch.autograd.grad(elbo, phi)
    return float(elbo.detach()), grad.numpy()


def estimated_gradients(config: ElboConfig, estimator: str) -> np.ndarray:
    """``[calls, c]``: ``Trace_ELBO`` gradients of the ELBO (minus the loss's), each the mean
    of ``particles`` particles."""
    import pyro
    from pyro.infer import Trace_ELBO

    torch.manual_seed(config.seed)
    pyro.set_rng_seed(config.seed)
    loss_fn = Trace_ELBO(num_particles=config.particles, vectorize_particles=True,
                         max_plate_nesting=1).differentiable_loss
    grads = []
    for _ in range(config.calls):
        phi = torch.tensor(config.guide, dtype=torch.float64, requires_grad=True)
        model, guide = _model_and_guide(config, phi, estimator)
        (grad,) = torch.autograd.grad(-loss_fn(model, guide), phi)
        grads.append(grad.numpy())
    return np.stack(grads)


def run(config: ElboConfig | None = None) -> list[dict[str, float | str]]:
    """One row per estimator: relative bias, its standard error, and one call's spread."""
    config = config or ElboConfig()
    _, exact = exact_gradient(config)
    scale = float(np.linalg.norm(exact))
    rows = []
    for estimator in config.estimators:
        grads = estimated_gradients(config, estimator)
        spread = math.sqrt(float(np.trace(np.cov(grads.T))))
        rows.append({"estimator": estimator,
                     "relative_bias": float(np.linalg.norm(grads.mean(0) - exact)) / scale,
                     "standard_error": spread / math.sqrt(len(grads)) / scale,
                     "relative_spread": spread * math.sqrt(config.particles) / scale})
    return rows


def main() -> None:
    from diffhypergeom_studies.runs import markdown_table

    config = ElboConfig()
    rows = run(config)
    print(f"ELBO gradient of a latent Fisher site (urn {list(config.population)}, "
          f"n = {config.draws}; {config.calls} Trace_ELBO calls of {config.particles} particles "
          f"each):\n")
    print(markdown_table(["gradient", "relative bias", "its standard error",
                          "spread of one particle"],
                         [[r["estimator"], r["relative_bias"], r["standard_error"],
                           r["relative_spread"]] for r in rows]))


if __name__ == "__main__":
    main()
