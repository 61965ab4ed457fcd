"""
A Pyro model with an urn likelihood
===================================

A Bayesian model of 40 observed draws of 12 balls from an urn of 10 balls of each of three
classes. The log-weight :math:`\\theta` of the middle class is latent, with a
:math:`\\mathcal{N}(0, 2^2)` prior; the other two have weight 1. The counts are an observed
``pyro.sample`` site of :class:`diffhypergeom.pyro.MultivariateFisherNCHypergeometric`, whose
exact ``log_prob`` is the likelihood. Stochastic variational inference with ``Trace_ELBO`` fits
a normal guide; with a single latent the exact posterior is known on a grid, and we compare.
"""

# %%
# The data and the model.
import math
import os

import matplotlib.pyplot as plt
import pyro
import pyro.distributions as dist
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import ClippedAdam

from diffhypergeom.pyro import MultivariateFisherNCHypergeometric

QUICK = os.environ.get("DIFFHYPERGEOM_DOCS_QUICK") == "1"
torch.manual_seed(0)
pyro.set_rng_seed(0)

population = torch.tensor([10, 10, 10])
draws = 12
true_theta = math.log(4.0)
data = MultivariateFisherNCHypergeometric(
    population, draws, logits=torch.tensor([0.0, true_theta, 0.0])).sample((40,))
print("observed mean counts:", data.mean(0))


def model(counts):
    theta = pyro.sample("theta", dist.Normal(0.0, 2.0))
    logits = torch.stack([torch.zeros_like(theta), theta, torch.zeros_like(theta)], -1)
    with pyro.plate("draws", counts.shape[0]):
        pyro.sample("x", MultivariateFisherNCHypergeometric(population, draws, logits=logits),
                    obs=counts)


def guide(counts):
    loc = pyro.param("loc", torch.tensor(0.0))
    scale = pyro.param("scale", torch.tensor(1.0), constraint=dist.constraints.positive)
    pyro.sample("theta", dist.Normal(loc, scale))


# %%
# SVI: the ELBO's gradient reaches :math:`\theta` through the reparameterised normal guide and
# the exact, differentiable ``log_prob`` of the observed counts. Four particles per step are
# drawn at once (``vectorize_particles``), so the urn law is built once per step.
pyro.clear_param_store()
elbo_loss = Trace_ELBO(num_particles=4, vectorize_particles=True, max_plate_nesting=1)
optimizer = ClippedAdam({"lr": 0.05, "lrd": 0.99})  # the step size decays by 1 % a step
svi = SVI(model, guide, optimizer, loss=elbo_loss)
elbo = [-svi.step(data) for _ in range(40 if QUICK else 250)]
loc, scale = pyro.param("loc").item(), pyro.param("scale").item()
print(f"guide: theta ~ Normal({loc:.3f}, {scale:.3f}); true theta = {true_theta:.3f}")

# %%
# The exact posterior on a grid: the prior times the likelihood of the 40 draws, normalised.
grid = torch.linspace(0.0, 2.5, 501)
logits = torch.stack([torch.zeros_like(grid), grid, torch.zeros_like(grid)], -1)
likelihood = MultivariateFisherNCHypergeometric(population, draws, logits=logits)
log_post = dist.Normal(0.0, 2.0).log_prob(grid) + likelihood.log_prob(data.unsqueeze(1)).sum(0)
step = float(grid[1] - grid[0])
posterior = torch.softmax(log_post, 0) / step
post_mean = float((posterior * grid).sum() * step)
post_sd = float(((posterior * (grid - post_mean) ** 2).sum() * step).sqrt())
print(f"exact posterior: mean {post_mean:.3f}, sd {post_sd:.3f}")

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
left.plot(elbo, color="C0", linewidth=0.8)
left.set_xlabel("SVI step")
left.set_ylabel("ELBO (4 particles)")
left.set_title("Trace_ELBO")
right.plot(grid, posterior, color="grey", linewidth=3, label="exact posterior (grid)")
right.plot(grid, dist.Normal(loc, scale).log_prob(grid).exp(), color="C0",
           label="fitted guide")
right.axvline(true_theta, color="C3", linestyle="--", label="true theta")
right.set_xlabel("theta (log-weight of class 1)")
right.set_ylabel("density")
right.legend(fontsize=8)
fig.tight_layout()
plt.show()
