"""Invariances that must hold for every urn, on both engines (hypothesis, fixed seed): a common
logit offset changes nothing, permuting the classes permutes the results, the complement
``x -> m - x`` with weights ``1/w`` maps the law to itself, and n = 0 / n = N are point masses."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffhypergeom import MultivariateFisherNCHypergeometric as MFNCH

ENGINES = st.sampled_from(["logspace", "fft"])


@st.composite
def urns(draw):
    c = draw(st.integers(2, 5))
    population = draw(st.lists(st.integers(0, 25), min_size=c, max_size=c))
    population[0] = max(population[0], 1)
    draws = draw(st.integers(0, sum(population)))
    logits = draw(st.lists(st.floats(-8, 8), min_size=c, max_size=c))
    return (torch.tensor(population), draws, torch.tensor(logits, dtype=torch.float64))


def _close(a, b, atol=1e-9):
    torch.testing.assert_close(a, b, rtol=1e-9, atol=atol)


PROFILE = settings(max_examples=40, deadline=None, derandomize=True)


@PROFILE
@given(urns(), st.floats(-50, 50), ENGINES)
def test_common_offset(urn, offset, engine):
    population, draws, logits = urn
    a = MFNCH(population, draws, logits=logits, engine=engine)
    b = MFNCH(population, draws, logits=logits + offset, engine=engine)
    _close(b.mean, a.mean)
    _close(b.entropy(), a.entropy())
    x = a.sample((5,))
    _close(b.log_prob(x), a.log_prob(x))


@PROFILE
@given(urns(), st.randoms(use_true_random=False), ENGINES)
def test_class_permutation(urn, rng, engine):
    population, draws, logits = urn
    order = list(range(len(population)))
    rng.shuffle(order)
    order = torch.tensor(order)
    a = MFNCH(population, draws, logits=logits, engine=engine)
    b = MFNCH(population[order], draws, logits=logits[order], engine=engine)
    _close(b.mean, a.mean[order])
    _close(b.variance, a.variance[order])
    _close(b.log_normalizer(), a.log_normalizer())
    x = a.sample((5,))
    _close(b.log_prob(x[:, order]), a.log_prob(x))


@PROFILE
@given(urns(), ENGINES)
def test_complement(urn, engine):
    population, draws, logits = urn
    total = int(population.sum())
    a = MFNCH(population, draws, logits=logits, engine=engine)
    b = MFNCH(population, total - draws, logits=-logits, engine=engine)
    _close(b.mean, population.double() - a.mean)
    _close(b.variance, a.variance)
    _close(b.entropy(), a.entropy())
    x = a.sample((5,))
    _close(b.log_prob(population - x), a.log_prob(x))


@PROFILE
@given(urns(), ENGINES)
def test_point_masses(urn, engine):
    population, _, logits = urn
    for draws, point in ((0, torch.zeros_like(population)), (int(population.sum()), population)):
        d = MFNCH(population, draws, logits=logits, engine=engine)
        _close(d.mean, point.double())
        _close(d.entropy(), torch.tensor(0.0, dtype=torch.float64))
        _close(d.log_prob(point), torch.tensor(0.0, dtype=torch.float64))
        assert (d.sample((3,)) == point).all()
        assert (d.rsample((3,)) == point.double()).all()
        assert (d.rsample((3,), gradient="gumbel", temperature=0.5) == point.double()).all()
