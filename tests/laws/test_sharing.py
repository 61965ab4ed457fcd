"""Repeated urns (``expand``, Pyro plates) are computed once and give what the materialised
batch gives; their draws are independent across the repeats."""

from __future__ import annotations

import math

import pytest
import torch

from diffhypergeom import MultivariateFisherNCHypergeometric as MFNCH

POP = torch.tensor([6, 9, 4])


def _pair():
    logits = torch.tensor([[[0.0, 1.0, -0.5]], [[0.4, -0.3, 0.2]]], dtype=torch.float64)
    shared = MFNCH(POP, 8, logits=logits).expand((2, 5))
    full = MFNCH(POP, 8, logits=logits.expand(2, 5, 3).contiguous())
    return shared, full


def test_expand_computes_each_distinct_urn_once():
    shared, full = _pair()
    assert shared.sharing.shared == [1] and shared._urn().batch == 2
    assert full.sharing.shared == [] and full._urn().batch == 10


@pytest.mark.parametrize("member", ["mean", "variance", "entropy", "log_normalizer",
                                    "covariance_matrix"])
def test_members_of_a_repeated_urn_match_the_materialised_batch(member):
    shared, full = _pair()

    def get(d):
        value = getattr(d, member)
        return value() if callable(value) else value

    torch.testing.assert_close(get(shared), get(full), rtol=1e-12, atol=1e-12)


def test_log_prob_marginal_and_kl_of_a_repeated_urn():
    shared, full = _pair()
    x = full.sample((7,))
    torch.testing.assert_close(shared.log_prob(x), full.log_prob(x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(shared.marginal(1).probs, full.marginal(1).probs)
    other = MFNCH(POP, 8, logits=torch.zeros(2, 5, 3, dtype=torch.float64))
    torch.testing.assert_close(torch.distributions.kl_divergence(shared, other),
                               torch.distributions.kl_divergence(full, other))


def test_draws_of_a_repeated_urn_are_independent_across_repeats():
    shared, full = _pair()
    torch.manual_seed(0)
    num = 20_000
    x = shared.sample((num,)).to(torch.float64)
    assert x.shape == (num, 2, 5, 3) and (x.sum(-1) == 8).all()
    se = (full.variance / num).sqrt()
    assert ((x.mean(0) - full.mean).abs() <= 5 * se + 1e-12).all()
    # correlation of class 1 between the first two repeats: 0 within 5 / sqrt(num)
    a, b = x[:, 0, 0, 1], x[:, 0, 1, 1]
    corr = float(torch.corrcoef(torch.stack([a, b]))[0, 1])
    assert abs(corr) < 5 / math.sqrt(num)


def test_gradients_reach_the_shared_logits():
    logits = torch.tensor([0.0, 1.0, -0.5], dtype=torch.float64, requires_grad=True)
    x = MFNCH(POP, 8, logits=logits).sample((4,))
    MFNCH(POP, 8, logits=logits).expand((4,)).log_prob(x).sum().backward()
    shared_grad = logits.grad.clone()
    logits.grad = None
    MFNCH(POP, 8, logits=logits.expand(4, 3).contiguous()).log_prob(x).sum().backward()
    torch.testing.assert_close(shared_grad, logits.grad)


def test_zero_weight_gradients_of_a_repeated_urn():
    weights = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64, requires_grad=True)
    shared = MFNCH(POP, 8, weights=weights).expand((3,))
    (shared.mean[:, 1].sum() + shared.log_normalizer().sum()).backward()
    got = weights.grad.clone()
    weights.grad = None
    full = MFNCH(POP, 8, weights=weights.expand(3, 3).contiguous())
    (full.mean[:, 1].sum() + full.log_normalizer().sum()).backward()
    torch.testing.assert_close(got, weights.grad)
    assert got[0] != 0  # the one-sided limit at the zero weight
