"""Every urn law across the envelope the guide states ("Where each law is exact"), generated
by hypothesis: zeros in populations and weights, logits from a few units to 1e3 apart and
beyond, float32 and float64, batches made by ``expand``. For each urn: draws lie in the
support, the probabilities sum to one over the support, the mean equals the enumerated one,
its gradient is finite and agrees with one-sided finite differences, and bad input gets a named
error at once.

Fixed seed (``derandomize``); the CI profile runs a few dozen urns per law (under a minute),
``pytest --hypothesis-profile=long tests/test_envelope.py`` many more (``tests/conftest.py``).
"""

from __future__ import annotations

import time

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from diffhypergeom import MultivariateFisherNCHypergeometric as MFNCH
from diffhypergeom import MultivariateWalleniusNCHypergeometric as MWNCH
from diffhypergeom.subsets import gumbel_top_k, k_subset

LAWS = ("fisher", "fisher-weights", "wallenius", "k_subset", "gumbel_top_k")
SCALES = (0.5, 5.0, 50.0, 1e3, 1e4)


@st.composite
def urns(draw, law: str):
    """(population [c], draws, logits [c] float64, dtype): unit urns for the subset laws."""
    subset = law in ("k_subset", "gumbel_top_k")
    c = draw(st.integers(1, 6 if subset else 4))
    population = [1] * c if subset else draw(
        st.lists(st.integers(0, 6), min_size=c, max_size=c))
    # weights cannot express logits 1e3 apart (e^-1000 is zero): they get the smaller scales
    scale = draw(st.sampled_from(SCALES[:2] if law == "fisher-weights" else SCALES))
    logits = draw(st.lists(st.floats(-1, 1), min_size=c, max_size=c))
    logits = [scale * v for v in logits]
    if law == "fisher-weights":  # some weights exactly zero
        zero = draw(st.lists(st.booleans(), min_size=c, max_size=c))
        logits = [float("-inf") if z else v for z, v in zip(zero, logits, strict=True)]
    drawable = sum(m for m, v in zip(population, logits, strict=True) if v > float("-inf"))
    draws = draw(st.integers(0, drawable))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    return population, draws, logits, dtype


def build(law: str, urn, logits: torch.Tensor | None = None):
    population, draws, values, dtype = urn
    theta = torch.tensor(values, dtype=dtype) if logits is None else logits
    if law == "fisher":
        return MFNCH(torch.tensor(population), draws, logits=theta)
    if law == "fisher-weights":  # weights relative to the largest (only ratios matter)
        top = theta[torch.isfinite(theta)].max() if bool(torch.isfinite(theta).any()) else 0
        return MFNCH(torch.tensor(population), draws, weights=(theta - top).exp())
    if law == "wallenius":
        return MWNCH(torch.tensor(population), draws, logits=theta)
    return (k_subset if law == "k_subset" else gumbel_top_k)(theta, draws)


def _tolerance(dtype: torch.dtype) -> float:
    return 1e-9 if dtype == torch.float64 else 2e-4


@pytest.mark.parametrize("law", LAWS)
@given(data=st.data())
def test_draws_probabilities_and_means(law, data):
    urn = data.draw(urns(law))
    population, draws, values, dtype = urn
    d = build(law, urn)
    tol = _tolerance(dtype)
    m = torch.tensor(population, dtype=torch.float64)
    zero = torch.tensor([v == float("-inf") for v in values])
    x = d.sample((64,)).to(torch.float64)
    assert bool((x.sum(-1) == draws).all()) and bool(((x >= 0) & (x <= m)).all())
    assert bool((x[:, zero] == 0).all())
    points = d.enumerate_support(expand=False)
    probs = d.log_prob(points).to(torch.float64).exp()
    assert abs(float(probs.sum()) - 1) <= 10 * tol
    mean = (probs.unsqueeze(-1) * points.to(torch.float64)).sum(0)
    torch.testing.assert_close(d.mean.to(torch.float64), mean, rtol=100 * tol,
                               atol=100 * tol * max(1.0, float(m.max())))
    batch = d.expand((2,))
    assert batch.sample((3,)).shape == (3, 2, len(population))
    torch.testing.assert_close(batch.mean[1], d.mean)


@pytest.mark.parametrize("law", LAWS)
@given(data=st.data())
def test_mean_gradients_are_finite_and_one_sided_differences_agree(law, data):
    urn = data.draw(urns(law))
    population, draws, values, _ = urn
    urn = (population, draws, values, torch.float64)
    theta = torch.tensor(values, dtype=torch.float64)
    finite = torch.isfinite(theta)
    weights = torch.tensor([1.0 if f else 0.0 for f in finite.tolist()], dtype=torch.float64)
    for j in range(len(values)):
        if not finite[j]:
            continue
        point = theta.clone().requires_grad_()
        (build(law, urn, point).mean * weights).sum().backward()
        assert bool(torch.isfinite(point.grad).all())
        h = 1e-6
        step = theta.clone()
        step[j] += h
        difference = float(((build(law, urn, step).mean - build(law, urn, theta).mean)
                            * weights).sum()) / h
        assert abs(float(point.grad[j]) - difference) <= 1e-4 * (1 + abs(difference))


BAD = {
    "negative population": lambda: MFNCH(torch.tensor([-1, 2]), 1, logits=torch.zeros(2)),
    "draws above the urn": lambda: MWNCH(torch.tensor([1, 2]), 4, logits=torch.zeros(2)),
    "NaN logits": lambda: MFNCH(torch.tensor([1, 2]), 1, logits=torch.tensor([0.0, float("nan")])),
    "negative weights": lambda: MFNCH(torch.tensor([1, 2]), 1, weights=torch.tensor([-1.0, 1.0])),
    "k above N": lambda: k_subset(torch.zeros(3), 4),
    "shapes that do not broadcast": lambda: MFNCH(torch.tensor([1, 2, 3]), 1,
                                                  logits=torch.zeros(2)),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_named_at_once(case):
    start = time.perf_counter()
    with pytest.raises((ValueError, TypeError)) as error:
        BAD[case]()
    assert time.perf_counter() - start < 5
    assert any(name in str(error.value) for name in ("population", "draws", "logits",
                                                     "weights", "k ", "k must", "classes"))


@st.composite
def partitions(draw):
    """(size logits [K], element logits [N], dtype) over the same scales."""
    blocks, elements = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    scale = draw(st.sampled_from(SCALES))
    size = [scale * v for v in draw(st.lists(st.floats(-1, 1), min_size=blocks,
                                              max_size=blocks))]
    element = [scale * v for v in draw(st.lists(st.floats(-1, 1), min_size=elements,
                                                 max_size=elements))]
    return size, element, draw(st.sampled_from([torch.float32, torch.float64]))


@given(partitions())
def test_random_partitions_across_the_envelope(case):
    """Labels in 0..K-1, log_prob summing to one over all K^N labellings, and a finite gradient
    of it in both logits."""
    import itertools

    from diffhypergeom import RandomPartition

    size, element, dtype = case
    size_logits = torch.tensor(size, dtype=dtype, requires_grad=True)
    element_logits = torch.tensor(element, dtype=dtype, requires_grad=True)
    d = RandomPartition(size_logits, element_logits)
    blocks, elements = len(size), len(element)
    labels = d.sample((32,))
    assert bool(((labels >= 0) & (labels < blocks) & (labels == labels.round())).all())
    every = torch.tensor(list(itertools.product(range(blocks), repeat=elements)), dtype=dtype)
    log_p = d.log_prob(every)
    assert abs(float(log_p.to(torch.float64).exp().sum()) - 1) <= 10 * _tolerance(dtype)
    (log_p.exp() * torch.arange(len(every), dtype=dtype)).sum().backward()
    for logits in (size_logits, element_logits):  # None: unused (one block), a zero gradient
        assert logits.grad is None or bool(torch.isfinite(logits.grad).all())
