"""The two engines against each other, their samplers against exact marginals, and the
engine-specific paths (``auto``, the memory guard, atypical sampler rows)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from goodness_of_fit import any_rejected, chisquare_pvalue, marginal_pvalues

from diffhypergeom import MergedFisherNCHypergeometric as Merged
from diffhypergeom import MultivariateFisherNCHypergeometric as MFNCH
from diffhypergeom.numerics.engines import FFTEngine, LogspaceEngine, choose
from diffhypergeom.numerics.special import log_binomial

ENGINES = ("logspace", "fft")


def _random_urns(seed: int) -> list[tuple[list[int], int, list[float]]]:
    """Urns with zero weights, empty classes, n in {0, N - 1, N}, logits spanning +-30."""
    rng = np.random.default_rng(seed)
    urns = []
    for _ in range(12):
        c = int(rng.integers(2, 6))
        m = rng.integers(0, 60, size=c).tolist()
        m[0] = max(m[0], 1)
        total = sum(m)
        n = int(rng.choice([0, 1, total // 3, total // 2 + 1, total - 1, total]))
        logits = rng.uniform(-30, 30, size=c).tolist()
        urns.append((m, n, logits))
    urns.append(([40, 0, 25, 60], 50, [1.0, 0.0, -2.0, 0.5]))
    urns.append(([1000, 800, 1200], 1700, [0.3, -0.4, 0.1]))
    return urns


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float, atol: float = 0.0) -> None:
    torch.testing.assert_close(a, b, rtol=rtol, atol=atol)


@pytest.mark.parametrize("urn", _random_urns(0), ids=lambda u: f"m={u[0]},n={u[1]}")
def test_engines_agree(urn):
    population, draws, logits = urn
    results = {}
    for engine in ENGINES:
        theta = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
        d = MFNCH(torch.tensor(population), draws, logits=theta, engine=engine)
        assert d.engine_name == engine
        normalizer = d.log_normalizer()
        entropy = d.entropy()
        gradient, entropy_gradient = (
            torch.autograd.grad(normalizer, theta, retain_graph=True)[0],
            torch.autograd.grad(entropy, theta)[0])
        x = MFNCH(torch.tensor(population), draws, logits=theta.detach(),
                  engine="logspace").sample((20,), permute=True)
        results[engine] = {
            "A": normalizer.detach(), "H": entropy.detach(), "grad": gradient,
            "grad_H": entropy_gradient, "mean": d.mean.detach(), "var": d.variance.detach(),
            "marginals": [d.marginal(i).probs.detach() for i in range(len(population))],
            "dist": d, "x": x,
        }
    a, b = results["logspace"], results["fft"]
    _close(b["A"], a["A"], rtol=1e-10, atol=1e-10)
    _close(b["H"], a["H"], rtol=1e-10, atol=1e-10)
    _close(b["grad"], a["grad"], rtol=1e-10, atol=1e-9)
    _close(b["grad_H"], a["grad_H"], rtol=1e-9, atol=1e-9)
    _close(b["mean"], a["mean"], rtol=1e-10, atol=1e-9)
    _close(b["var"], a["var"], rtol=1e-9, atol=1e-9)
    for pa, pb in zip(a["marginals"], b["marginals"], strict=True):
        _close(pb, pa, rtol=0, atol=1e-12)
    x = a["x"]
    _close(b["dist"].log_prob(x), a["dist"].log_prob(x), rtol=1e-10, atol=1e-10)
    other = torch.tensor(logits, dtype=torch.float64).flip(0)
    kls = [torch.distributions.kl_divergence(
        results[e]["dist"], MFNCH(torch.tensor(population), draws, logits=other, engine=e))
        for e in ENGINES]
    _close(kls[1].detach(), kls[0].detach(), rtol=1e-8, atol=1e-9)


def test_batched_urns_of_different_sizes_and_float32():
    population = torch.tensor([[5, 7, 4], [500, 300, 900], [0, 40, 3]])
    draws = torch.tensor([8, 1000, 20])
    logits = torch.tensor([[0.0, 1.0, -0.7], [0.2, -0.3, 0.4], [1.0, 2.0, -1.0]])
    for dtype in (torch.float64, torch.float32):
        out = {e: MFNCH(population, draws, logits=logits.to(dtype), engine=e) for e in ENGINES}
        tol = 1e-10 if dtype == torch.float64 else 1e-6
        assert out["fft"].mean.dtype == dtype
        _close(out["fft"].mean, out["logspace"].mean, rtol=tol, atol=tol)
        _close(out["fft"].log_normalizer(), out["logspace"].log_normalizer(), rtol=tol)
        _close(out["fft"].entropy(), out["logspace"].entropy(), rtol=tol, atol=tol)


def test_conditional_rows_agree_with_their_gradients():
    """The samplers walk the engines' conditional rows: same rows and the same gradients, so
    both engines give the same relaxed estimator."""
    population = torch.tensor([[60, 80, 50, 70]])
    draws = torch.tensor([120])
    theta = torch.tensor([[0.0, -0.5, -1.0, -0.2]], dtype=torch.float64)
    rows = torch.arange(60, 121)  # b = 0, r = 60..120
    weights = torch.rand(61, 61, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    grads, tables = [], []
    for engine in (LogspaceEngine, FFTEngine):
        t = theta.clone().requires_grad_()
        window = engine(population, draws, t).conditional(1, rows)
        dense = window.dense(61).exp()
        grads.append(torch.autograd.grad((dense * weights).sum(), t)[0])
        tables.append(dense.detach())
    _close(tables[1], tables[0], rtol=0, atol=1e-12)
    _close(grads[1], grads[0], rtol=1e-9, atol=1e-10)


def test_atypical_rows_are_resolved_at_their_own_saddle_point():
    """A row many standard deviations from where the global tilt is accurate (r far in a tail)
    is recomputed from its own saddle point, not returned inaccurate."""
    population = torch.tensor([[400, 500, 300]])
    draws = torch.tensor([600])
    theta = torch.tensor([[0.0, -0.3, 0.2]], dtype=torch.float64)
    fft = FFTEngine(population, draws, theta)
    reference = LogspaceEngine(population, draws, theta)
    rows = torch.tensor([150, 400, 700 - 2])  # r = 150 and 598: far below the suffix mean ~ 440
    rows = rows[rows <= 600]
    got = fft.conditional(1, rows).dense(501).exp()
    want = reference.conditional(1, rows).dense(501).exp()
    _close(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("engine", ENGINES)
def test_samplers_match_exact_marginals_with_power(engine):
    """Chi-square per class (BH at 0.01) of `sample` and `rsample(gradient="gumbel")` against the
    exact marginals, and the same test rejects the merged sampler (the power check)."""
    torch.manual_seed(0)
    population = torch.tensor([300, 500, 200, 400])
    logits = torch.tensor([0.0, math.log(4.0), -0.5, 0.3], dtype=torch.float64)
    d = MFNCH(population, 600, logits=logits, engine=engine)
    marginals = [d.marginal(i).probs.numpy() for i in range(4)]
    draws = {
        "sample": d.sample((20_000,)).long(),
        "rsample": d.rsample((20_000,), gradient="gumbel", temperature=0.5).long(),
        "sample, random order": d.sample((20_000,), permute=True).long(),
    }
    for name, x in draws.items():
        assert (x.sum(-1) == 600).all(), name
        assert not any_rejected(marginal_pvalues(x.numpy(), marginals), 0.01), name
    merge = Merged(population, 600, logits=logits, engine=engine).sample((20_000,)).long()
    assert any_rejected(marginal_pvalues(merge.numpy(), marginals), 0.01)


def test_fft_sampler_on_a_large_urn():
    """c = 30 classes of 2,000 balls (N = 60,000), n = 20,000: chi-square of the FFT sampler's
    class marginals against the FFT marginals (themselves checked against logspace above)."""
    torch.manual_seed(1)
    population = torch.full((30,), 2000)
    logits = torch.linspace(-1.0, 1.0, 30, dtype=torch.float64)
    d = MFNCH(population, 20_000, logits=logits, engine="fft")
    x = d.sample((4000,)).long()
    assert (x.sum(-1) == 20_000).all()

    def pvalue(i: int, counts: torch.Tensor) -> float:
        offset, log_probs = d.log_marginal(i)
        p = log_probs.exp().numpy()
        index = (counts - offset).numpy()
        assert index.min() >= 0 and index.max() < p.size  # every draw inside the window
        return chisquare_pvalue(np.bincount(index, minlength=p.size), p)

    assert not any_rejected([pvalue(i, x[:, i]) for i in (0, 14, 29)], 0.01)
    # power: the same test sees a sampler whose class is off by a third of a standard deviation
    shift = math.ceil(float(d.variance[14].sqrt()) / 3)
    assert pvalue(14, x[:, 14] + shift) < 1e-3


def test_auto_takes_the_cheaper_engine():
    assert MFNCH(torch.tensor([200, 200, 200]), 180, logits=torch.zeros(3)).engine_name == \
        "logspace"
    assert MFNCH(torch.tensor([10, 10]), 10, logits=torch.zeros(256, 2)).engine_name == \
        "logspace"
    assert MFNCH(torch.full((100,), 1000), 10_000, logits=torch.zeros(100)).engine_name == "fft"
    assert choose(torch.tensor([[10**6, 10**6]]), torch.tensor([10**6]), torch.zeros(1, 2)) \
        == "fft"
    # complement: n = N - 5 is as easy as n = 5
    assert choose(torch.tensor([[10**6, 10**6]]), torch.tensor([2 * 10**6 - 5]),
                  torch.zeros(1, 2)) == "logspace"


def test_logspace_that_cannot_fit_says_so_before_allocating():
    with pytest.raises(ValueError, match=r"engine='logspace' would need about .* GiB.*'fft'"):
        MFNCH(torch.tensor([10**6, 10**6]), 10**6, logits=torch.zeros(2), engine="logspace")
    with pytest.raises(ValueError, match="engine must be one of"):
        MFNCH(torch.tensor([3, 3]), 2, logits=torch.zeros(2), engine="gpu")


def test_huge_urn_two_classes():
    """m = [10^6, 10^6]: n = 10^6 and n = 2*10^6 - 5 in milliseconds (mean sums to n, the law
    is symmetric under swapping the classes with inverted odds)."""
    for n in (10**6, 2 * 10**6 - 5):
        d = MFNCH(torch.tensor([10**6, 10**6]), n, logits=torch.tensor([0.0, 0.3],
                                                                          dtype=torch.float64))
        swapped = MFNCH(torch.tensor([10**6, 10**6]), n,
                        logits=torch.tensor([0.3, 0.0], dtype=torch.float64))
        _close(d.mean.sum(), torch.tensor(float(n), dtype=torch.float64), rtol=1e-13)
        _close(d.mean, swapped.mean.flip(0), rtol=1e-12)
        x = torch.tensor([n // 2 + 1, n - n // 2 - 1])
        _close(d.log_prob(x), swapped.log_prob(x.flip(0)), rtol=1e-12)


def test_log_binomial_exact_for_huge_m():
    for m, k in [(10**12, 5), (2**50, 3), (10**12, 10**12 - 2), (10**6, 5 * 10**5), (29, 13)]:
        value = log_binomial(torch.tensor(float(m), dtype=torch.float64),
                             torch.tensor(float(k), dtype=torch.float64))
        assert abs(float(value) - math.log(math.comb(m, k))) <= 1e-13 * math.log(math.comb(m, k))


def test_log_prob_huge_population_small_draw():
    """m = [10^12, 10^12], n = 5: log_prob exact (it was off by 1e-3 through lgamma)."""
    m = 10**12
    d = MFNCH(torch.tensor([m, m]), 5, logits=torch.zeros(2, dtype=torch.float64))
    total = sum(math.comb(m, k) * math.comb(m, 5 - k) for k in range(6))
    want = math.log(math.comb(m, 2) * math.comb(m, 3)) - math.log(total)
    assert abs(float(d.log_prob(torch.tensor([2, 3]))) - want) < 1e-12


@pytest.mark.parametrize("engine", ENGINES)
def test_detailed_draws_of_a_complemented_urn(engine):
    """n > N/2 is sampled as N - n with inverted weights: the one-hot vectors must still be those
    of the user's counts, and the draw's log-probability the exact one."""
    torch.manual_seed(0)
    population = torch.tensor([5, 7, 4])
    d = MFNCH(population, 12, logits=torch.tensor([0.0, 1.0, -0.7], dtype=torch.float64),
              engine=engine)
    draw = d.rsample_detailed((50,), gradient="gumbel", temperature=0.5)
    counts = (draw.one_hot * torch.arange(8, dtype=torch.float64)).sum(-1)
    _close(counts, draw.counts, rtol=0, atol=1e-12)
    _close(draw.one_hot.sum(-1), torch.ones(50, 3, dtype=torch.float64), rtol=0, atol=1e-12)
    _close(draw.log_prob, d.log_prob(draw.counts), rtol=1e-12, atol=1e-12)


def test_covariance_matrix_agrees():
    theta = torch.tensor([0.0, 1.0, -0.7, 0.4], dtype=torch.float64)
    population = torch.tensor([50, 70, 40, 30])
    covariances = [MFNCH(population, 90, logits=theta, engine=e).covariance_matrix
                   for e in ENGINES]
    _close(covariances[1], covariances[0], rtol=1e-10, atol=1e-10)
    _close(covariances[1].sum(-1), torch.zeros(4, dtype=torch.float64), rtol=0, atol=1e-10)
