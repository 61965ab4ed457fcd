"""The ELBO-gradient study of a latent Fisher site (``diffhypergeom_studies.validation.elbo``)."""

import numpy as np
import pytest
import torch

pyro = pytest.importorskip("pyro")

from diffhypergeom_studies.validation import elbo  # noqa: E402


@pytest.mark.parametrize("estimator,exact", [("score", True), ("mean", False)])
def test_exact_gradient_is_pyros_enumerated_elbo(estimator, exact):
    """The enumeration against Pyro's own exact ELBO: ``TraceEnum_ELBO`` with the guide's site
    enumerated in parallel (its value and its gradient), which holds with the Pyro class's
    default (``has_rsample = False``). A reparameterised guide site is summed without its
    probabilities by ``TraceEnum_ELBO`` (430.9 instead of 17.9): the reason for that default."""
    from pyro.infer import TraceEnum_ELBO, config_enumerate

    config = elbo.ElboConfig()
    value, grad = elbo.exact_gradient(config)
    phi = torch.tensor(config.guide, dtype=torch.float64, requires_grad=True)
    model, guide = elbo._model_and_guide(config, phi, estimator)
    loss = TraceEnum_ELBO(max_plate_nesting=1).differentiable_loss(
        model, config_enumerate(guide, "parallel"))
    assert (abs(value + float(loss.detach())) < 1e-10) == exact
    if exact:
        (want,) = torch.autograd.grad(-loss, phi)
        np.testing.assert_allclose(grad, want.numpy(), rtol=1e-9, atol=1e-12)


def test_score_function_gradient_is_unbiased():
    """The score-function estimate agrees with the exact gradient within 5 standard errors of
    its mean, and the bias that the test can see is below what it would be with a wrong
    sign on one coordinate (power)."""
    config = elbo.ElboConfig(calls=30, particles=50, estimators=("score",))
    _, exact = elbo.exact_gradient(config)
    grads = elbo.estimated_gradients(config, "score")
    error = np.abs(grads.mean(0) - exact)
    se = grads.std(0, ddof=1) / np.sqrt(len(grads))
    assert (error <= 5 * se).all(), (error, se)
    wrong = exact * np.array([-1.0, 1.0, 1.0])
    assert (np.abs(grads.mean(0) - wrong) > 5 * se).any()
