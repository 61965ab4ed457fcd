"""``k_subset`` and the default ``rsample`` backward (a Hessian-vector product of the
log-normaliser) against enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from enumeration import moments

from diffhypergeom import MultivariateFisherNCHypergeometric as MFNCH
from diffhypergeom import estimators
from diffhypergeom.subsets import k_subset

W = [0.3, 1.0, 2.0, 0.5, 4.0, 1.5, 0.2, 3.0]


def test_k_subset_members_match_enumeration_of_every_subset():
    logits = torch.tensor(W, dtype=torch.float64).log()
    d = k_subset(logits, 3)
    masks = torch.tensor([[int(i in s) for i in range(8)]
                          for s in itertools.combinations(range(8), 3)])
    weights = np.prod(np.where(masks.numpy() == 1, np.array(W), 1.0), axis=1)
    exact = weights / weights.sum()
    torch.testing.assert_close(d.log_prob(masks).exp(), torch.tensor(exact), rtol=1e-12,
                               atol=0)
    torch.testing.assert_close(d.mean, torch.tensor(exact @ masks.numpy().astype(float)),
                               rtol=1e-12, atol=1e-14)
    x = d.rsample((6,))
    assert x.shape == (6, 8) and (x.sum(-1) == 3).all() and ((x == 0) | (x == 1)).all()


@pytest.mark.parametrize("engine", ["logspace", "fft"])
@pytest.mark.parametrize("population,draws,weights", [
    ([1] * 8, 3, W),
    ([5, 7, 4, 3], 8, [1.0, 4.0, 0.25, 2.0]),
])
def test_default_rsample_backward_is_g_times_the_exact_covariance(engine, population, draws,
                                                                  weights):
    """``d/dtheta (g . x)`` for the default straight-through draws is ``g^T Cov(X)``, taken
    here from enumeration; computed as a Hessian-vector product of the log-normaliser."""
    logits = torch.tensor(weights, dtype=torch.float64).log().requires_grad_()
    g = torch.linspace(-1.0, 2.0, len(population), dtype=torch.float64)
    x = MFNCH(torch.tensor(population), draws, logits=logits, engine=engine).rsample((4,))
    (x * g).sum().backward()
    cov = moments(population, draws, weights)["cov"]
    torch.testing.assert_close(logits.grad, 4 * torch.tensor(cov) @ g, rtol=1e-10, atol=1e-12)


def test_k_subset_batches_and_estimators():
    """The estimators work unchanged on k-subsets: REINFORCE-LOO's mean over 100 replicates is
    within 5 standard errors of the exact gradient (its estimates are skewed, so fewer
    replicates would misjudge their spread)."""
    gen = torch.Generator().manual_seed(4)
    logits = torch.randn(3, 8, dtype=torch.float64, generator=gen).requires_grad_()
    d = k_subset(logits, torch.tensor([1, 3, 5]))
    assert d.batch_shape == (3,) and d.event_shape == (8,)
    x = d.sample((4,))
    assert (x.sum(-1) == torch.tensor([1, 3, 5])).all()
    f = lambda s: (s * torch.arange(8.0, dtype=s.dtype)).square().sum(-1)  # noqa: E731
    exact = torch.autograd.grad(estimators.surrogate_loss(d, f, estimator="exact"), logits)[0]
    torch.manual_seed(0)
    replicates = 100
    estimates = torch.stack([torch.autograd.grad(estimators.surrogate_loss(
        k_subset(logits, torch.tensor([1, 3, 5])), f, num_samples=64,
        estimator="reinforce-loo"), logits)[0] for _ in range(replicates)])
    error = (estimates.mean(0) - exact).abs()
    assert (error <= 5 * estimates.std(0) / replicates**0.5 + 1e-9).all()


def test_k_subset_rejects_bad_input():
    with pytest.raises(ValueError, match="logits must have an item dimension"):
        k_subset(torch.tensor(1.0), 1)
    with pytest.raises(ValueError, match="k must be <= N = 4"):
        k_subset(torch.zeros(4), 5)
