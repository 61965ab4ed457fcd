"""The random partition model against brute force over Plackett-Luce orders and closed forms."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from goodness_of_fit import chisquare_pvalue

from diffhypergeom import RandomPartition

F64 = torch.float64


def _orders_probability(z: np.ndarray, scores: np.ndarray, blocks: int) -> tuple[float, float]:
    """``p(z | n)`` summed over the Plackett-Luce orders that give ``z``, and the largest
    single order's probability (DRPM's bound uses it)."""
    w = np.exp(scores)
    n = np.bincount(z, minlength=blocks)
    total, best = 0.0, 0.0
    for order in itertools.permutations(range(len(z))):
        labels = np.repeat(np.arange(blocks), n)
        if not (labels == z[list(order)]).all():
            continue
        prob, left = 1.0, w.sum()
        for i in order:
            prob *= w[i] / left
            left -= w[i]
        total += prob
        best = max(best, prob)
    return total, best


@pytest.fixture(scope="module")
def small():
    generator = torch.Generator().manual_seed(3)
    size_logits = torch.randn(3, generator=generator, dtype=F64)
    element_logits = torch.randn(5, generator=generator, dtype=F64)
    return RandomPartition(size_logits, element_logits)


def test_every_labelling_sums_to_one_and_matches_the_orders(small):
    labels = torch.tensor(list(itertools.product(range(3), repeat=5)), dtype=F64)
    log_p = small.log_prob(labels)
    assert abs(float(torch.logsumexp(log_p, 0))) < 1e-12
    scores = small.element_logits.numpy()
    for index in range(0, len(labels), 17):
        z = labels[index].long().numpy()
        given, best = _orders_probability(z, scores, 3)
        size = float(small.sizes.log_prob(torch.from_numpy(np.bincount(z, minlength=3))))
        assert abs(float(log_p[index]) - (size + math.log(given))) < 1e-12
        # DRPM's upper bound: log p(n) + sum log n_k! + max over orders of log PL
        bound = size + sum(math.lgamma(c + 1) for c in np.bincount(z, minlength=3)) \
            + math.log(best)
        assert float(log_p[index]) <= bound + 1e-12


def test_seven_elements_three_blocks_sum_to_one():
    generator = torch.Generator().manual_seed(5)
    d = RandomPartition(torch.randn(3, generator=generator, dtype=F64),
                        torch.randn(7, generator=generator, dtype=F64))
    labels = torch.tensor(list(itertools.product(range(3), repeat=7)), dtype=F64)
    assert abs(float(torch.logsumexp(d.log_prob(labels), 0))) < 1e-12


def test_closed_forms():
    """Equal scores: ``p(z | n) = prod n_k! / N!``; equal size weights: the central
    multivariate hypergeometric ``prod C(N, n_k) / C(K N, N)``; K = 2: the first block is an
    unordered Plackett-Luce set."""
    z = torch.tensor([0, 2, 2, 1, 0, 2], dtype=F64)
    d = RandomPartition(torch.zeros(3, dtype=F64), torch.zeros(6, dtype=F64))
    n = [2, 1, 3]
    sizes = sum(math.log(math.comb(6, k)) for k in n) - math.log(math.comb(18, 6))
    given = sum(math.lgamma(k + 1) for k in n) - math.lgamma(7)
    assert abs(float(d.log_prob(z)) - (sizes + given)) < 1e-12
    scores = torch.tensor([0.3, -1.0, 0.8, 0.1, -0.4], dtype=F64)
    two = RandomPartition(torch.tensor([0.2, -0.2], dtype=F64), scores)
    z = torch.tensor([0, 1, 0, 1, 1], dtype=F64)
    given, _ = _orders_probability(z.long().numpy(), scores.numpy(), 2)
    size = float(two.sizes.log_prob(torch.tensor([2.0, 3.0])))
    assert abs(float(two.log_prob(z)) - (size + math.log(given))) < 1e-12


def test_empty_blocks_with_many_elements():
    """An empty first or middle block among 9 and 12 elements (equal scores, so ``p(z | n) =
    prod n_k! / N!``): the empty block's factor is exactly 1 (9 elements with an empty first
    block used to fail in the quadrature)."""
    for n in ([0, 4, 5], [4, 0, 5], [0, 5, 7], [5, 0, 7], [12, 0, 0]):
        d = RandomPartition(torch.zeros(3, dtype=F64), torch.zeros(sum(n), dtype=F64))
        z = torch.repeat_interleave(torch.arange(3, dtype=F64), torch.tensor(n))
        size = float(d.sizes.log_prob(torch.tensor(n, dtype=F64)))
        given = sum(math.lgamma(k + 1) for k in n) - math.lgamma(sum(n) + 1)
        assert abs(float(d.log_prob(z)) - (size + given)) < 1e-12


def test_samples_follow_the_exact_probabilities(small):
    """Chi-square of 20,000 draws over all 243 labellings; power: the same draws against the
    law with the element scores set to zero are rejected."""
    torch.manual_seed(0)
    draws = small.sample((20_000,)).long()
    assert bool(((draws >= 0) & (draws < 3)).all())
    labels = torch.tensor(list(itertools.product(range(3), repeat=5)))
    index = {tuple(z): j for j, z in enumerate(labels.tolist())}
    cells = np.bincount([index[tuple(z)] for z in draws.tolist()], minlength=len(labels))
    probs = small.log_prob(labels.double()).exp().numpy()
    assert chisquare_pvalue(cells, probs) > 1e-3
    wrong = RandomPartition(small.size_logits, torch.zeros(5, dtype=F64))
    assert chisquare_pvalue(cells, wrong.log_prob(labels.double()).exp().numpy()) < 1e-6


def test_gradients_and_shapes():
    size_logits = torch.tensor([0.1, -0.3, 0.4], dtype=F64, requires_grad=True)
    element_logits = torch.tensor([0.5, -0.2, 0.0, 0.7], dtype=F64, requires_grad=True)
    z = torch.tensor([[0, 2, 1, 0], [1, 1, 1, 1]], dtype=F64)
    assert torch.autograd.gradcheck(lambda a, b: RandomPartition(a, b).log_prob(z),
                                    (size_logits, element_logits), eps=1e-6, atol=1e-7)
    batch = RandomPartition(torch.zeros(2, 1, 3), torch.zeros(4, 4))
    assert batch.batch_shape == (2, 4) and batch.sample((5,)).shape == (5, 2, 4, 4)
    assert batch.log_prob(batch.sample((5,))).shape == (5, 2, 4)
    assert batch.expand((3, 2, 4)).sample().shape == (3, 2, 4, 4)


@pytest.mark.parametrize("call,match", [
    (lambda: RandomPartition(torch.zeros(3), torch.zeros(4)).log_prob(torch.tensor([0, 3, 1, 0])),
     r"labels must be in 0..2"),
    (lambda: RandomPartition(torch.zeros(3), torch.zeros(4)).log_prob(torch.zeros(5)),
     r"shape \[..., 4\]"),
    (lambda: RandomPartition(torch.zeros(2, 3), torch.zeros(3, 4)),
     "batch shapes do not broadcast"),
    (lambda: RandomPartition(torch.tensor([0.0, math.nan]), torch.zeros(4)),
     "size_logits must not be NaN"),
    (lambda: RandomPartition(torch.zeros(2), torch.tensor([0.0, math.inf])),
     "element_logits must be finite"),
    (lambda: RandomPartition(torch.zeros(0), torch.zeros(4)), "size_logits must have shape"),
    (lambda: RandomPartition(torch.zeros(2), torch.zeros(0)), "element_logits must have shape"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_pyro_sites():
    pyro = pytest.importorskip("pyro")
    from diffhypergeom.pyro import RandomPartition as PyroPartition

    d = PyroPartition(torch.zeros(2, dtype=F64), torch.tensor([0.5, -0.5, 0.0], dtype=F64))
    z = torch.tensor([0.0, 1.0, 1.0], dtype=F64)
    observed = pyro.poutine.trace(lambda: pyro.sample("z", d, obs=z)).get_trace()
    observed.compute_log_prob()
    assert abs(float(observed.nodes["z"]["log_prob"]) - float(d.log_prob(z))) < 1e-14
    latent = pyro.poutine.trace(lambda: pyro.sample("z", d)).get_trace()
    assert latent.nodes["z"]["value"].shape == (3,)
    assert type(d.expand((2,))) is PyroPartition


def test_straight_through_gradient_is_biased_and_measured_against_the_exact_one():
    """A linear loss of the one-hot assignments, N = 5, K = 3: the exact gradient by summing
    over all 243 labellings. ``rsample_one_hot`` at temperature 0.3: relative bias 0.26 and
    cosine 0.99 to the exact gradient (200 calls of 64 draws; 0.73 and 0.78 at temperature 1);
    the score-function estimate through the exact ``log_prob`` is unbiased."""
    generator = torch.Generator().manual_seed(1)
    cost = torch.randn(5, 3, generator=generator, dtype=F64)
    base = (torch.tensor([0.1, -0.3, 0.4], dtype=F64),
            torch.tensor([0.5, -0.2, 0.0, 0.7, 0.1], dtype=F64))
    labels = torch.tensor(list(itertools.product(range(3), repeat=5)), dtype=F64)
    values = (torch.nn.functional.one_hot(labels.long(), 3).to(F64) * cost).sum((-1, -2))
    params = [t.clone().requires_grad_() for t in base]
    expected = (RandomPartition(*params).log_prob(labels).exp() * values).sum()
    exact = torch.cat(torch.autograd.grad(expected, params))
    torch.manual_seed(0)
    pathwise, score = [], []
    for _ in range(100):
        params = [t.clone().requires_grad_() for t in base]
        d = RandomPartition(*params)
        x = d.rsample_one_hot((64,), temperature=0.3)
        pathwise.append(torch.cat(torch.autograd.grad((x * cost).sum((-1, -2)).mean(),
                                                      params)))
        z = d.sample((64,))
        f = (torch.nn.functional.one_hot(z.long(), 3).to(F64) * cost).sum((-1, -2))
        score.append(torch.cat(torch.autograd.grad(((f - f.mean()) * d.log_prob(z)).mean(),
                                                   params)))
    pathwise, score = torch.stack(pathwise), torch.stack(score)
    bias = float((pathwise.mean(0) - exact).norm() / exact.norm())
    cosine = float(torch.nn.functional.cosine_similarity(pathwise.mean(0), exact, dim=0))
    assert 0.1 < bias < 0.5 and cosine > 0.95, (bias, cosine)
    error = (score.mean(0) - exact).abs()
    # the leave-in mean baseline shrinks the estimate by (S - 1) / S
    assert bool((error <= 5 * score.std(0) / 10 + exact.abs() / 64).all()), error


def test_monte_carlo_entropy_and_kl_against_enumeration(small):
    """Both are estimates from 4,096 exact draws and the exact ``log_prob`` (said so): within 5
    standard errors of the sums over all 243 labellings."""
    other = RandomPartition(torch.tensor([0.0, 0.5, -0.5], dtype=F64),
                            torch.tensor([0.2, 0.1, -0.3, 0.0, 0.4], dtype=F64))
    labels = torch.tensor(list(itertools.product(range(3), repeat=5)), dtype=F64)
    log_p, log_q = small.log_prob(labels), other.log_prob(labels)
    entropy = float(-(log_p.exp() * log_p).sum())
    kl = float((log_p.exp() * (log_p - log_q)).sum())
    torch.manual_seed(0)
    z = small.sample((4096,))
    spread_h = float(small.log_prob(z).std()) / 64
    spread_kl = float((small.log_prob(z) - other.log_prob(z)).std()) / 64
    assert abs(float(small.entropy()) - entropy) < 5 * spread_h
    assert abs(float(torch.distributions.kl_divergence(small, other)) - kl) < 5 * spread_kl
