"""``KSubset``: the k-subset law's fast members (tilted Bernoullis conditioned on their sum)
against brute-force enumeration of the subsets, and against the Fisher law's own members."""

import itertools
import math

import numpy as np
import pytest
import torch
from enumeration import support
from goodness_of_fit import chisquare_pvalue

from diffhypergeom import MultivariateFisherNCHypergeometric as MFNCH
from diffhypergeom.laws.ksubset import KSubset
from diffhypergeom.numerics import bernoulli

F64 = torch.float64


def _subsets(n: int, k: int) -> torch.Tensor:
    """The ``k``-hot masks of ``n`` items: the support of the urn of ones."""
    return torch.as_tensor(support([1] * n, k), dtype=F64)


def _brute(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The subsets, their exact probabilities and the inclusion probabilities."""
    masks = _subsets(logits.shape[-1], k)
    log_w = masks @ logits
    probs = (log_w - torch.logsumexp(log_w, 0)).exp()
    return masks, probs, probs @ masks


@pytest.mark.parametrize("n, k", [(6, 3), (9, 1), (9, 8), (8, 0), (8, 8), (12, 5)])
@pytest.mark.parametrize("spread", [0.5, 3.0, 12.0])
def test_probabilities_and_inclusion_match_enumeration(n, k, spread):
    logits = torch.randn(n, generator=torch.Generator().manual_seed(n * 10 + k),
                         dtype=F64) * spread
    d = KSubset(logits, k)
    masks, probs, inclusion = _brute(logits, k)
    assert d._bernoulli() is not None  # the fast members, not the Fisher law's
    torch.testing.assert_close(d.log_prob(masks).exp(), probs, rtol=1e-11, atol=1e-300)
    torch.testing.assert_close(d.mean, inclusion, rtol=1e-11, atol=1e-13)
    torch.testing.assert_close(d.variance, inclusion * (1 - inclusion), rtol=1e-10, atol=1e-13)
    offset, log_probs = d.log_marginals()
    assert bool((offset == 0).all())
    torch.testing.assert_close(log_probs.exp()[..., 1], inclusion, rtol=1e-11, atol=1e-13)
    assert math.isclose(float(d.log_normalizer()), float(torch.logsumexp(masks @ logits, 0)),
                        rel_tol=1e-12, abs_tol=1e-12)


def test_a_batch_of_urns_with_their_own_k_matches_the_fisher_law():
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 10, generator=generator, dtype=F64) * 2
    k = torch.tensor([0, 3, 7, 10])
    fast, reference = KSubset(logits, k), MFNCH(torch.ones(10, dtype=torch.int64), k,
                                                logits=logits)
    torch.testing.assert_close(fast.mean, reference.mean, rtol=1e-11, atol=1e-12)
    torch.testing.assert_close(fast.log_normalizer(), reference.log_normalizer(), rtol=1e-12,
                               atol=1e-12)
    x = reference.sample((5,))
    torch.testing.assert_close(fast.log_prob(x), reference.log_prob(x), rtol=1e-11, atol=1e-11)
    draws = fast.sample((7,))
    assert draws.shape == (7, 4, 10) and torch.equal(draws.sum(-1), k.expand(7, 4).to(F64))


def test_draws_follow_the_law():
    """Chi-square over the 20 subsets of 3 of 6 items: 20,000 rejection draws (the fast path)
    against the exact probabilities; a fixed seed, and the test fails for draws from Gumbel-top-k
    (checked: P({3, 4}) differs by 0.03 for w = [1, 2, 3, 4])."""
    torch.manual_seed(0)
    logits = torch.tensor([0.0, 1.0, -1.0, 2.0, 0.5, -0.5], dtype=F64)
    d = KSubset(logits, 3)
    assert bernoulli.proposals(d._bernoulli()[4], 20_000, 6) is not None  # by rejection
    draws = d.sample((20_000,))
    masks, probs, _ = _brute(logits, 3)
    index = (draws.unsqueeze(-2) == masks).all(-1).to(torch.int64).argmax(-1)
    observed = np.bincount(index.numpy(), minlength=len(masks))
    assert chisquare_pvalue(observed, probs.numpy()) > 1e-3


def test_the_default_rsample_carries_the_covariance():
    """``rsample``'s backward is ``Cov(X) c`` for a linear loss ``c . x`` (the exact inclusion
    probabilities' gradient), computed by enumeration."""
    logits = torch.tensor([0.3, -1.0, 0.8, 0.0, 1.5], dtype=F64, requires_grad=True)
    cost = torch.tensor([1.0, -2.0, 0.5, 3.0, -1.0], dtype=F64)
    (grad,) = torch.autograd.grad((KSubset(logits, 2).rsample((4,)) @ cost).sum() / 4, logits)
    masks, probs, mean = _brute(logits.detach(), 2)
    centred = masks - mean
    covariance = (probs.unsqueeze(-1) * centred).T @ centred
    torch.testing.assert_close(grad, covariance @ cost, rtol=1e-10, atol=1e-12)


def test_what_the_fast_members_cannot_serve_goes_to_the_fisher_law():
    logits = torch.randn(12, generator=torch.Generator().manual_seed(2), dtype=F64)
    forced = KSubset(logits, 4, engine="logspace")
    assert forced._bernoulli() is None
    masks, probs, inclusion = _brute(logits, 4)
    torch.testing.assert_close(forced.mean, inclusion, rtol=1e-11, atol=1e-13)
    # a draw costing more than REJECTION_WORK proposal elements: the Fisher law's members
    many = KSubset(torch.zeros(1_000, dtype=F64), 500)
    assert many._bernoulli() is None
    offset, log_probs = many.log_marginals()  # from the tree's inclusion probabilities
    torch.testing.assert_close(log_probs.exp(), torch.full((1_000, 2), 0.5, dtype=F64))
    assert torch.equal(many.sample((64,)).sum(-1), torch.full((64,), 500.0, dtype=F64))


def test_expanded_copies_recompute_their_tables():
    d = KSubset(torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=F64), 2)
    d.mean  # noqa: B018
    wide = d.expand((3,))
    assert wide.mean.shape == (3, 4) and wide.sample((2,)).shape == (2, 3, 4)
    torch.testing.assert_close(wide.mean[1], d.mean)


def test_gumbel_top_k_draws_follow_the_wallenius_law():
    """``GumbelTopK.sample`` and ``sample_with_score``: 3 of 6 items, 20,000 draws each against
    the exact Wallenius probabilities (chi-square, fixed seed); the order's log-probability
    summed over the orders of one subset is the subset's."""
    from diffhypergeom.laws.topk import GumbelTopK

    torch.manual_seed(0)
    logits = torch.tensor([0.0, 1.0, -1.0, 2.0, 0.5, -0.5], dtype=F64)
    d = GumbelTopK(logits, 3)
    masks = _subsets(6, 3)
    probs = d.log_prob(masks).exp()
    torch.testing.assert_close(probs.sum(), torch.tensor(1.0, dtype=F64), rtol=1e-10, atol=0)
    for draws in (d.sample((20_000,)), d.sample_with_score((20_000,))[0]):
        index = (draws.unsqueeze(-2) == masks).all(-1).to(torch.int64).argmax(-1)
        observed = np.bincount(index.numpy(), minlength=len(masks))
        assert chisquare_pvalue(observed, probs.numpy()) > 1e-3
    w = logits.exp()
    orders = sum(math.prod(w[o[j]] / (w.sum() - sum(w[o[i]] for i in range(j)))
                           for j in range(3)) for o in itertools.permutations([1, 3, 4]))
    torch.testing.assert_close(float(orders), float(probs[(masks == torch.tensor(
        [0.0, 1.0, 0.0, 1.0, 1.0, 0.0], dtype=F64)).all(-1)]), rtol=1e-10, atol=0)


@pytest.mark.parametrize(("dtype", "spread", "direct"), [
    (torch.float64, 4.0, True), (torch.float32, 60.0, True),
    (torch.float32, 120.0, False), (torch.float64, 900.0, False)])
def test_gumbel_top_k_order_score_is_the_plackett_luce_probability(dtype, spread, direct):
    """``sample_with_score``'s log-probability of the order, against the Plackett-Luce product
    summed position by position in float64; the weights are summed directly where the logits
    spread little (``EXP_SPREAD``), else in log space (``logcumsumexp``), and both paths are
    exact, with their gradients."""
    from diffhypergeom.laws.topk import GumbelTopK

    theta = torch.linspace(-spread / 2, spread / 2, 9, dtype=F64)[torch.tensor(
        [4, 0, 7, 2, 8, 1, 5, 3, 6])]
    logits = theta.to(dtype).requires_grad_()
    d = GumbelTopK(logits, 4)
    assert (d._exp_shift() is not None) == direct
    torch.manual_seed(3)
    _, log_order = d.sample_with_score((50,))
    torch.manual_seed(3)
    order = d._ranks(torch.Size((50,)))
    point = logits.detach().to(F64).requires_grad_()
    chosen = point[order]
    reference = sum(chosen[:, j] - torch.logsumexp(chosen[:, j:], -1) for j in range(4))
    tolerance = 1e-12 if dtype == F64 else 1e-5 * spread
    torch.testing.assert_close(log_order.to(F64), reference, rtol=0, atol=tolerance)
    (grad,) = torch.autograd.grad(log_order.sum(), logits)
    (expected,) = torch.autograd.grad(reference.sum(), point)
    torch.testing.assert_close(grad.to(F64), expected, rtol=0, atol=1e-9 if dtype == F64 else 1e-3)


def test_covariance_matches_enumeration_and_carries_its_gradient():
    logits = torch.tensor([0.3, -1.0, 0.8, 0.0, 1.5, -0.2], dtype=F64, requires_grad=True)
    masks, probs, mean = _brute(logits.detach(), 3)
    centred = masks - mean
    exact = (probs.unsqueeze(-1) * centred).T @ centred
    fast = KSubset(logits, 3).covariance_matrix
    torch.testing.assert_close(fast, exact, rtol=1e-10, atol=1e-12)
    probe = torch.randn(6, dtype=F64, generator=torch.Generator().manual_seed(3))
    (grad,) = torch.autograd.grad(probe @ fast @ probe, logits)
    reference = MFNCH(torch.ones(6, dtype=torch.int64), 3, logits=logits).covariance_matrix
    (expected,) = torch.autograd.grad(probe @ reference @ probe, logits)
    torch.testing.assert_close(grad, expected, rtol=1e-9, atol=1e-11)



def _log_elementary(logits: torch.Tensor, k: int) -> float:
    """``log e_k(exp(logits))`` by the log-space recursion (float64, exact to rounding)."""
    table = torch.full((k + 1,), -math.inf, dtype=F64)
    table[0] = 0.0
    for value in logits.tolist():
        table = torch.cat([table[:1], torch.logaddexp(table[1:], table[:-1] + value)])
    return float(table[k])


@pytest.mark.parametrize("seed", range(4))
def test_widely_spread_logits_keep_full_precision(seed):
    """Logits ``30 N(0, 1)``: many items certain to be in or out at the tilt. A softplus that
    returns ``z`` itself above 20 (torch's default) lost up to 2e-9 here; the recursion agrees
    to 1e-13 of ``log e_k``."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(29, generator=generator, dtype=F64) * 30
    for k in (3, 12, 24):
        d = KSubset(logits, k)
        assert d._bernoulli() is not None
        exact = _log_elementary(logits, k)
        assert abs(float(d.log_normalizer()) - exact) <= 1e-13 * abs(exact) + 1e-12


def test_the_fast_members_agree_with_the_fisher_law_on_random_urns():
    """60 random urns (1-39 items, any k, logit scales 0.1-300, float32 and float64): the same
    inclusion probabilities and log_prob as the Fisher law's own members, draws of size k."""
    generator = torch.Generator().manual_seed(5)
    for trial in range(60):
        n = int(torch.randint(1, 40, (), generator=generator))
        k = int(torch.randint(0, n + 1, (), generator=generator))
        dtype = (torch.float32, F64)[trial % 2]
        scale = (0.1, 1.0, 5.0, 30.0, 300.0)[trial % 5]
        logits = (torch.randn(n, generator=generator, dtype=F64) * scale).to(dtype)
        fast = KSubset(logits, k)
        reference = MFNCH(torch.ones(n, dtype=torch.int64), k, logits=logits)
        tolerance = 1e-9 if dtype == F64 else 1e-4
        torch.testing.assert_close(fast.mean.double(), reference.mean.double(), rtol=0,
                                   atol=tolerance)
        x = fast.sample((20,))
        assert torch.equal(x.sum(-1), torch.full((20,), float(k), dtype=dtype))
        torch.testing.assert_close(fast.log_prob(x).double(), reference.log_prob(x).double(),
                                   rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("p", [0.0, 1e-3, 0.3, 5 / 256, 0.5 + 1e-4, 1 - 1e-3, 1.0])
def test_coin_flips_have_the_exact_success_probability(p):
    """One byte per flip and a float64 uniform on ties: the frequency of 2^20 flips is within
    5 standard errors of p. Resolving every tie as a failure (the byte alone) is off by up
    to 1/256, 7 standard errors at p = 0.3 and all of p = 1e-3."""
    flips = bernoulli.coin_flips(torch.tensor([p], dtype=F64), 1 << 20,
                                 torch.Generator().manual_seed(1))
    frequency = float(flips.double().mean())
    error = math.sqrt(max(p * (1 - p), 1e-12) / flips.numel())
    assert abs(frequency - p) <= 5 * error
