"""The cluster priors against hand-computed log-densities on tiny batches; the MFNCH, the
per-sample marginals and the expectations under q are enumerated by brute force here, not
taken from the library."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from diffhypergeom_studies.cluster.priors import (
    PRIORS,
    CategoricalPrior,
    HypergeometricPrior,
    UniformPrior,
    count_pmf,
    dataset_population,
    make_prior,
)


def one_hot(assignments, k):
    return torch.nn.functional.one_hot(torch.tensor(assignments), k).double()


def brute_force_log_mfnch(counts, batch, weights, population=None):
    """log p(n) for K colours of `population` balls (default `batch` each), `batch` drawn, by
    enumerating the support; binomials via math.comb for integers and lgamma for relaxed
    counts."""
    population = population or [batch] * len(weights)

    def log_term(x):
        total = 0.0
        for xk, wk, mk in zip(x, weights, population, strict=True):
            total += (math.lgamma(mk + 1) - math.lgamma(xk + 1)
                      - math.lgamma(mk - xk + 1)) + xk * math.log(wk)
        return total

    support = [x for x in itertools.product(range(batch + 1), repeat=len(weights))
               if sum(x) == batch and all(xk <= mk for xk, mk in zip(x, population,
                                                                     strict=True))]
    p0 = sum(math.prod(math.comb(mk, xk) * wk ** xk for xk, wk, mk in
                       zip(x, weights, population, strict=True)) for x in support)
    return log_term(counts) - math.log(p0)


def brute_force_log_p(seq, weights, population=None):
    """log p(c) of one assignment sequence: the count law spread evenly over the orderings."""
    k = len(weights)
    counts = [seq.count(j) for j in range(k)]
    log_orderings = math.log(math.factorial(len(seq))
                             / math.prod(math.factorial(n) for n in counts))
    return brute_force_log_mfnch(counts, len(seq), weights, population) - log_orderings


URNS = [None, [6, 9, 4]]  # the paper's urn (B balls per colour) and a data-set-like urn


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


def test_hypergeometric_sampled_log_prob():
    torch.manual_seed(0)
    prior = HypergeometricPrior(3, batch_size=5)
    gamma = torch.tensor([[1.0, 0.0, 0.0]] * 2 + [[0.0, 0.0, 1.0]] * 3)
    hard = prior.sampled_log_prob(gamma, temperature=0.5, hard=True)
    assert hard.item() == pytest.approx(prior.log_prob(one_hot([0, 0, 2, 2, 2], 3)).item(),
                                        abs=1e-5)
    soft = prior.sampled_log_prob(torch.softmax(torch.randn(5, 3), -1), temperature=1.0)
    assert torch.isfinite(soft)


def test_count_pmf_is_the_poisson_binomial():
    gamma = torch.softmax(torch.randn(5, 3, generator=torch.Generator().manual_seed(1)),
                          -1).double()
    expected = torch.zeros(3, 6, dtype=torch.float64)
    for seq in itertools.product(range(3), repeat=5):
        q = math.prod(gamma[i, k].item() for i, k in enumerate(seq))
        for k in range(3):
            expected[k, seq.count(k)] += q
    torch.testing.assert_close(count_pmf(gamma), expected)


@pytest.mark.parametrize("population", URNS)
def test_hypergeometric_exact_expectation_and_marginal_by_enumeration(population):
    """E_q[log p(c)] over all K^B assignment sequences for independent rows gamma, and the
    per-sample marginal P(c_1 = k) summed over all sequences."""
    prior = HypergeometricPrior(3, batch_size=4, logits=torch.tensor([0.7, 2.0, 0.5]).log(),
                                population=None if population is None
                                else torch.tensor(population)).double()
    weights = prior.logits.detach().exp().tolist()  # as stored (float32 parameters)
    gamma = torch.softmax(torch.randn(4, 3, generator=torch.Generator().manual_seed(0),
                                      dtype=torch.float64), -1).requires_grad_()
    expectation = 0.0
    marginal = [0.0, 0.0, 0.0]
    for seq in itertools.product(range(3), repeat=4):
        log_p = brute_force_log_p(list(seq), weights, population)
        expectation += math.prod(gamma[i, k].item() for i, k in enumerate(seq)) * log_p
        marginal[seq[0]] += math.exp(log_p)
    got = prior.expected_log_prob(gamma)
    assert got.item() == pytest.approx(expectation, abs=1e-9)
    torch.testing.assert_close(prior.cluster_weights().detach(),
                               torch.tensor(marginal, dtype=torch.float64))
    # softmax(w) is not the marginal: the old responsibilities' weight
    assert not torch.allclose(prior.cluster_weights(), torch.softmax(prior.logits, -1),
                              atol=1e-3)
    got.backward()
    assert torch.isfinite(gamma.grad).all() and torch.isfinite(prior.logits.grad).all()


@pytest.mark.parametrize("name", PRIORS)
def test_one_sample_estimator_is_unbiased_for_every_prior(name):
    """The straight-through Gumbel estimate's value is log p at an exact sample of q, so its
    mean over draws matches the exact expectation (within 5 standard errors)."""
    torch.manual_seed(0)
    prior = make_prior(name, 3, batch_size=6, dataset_size=30).double()
    prior.match_marginal(torch.tensor([0.5, 0.3, 0.2]))
    gamma = torch.softmax(torch.randn(6, 3), -1).double()
    with torch.no_grad():
        draws = torch.stack([prior.sampled_log_prob(gamma, hard=True) for _ in range(4000)])
        exact = prior.expected_log_prob(gamma)
    se = draws.std() / math.sqrt(len(draws))
    assert abs(draws.mean() - exact) <= 5 * se + 1e-6 * abs(exact)


@pytest.mark.parametrize("name", ["categorical", "hypergeometric", "hypergeometric-dataset"])
def test_match_marginal(name):
    prior = make_prior(name, 4, batch_size=20, dataset_size=400)
    target = torch.tensor([0.55, 0.25, 0.15, 0.05])
    prior.match_marginal(target)
    torch.testing.assert_close(prior.cluster_weights().detach(), target, atol=1e-5,
                               rtol=1e-4)


def test_dataset_urn():
    prior = make_prior("hypergeometric-dataset", 3, batch_size=8, dataset_size=90)
    assert prior.population.tolist() == [30, 30, 30]
    population = dataset_population(torch.tensor([0.7, 0.25, 0.05]), 90, 8)
    assert population.tolist() == [63, 22, 8]  # 4.5 balls floored at the batch size
    prior.set_population(population)
    counts = torch.tensor([5.0, 2.0, 1.0])
    expected = brute_force_log_mfnch(counts.tolist(), 8, [1.0, 1.0, 1.0], [63, 22, 8])
    assert prior.size_distribution(8).log_prob(counts).item() == pytest.approx(expected,
                                                                               abs=1e-4)
    with pytest.raises(ValueError, match="population"):
        prior.set_population(torch.tensor([63, 22, 7]))
    # the urn is the state: a fresh prior loading this one's state draws from the same urn
    fresh = HypergeometricPrior(3, batch_size=8)
    assert fresh.urn(8).tolist() == [8, 8, 8]
    fresh.load_state_dict(prior.state_dict())
    assert fresh.urn(8).tolist() == [63, 22, 8]
    with pytest.raises(ValueError, match="dataset_size"):
        make_prior("hypergeometric-dataset", 3)
    with pytest.raises(ValueError, match="proportions"):
        prior.match_marginal(torch.tensor([0.5, 0.5, 0.0]))


def test_prior_errors():
    with pytest.raises(ValueError, match="unknown prior"):
        make_prior("dirichlet", 3)
    with pytest.raises(ValueError, match="num_clusters"):
        make_prior("uniform", 1)
    for name in PRIORS:
        prior = make_prior(name, 3, dataset_size=1000)
        with pytest.raises(ValueError, match=r"\[B, 3\]"):
            prior.log_prob(torch.ones(4, 2))
        with pytest.raises(ValueError, match=r"\[B, 3\]"):
            prior.expected_log_prob(torch.ones(4))
        with pytest.raises(ValueError, match=r"\[B, 3\]"):
            prior.sampled_log_prob(torch.ones(4))


@pytest.mark.parametrize("prior_class", [CategoricalPrior, HypergeometricPrior])
def test_weights_learned_from_true_assignments_follow_the_subsampling(prior_class):
    """Maximising log p(c) over batches of true labels of a dataset with half of the classes
    at 60% recovers the subsampling: weight ratio subsampled / full near 0.6."""
    torch.manual_seed(0)
    labels = torch.repeat_interleave(torch.arange(10), torch.tensor([60] * 5 + [36] * 5))
    prior = prior_class(10) if prior_class is CategoricalPrior else prior_class(10, 64)
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
