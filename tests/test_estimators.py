"""``diffhypergeom.estimators``: each estimator's mean gradient against the exact gradient
``Cov(f(X), X)`` from brute-force enumeration, with tolerances from the replicates' spread;
the same test rejects the fixed-order Gumbel straight-through estimator (biased by ~80 %)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from enumeration import moments, support

from diffhypergeom import MultivariateFisherNCHypergeometric as MFNCH
from diffhypergeom.estimators import ESTIMATORS, surrogate_loss

POP, DRAWS, WEIGHTS = [5, 7, 4], 8, [1.0, 3.0, 0.5]
FUNCTIONS = {
    "linear": lambda x: x @ torch.tensor([1.0, -1.0, 2.0], dtype=x.dtype),
    "quadratic": lambda x: (x - 3.0).square().sum(-1),
    "step": lambda x: (x[..., 1] >= 4).to(x.dtype),
}


# a second urn: 4 classes, n > N / 2 (the complement), a weight of 0 (a class never drawn)
OTHER_URN = ([3, 6, 2, 5], 9, [0.5, 2.0, 0.0, 4.0])


def _exact_gradient(f, urn=(POP, DRAWS, WEIGHTS)) -> np.ndarray:
    ref = moments(*urn)
    values = f(torch.tensor(ref["points"], dtype=torch.float64)).numpy()
    return (ref["p"] * values) @ (ref["points"] - ref["mean"])


def _gradient(estimator: str, f, num_samples: int, urn=(POP, DRAWS, WEIGHTS),
              replicates: int | None = None, **kwargs) -> np.ndarray:
    """One estimate ``[c]``, or ``replicates`` independent ones ``[replicates, c]`` from one
    call on a batch of copies of the urn (the loss sums over the batch, and each copy's draws,
    baseline and control variate are its own, so each copy's gradient is one estimate)."""
    population, draws, weights = urn
    weights = torch.tensor(weights, dtype=torch.float64)
    if replicates is not None:
        weights = weights.expand(replicates, -1).clone()
    weights.requires_grad_()
    dist = MFNCH(torch.tensor(population), draws, weights=weights)
    surrogate_loss(dist, f, num_samples=num_samples, estimator=estimator, **kwargs).backward()
    # d/dtheta = w d/dw (zero for a zero weight: the law does not depend on its logit)
    return (weights.grad * weights).detach().numpy()


def _agrees(estimator: str, f, replicates: int = 1000, num_samples: int = 4, z: float = 5.0,
            urn=(POP, DRAWS, WEIGHTS), **kwargs) -> bool:
    """Mean of ``replicates`` gradients within ``z`` standard errors of the exact one, every
    component (z = 5: a false alarm has probability ~1e-6 per component)."""
    torch.manual_seed(0)
    grads = _gradient(estimator, f, num_samples, urn, replicates, **kwargs)
    error = np.abs(grads.mean(0) - _exact_gradient(f, urn))
    return bool((error <= z * grads.std(0, ddof=1) / math.sqrt(replicates) + 1e-9).all())


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_exact_estimator_is_the_gradient(name):
    f = FUNCTIONS[name]
    np.testing.assert_allclose(_gradient("exact", f, 1), _exact_gradient(f), rtol=1e-10,
                               atol=1e-12)


@pytest.mark.parametrize("estimator", ["reinforce-loo", "reinforce-cv", "reinforce-linear"])
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_score_estimators_are_unbiased(estimator, name):
    assert _agrees(estimator, FUNCTIONS[name])


@pytest.mark.parametrize("estimator", ["reinforce-loo", "reinforce-cv", "reinforce-linear",
                                       "exact"])
def test_estimators_on_another_urn(estimator):
    """4 classes, the complement path, a zero weight; 8 draws per estimate."""
    f = lambda x: (x[..., 1] >= 4).to(x.dtype) + 0.1 * x[..., 3] ** 2  # noqa: E731
    if estimator == "exact":
        np.testing.assert_allclose(_gradient("exact", f, 1, OTHER_URN),
                                   _exact_gradient(f, OTHER_URN), rtol=1e-10, atol=1e-12)
    else:
        assert _agrees(estimator, f, replicates=500, num_samples=8, urn=OTHER_URN)


@pytest.mark.parametrize("num_samples", [3, 300])
def test_reinforce_cv_is_unbiased_for_any_group_size(num_samples):
    """3 draws: a fit from 2; 300: two groups of 150 (CV_GROUP = 256)."""
    assert _agrees("reinforce-cv", FUNCTIONS["step"], replicates=200 if num_samples > 3
                   else 1000, num_samples=num_samples)


def test_the_check_rejects_a_biased_estimator():
    assert not _agrees("pathwise", FUNCTIONS["linear"], replicates=100, permute=False,
                       temperature=0.5, gradient="gumbel")


def test_default_pathwise_gradient_is_exact_for_linear_f():
    """The default ``rsample`` carries the gradient of the exact mean: for linear f the
    estimate is the exact gradient, whatever the draws."""
    f = FUNCTIONS["linear"]
    torch.manual_seed(0)
    for _ in range(3):
        np.testing.assert_allclose(_gradient("pathwise", f, 5), _exact_gradient(f),
                                   rtol=1e-10, atol=1e-12)


def test_reinforce_cv_spread_is_below_reinforce_loo():
    """Spread of 64-draw estimates of the step function's gradient over 100 replicates."""
    f = FUNCTIONS["step"]
    spread = {}
    for estimator in ("reinforce-loo", "reinforce-cv"):
        torch.manual_seed(1)
        grads = _gradient(estimator, f, 64, replicates=100)
        spread[estimator] = np.sqrt(np.trace(np.cov(grads.T)))
    assert spread["reinforce-cv"] < 0.5 * spread["reinforce-loo"], spread


def test_parameters_inside_f_get_their_gradient():
    """f(x) = (a . x - 3)^2 with a learnable a: d/da E[f] = E[2 (a . x - 3) x]."""
    a0 = torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64)
    ref = moments(POP, DRAWS, WEIGHTS)
    points = ref["points"].astype(float)
    want = (ref["p"] * 2 * (points @ a0.numpy() - 3)) @ points
    got = {}
    for estimator in ("exact", "reinforce-loo", "reinforce-cv", "pathwise"):
        torch.manual_seed(0)
        grads = []
        for _ in range(1 if estimator == "exact" else 200):
            a = a0.clone().requires_grad_()
            dist = MFNCH(torch.tensor(POP), DRAWS, weights=torch.tensor(WEIGHTS,
                                                                        dtype=torch.float64))
            surrogate_loss(dist, lambda x, a=a: (x @ a - 3).square(), num_samples=32,
                           estimator=estimator).backward()
            grads.append(a.grad.numpy())
        got[estimator] = np.stack(grads)
    np.testing.assert_allclose(got["exact"][0], want, rtol=1e-10)
    for estimator in ("reinforce-loo", "reinforce-cv", "pathwise"):  # f's own: no score
        grads = got[estimator]
        assert (np.abs(grads.mean(0) - want) <= 5 * grads.std(0, ddof=1) / math.sqrt(200)
                + 1e-9).all(), estimator


def test_values_and_batches():
    torch.manual_seed(0)
    logits = torch.tensor([[0.0, 1.0, -0.7], [0.2, 0.0, 0.4]], dtype=torch.float64)
    population = torch.tensor([[5, 7, 4], [3, 3, 6]])
    dist = MFNCH(population, torch.tensor([8, 5]), logits=logits)
    f = FUNCTIONS["quadratic"]
    exact = surrogate_loss(dist, f, estimator="exact")
    per_urn = sum(surrogate_loss(MFNCH(population[b], [8, 5][b], logits=logits[b]), f,
                                 estimator="exact") for b in range(2))
    torch.testing.assert_close(exact, per_urn)
    for estimator in ("reinforce-loo", "reinforce-cv", "pathwise"):
        value = surrogate_loss(dist, f, num_samples=4000, estimator=estimator)
        assert abs(float(value) - float(exact)) < 0.05 * float(exact)
    assert set(ESTIMATORS) >= {"pathwise", "reinforce-loo", "reinforce-cv", "exact"}


@pytest.mark.parametrize("kwargs,match", [
    (dict(estimator="rebar"), "estimator must be one of"),
    (dict(estimator="reinforce-loo", num_samples=1), "num_samples >= 2"),
    (dict(estimator="reinforce-cv", num_samples=1), "num_samples >= 2"),
    (dict(num_samples=0), "num_samples must be a positive int"),
    (dict(estimator="reinforce-loo", temperature=0.5), "only apply to estimator='pathwise'"),
    (dict(estimator="exact", max_support=10), "above max_support=10"),
    (dict(f=lambda x: x), "f must map counts"),
])
def test_bad_arguments(kwargs, match):
    dist = MFNCH(torch.tensor(POP), DRAWS, weights=torch.tensor(WEIGHTS))
    f = kwargs.pop("f", FUNCTIONS["linear"])
    with pytest.raises(ValueError, match=match):
        surrogate_loss(dist, f, **kwargs)


def test_reinforce_cv_with_many_wide_classes():
    """30 classes of 100 balls: with 32 draws the control variate has more features than
    draws and must fall back to (about) the leave-one-out baseline; with 128 it must beat it
    (with penalties that ignored the classes it had 4 times the baseline's spread at 32). Linear
    f, whose exact gradient is Cov(X) a (the mean's Jacobian)."""
    torch.manual_seed(0)
    population, logits0 = torch.full((30,), 100), torch.randn(30, dtype=torch.float64)
    a = torch.randn(30, dtype=torch.float64)
    theta = logits0.clone().requires_grad_()
    (exact,) = torch.autograd.grad(MFNCH(population, 1000, logits=theta).mean @ a, theta)
    replicates = 40

    def grads(estimator, num_samples):  # one call, a batch of `replicates` copies of the urn
        theta = logits0.expand(replicates, -1).clone().requires_grad_()
        surrogate_loss(MFNCH(population, 1000, logits=theta), lambda x: x @ a,
                       num_samples=num_samples, estimator=estimator).backward()
        return theta.grad.numpy()

    spread = {}
    for num_samples in (32, 128):
        for estimator in ("reinforce-loo", "reinforce-cv"):
            g = grads(estimator, num_samples)
            assert (np.abs(g.mean(0) - exact.numpy())
                    <= 5 * g.std(0, ddof=1) / math.sqrt(replicates) + 1e-9).all(), estimator
            spread[estimator, num_samples] = np.sqrt(np.trace(np.cov(g.T)))
    assert spread["reinforce-cv", 32] < 1.3 * spread["reinforce-loo", 32], spread
    assert spread["reinforce-cv", 128] < 0.5 * spread["reinforce-loo", 128], spread


@pytest.mark.parametrize("law, estimator, missing", [
    ("merged", "reinforce-cv", "log_marginals"),
    ("relaxed", "reinforce-loo", "log_prob"),
    ("relaxed", "exact", "enumerate_support, log_prob"),
    ("partition", "exact", "enumerate_support, population, draws"),
    ("partition", "reinforce-cv", "mean, variance, log_marginals"),
])
def test_an_estimator_names_what_the_law_lacks_before_any_work(law, estimator, missing):
    from diffhypergeom import (
        MergedFisherNCHypergeometric,
        RandomPartition,
        RelaxedMultivariateFisherNCHypergeometric,
    )
    dist = {"merged": lambda: MergedFisherNCHypergeometric([4, 5, 6], 7, logits=torch.zeros(3)),
            "relaxed": lambda: RelaxedMultivariateFisherNCHypergeometric(
                [4, 5, 6], 7, logits=torch.zeros(3), temperature=0.5),
            "partition": lambda: RandomPartition(torch.zeros(2), torch.zeros(3))}[law]()

    def f(x):
        raise AssertionError("f was called before the law was checked")

    with pytest.raises(ValueError, match=f"estimator='{estimator}' needs {missing} of the law"):
        surrogate_loss(dist, f, num_samples=4, estimator=estimator)


SUBSET_LOGITS = [0.5, -1.0, 1.5, 0.0, -0.5, 1.0, 0.3]
SUBSET_FUNCTIONS = {
    "linear": lambda z: z @ torch.linspace(-1.0, 2.0, 7, dtype=z.dtype),
    "max": lambda z: (z * torch.linspace(0.1, 1.0, 7, dtype=z.dtype)).amax(-1),
    "threshold": lambda z: (z[..., :3].sum(-1) >= 2).to(z.dtype),
}


def _subset_gradients(f, replicates: int, estimator: str, law=None, num_samples: int = 4
                      ) -> tuple[np.ndarray, np.ndarray]:
    """``replicates`` estimates of ``d/dtheta E[f]`` for 3-subsets of the 7 items (a batch of
    copies of the law in one call) and the exact gradient by enumeration."""
    from diffhypergeom.laws.ksubset import KSubset

    law = law or KSubset
    torch.manual_seed(0)
    base = torch.tensor(SUBSET_LOGITS, dtype=torch.float64)
    logits = base.expand(replicates, -1).clone().requires_grad_()
    loss = surrogate_loss(law(logits, 3), f, num_samples=num_samples, estimator=estimator)
    (grads,) = torch.autograd.grad(loss, logits)
    masks = torch.as_tensor(support([1] * 7, 3), dtype=torch.float64)
    point = base.clone().requires_grad_()
    probs = KSubset(point, 3).log_prob(masks).exp()
    (exact,) = torch.autograd.grad((probs * f(masks)).sum(), point)
    return grads.numpy(), exact.numpy()


def _subset_agrees(f, estimator: str, law=None, replicates: int = 2000, z: float = 5.0) -> bool:
    grads, exact = _subset_gradients(f, replicates, estimator, law)
    error = np.abs(grads.mean(0) - exact)
    return bool((error <= z * grads.std(0, ddof=1) / math.sqrt(replicates) + 1e-9).all())


@pytest.mark.parametrize("estimator", ["reinforce-loo", "reinforce-cv", "reinforce-linear"])
@pytest.mark.parametrize("name", list(SUBSET_FUNCTIONS))
def test_k_subset_score_estimators_are_unbiased(estimator, name):
    """Against the enumerated gradient of E[f] over the 35 subsets (KSubset's rejection draws,
    its log e_k and its inclusion probabilities), 2,000 estimates of 4 draws."""
    assert _subset_agrees(SUBSET_FUNCTIONS[name], estimator)


def test_the_k_subset_check_rejects_a_scaled_score_term():
    """The same check fails when the score term is scaled by 0.7 (the score the estimators
    take, ``sample_with_score``'s log-probability, shrunk; its value kept)."""
    from diffhypergeom.laws.ksubset import KSubset

    class Scaled(KSubset):
        def sample_with_score(self, sample_shape=(), normalized=True):
            x, score = super().sample_with_score(sample_shape, normalized)
            return x, 0.7 * score + 0.3 * score.detach()

    for estimator in ("reinforce-loo", "reinforce-linear"):
        assert not _subset_agrees(SUBSET_FUNCTIONS["threshold"], estimator, law=Scaled)



def test_the_leave_one_out_estimate_needs_no_log_normalizer():
    """reinforce-loo takes KSubset's score without log e_k (its weights sum to zero over each
    urn's draws): the same draws with the normalised score give the same gradient."""
    from diffhypergeom.laws.ksubset import KSubset

    class Normalised(KSubset):
        def sample_with_score(self, sample_shape=(), normalized=True):
            return super().sample_with_score(sample_shape, True)

    f = SUBSET_FUNCTIONS["max"]
    plain, _ = _subset_gradients(f, 50, "reinforce-loo")
    normalised, _ = _subset_gradients(f, 50, "reinforce-loo", law=Normalised)
    np.testing.assert_allclose(plain, normalised, rtol=1e-9, atol=1e-12)


def _topk_exact(f) -> np.ndarray:
    from diffhypergeom.subsets import gumbel_top_k

    masks = torch.as_tensor(support([1] * 7, 3), dtype=torch.float64)
    point = torch.tensor(SUBSET_LOGITS, dtype=torch.float64, requires_grad=True)
    probs = gumbel_top_k(point, 3).log_prob(masks).exp()
    (exact,) = torch.autograd.grad((probs * f(masks)).sum(), point)
    return exact.numpy()


def _topk_agrees(f, estimator: str, law=None, replicates: int = 2000, z: float = 5.0) -> bool:
    from diffhypergeom.laws.topk import GumbelTopK

    law = law or GumbelTopK
    torch.manual_seed(0)
    logits = torch.tensor(SUBSET_LOGITS, dtype=torch.float64).expand(replicates, -1).clone()
    logits.requires_grad_()
    loss = surrogate_loss(law(logits, 3), f, num_samples=4, estimator=estimator)
    grads = torch.autograd.grad(loss, logits)[0].numpy()
    error = np.abs(grads.mean(0) - _topk_exact(f))
    return bool((error <= z * grads.std(0, ddof=1) / math.sqrt(replicates) + 1e-9).all())


@pytest.mark.parametrize("estimator", ["reinforce-loo", "reinforce-linear"])
@pytest.mark.parametrize("name", ["linear", "threshold"])
def test_gumbel_top_k_estimators_with_the_order_score_are_unbiased(estimator, name):
    """Gumbel-top-k draws scored by the log-probability of their order (``sample_with_score``)
    against the gradient of the exact Wallenius ``E[f]`` over the 35 subsets."""
    assert _topk_agrees(SUBSET_FUNCTIONS[name], estimator)


def test_the_gumbel_top_k_check_rejects_a_scaled_order_score():
    from diffhypergeom.laws.topk import GumbelTopK

    class Scaled(GumbelTopK):
        def sample_with_score(self, sample_shape=(), normalized=True):
            x, log_order = super().sample_with_score(sample_shape, normalized)
            return x, 0.7 * log_order + 0.3 * log_order.detach()

    assert not _topk_agrees(SUBSET_FUNCTIONS["threshold"], "reinforce-loo", law=Scaled)


def test_the_delta_method_is_exact_for_quadratic_f():
    """The second-order expansion is E[f] itself for a quadratic f: its gradient is exact (on
    the Fisher urn and on k-subsets), with no draws."""
    f = FUNCTIONS["quadratic"]
    np.testing.assert_allclose(_gradient("delta", f, 1), _exact_gradient(f), rtol=1e-9,
                               atol=1e-11)
    mixed = lambda x: (x @ torch.tensor([1.0, -2.0, 0.5], dtype=x.dtype)).square()  # noqa: E731
    np.testing.assert_allclose(_gradient("delta", mixed, 1), _exact_gradient(mixed),
                               rtol=1e-9, atol=1e-11)
    quadratic = lambda z: (z @ torch.linspace(-1.0, 2.0, 7, dtype=z.dtype)).square()  # noqa: E731
    grads, exact = _subset_gradients(quadratic, 1, "delta")
    np.testing.assert_allclose(grads[0], exact, rtol=1e-9, atol=1e-11)


def test_the_delta_method_is_biased_beyond_quadratics():
    """Its bias on a cubic is that of the third term: it does not vanish (what the docstring
    says), against the exact gradient."""
    cubic = lambda x: (x[..., 1] - 2.0) ** 3  # noqa: E731
    assert not np.allclose(_gradient("delta", cubic, 1), _exact_gradient(cubic), rtol=1e-3)


def test_the_delta_value_is_the_expansion_with_fixed_logits_too():
    """With logits that do not require grad (f's own parameters may), the value is still
    f(mu) + tr(H_f Cov) / 2, which is E[f] for a quadratic f."""
    f = FUNCTIONS["quadratic"]
    ref = moments(POP, DRAWS, WEIGHTS)
    expected = float(ref["p"] @ f(torch.tensor(ref["points"], dtype=torch.float64)).numpy())
    dist = MFNCH(torch.tensor(POP), DRAWS, weights=torch.tensor(WEIGHTS, dtype=torch.float64))
    assert math.isclose(float(surrogate_loss(dist, f, estimator="delta").detach()), expected,
                        rel_tol=1e-10)
