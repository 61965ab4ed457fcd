import pytest
import torch

from diffhypergeom_studies.weak.methods import (
    AdaSelector,
    HypergeometricSelector,
    LabelSelector,
    aggregate,
    gaussian_kl,
    symmetric_kl,
)
from diffhypergeom_studies.weak.module import WeakVAE


def test_gaussian_kl_against_torch():
    gen = torch.Generator().manual_seed(0)
    mu1, mu2, lv1, lv2 = torch.randn(4, 3, 5, generator=gen, dtype=torch.float64)
    ours = gaussian_kl(mu1, lv1, mu2, lv2)
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mu1, (0.5 * lv1).exp()),
                                            torch.distributions.Normal(mu2, (0.5 * lv2).exp()))
    assert torch.allclose(ours, ref)
    assert torch.allclose(symmetric_kl(mu1, lv1, mu2, lv2), 0.5 * (ref + gaussian_kl(
        mu2, lv2, mu1, lv1)))


def test_label_and_ada_selection_by_hand():
    gamma = torch.tensor([[0.1, 4.0, 0.2, 3.0, 0.0], [1.0, 1.0, 5.0, 0.0, 2.4]])
    label = LabelSelector(5, num_independent=2)(gamma, 1.0)
    assert torch.equal(label.independent, torch.tensor([[0, 1, 0, 1, 0], [0, 0, 1, 0, 1.0]]))
    assert torch.equal(label.num_shared, torch.tensor([3.0, 3.0]))
    # thresholds 0.5 * (max + min): 2.0 and 2.5
    ada = AdaSelector()(gamma, 1.0)
    assert torch.equal(ada.independent, torch.tensor([[0, 1, 0, 1, 0], [0, 0, 1, 0, 0.0]]))
    assert torch.equal(ada.num_shared, torch.tensor([3.0, 4.0]))
    with pytest.raises(ValueError, match="num_independent"):
        LabelSelector(3, num_independent=4)


def test_hg_mask_is_top_k_and_differentiable():
    torch.manual_seed(0)
    selector = HypergeometricSelector(6)
    gamma = torch.rand(32, 6, requires_grad=True)
    sel = selector(gamma, 0.5)
    k = 6 - sel.num_shared
    assert torch.equal(k, k.round()) and (k >= 0).all() and (k <= 6).all()
    # the forward mask is the indicator of the k largest gammas of each pair
    ranks = gamma.detach().argsort(-1, descending=True).argsort(-1)
    expected = (ranks < k.detach()[:, None]).float()
    assert torch.allclose(sel.independent.detach(), expected, atol=1e-6)
    assert torch.allclose(sel.independent.detach().sum(-1), k.detach())
    (sel.independent * torch.randn(32, 6)).sum().backward()
    assert selector.omega.weight.grad.abs().sum() > 0          # through the MFNCH draw
    assert gamma.grad.abs().sum() > 0                          # through NeuralSort and omega


def test_hg_tracks_its_weights():
    selector = HypergeometricSelector(6)
    with torch.no_grad():
        selector.omega.weight.zero_()
        selector.omega.bias.copy_(torch.tensor([5.0, -5.0]))   # independent >> shared
    assert selector(torch.rand(64, 6), 1.0).num_shared.mean() < 0.5
    with torch.no_grad():
        selector.omega.bias.copy_(torch.tensor([-5.0, 5.0]))
    assert selector(torch.rand(64, 6), 1.0).num_shared.mean() > 5.5


def test_aggregation():
    mu1, mu2 = torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, -2.0]])
    lv1, lv2 = torch.log(torch.tensor([[1.0, 4.0]])), torch.log(torch.tensor([[3.0, 4.0]]))
    mask = torch.tensor([[0.0, 1.0]])  # dim 0 shared, dim 1 independent
    (a_mu, a_lv), (b_mu, b_lv) = aggregate(mu1, lv1, mu2, lv2, mask, "mean")
    assert torch.allclose(a_mu, torch.tensor([[2.0, 2.0]]))
    assert torch.allclose(b_mu, torch.tensor([[2.0, -2.0]]))
    assert torch.allclose(a_lv.exp(), torch.tensor([[2.0, 4.0]]))
    (a_mu, a_lv), _ = aggregate(mu1, lv1, mu2, lv2, mask, "poe")
    # 1/var = 1 + 1/3 -> var 0.75; mu = 0.75 * (1/1 + 3/3) = 1.5
    assert torch.allclose(a_mu, torch.tensor([[1.5, 2.0]]))
    assert torch.allclose(a_lv.exp(), torch.tensor([[0.75, 4.0]]))
    with pytest.raises(ValueError, match="aggregation"):
        aggregate(mu1, lv1, mu2, lv2, mask, "median")


@pytest.mark.parametrize("method", ["label", "ada", "hg"])
@pytest.mark.parametrize("aggregation", ["mean", "poe"])
def test_forward_backward_tiny_batch(method, aggregation):
    torch.manual_seed(0)
    model = WeakVAE(method, latent_dim=4, in_channels=3, image_size=16, width=0.25, hidden=16,
                    aggregation=aggregation, anneal_steps=10)
    x1, x2 = torch.rand(3, 3, 16, 16), torch.rand(3, 3, 16, 16)
    out = model.pair_forward(x1, x2, temperature=0.5)
    assert out["loss"].shape == () and torch.isfinite(out["loss"])
    assert out["selection"].independent.shape == (3, 4)
    out["loss"].backward()
    grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    if method == "hg":
        assert model.selector.omega.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("gradient", ["gumbel", "mean"])
def test_hg_selector_gradient_and_k_penalty(gradient):
    """--selector-gradient picks rsample's backward pass; --k-penalty adds k_penalty * E[k]
    (the exact mean of the selector's MFNCH) to the loss, same draws otherwise."""
    from diffhypergeom import MultivariateFisherNCHypergeometric

    losses = {}
    for penalty in (0.0, 2.0):
        torch.manual_seed(0)
        model = WeakVAE("hg", latent_dim=4, in_channels=3, image_size=16, width=0.25,
                        hidden=16, anneal_steps=10, selector_gradient=gradient,
                        k_penalty=penalty)
        assert model.selector.gradient == gradient
        x1, x2 = torch.rand(3, 3, 16, 16), torch.rand(3, 3, 16, 16)
        out = model.pair_forward(x1, x2, temperature=0.5)
        losses[penalty] = out
    logits = losses[2.0]["selection"].logits
    expected_k = MultivariateFisherNCHypergeometric(torch.tensor([4, 4]), 4,
                                                    logits=logits).mean[..., 0].mean()
    torch.testing.assert_close(losses[2.0]["loss"] - losses[0.0]["loss"], 2.0 * expected_k)
    losses[2.0]["loss"].backward()
