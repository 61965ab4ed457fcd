"""The log-depth sampler (``diffhypergeom.numerics.tree``) against exact probabilities, with a power
check: the same tests reject a tree whose splits are deliberately wrong (each node's two
children swapped), so they cannot pass by accident. Each runs on both ways of building the tree
(whole log-space tables, tilted windows) and both ways of splitting a level (every node densely,
only the rows drawn)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from enumeration import moments
from goodness_of_fit import any_rejected, chisquare_pvalue

from diffhypergeom import MultivariateFisherNCHypergeometric as MFNCH
from diffhypergeom.numerics.tree import Level, build_tree, sample_tree

ALPHA = 0.01


@pytest.fixture(params=["whole/dense", "windowed/rows"])
def tree_path(request, monkeypatch):
    """Forces one build (``FULL_WORK``) and one way of splitting (``DENSE_ELEMENTS``)."""
    from diffhypergeom.numerics import tree
    build, split = request.param.split("/")
    monkeypatch.setattr(tree, "FULL_WORK", tree.FULL_WORK if build == "whole" else -1)
    monkeypatch.setattr(tree, "DENSE_ELEMENTS", 1 << 40 if split == "dense" else -1)
    return request.param


def _swapped(levels: list[Level]) -> list[Level]:
    """A wrong tree: every pair of sibling tables swapped (their windows kept)."""
    out = []
    for level in levels:
        table = level.table
        if table.shape[1] > 1:
            table = table.reshape(table.shape[0], -1, 2, table.shape[-1]).flip(2).flatten(1, 2)
        out.append(Level(level.lo, table))
    return out


def _draw(population, draws, weights, num, broken=False, seed=0):
    population = torch.tensor([population])
    theta = torch.tensor([weights], dtype=torch.float64).log()
    draws = torch.tensor([draws])
    levels = build_tree(population, draws, theta)
    if broken:
        levels = _swapped(levels)
    torch.manual_seed(seed)
    return sample_tree(levels, draws, population.shape[-1], num)[:, 0].numpy()


def _joint_pvalue(samples, population, draws, weights):
    ref = moments(population, draws, weights)
    index = {tuple(p): j for j, p in enumerate(ref["points"])}
    observed = np.bincount([index[tuple(s)] for s in samples], minlength=len(index))
    return chisquare_pvalue(observed, ref["p"])


@pytest.mark.parametrize("population,draws,weights", [
    ([1] * 8, 3, [0.3, 1.0, 2.0, 0.5, 4.0, 1.5, 0.2, 3.0]),   # every 3-subset of 8 items
    ([5, 7, 4], 8, [1.0, 4.0, 0.25]),
    ([3, 6, 2, 5, 4], 9, [1e-3, 1.0, 1e3, 3.0, 0.5]),
    ([4, 0, 3, 2, 6, 1, 2], 7, [2.0, 1.0, 0.0, 0.5, 1.0, 8.0, 0.3]),  # empty and weightless
])
def test_tree_draws_follow_the_exact_law_and_a_wrong_split_is_rejected(population, draws,
                                                                        weights, tree_path):
    pvalues = [_joint_pvalue(_draw(population, draws, weights, 20_000, seed=s), population,
                             draws, weights) for s in range(2)]
    assert not any_rejected(pvalues, ALPHA), pvalues
    wrong = _draw(population, draws, weights, 20_000, broken=True)
    ref_index = {tuple(p) for p in moments(population, draws, weights)["points"]}
    outside = any(tuple(s) not in ref_index for s in wrong)
    assert outside or _joint_pvalue(wrong, population, draws, weights) < 1e-6


def test_k_subset_law_is_conditional_poisson_not_gumbel_top_k():
    """For w = [1, 2, 3, 4] and k = 2, P({3, 4}) = 12/35 under the conditional Poisson law
    (the MFNCH with one ball per item) and 0.371 under Gumbel-top-k (sequential draws without
    replacement, enumerated over the draw orders)."""
    w = [1.0, 2.0, 3.0, 4.0]
    d = MFNCH(torch.ones(4, dtype=torch.int64), 2, weights=torch.tensor(w, dtype=torch.float64))
    exact = float(d.log_prob(torch.tensor([0, 0, 1, 1])).exp())
    assert exact == pytest.approx(12 / 35, rel=1e-13)
    top_k = sum(w[a] / sum(w) * w[b] / (sum(w) - w[a]) for a, b in itertools.permutations(
        [2, 3]))
    assert top_k == pytest.approx(0.371, abs=5e-4)
    torch.manual_seed(3)
    draws = d.sample((40_000,))
    share = float((draws[:, 2:] == 1).all(-1).double().mean())
    se = math.sqrt(exact * (1 - exact) / 40_000)
    assert abs(share - exact) < 5 * se
    assert abs(share - top_k) > 5 * se  # the draws tell the two laws apart


def test_thousand_classes_match_their_exact_marginals(tree_path):
    """A k-subset of 1,000 items (k = 50): per-item inclusion frequencies against the exact
    marginals ``mean``, a chi-square per item with a Benjamini-Hochberg decision; the wrong tree
    is rejected by the same procedure."""
    gen = torch.Generator().manual_seed(5)
    logits = 1.5 * torch.randn(1000, generator=gen, dtype=torch.float64)
    d = MFNCH(torch.ones(1000, dtype=torch.int64), 50, logits=logits)
    marginals = d.mean.numpy()
    assert marginals.sum() == pytest.approx(50, rel=1e-12)

    def pvalues(samples):
        hits = samples.sum(0)
        return [chisquare_pvalue(np.array([len(samples) - h, h]), np.array([1 - p, p]))
                for h, p in zip(hits, marginals, strict=True)]

    population, draws = torch.ones(1, 1000, dtype=torch.int64), torch.tensor([50])
    levels = build_tree(population, draws, logits.unsqueeze(0))
    torch.manual_seed(12)
    good = sample_tree(levels, draws, 1000, 4_000)[:, 0].numpy()
    assert (good.sum(-1) == 50).all()
    assert not any_rejected(pvalues(good), ALPHA)
    torch.manual_seed(12)
    bad = sample_tree(_swapped(levels), draws, 1000, 4_000)[:, 0].numpy()
    assert any_rejected(pvalues(bad), ALPHA)


def test_sample_uses_the_tree_and_returns_exact_counts_in_batches():
    d = MFNCH(torch.tensor([[4, 5, 6, 0, 2, 3, 1, 7, 2], [1] * 9]), torch.tensor([17, 2]),
              logits=torch.randn(2, 9, dtype=torch.float64))
    assert d._urn().tree() is not None
    x = d.sample((5, 2))
    assert x.shape == (5, 2, 2, 9)
    assert (x.sum(-1) == torch.tensor([17, 2])).all()
    assert ((x >= 0) & (x <= d.population)).all()
    assert MFNCH(torch.tensor([4, 5, 6]), 7, logits=torch.zeros(3)).sample((3,)).shape == (3, 3)


def test_sample_of_many_classes_follows_the_exact_law(tree_path):
    """``sample`` itself (through the tree) on an enumerable urn of 9 classes."""
    population, draws = [2, 1, 3, 0, 2, 1, 2, 1, 1], 6
    weights = [0.5, 2.0, 1.0, 1.0, 3.0, 0.2, 1.0, 4.0, 0.7]
    d = MFNCH(torch.tensor(population), draws, weights=torch.tensor(weights, dtype=torch.float64))
    torch.manual_seed(2)
    samples = d.sample((20_000,)).numpy()
    assert _joint_pvalue(samples, population, draws, weights) > ALPHA


@pytest.mark.parametrize("population,draws,logits", [
    ([[200, 200, 200]], [180], [[0.0, 2.3, 0.0]]),
    ([[1] * 40], [7], None),
    ([[3, 0, 5, 2, 7, 1], [4, 4, 4, 4, 4, 4]], [9, 24], [[0.5, 1.0, -30.0, 2.0, 0.0, 30.0],
                                                         [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]]),
    ([[5, 6, 7]], [0], [[0.0, 1.0, 2.0]]),
    ([[5, 6, 7]], [18], [[0.0, 1.0, 2.0]]),
])
def test_tree_log_normalizer_its_gradient_and_hessian_match_the_log_space_tables(
        population, draws, logits, tree_path):
    from diffhypergeom.numerics import tree
    from diffhypergeom.numerics.engines import build

    population, draws = torch.tensor(population), torch.tensor(draws)
    if logits is None:
        logits = torch.randn(population.shape, generator=torch.Generator().manual_seed(1),
                             dtype=torch.float64)
    logits = torch.as_tensor(logits, dtype=torch.float64)
    direction = torch.linspace(-1, 1, logits.numel(), dtype=torch.float64).view_as(logits)

    def derivatives(normalizer):
        theta = logits.clone().requires_grad_()
        value = normalizer(theta)
        (grad,) = torch.autograd.grad(value.sum(), theta, create_graph=True)
        (hvp,) = torch.autograd.grad((grad * direction).sum(), theta)
        return value, grad, hvp

    got = derivatives(lambda t: tree.log_normalizer(population, draws, t))
    want = derivatives(lambda t: build("logspace", population, draws, t).log_normalizer)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b.detach(), rtol=1e-11, atol=1e-11)
