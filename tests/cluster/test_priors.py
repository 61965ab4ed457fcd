"""The three cluster priors against hand-computed log-densities on tiny batches; the MFNCH is
enumerated by brute force here, not taken from the library."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from diffhypergeom.cluster.priors import (
    CategoricalPrior,
    HypergeometricPrior,
    UniformPrior,
    make_prior,
)


def one_hot(assignments, k):
    return torch.nn.functional.one_hot(torch.tensor(assignments), k).double()


def brute_force_log_mfnch(counts, batch, weights):
    """log p(n) for K colours of `batch` balls each, `batch` drawn, by enumerating the
    support; binomials via math.comb for integers and lgamma for relaxed counts."""
    def log_term(x):
        total = 0.0
        for xk, wk in zip(x, weights, strict=True):
            total += (math.lgamma(batch + 1) - math.lgamma(xk + 1)
                      - math.lgamma(batch - xk + 1)) + xk * math.log(wk)
        return total

    support = [x for x in itertools.product(range(batch + 1), repeat=len(weights))
               if sum(x) == batch]
    p0 = sum(math.prod(math.comb(batch, xk) * wk ** xk for xk, wk in
                       zip(x, weights, strict=True)) for x in support)
    return log_term(counts) - math.log(p0)


def test_categorical_hand_values():
    logits = torch.tensor([0.3, -1.0, 2.0])
    prior = CategoricalPrior(3, logits=logits)
    pi = [math.exp(v) for v in logits.tolist()]
    pi = [v / sum(pi) for v in pi]
    c = [0, 2, 2, 1]
    expected = sum(math.log(pi[k]) for k in c)
    assert prior.log_prob(one_hot(c, 3).float()).item() == pytest.approx(expected, rel=1e-6)
    gamma = torch.tensor([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    expected = sum(g * math.log(p) for row in gamma.tolist() for g, p in zip(row, pi,
                                                                            strict=True))
    assert prior.expected_log_prob(gamma).item() == pytest.approx(expected, rel=1e-6)
    torch.testing.assert_close(prior.cluster_weights(), torch.tensor(pi))


def test_uniform_hand_values():
    prior = UniformPrior(4)
    assert prior.log_prob(one_hot([0, 3, 3], 4).float()).item() == pytest.approx(
        -3 * math.log(4))
    gamma = torch.softmax(torch.randn(5, 4), -1)
    assert prior.expected_log_prob(gamma).item() == pytest.approx(-5 * math.log(4), rel=1e-6)
    assert list(prior.parameters()) == []


@pytest.mark.parametrize("assignments", [[0, 0, 0, 0], [0, 1, 2, 1], [2, 2, 1, 2]])
def test_hypergeometric_hand_values(assignments):
    weights = [1.0, 2.5, 0.4]
    prior = HypergeometricPrior(3, logits=torch.tensor(weights).log())
    counts = [assignments.count(k) for k in range(3)]
    log_multinomial = math.log(math.factorial(4) / math.prod(math.factorial(n) for n in counts))
    expected = brute_force_log_mfnch(counts, 4, weights) - log_multinomial
    got = prior.log_prob(one_hot(assignments, 3).float())
    assert got.item() == pytest.approx(expected, abs=1e-5)


def test_hypergeometric_is_a_distribution_over_assignments():
    """Summed over all K^B assignment sequences, exp(log p(c)) is 1, and the induced count
    law is the brute-force MFNCH."""
    weights = [0.5, 1.0, 3.0]
    prior = HypergeometricPrior(3, logits=torch.tensor(weights).log())
    total = 0.0
    by_counts: dict[tuple, float] = {}
    for seq in itertools.product(range(3), repeat=4):
        p = prior.log_prob(one_hot(list(seq), 3).float()).exp().item()
        total += p
        key = tuple(seq.count(k) for k in range(3))
        by_counts[key] = by_counts.get(key, 0.0) + p
    assert total == pytest.approx(1.0, abs=1e-5)
    for key, p in by_counts.items():
        assert p == pytest.approx(math.exp(brute_force_log_mfnch(list(key), 4, weights)),
                                  abs=1e-6)


def test_hypergeometric_relaxed_counts_and_gradients():
    weights = [1.0, 2.0, 0.5]
    prior = HypergeometricPrior(3, logits=torch.tensor(weights).log())
    rows = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4],
                         [0.05, 0.9, 0.05]], requires_grad=True)
    got = prior.log_prob(rows)
    counts = rows.detach().sum(0).tolist()
    log_multinomial = math.lgamma(5) - sum(math.lgamma(n + 1) for n in counts)
    expected = brute_force_log_mfnch(counts, 4, weights) - log_multinomial
    assert got.item() == pytest.approx(expected, abs=1e-5)
    got.backward()
    assert torch.isfinite(rows.grad).all() and rows.grad.abs().sum() > 0
    assert torch.isfinite(prior.logits.grad).all() and prior.logits.grad.abs().sum() > 0
    # d/dlogits log MFNCH(n) = n - E[n]; the multinomial term does not depend on the logits
    support = [x for x in itertools.product(range(5), repeat=3) if sum(x) == 4]
    probs = [math.exp(brute_force_log_mfnch(list(x), 4, weights)) for x in support]
    mean = [sum(p * x[k] for p, x in zip(probs, support, strict=True)) for k in range(3)]
    torch.testing.assert_close(prior.logits.grad,
                               torch.tensor([n - m for n, m in zip(counts, mean, strict=True)]),
                               atol=1e-4, rtol=1e-4)


def test_hypergeometric_expected_log_prob_sample():
    torch.manual_seed(0)
    prior = HypergeometricPrior(3)
    gamma = torch.tensor([[1.0, 0.0, 0.0]] * 2 + [[0.0, 0.0, 1.0]] * 3)
    hard = prior.expected_log_prob(gamma, temperature=0.5, hard=True)
    assert hard.item() == pytest.approx(prior.log_prob(one_hot([0, 0, 2, 2, 2], 3)).item(),
                                        abs=1e-5)
    soft = prior.expected_log_prob(torch.softmax(torch.randn(5, 3), -1), temperature=1.0)
    assert torch.isfinite(soft)


def test_prior_errors():
    with pytest.raises(ValueError, match="unknown prior"):
        make_prior("dirichlet", 3)
    with pytest.raises(ValueError, match="num_clusters"):
        make_prior("uniform", 1)
    for name in ("categorical", "uniform", "hypergeometric"):
        prior = make_prior(name, 3)
        with pytest.raises(ValueError, match=r"\[B, 3\]"):
            prior.log_prob(torch.ones(4, 2))
        with pytest.raises(ValueError, match=r"\[B, 3\]"):
            prior.expected_log_prob(torch.ones(4))


@pytest.mark.parametrize("prior_class", [CategoricalPrior, HypergeometricPrior])
def test_weights_learned_from_true_assignments_follow_the_subsampling(prior_class):
    """Maximising log p(c) over batches of true labels of a dataset with half of the classes
    at 60% recovers the subsampling: weight ratio subsampled / full near 0.6."""
    torch.manual_seed(0)
    labels = torch.repeat_interleave(torch.arange(10), torch.tensor([60] * 5 + [36] * 5))
    prior = prior_class(10)
    optimizer = torch.optim.Adam(prior.parameters(), lr=0.05)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=150, gamma=0.2)
    for _ in range(250):
        batch = labels[torch.randperm(len(labels))[:64]]
        loss = -prior.log_prob(torch.nn.functional.one_hot(batch, 10).float()) / 64
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    weights = prior.cluster_weights().detach()
    assert (weights[5:].mean() / weights[:5].mean()).item() == pytest.approx(0.6, abs=0.06)
    assert weights[5:].max() < weights[:5].min()
