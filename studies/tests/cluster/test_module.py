"""Forward/backward of the VaDE with each prior on a tiny batch; initialisation; schedule."""

from __future__ import annotations

import math

import pytest
import torch

from diffhypergeom_studies.cluster.module import VaDE
from diffhypergeom_studies.cluster.priors import PRIORS

GMM_WEIGHTS = torch.tensor([0.5, 0.3, 0.2])


def tiny_state(model: VaDE) -> dict:
    return {"encoder": model.encoder.state_dict(), "decoder": model.decoder.state_dict(),
            "gmm_means": torch.randn(3, 2), "gmm_logvars": torch.zeros(3, 2),
            "gmm_weights": GMM_WEIGHTS}


@pytest.mark.parametrize("estimator", ["exact", "gumbel"])
@pytest.mark.parametrize("prior", PRIORS)
def test_forward_backward(prior, estimator):
    torch.manual_seed(0)
    model = VaDE(input_dim=6, num_clusters=3, prior=prior, hidden=[8, 8], latent_dim=2,
                 batch_size=7, dataset_size=50, prior_estimator=estimator)
    model.load_pretrained(tiny_state(model))
    x = torch.rand(7, 6)
    terms = model.loss_terms(x)
    assert all(torch.isfinite(v) for v in terms.values())
    terms["loss"].backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
    assert model.mu_c.grad.abs().sum() > 0 and model.encoder.mu.weight.grad.abs().sum() > 0
    if prior != "uniform":
        assert model.prior.logits.grad.abs().sum() > 0
    gamma = model.predict_gamma(x)
    assert gamma.shape == (7, 3)
    torch.testing.assert_close(gamma.sum(-1), torch.ones(7))
    optimizer = model.configure_optimizers()
    lrs = [group["lr"] for group in optimizer.param_groups]
    assert lrs == ([1e-3] if prior == "uniform" else [1e-3, 1e-2])


@pytest.mark.parametrize("prior", ["categorical", "hypergeometric", "hypergeometric-dataset"])
def test_pi_init_from_the_gmm(prior):
    """pi_init="gmm" starts the per-sample marginal (the weight in gamma) at the GMM's
    weights; "uniform" at 1/K. The data set's urn takes its ball counts from them."""
    for pi_init, expected in (("gmm", GMM_WEIGHTS), ("uniform", torch.full((3,), 1 / 3))):
        model = VaDE(input_dim=6, num_clusters=3, prior=prior, hidden=[8], latent_dim=2,
                     batch_size=16, dataset_size=200, pi_init=pi_init)
        model.load_pretrained(tiny_state(model))
        torch.testing.assert_close(model.prior.cluster_weights().detach(), expected,
                                   atol=1e-5, rtol=1e-4)
        if prior == "hypergeometric-dataset":
            balls = [100, 60, 40] if pi_init == "gmm" else [66, 66, 66]
            assert model.prior.population.tolist() == balls


def test_the_prior_term_follows_the_estimator():
    torch.manual_seed(0)
    model = VaDE(input_dim=6, num_clusters=3, prior="hypergeometric", hidden=[8],
                 latent_dim=2, batch_size=5)
    model.load_pretrained(tiny_state(model))
    x = torch.rand(5, 6)
    torch.manual_seed(1)
    terms = model.loss_terms(x)
    torch.manual_seed(1)
    mu, logvar = model.encoder(x)
    gamma = model.posterior_c(mu + torch.randn_like(mu) * (0.5 * logvar).exp())
    torch.testing.assert_close(terms["prior"], model.prior.expected_log_prob(gamma) / 5)
    model.hparams.prior_estimator = "gumbel"
    sampled = {round(model.loss_terms(x)["prior"].item(), 6) for _ in range(5)}
    assert len(sampled) > 1  # a one-sample estimate, not the exact term
    with pytest.raises(ValueError, match="prior_estimator"):
        VaDE(6, 3, "uniform", prior_estimator="reinforce")
    with pytest.raises(ValueError, match="pi_init"):
        VaDE(6, 3, "uniform", pi_init="kmeans")
    with pytest.raises(ValueError, match="gumbel"):
        VaDE(6, 3, "uniform", hard=True)


def test_prior_term_is_the_only_difference():
    """Same weights, same noise: the losses differ exactly by the prior terms."""
    losses = {}
    for prior in ("uniform", "categorical"):
        torch.manual_seed(0)
        model = VaDE(input_dim=6, num_clusters=3, prior=prior, hidden=[8], latent_dim=2)
        torch.manual_seed(1)
        x = torch.rand(5, 6)
        losses[prior] = model.loss_terms(x)
    # a categorical prior at uniform logits equals the uniform prior
    torch.testing.assert_close(losses["uniform"]["loss"], losses["categorical"]["loss"])
    assert losses["uniform"]["prior"].item() == pytest.approx(-math.log(3), rel=1e-6)


def test_load_pretrained_and_temperature():
    model = VaDE(input_dim=6, num_clusters=3, prior="uniform", hidden=[8], latent_dim=2,
                 tau_init=2.0, tau_final=0.5, anneal_steps=10)
    state = tiny_state(model)
    model.load_pretrained(state, init_logvar=-3.0)
    torch.testing.assert_close(model.mu_c.data, state["gmm_means"])
    assert torch.all(model.encoder.logvar.bias == -3.0)
    assert model.temperature(0) == pytest.approx(2.0)
    assert model.temperature(5) == pytest.approx(1.0)
    assert model.temperature(10) == pytest.approx(0.5)
    assert model.temperature(50) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="temperatures"):
        VaDE(6, 3, "uniform", tau_init=0.0)
    with pytest.raises(ValueError, match="learning rates"):
        VaDE(6, 3, "uniform", lr=-1.0)
    with pytest.raises(ValueError, match="unknown prior"):
        VaDE(6, 3, "gaussian")
