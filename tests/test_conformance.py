"""Every public configuration describes one law: its draws, its ``log_prob``, its moments and its
entropy agree (issue 18's conformance table).

Each configuration draws ``N`` samples with a fixed seed on small urns whose support can be
enumerated. Checks, per configuration:

- the sample mean is within 5 standard errors (``sqrt(variance / N)``) of ``.mean``;
- a chi-square test of the draws against ``exp(log_prob)`` over the enumerated support (sparse
  cells pooled) has ``p > 1e-4`` (about 50 configurations: a family-wise false alarm rate of
  0.5% for the seeds, which are fixed);
- ``-mean(log_prob(own draws))`` is within 5 standard errors of ``entropy()``;
- ``exp(log_prob)`` sums to 1 over ``enumerate_support``.

The power check scores the merged law's draws with the Fisher law: the chi-square rejects it and
the entropy check fails, so these tests fail if a sampler draws from another law than the one
its ``log_prob`` describes.
"""

from __future__ import annotations

import functools
import math
import zlib

import numpy as np
import pytest
import torch
from goodness_of_fit import chisquare_pvalue

from diffhypergeom import MergedFisherNCHypergeometric as Merged
from diffhypergeom import MultivariateFisherNCHypergeometric as MFNCH
from diffhypergeom import MultivariateWalleniusNCHypergeometric as Wallenius
from diffhypergeom import RelaxedMultivariateFisherNCHypergeometric as Relaxed
from diffhypergeom.subsets import k_subset

N = 4000
F64 = torch.float64
URNS = {
    "small": ([5, 7, 4], 8, [1.0, 4.0, 0.25]),
    "complemented": ([5, 7, 4], 12, [1.0, 4.0, 0.25]),  # n > N/2: computed as N - n
    "zero weight": ([5, 7, 4, 3], 8, [1.0, 4.0, 0.0, 0.5]),
    "nine classes": ([2, 3, 1, 2, 3, 1, 2, 2, 1], 7,  # c >= 8: the log-depth tree sampler
                     [1.0, 0.5, 2.0, 1.5, 0.3, 4.0, 1.0, 0.7, 2.5]),
}


def _fisher(urn: str, engine: str = "auto") -> MFNCH:
    population, draws, weights = URNS[urn]
    return MFNCH(torch.tensor(population), draws, weights=torch.tensor(weights, dtype=F64),
                 engine=engine)


def _merged(urn: str) -> Merged:
    population, draws, weights = URNS[urn]
    return Merged(torch.tensor(population), draws, weights=torch.tensor(weights, dtype=F64))


def _wallenius(urn: str) -> Wallenius:
    population, draws, weights = URNS[urn]
    return Wallenius(torch.tensor(population), draws, weights=torch.tensor(weights, dtype=F64))


def _pyro_fisher(urn: str):
    pyro_module = pytest.importorskip("diffhypergeom.pyro")
    population, draws, weights = URNS[urn]
    return pyro_module.MultivariateFisherNCHypergeometric(
        torch.tensor(population), draws, weights=torch.tensor(weights, dtype=F64))


# name -> (law factory, draw); every draw is a public way of getting values of that law
CONFIGS = {
    "sample": (_fisher, lambda d: d.sample((N,))),
    "sample, logspace": (functools.partial(_fisher, engine="logspace"),
                         lambda d: d.sample((N,))),
    "sample, fft": (functools.partial(_fisher, engine="fft"), lambda d: d.sample((N,))),
    "sample, permuted": (_fisher, lambda d: d.sample((N,), permute=True)),
    "rsample, mean gradient": (_fisher, lambda d: d.rsample((N,))),
    "rsample, gumbel": (_fisher, lambda d: d.rsample((N,), gradient="gumbel",
                                                     temperature=0.5)),
    "rsample, gumbel, fixed order": (_fisher, lambda d: d.rsample(
        (N,), gradient="gumbel", permute=False)),
    "rsample, gumbel, coupled": (_fisher, lambda d: d.rsample(
        (N,), gradient="gumbel", couple_rows=True)),
    "rsample, gumbel-rao": (_fisher, lambda d: d.rsample((N,), gradient="gumbel-rao",
                                                         rao_samples=2)),
    "rsample_detailed": (_fisher, lambda d: d.rsample_detailed((N,)).counts),
    "merged sample": (_merged, lambda d: d.sample((N,))),
    "merged rsample": (_merged, lambda d: d.rsample((N,), temperature=0.5)),
    "pyro call": (_pyro_fisher, lambda d: d.expand((N,))()),
    "wallenius sample": (_wallenius, lambda d: d.sample((N,))),
    "wallenius rsample": (_wallenius, lambda d: d.rsample((N,))),
}
CASES = [(config, urn) for config in CONFIGS for urn in URNS
         if not (config.startswith("merged") and urn == "nine classes")]


@functools.cache
def _run(config: str, urn: str) -> tuple:
    """The law, its draws ``[N, c]`` and their log-probabilities (computed once per case, with
    a seed of its own)."""
    factory, draw = CONFIGS[config]
    torch.manual_seed(zlib.crc32(f"{config}|{urn}".encode()))
    law = factory(urn)
    x = draw(law).detach()
    return law, x, law.log_prob(x).detach()


def _support_probs(law) -> tuple[dict, np.ndarray]:
    points = law.enumerate_support()
    probs = law.log_prob(points).exp().numpy()
    return {tuple(p): j for j, p in enumerate(points.long().tolist())}, probs


@pytest.mark.parametrize("config,urn", CASES)
def test_sample_mean_is_mean(config, urn):
    law, x, _ = _run(config, urn)
    assert x.dtype == law.logits.dtype and bool((x.sum(-1) == law.draws).all())
    error = (x.mean(0) - law.mean).abs()
    tolerance = 5 * (law.variance / N).sqrt() + 1e-9
    assert bool((error <= tolerance).all()), (error, tolerance)


@pytest.mark.parametrize("config,urn", CASES)
def test_draws_follow_log_prob(config, urn):
    law, x, _ = _run(config, urn)
    index, probs = _support_probs(law)
    assert math.isclose(probs.sum(), 1.0, abs_tol=1e-9)
    cells = np.array([index[tuple(row)] for row in x.long().tolist()])
    assert chisquare_pvalue(np.bincount(cells, minlength=len(probs)), probs) > 1e-4


@pytest.mark.parametrize("config,urn", CASES)
def test_log_prob_of_own_draws_is_minus_entropy(config, urn):
    law, _, log_prob = _run(config, urn)
    assert bool(torch.isfinite(log_prob).all())
    spread = float(log_prob.std()) / math.sqrt(N)
    assert abs(float(-log_prob.mean()) - float(law.entropy())) <= 5 * spread + 1e-9


def test_the_checks_reject_draws_of_another_law():
    """Power: the merged law's draws scored with the Fisher law fail the chi-square and the
    entropy check (the merged sampler with the exact ``log_prob``, as ``method="merge"`` was)."""
    law = _fisher("small")
    _, x, _ = _run("merged sample", "small")
    index, probs = _support_probs(law)
    cells = np.array([index[tuple(row)] for row in x.long().tolist()])
    assert chisquare_pvalue(np.bincount(cells, minlength=len(probs)), probs) < 1e-4
    log_prob = law.log_prob(x)
    spread = float(log_prob.std()) / math.sqrt(N)
    assert abs(float(-log_prob.mean()) - float(law.entropy())) > 5 * spread
    assert bool(((x.mean(0) - law.mean).abs() > 5 * (law.variance / N).sqrt()).any())


def test_k_subsets_conform():
    """The k-subset law (``population = ones``): draws, marginals, log_prob and entropy."""
    torch.manual_seed(0)
    d = k_subset(torch.tensor([1.0, 2.0, 3.0, 4.0, 0.5, 1.5], dtype=F64).log(), 3)
    x = d.rsample((N,)).detach()
    assert bool(((x.mean(0) - d.mean).abs() <= 5 * (d.variance / N).sqrt()).all())
    index, probs = _support_probs(d)
    cells = np.array([index[tuple(row)] for row in x.long().tolist()])
    assert chisquare_pvalue(np.bincount(cells, minlength=len(probs)), probs) > 1e-4


@pytest.mark.parametrize("law", [_fisher, _merged, _wallenius])
def test_enumerate_support_sums_to_one_in_a_batch(law):
    d = law("small").expand((2, 3))
    points = d.enumerate_support()
    assert points.shape[1:] == (2, 3, 3) and points.dtype == d.logits.dtype
    total = torch.logsumexp(d.log_prob(points), 0)
    torch.testing.assert_close(total, torch.zeros(2, 3, dtype=F64), atol=1e-12, rtol=0)


def _relaxed(urn: str) -> Relaxed:
    population, draws, weights = URNS[urn]
    return Relaxed(torch.tensor(population), draws, weights=torch.tensor(weights, dtype=F64),
                   temperature=0.5)


@pytest.mark.parametrize("law", [_fisher, _merged, _relaxed, _pyro_fisher, _wallenius])
def test_shapes_under_expand_sample_shape_and_batch(law):
    d = law("small")
    batched = d.expand((4, 2))
    assert type(batched) is type(d) and batched.batch_shape == (4, 2)
    for value in (batched.sample((5,)), batched.rsample((5,))):
        assert value.shape == (5, 4, 2, 3) and value.dtype == F64
        assert bool((value.sum(-1) - 8).abs().max() < 1e-9)
        assert bool(batched.support.check(value).all())
    if isinstance(d, Relaxed):
        return
    x = batched.sample((5,))
    assert batched.log_prob(x).shape == (5, 4, 2)
    assert batched.log_prob(x[:, :1]).shape == (5, 4, 2)  # broadcasts against the batch
    assert batched.log_prob(x[0]).shape == (4, 2)
    assert batched.mean.shape == (4, 2, 3) and batched.entropy().shape == (4, 2)
    torch.testing.assert_close(batched.log_prob(x), d.log_prob(x))


def test_kl_broadcasts_batch_shapes():
    population, draws = torch.tensor([5, 7, 4]), 8
    p = MFNCH(population, draws, logits=torch.randn(3, 1, 3, dtype=F64))
    q = MFNCH(population, draws, logits=torch.randn(2, 3, dtype=F64))
    kl = torch.distributions.kl_divergence(p, q)
    assert kl.shape == (3, 2)
    for i in range(3):
        for j in range(2):
            single = torch.distributions.kl_divergence(
                MFNCH(population, draws, logits=p.logits[i, 0]),
                MFNCH(population, draws, logits=q.logits[j]))
            torch.testing.assert_close(kl[i, j], single)
    # the exponential-family identity against enumeration
    points = p.enumerate_support(expand=False)
    lp, lq = p.log_prob(points), q.log_prob(points)
    torch.testing.assert_close(kl, (lp.exp() * (lp - lq)).sum(0), atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("law", [_relaxed])
def test_relaxed_law_says_what_it_cannot_compute(law):
    d = law("small")
    x = d.rsample((3,))
    assert bool(d.support.check(x).all()) and not d.support.is_discrete
    assert not bool((x == x.round()).all())
    for member in (lambda: d.log_prob(x), lambda: d.mean, lambda: d.variance, d.entropy):
        with pytest.raises(NotImplementedError, match="closed form"):
            member()


POP = torch.tensor([5, 7, 4])
BAD_INPUTS = [
    # constructor
    (lambda: MFNCH(POP, 6), ValueError, "pass exactly one of logits or weights"),
    (lambda: MFNCH(POP, 6, logits=torch.zeros(3), weights=torch.ones(3)), ValueError,
     "pass exactly one of logits or weights"),
    (lambda: MFNCH(POP, 6, logits=torch.tensor([0.0, float("nan"), 0.0])), ValueError,
     "logits must not be NaN"),
    (lambda: MFNCH(POP, 6, logits=torch.tensor([0.0, float("inf"), 0.0])), ValueError,
     "logits must be finite"),
    (lambda: MFNCH(POP, 6, weights=torch.tensor([1.0, -1.0, 1.0])), ValueError,
     "weights must be >= 0"),
    (lambda: MFNCH(torch.tensor([5, -7, 4]), 6, logits=torch.zeros(3)), ValueError,
     "population must be non-negative"),
    (lambda: MFNCH(torch.tensor([5.5, 7, 4]), 6, logits=torch.zeros(3)), ValueError,
     "population must be integers"),
    (lambda: MFNCH(POP, 17, logits=torch.zeros(3)), ValueError,
     r"draws must be <= population.sum\(-1\)"),
    (lambda: MFNCH(POP, -1, logits=torch.zeros(3)), ValueError, "draws must be non-negative"),
    (lambda: MFNCH(POP, 6, logits=torch.zeros(4)), ValueError,
     "population has 3 classes .* logits/weights have 4"),
    (lambda: MFNCH(POP, torch.tensor([1, 2]), logits=torch.zeros(3, 3)), ValueError,
     "batch shapes do not broadcast"),
    (lambda: MFNCH(POP, 12, weights=torch.tensor([1.0, 0.0, 1.0])), ValueError,
     "infeasible urn"),
    (lambda: MFNCH(POP, 6, logits=torch.zeros(3), engine="gpu"), ValueError,
     "engine must be one of"),
    (lambda: MFNCH(POP, 6, logits=torch.zeros(3), max_support=0), ValueError,
     "max_support must be a positive integer"),
    (lambda: MFNCH(POP, 6, logits=torch.zeros(3), temperature=0.5), ValueError,
     "temperature applies only to gradient in"),
    (lambda: MFNCH(POP, 6, logits=torch.zeros(3), gradient="gumbel", temperature=0.0),
     ValueError, "temperature must be finite and > 0"),
    (lambda: MFNCH(POP, 6, logits=torch.zeros(3), gradient="straight"), ValueError,
     "gradient must be one of"),
    (lambda: Merged(POP, 6, logits=torch.zeros(3), gradient="mean"), ValueError,
     "gradient='mean' needs the law's exact mean"),
    (lambda: Relaxed(POP, 6, logits=torch.zeros(3), temperature=0.0), ValueError,
     "temperature must be finite and > 0"),
    (lambda: Relaxed(POP, 6, logits=torch.zeros(2, 3), temperature=torch.ones(3)),
     ValueError, r"temperature of shape \(3,\) does not broadcast"),
    # sampling keywords
    (lambda: MFNCH(POP, 6, logits=torch.zeros(3)).rsample(gradient="rao"), ValueError,
     "gradient must be one of"),
    (lambda: MFNCH(POP, 6, logits=torch.zeros(3)).rsample(temperature=0.5), ValueError,
     "temperature applies only to gradient in"),
    (lambda: MFNCH(POP, 6, logits=torch.zeros(3)).rsample(gradient="gumbel",
                                                          temperature=-1.0),
     ValueError, "temperature must be finite and > 0"),
    (lambda: MFNCH(POP, 6, logits=torch.zeros(3)).rsample(gradient="gumbel-rao",
                                                          rao_samples=0),
     ValueError, "rao_samples must be a positive int"),
    (lambda: MFNCH(POP, 6, logits=torch.zeros(3)).sample(permute="yes"), ValueError,
     "permute must be True or False"),
    (lambda: Merged(POP, 6, logits=torch.zeros(3)).rsample(gradient="mean"), ValueError,
     "gradient='mean' needs the law's exact mean"),
    # values
    (lambda: MFNCH(POP, 6, logits=torch.zeros(3)).log_prob(torch.tensor([1, 2])), ValueError,
     r"value must have shape \[..., 3\]"),
    (lambda: MFNCH(POP, 6, logits=torch.zeros(3)).log_prob(torch.tensor([6, 0, 0])),
     ValueError, "support"),
    (lambda: MFNCH(POP, 6, logits=torch.zeros(2, 3)).log_prob(torch.zeros(3, 3)), ValueError,
     "does not broadcast with batch_shape"),
    # members
    (lambda: MFNCH(POP, 6, logits=torch.zeros(3)).marginal(3), ValueError,
     r"class index i must be in \[0, 3\)"),
    (lambda: MFNCH([20] * 3, 25, logits=torch.zeros(3), max_support=100).enumerate_support(),
     ValueError, "306 points, above the limit of 100"),
    (lambda: Merged([200] * 6, 500, logits=torch.zeros(6)).mean, ValueError,
     "mean of the merged law is computed by summing over the support"),
    (lambda: torch.distributions.kl_divergence(MFNCH(POP, 6, logits=torch.zeros(3)),
                                               MFNCH(POP, 7, logits=torch.zeros(3))),
     ValueError, "same population and draws"),
]


@pytest.mark.parametrize("call,error,match", BAD_INPUTS)
def test_bad_inputs_say_what_is_wrong(call, error, match):
    with pytest.raises(error, match=match):
        call()
