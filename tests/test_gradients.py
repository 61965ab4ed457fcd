"""Gradients: gradcheck of the exact quantities, and the straight-through gradient of rsample."""

import pytest
import torch
from torch.autograd import gradcheck

from diffhypergeom import MergedFisherNCHypergeometric as Merged
from diffhypergeom import MultivariateFisherNCHypergeometric as MFNCH
from diffhypergeom import RelaxedMultivariateFisherNCHypergeometric as Relaxed

POPULATION = torch.tensor([4, 6, 3, 5])
DRAWS = 7


def _logits():
    return torch.tensor([0.3, -1.2, 2.0, 0.1], dtype=torch.float64, requires_grad=True)


def test_gradcheck_log_prob():
    x = torch.tensor([[2, 1, 3, 1], [0, 4, 2, 1], [4, 0, 0, 3]])
    assert gradcheck(lambda t: MFNCH(POPULATION, DRAWS, logits=t).log_prob(x), (_logits(),))


def test_gradcheck_log_prob_in_the_value():
    x = torch.tensor([1.5, 2.25, 1.0, 2.25], dtype=torch.float64, requires_grad=True)
    d = MFNCH(POPULATION, DRAWS, logits=_logits().detach(), validate_args=False)
    assert gradcheck(lambda v: d.log_prob(v), (x,))


@pytest.mark.parametrize("quantity", ["log_normalizer", "mean", "variance", "entropy",
                                      "covariance_matrix"])
def test_gradcheck_exact_quantities(quantity):
    def fn(t):
        value = getattr(MFNCH(POPULATION, DRAWS, logits=t), quantity)
        return value() if callable(value) else value

    assert gradcheck(fn, (_logits(),))


def test_gradcheck_batched_log_normalizer():
    logits = torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0),
                         requires_grad=True)
    assert gradcheck(lambda t: MFNCH(POPULATION, torch.tensor([0, 7, 18]),
                                     logits=t).log_normalizer(), (logits,))


def test_mean_is_gradient_of_log_normalizer():
    logits = _logits()
    d = MFNCH(POPULATION, DRAWS, logits=logits)
    (grad,) = torch.autograd.grad(d.log_normalizer(), logits)
    torch.testing.assert_close(grad, d.mean.detach(), atol=1e-12, rtol=0)


@pytest.mark.parametrize("law,hard,permute", [
    ("exact", True, False), ("exact", True, True), ("merge", True, False),
    ("relaxed", False, False), ("relaxed", False, True)])
def test_rsample_gradient_is_finite_and_nonzero_for_every_class(law, hard, permute):
    torch.manual_seed(0)
    logits = torch.tensor([0.0, 2.3, 0.0], requires_grad=True)
    args = (torch.tensor([200, 200, 200]), 180)
    if law == "exact":
        counts = MFNCH(*args, logits=logits).rsample((512,), gradient="gumbel", temperature=0.5,
                                                    permute=permute)
    elif law == "merge":
        counts = Merged(*args, logits=logits).rsample((512,), temperature=0.5)
    else:
        counts = Relaxed(*args, logits=logits, temperature=0.5, permute=permute).rsample((512,))
    assert counts.requires_grad
    torch.testing.assert_close(counts.sum(-1), torch.full((512,), 180.0))
    for i in range(3):
        (grad,) = torch.autograd.grad(counts[..., i].mean(), logits, retain_graph=True)
        assert torch.isfinite(grad).all()
        assert grad[i] != 0, f"class {i} gets no gradient from its own count"
    if hard:
        assert torch.equal(counts, counts.round())


def test_rsample_gradient_points_the_right_way():
    """Raising a class's logit raises its expected count: the straight-through estimate of
    d E[x_i] / d logit_i averaged over many samples is positive, like the exact one."""
    torch.manual_seed(1)
    logits = torch.zeros(3, requires_grad=True)
    d = MFNCH(torch.tensor([20, 30, 25]), 30, logits=logits)
    counts = d.rsample((4000,), gradient="gumbel", temperature=1.0)
    exact = MFNCH(torch.tensor([20, 30, 25]), 30, logits=torch.zeros(3)).covariance_matrix
    for i in range(3):
        (grad,) = torch.autograd.grad(counts[..., i].mean(), logits, retain_graph=True)
        assert grad[i] > 0 and exact[i, i] > 0


def test_rsample_detailed_consistent():
    torch.manual_seed(3)
    logits = torch.tensor([0.5, -0.2, 1.0], dtype=torch.float64, requires_grad=True)
    d = MFNCH(torch.tensor([6, 4, 8]), 9, logits=logits)
    draw = d.rsample_detailed((200,))
    assert draw.one_hot.shape == (200, 3, 9)
    torch.testing.assert_close(draw.one_hot.sum(-1), torch.ones(200, 3, dtype=torch.float64))
    torch.testing.assert_close(draw.one_hot.argmax(-1).double(), draw.counts)
    torch.testing.assert_close(draw.log_prob, d.log_prob(draw.counts.detach()))
    (draw.log_prob.sum() + draw.one_hot[..., 2].sum()).backward()
    assert torch.isfinite(logits.grad).all() and (logits.grad != 0).all()


@pytest.mark.parametrize("gradient", ["mean", "gumbel"])
@pytest.mark.parametrize("population,draws", [([6, 4], 5), ([6, 4, 8], 9)])
def test_every_class_vector_carries_gradient_whatever_the_order(population, draws, gradient):
    """The last class visited is determined by the others; its one-hot vector still gets a
    straight-through gradient, so a caller reading any one class's vector gets gradients under
    every class order."""
    for trial in range(6):
        torch.manual_seed(trial)
        logits = torch.zeros(len(population), dtype=torch.float64, requires_grad=True)
        d = MFNCH(torch.tensor(population), draws, logits=logits)
        gumbel = {"temperature": 0.5} if gradient == "gumbel" else {}
        draw = d.rsample_detailed((64,), gradient=gradient, **gumbel)
        torch.testing.assert_close(draw.one_hot.argmax(-1).double(), draw.counts)
        torch.testing.assert_close(draw.one_hot.sum(-1), torch.ones(64, len(population),
                                                                      dtype=torch.float64))
        for i in range(len(population)):
            weights = torch.arange(draw.one_hot.shape[-1], dtype=torch.float64) ** 2
            (grad,) = torch.autograd.grad((draw.one_hot[..., i, :] * weights).sum(), logits,
                                          retain_graph=True)
            assert torch.isfinite(grad).all() and grad.abs().sum() > 0, (trial, i)


@pytest.mark.parametrize("gradient", ["mean", "gumbel"])
def test_last_class_vector_mirrors_the_first_for_two_classes(gradient):
    """c = 2: x_2 = n - x_1, so y_2[k] is y_1[n - k], in value and in gradient."""
    torch.manual_seed(0)
    logits = torch.tensor([0.3, -0.2], dtype=torch.float64, requires_grad=True)
    d = MFNCH(torch.tensor([6, 6]), 6, logits=logits)
    gumbel = {"temperature": 0.7, "permute": False} if gradient == "gumbel" else {}
    draw = d.rsample_detailed((32,), gradient=gradient, **gumbel)
    probe = torch.randn(7, dtype=torch.float64)
    (g_last,) = torch.autograd.grad((draw.one_hot[..., 1, :] * probe).sum(), logits,
                                    retain_graph=True)
    (g_first,) = torch.autograd.grad((draw.one_hot[..., 0, :] * probe.flip(0)).sum(), logits)
    torch.testing.assert_close(g_last, g_first)


def test_coupled_rows_keep_the_draws_and_cut_the_fixed_order_bias():
    """couple_rows=True: the same forward draws (same seed), and a straight-through gradient of
    E[x1 - x2 + 2 x3] with a fixed order much closer to the exact Cov(f(X), X) (measured 0.79
    vs 0.30 relative bias with 40,000 draws; the check asks for less than 0.5 x)."""
    import numpy as np
    from enumeration import moments

    population, draws, weights = [5, 7, 4], 8, [1.0, 3.0, 0.5]
    a = torch.tensor([1.0, -1.0, 2.0], dtype=torch.float64)
    ref = moments(population, draws, weights)
    exact = (ref["p"] * (ref["points"] @ a.numpy())) @ (ref["points"] - ref["mean"])
    bias, forward = {}, {}
    for couple in (False, True):
        torch.manual_seed(0)
        logits = torch.tensor(weights, dtype=torch.float64).log().requires_grad_()
        x = MFNCH(torch.tensor(population), draws, logits=logits).rsample(
            (20_000,), temperature=0.5, permute=False, couple_rows=couple, gradient="gumbel")
        (x @ a).mean().backward()
        bias[couple] = np.linalg.norm(logits.grad.numpy() - exact) / np.linalg.norm(exact)
        forward[couple] = x.detach()
    assert torch.equal(forward[False], forward[True])
    assert bias[True] < 0.5 * bias[False]


def test_mean_gradient_is_that_of_the_exact_mean_and_marginals():
    """``gradient="mean"`` (the default): exact draws forward; the counts' gradient is that of
    ``E[X]`` and each one-hot vector's that of its exact marginal, for any draws."""
    torch.manual_seed(0)
    logits = torch.tensor([0.5, -0.2, 1.0], dtype=torch.float64, requires_grad=True)
    d = MFNCH(torch.tensor([6, 4, 8]), 9, logits=logits)
    draw = d.rsample_detailed((50,))
    torch.manual_seed(0)
    torch.testing.assert_close(draw.counts.detach(), d.sample((50,)).double())
    torch.testing.assert_close(draw.one_hot.argmax(-1).double(), draw.counts.detach())
    torch.testing.assert_close(draw.log_prob, d.log_prob(draw.counts.detach()))
    probe = torch.randn(3, dtype=torch.float64)
    (got,) = torch.autograd.grad((draw.counts @ probe).sum(), logits, retain_graph=True)
    (want,) = torch.autograd.grad(50 * (d.mean @ probe), logits, retain_graph=True)
    torch.testing.assert_close(got, want)
    values = torch.randn(9, dtype=torch.float64)
    (got,) = torch.autograd.grad((draw.one_hot[:, 1] @ values).sum(), logits,
                                 retain_graph=True)
    (want,) = torch.autograd.grad(50 * (d.marginal(1).probs @ values[:5]), logits)
    torch.testing.assert_close(got, want)


def test_mean_gradient_with_the_fft_engine_and_a_batch():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    population = torch.tensor([[300, 500, 200], [40, 50, 60]])
    draws = torch.tensor([400, 70])
    for engine in ("logspace", "fft"):
        d = MFNCH(population, draws, logits=logits, engine=engine)
        x = d.rsample((7,))
        assert torch.equal(x.sum(-1).detach(), draws.double().expand(7, 2))
        (got,) = torch.autograd.grad(x.sum(0)[:, 0].sum(), logits, retain_graph=True)
        (want,) = torch.autograd.grad(7 * d.mean[:, 0].sum(), logits)
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kwargs,match", [
    (dict(gradient="rao"), "gradient must be one of"),
    (dict(temperature=0.5), r"temperature applies only to gradient in \('gumbel', 'gumbel-rao'\)"),
    (dict(gradient="mean", couple_rows=True), "couple_rows applies only to gradient in"),
    (dict(permute=True), "permute applies only to gradient in"),
    (dict(gradient="gumbel", rao_samples=3),
     r"rao_samples applies only to gradient in \('gumbel-rao',\)"),
])
def test_gradient_argument_errors(kwargs, match):
    """No keyword is accepted and then ignored: the mean gradient has no temperature."""
    d = MFNCH(POPULATION, DRAWS, logits=_logits())
    with pytest.raises(ValueError, match=match):
        d.rsample((2,), **kwargs)
    with pytest.raises(ValueError, match=match):
        d.rsample_detailed((2,), **kwargs)


def test_rsample_detailed_keywords_are_keyword_only():
    d = MFNCH(POPULATION, DRAWS, logits=_logits())
    with pytest.raises(TypeError):
        d.rsample_detailed((2,), 0.5, True, True, False)


def test_merge_uses_the_gumbel_gradient():
    d = Merged(POPULATION, DRAWS, logits=_logits())
    with pytest.raises(ValueError, match="merged law does not have in closed form"):
        d.rsample((2,), gradient="mean")
    with pytest.raises(TypeError):
        d.rsample((2,), permute=True)  # the class order is part of the merged law
    torch.manual_seed(0)
    x = d.rsample((4,))  # default: Gumbel straight-through
    x[..., 0].sum().backward()


def test_gumbel_rao_keeps_the_mean_gradient_and_lowers_the_spread():
    """Gumbel-Rao averages the soft sample over the noise given the hard draw: the same
    expected gradient as Gumbel straight-through (fixed order, so both are biased alike;
    agreement within 5 standard errors of 400 calls of 64 draws), and a smaller spread
    for f(x) = a . x + ||x - 3||^2, whose gradient depends on the draw: the noise must be the
    hard draw's own."""
    import numpy as np

    a = torch.tensor([1.0, -1.0, 2.0], dtype=torch.float64)
    grads = {}
    for gradient in ("gumbel", "gumbel-rao"):
        torch.manual_seed(0)
        calls = []
        for _ in range(400):
            logits = torch.tensor([1.0, 3.0, 0.5], dtype=torch.float64).log().requires_grad_()
            x = MFNCH(torch.tensor([5, 7, 4]), 8, logits=logits).rsample(
                (64,), temperature=0.5, permute=False, gradient=gradient)
            (grad,) = torch.autograd.grad((x @ a + (x - 3).square().sum(-1)).mean(), logits)
            calls.append(grad.numpy())
        grads[gradient] = np.stack(calls)
    plain, rao = grads["gumbel"], grads["gumbel-rao"]
    se = np.sqrt((plain.var(0) + rao.var(0)) / 400)
    assert (np.abs(plain.mean(0) - rao.mean(0)) <= 5 * se).all()
    assert np.trace(np.cov(rao.T)) < 0.7 * np.trace(np.cov(plain.T))


def test_gumbel_rao_arguments():
    d = MFNCH(POPULATION, DRAWS, logits=_logits())
    with pytest.raises(ValueError, match="rao_samples must be a positive int"):
        d.rsample((2,), gradient="gumbel-rao", rao_samples=0)
    draw = d.rsample_detailed((3,), gradient="gumbel-rao", rao_samples=2)
    torch.testing.assert_close(draw.one_hot.argmax(-1).double(), draw.counts.detach())
    (draw.counts[..., 0].sum() + draw.one_hot[..., 2, 1].sum()).backward()


def test_permuted_tables_are_kept_per_class_order():
    """rsample(permute=True) builds a permuted copy (and its tables) once per class order and
    distribution; at most ORDER_CACHE of them are kept."""
    from diffhypergeom.laws.engine_law import ORDER_CACHE

    torch.manual_seed(0)
    d = MFNCH(torch.tensor([3, 4, 5]), 6, logits=torch.zeros(3))
    for _ in range(40):
        d.rsample((2,), gradient="gumbel")
    assert len(d._order_cache) == 6  # 3! orders, each built once
    copies = {id(copy) for copy, _ in d._order_cache.values()}
    d.rsample((2,), gradient="gumbel")
    assert {id(copy) for copy, _ in d._order_cache.values()} == copies
    wide = MFNCH(torch.full((8,), 3), 6, logits=torch.zeros(8))
    for _ in range(3 * ORDER_CACHE):
        wide.rsample((1,), gradient="gumbel")
    assert len(wide._order_cache) == ORDER_CACHE
