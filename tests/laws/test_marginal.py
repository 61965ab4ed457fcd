"""``dist.marginal(i)`` (``UrnMarginal``) and ``dist.mode`` of both laws against independent
references: exact mpmath sums of exact probabilities (binomials for Fisher, the recursion over
the draws and the integral for Wallenius), brute-force enumeration of small urns, scipy where
it is accurate, and finite differences for the gradients.

Exactness is measured in log space: ``|log P_here - log P_mpmath|`` is the relative error of
the probability, required below 1e-10 at every point tried, tails of 1e-300 and far below
included."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from mpmath_urns import (
    fisher_marginal,
    fisher_pmf,
    log_tail,
    wallenius_logpmf,
    wallenius_marginal,
    wallenius_pmf,
)

from diffhypergeom import MultivariateFisherNCHypergeometric as Fisher
from diffhypergeom import MultivariateWalleniusNCHypergeometric as Wallenius
from diffhypergeom import UrnMarginal
from diffhypergeom.laws.topk import GumbelTopK
from diffhypergeom.subsets import k_subset

F64 = torch.float64
RELATIVE = 1e-10
LAWS = {"fisher": Fisher, "wallenius": Wallenius}


def _worst(got: torch.Tensor, want: list[float]) -> float:
    """Largest ``|log got - log want|`` (equal infinities agree)."""
    got = got.detach().double().numpy()
    want = np.array(want)
    same = got == want
    return float(np.max(np.abs(np.where(same, 0.0, got) - np.where(same, 0.0, want)),
                        initial=0.0))


def _check_tails(marginal: UrnMarginal, pmf: dict, values: list[int]) -> None:
    x = torch.tensor(values, dtype=F64)
    low, high = min(pmf), max(pmf)
    counts = range(low, high + 1)
    want_cdf = [log_tail(pmf, [k for k in counts if k <= v]) for v in values]
    want_sf = [log_tail(pmf, [k for k in counts if k > v]) for v in values]
    assert _worst(marginal.log_cdf(x), want_cdf) < RELATIVE
    assert _worst(marginal.log_sf(x), want_sf) < RELATIVE
    inside = [v for v in values if low <= v <= high]
    want = [log_tail(pmf, [v]) for v in inside]
    assert _worst(marginal.log_prob(torch.tensor(inside, dtype=F64)), want) < RELATIVE


# ---------------------------------------------------------------------------- two classes
FISHER_URNS = [  # (m1, m2, n, odds): deep tails on both sides
    (1000, 1000, 1000, 1.0),      # P(X <= 100) ~ 1e-280, P(X > 950) ~ 1e-480
    (500, 3000, 800, 0.05),
    (40, 60, 50, 7.5),
    (3, 5, 4, 1e-3),
    (2000, 200, 1500, 1e3),
]


@pytest.mark.parametrize("urn", FISHER_URNS)
def test_fisher_two_class_tails_are_exact_deep_in_both_tails(urn):
    m1, m2, n, odds = urn
    pmf = fisher_pmf(m1, m2, n, odds)
    low, high = min(pmf), max(pmf)
    marginal = Fisher(torch.tensor([m1, m2]), n, weights=torch.tensor([odds, 1.0], dtype=F64)
                      ).marginal(0)
    values = sorted({low - 1, low, low + 1, high - 1, high, high + 1,
                     *np.linspace(low, high, 9).round().astype(int).tolist()})
    _check_tails(marginal, pmf, values)
    if urn[:3] == (1000, 1000, 1000):
        assert float(marginal.log_cdf(100.0)) < math.log(1e-250)
        assert float(marginal.log_sf(950.0)) < math.log(1e-300) - 200


WALLENIUS_URNS = [  # (m1, m2, n, odds), exact by the recursion over the draws
    (150, 150, 150, 0.01),        # P(X >= 140) below 1e-300
    (60, 90, 70, 3.0),
    (12, 40, 30, 0.6),
    (5, 5, 5, 1.0),
    (80, 20, 60, 25.0),
]


@pytest.mark.parametrize("urn", WALLENIUS_URNS)
def test_wallenius_two_class_tails_are_exact_deep_in_both_tails(urn):
    m1, m2, n, odds = urn
    table = wallenius_pmf([m1, m2], n, [odds, 1.0])
    pmf = {x[0]: p for x, p in table.items()}
    low, high = min(pmf), max(pmf)
    marginal = Wallenius(torch.tensor([m1, m2]), n,
                         weights=torch.tensor([odds, 1.0], dtype=F64)).marginal(0)
    values = sorted({low - 1, low, low + 1, high - 1, high, high + 1,
                     *np.linspace(low, high, 9).round().astype(int).tolist()})
    _check_tails(marginal, pmf, values)
    if urn[0] == 150:
        assert float(marginal.log_sf(139.0)) < math.log(1e-300)


def test_the_class_order_and_the_second_class():
    """marginal(1) of [m1, m2] is the law of n - X_0."""
    for law in LAWS.values():
        d = law(torch.tensor([40, 25]), 30, weights=torch.tensor([2.0, 1.0], dtype=F64))
        x = torch.arange(4.0, 26.0, dtype=F64)
        torch.testing.assert_close(d.marginal(1).log_cdf(x), d.marginal(0).log_sf(29 - x),
                                   rtol=0, atol=1e-12)


def test_scipy_wallenius_logpmf_gives_minus_inf_where_the_value_is_finite():
    """The issue's case: scipy's logpmf is -inf at M = 20000, m = n = 10000, w = 3, x = 9990;
    the integral (mpmath, 20 digits) gives -7355.285342, and so does this library, and its
    upper tail P(X > 9990) agrees with the sum of the ten integrals above."""
    stats = pytest.importorskip("scipy.stats")
    assert stats.nchypergeom_wallenius.logpmf(9990, 20000, 10000, 10000, 3.0) == -math.inf
    marginal = Wallenius(torch.tensor([10000, 10000]), 10000,
                         weights=torch.tensor([3.0, 1.0], dtype=F64)).marginal(0)
    want = float(wallenius_logpmf([9990, 10], [10000, 10000], [3.0, 1.0]))
    assert abs(want - -7355.285342) < 1e-6
    assert abs(float(marginal.log_prob(9990)) - want) < RELATIVE * abs(want)
    terms = [float(wallenius_logpmf([k, 10000 - k], [10000, 10000], [3.0, 1.0]))
             for k in (9991, 9992, 9993, 10000)]
    got = marginal.log_prob(torch.tensor([9991.0, 9992.0, 9993.0, 10000.0], dtype=F64))
    assert _worst(got, terms) < 1e-9
    tail = float(marginal.log_sf(9990))
    assert tail == pytest.approx(float(torch.logsumexp(marginal.log_prob(
        torch.arange(9991.0, 10001.0, dtype=F64)), 0)), rel=0, abs=1e-12)


def test_a_wallenius_tail_that_is_not_log_concave():
    """The Wallenius increments can grow in a tail (not log-concave, so the walk's remainder
    bound uses only that the terms fall): its tails still match the recursion."""
    table = wallenius_pmf([3, 33], 25, [math.exp(4.0), 1.0])
    pmf = {x[0]: p for x, p in table.items()}
    logs = [float(np.log(float(pmf[k]))) for k in sorted(pmf)]
    assert np.diff(np.diff(logs)).max() > 1.0
    marginal = Wallenius(torch.tensor([3, 33]), 25,
                         weights=torch.tensor([math.exp(4.0), 1.0], dtype=F64)).marginal(0)
    _check_tails(marginal, pmf, [-1, 0, 1, 2, 3])


@pytest.mark.parametrize("law", sorted(LAWS))
def test_bulk_agrees_with_scipy(law):
    """scipy (BiasedUrn's code) is accurate in the bulk: cdf and sf within 1e-7 where both
    are above 1e-3."""
    stats = pytest.importorskip("scipy.stats")
    reference = {"fisher": stats.nchypergeom_fisher, "wallenius": stats.nchypergeom_wallenius}
    marginal = LAWS[law](torch.tensor([120, 300]), 150,
                         weights=torch.tensor([2.2, 1.0], dtype=F64)).marginal(0)
    x = np.arange(40, 90)
    for got, want in ((marginal.cdf(torch.tensor(x, dtype=F64)),
                       reference[law].cdf(x, 420, 120, 150, 2.2)),
                      (marginal.sf(torch.tensor(x, dtype=F64)),
                       reference[law].sf(x, 420, 120, 150, 2.2))):
        keep = want > 1e-3
        np.testing.assert_allclose(got.numpy()[keep], want[keep], rtol=1e-7)


# ---------------------------------------------------------------------------- more classes
@pytest.mark.parametrize("engine", ["logspace", "fft"])
def test_fisher_marginals_of_three_classes_are_exact(engine):
    population, draws, weights = [30, 25, 40], 45, [0.3, 2.0, 1.0]
    d = Fisher(torch.tensor(population), draws, weights=torch.tensor(weights, dtype=F64),
               engine=engine)
    for i in range(3):
        pmf = fisher_marginal(population, draws, weights, i)
        low, high = min(pmf), max(pmf)
        _check_tails(d.marginal(i), pmf, [low - 1, low, low + 2, (low + high) // 2, high - 3,
                                           high])


@pytest.mark.parametrize("engine", ["logspace", "fft"])
def test_a_deep_fisher_tail_of_three_classes(engine):
    """[300, 250, 400] drawing 450: class 0's tails P(X <= 0) ~ 1e-44 and P(X > 290) ~
    1e-230, against mpmath (the other classes' normaliser as a sum of products of
    binomials)."""
    mpmath = pytest.importorskip("mpmath")
    population, draws, weights = [300, 250, 400], 450, [0.3, 2.0, 1.0]
    with mpmath.workdps(40):
        w = [mpmath.mpf(v) for v in weights]
        rows = [[mpmath.binomial(m, k) * wi**k for k in range(m + 1)]
                for m, wi in zip(population, w, strict=True)]

        def rest(r):
            return sum(rows[1][y] * rows[2][r - y] for y in range(max(0, r - 400),
                                                                  min(250, r) + 1))
        terms = {k: rows[0][k] * rest(draws - k) for k in range(0, 301)}
        total = sum(terms.values())
        pmf = {k: v / total for k, v in terms.items()}
    marginal = Fisher(torch.tensor(population), draws, weights=torch.tensor(weights, dtype=F64),
                      engine=engine).marginal(0)
    assert float(marginal.log_cdf(0.0)) < math.log(1e-40)
    assert float(marginal.log_sf(290.0)) < math.log(1e-220)
    _check_tails(marginal, pmf, [0, 10, 73, 150, 250, 290])


def test_wallenius_marginals_of_three_classes_are_exact():
    population, draws, weights = [12, 9, 15], 16, [0.2, 3.0, 1.0]
    d = Wallenius(torch.tensor(population), draws, weights=torch.tensor(weights, dtype=F64))
    for i in range(3):
        pmf = wallenius_marginal(population, draws, weights, i)
        low, high = min(pmf), max(pmf)
        _check_tails(d.marginal(i), pmf, list(range(low - 1, high + 2)))


def test_wallenius_marginals_beyond_enumeration_say_so():
    """Three classes: a count whose other classes hold more than max_support count vectors is
    a ValueError (the table from the Fisher mixture is still there); the tail at 150 sums
    counts whose other classes hold at most 30, exactly."""
    d = Wallenius(torch.tensor([200, 200, 200]), 180,
                  weights=torch.tensor([1.0, 10.0, 1.0], dtype=F64),
                  max_support=50)
    marginal = d.marginal(1)
    assert marginal.probs.shape == (201,)
    assert float(marginal.log_sf(150.0)) == pytest.approx(
        math.log(float(marginal.probs[151:].sum())), abs=1e-8)
    with pytest.raises(ValueError, match="above the limit of 50"):
        marginal.log_cdf(100.0)


# ---------------------------------------------------------------------------- torch API
def test_icdf_is_the_smallest_count_reaching_q():
    """Against the cdf table, at random q and just below and above each cdf value (a q equal
    to a rounded cdf value could go either way)."""
    marginal = Fisher(torch.tensor([8, 11]), 9, weights=torch.tensor([1.7, 1.0], dtype=F64)
                      ).marginal(0)
    cdf = marginal.cdf(torch.arange(0.0, 9.0, dtype=F64))
    q = torch.cat([torch.tensor([1e-12, 0.5, 0.999999], dtype=F64), cdf[:-1] * (1 - 1e-9),
                   cdf[:-1] * (1 + 1e-9),
                   torch.rand(40, generator=torch.Generator().manual_seed(0), dtype=F64)])
    want = torch.tensor([float(int((cdf >= v).nonzero()[0])) for v in q.tolist()], dtype=F64)
    torch.testing.assert_close(marginal.icdf(q), want)
    ends = marginal.icdf(torch.tensor([0.0, 1.0], dtype=F64))
    assert ends.tolist() == [0.0, 8.0]  # the support's ends
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="q"):
            marginal.icdf(torch.tensor(bad))


def test_icdf_resolves_quantiles_near_one():
    """Above one half the quantile is found on P(X > k) <= 1 - q, so q = 1 - 1e-15 is not
    rounded to 1."""
    marginal = Fisher(torch.tensor([50, 50]), 50, weights=torch.tensor([1.0, 1.0], dtype=F64)
                      ).marginal(0)
    k = marginal.icdf(torch.tensor(1 - 1e-15, dtype=F64))
    assert float(marginal.log_sf(k)) <= math.log(1e-15) < float(marginal.log_sf(k - 1))
    assert int(marginal.icdf(torch.tensor(1.0, dtype=F64))) == 50


def test_values_outside_the_support():
    """log_prob: a ValueError with validation, -inf without; the tails are the step function
    at floor(value), 0 and 1 beyond the support, for any real value (infinities included)."""
    urn = dict(population=torch.tensor([5, 7]), draws=9,
               weights=torch.tensor([2.0, 1.0], dtype=F64))
    for law in LAWS.values():
        marginal = law(**urn).marginal(0)  # support 2..5
        for bad in (1.0, 6.0, 2.5):
            with pytest.raises(ValueError):
                marginal.log_prob(torch.tensor(bad, dtype=F64))
        quiet = law(**urn, validate_args=False).marginal(0)
        assert quiet.log_prob(torch.tensor([1.0, 2.5, 6.0], dtype=F64)).tolist() == [-math.inf] * 3
        x = torch.tensor([-math.inf, -3.0, 1.9, 2.0, 2.7, 4.99, 5.0, 8.0, math.inf], dtype=F64)
        cdf, sf = marginal.cdf(x), marginal.sf(x)
        assert cdf[:3].tolist() == [0.0] * 3 and cdf[-3:].tolist() == [1.0] * 3
        assert sf[:3].tolist() == [1.0] * 3 and sf[-3:].tolist() == [0.0] * 3
        torch.testing.assert_close(cdf[4], cdf[3])
        torch.testing.assert_close(cdf + sf, torch.ones_like(cdf))
        with pytest.raises(ValueError, match="NaN"):
            marginal.cdf(torch.tensor(math.nan))


def test_batches_of_urns_and_values_broadcast_as_in_torch():
    population = torch.tensor([[[10, 14]], [[20, 6]]]).expand(2, 3, 2)        # batch (2, 3)
    logits = torch.randn(3, 2, generator=torch.Generator().manual_seed(1), dtype=F64)
    draws = torch.tensor([8, 9, 10])
    for law in LAWS.values():
        d = law(population, draws, logits=logits)
        marginal = d.marginal(0)
        assert marginal.batch_shape == (2, 3) and marginal.event_shape == ()
        values = torch.arange(0.0, 12.0, dtype=F64).reshape(4, 1, 3)          # [4, 2, 3] out
        got = marginal.log_sf(values)
        assert got.shape == (4, 2, 3)
        for a in range(2):
            for b in range(3):
                one = law(population[a, b], draws[b], logits=logits[b]).marginal(0)
                torch.testing.assert_close(got[:, a, b], one.log_sf(values[:, 0, b]),
                                           rtol=0, atol=1e-12)
        assert marginal.icdf(torch.tensor(0.5, dtype=F64)).shape == (2, 3)
        assert marginal.mode.shape == (2, 3) and marginal.mean.shape == (2, 3)
        torch.testing.assert_close(marginal.mean, d.mean[..., 0])
        torch.testing.assert_close(marginal.variance, d.variance[..., 0])
        assert marginal.sample((5,)).shape == (5, 2, 3)
        # a repeated urn (expand) is computed once and laid out over its repeats
        wide = law(torch.tensor([10, 14]), 8, logits=logits[0]).expand((4,)).marginal(0)
        assert wide.log_cdf(torch.tensor([3.0, 4.0, 5.0, 6.0], dtype=F64)).shape == (4,)


def test_table_support_and_moments():
    for law in LAWS.values():
        d = law(torch.tensor([6, 4, 5]), 7, weights=torch.tensor([1.0, 2.0, 0.5], dtype=F64))
        x, p = d.enumerate_support(), d.log_prob(d.enumerate_support()).exp()
        for i in range(3):
            marginal = d.marginal(i)
            want = torch.zeros(int(d.population[i]) + 1, dtype=F64).index_add(
                0, x[:, i].long(), p)
            torch.testing.assert_close(marginal.probs, want, rtol=0, atol=1e-12)
            torch.testing.assert_close(marginal.logits.exp(), want, rtol=0, atol=1e-12)
            support = marginal.enumerate_support()
            torch.testing.assert_close(marginal.log_prob(support).exp(), want[want > 0])
            assert float((support * marginal.log_prob(support).exp()).sum()) == pytest.approx(
                float(marginal.mean), abs=1e-9)
            assert isinstance(marginal, UrnMarginal) and "class" in repr(marginal)
    mixed = Fisher(torch.tensor([[4, 5], [6, 5]]), 5, logits=torch.zeros(2, 2))
    with pytest.raises(ValueError, match="same support"):
        mixed.marginal(0).enumerate_support()


def test_float32_laws_answer_in_float32():
    marginal = Fisher(torch.tensor([30, 30]), 30, logits=torch.tensor([0.3, 0.0])).marginal(0)
    assert marginal.log_sf(torch.tensor(25.0)).dtype == torch.float32
    assert marginal.probs.dtype == torch.float32


# ---------------------------------------------------------------------------- gradients
def _fisher_closed_form(logits: torch.Tensor, m1: int, m2: int, n: int, x: int) -> torch.Tensor:
    """``log P(X_0 > x)`` of the univariate Fisher law as a plain logsumexp over its support."""
    k = torch.arange(max(0, n - m2), min(m1, n) + 1, dtype=F64)
    terms = (torch.lgamma(torch.tensor(m1 + 1.0, dtype=F64)) - torch.lgamma(k + 1)
             - torch.lgamma(m1 - k + 1) + torch.lgamma(torch.tensor(m2 + 1.0, dtype=F64))
             - torch.lgamma(n - k + 1) - torch.lgamma(m2 - n + k + 1)
             + k * logits[0] + (n - k) * logits[1])
    return torch.logsumexp(terms[k > x], 0) - torch.logsumexp(terms, 0)


def test_fisher_tail_gradient_equals_the_closed_form():
    logits = torch.tensor([0.4, -0.3], dtype=F64, requires_grad=True)
    for x in (5, 18, 30):
        got = Fisher(torch.tensor([35, 50]), 40, logits=logits).marginal(0).log_sf(float(x))
        want = _fisher_closed_form(logits, 35, 50, 40, x)
        g_got, = torch.autograd.grad(got, logits)
        g_want, = torch.autograd.grad(want, logits)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
        torch.testing.assert_close(g_got, g_want, rtol=0, atol=1e-10)


@pytest.mark.parametrize("law,population,draws", [
    ("wallenius", [30, 45], 35), ("fisher", [10, 12, 9], 14), ("wallenius", [5, 6, 4], 7)])
def test_tail_gradients_match_finite_differences(law, population, draws):
    base = torch.tensor([0.5, -0.2, 0.1][: len(population)], dtype=F64)
    x = torch.tensor([3.0, float(draws // 2), float(min(population[0], draws) - 2)], dtype=F64)

    def tails(logits):
        marginal = LAWS[law](torch.tensor(population), draws, logits=logits).marginal(0)
        return torch.cat([marginal.log_sf(x), marginal.log_cdf(x), marginal.log_prob(x[1:2])])

    logits = base.clone().requires_grad_()
    jacobian = torch.stack([torch.autograd.grad(v, logits, retain_graph=True)[0]
                            for v in tails(logits)])
    h = 1e-5
    for j in range(len(population)):
        step = torch.zeros_like(base)
        step[j] = h
        difference = (tails(base + step) - tails(base - step)) / (2 * h)
        torch.testing.assert_close(jacobian[:, j].detach(), difference, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------- modes
def _brute_modes(dist) -> tuple[tuple[int, ...], list[int]]:
    """The lexicographically largest most probable count vector (ties within 1e-9) and each
    class's largest most probable count, from the enumerated support."""
    x = dist.enumerate_support()
    log_p = dist.log_prob(x)
    top = x[(log_p - log_p.max()).abs() <= 1e-9]
    joint = max(tuple(int(v) for v in row) for row in top.tolist())
    marginals = []
    for i in range(x.shape[-1]):
        probs = torch.zeros(int(dist.population[i]) + 1, dtype=F64).index_add(
            0, x[:, i].long(), log_p.exp())
        best = probs.max()
        marginals.append(max(k for k in range(len(probs))
                             if abs(float(probs[k] / best) - 1) <= 1e-9))
    return joint, marginals


@pytest.mark.parametrize("law", sorted(LAWS))
def test_modes_match_brute_force_on_random_small_urns(law):
    """Both laws, 60 random urns of 2-4 classes (a third with equal weights: exact ties, where
    the lexicographically largest vector and the largest count are returned; some with a
    weight of zero)."""
    rng = random.Random(29)
    for _ in range(60):
        c = rng.choice([2, 3, 4])
        population = [rng.randint(0, 7) for _ in range(c)]
        if sum(population) == 0:
            continue
        draws = rng.randint(0, sum(population))
        if rng.random() < 0.3:
            weights = [1.0] * c
        else:
            weights = [round(math.exp(rng.gauss(0, 1.5)), 2) for _ in range(c)]
            if rng.random() < 0.2:
                weights[rng.randrange(c)] = 0.0
        drawable = sum(m for m, w in zip(population, weights, strict=True) if w > 0)
        if draws > drawable:
            continue
        d = LAWS[law](torch.tensor(population), draws, weights=torch.tensor(weights, dtype=F64))
        joint, marginals = _brute_modes(d)
        assert tuple(int(v) for v in d.mode.tolist()) == joint, (population, draws, weights)
        assert [int(d.marginal(i).mode) for i in range(c)] == marginals


def test_two_class_modes_agree_with_the_marginal_mode():
    for law in LAWS.values():
        d = law(torch.tensor([[900, 1300], [40, 40]]), torch.tensor([1000, 40]),
                logits=torch.tensor([[0.7, 0.0], [0.0, 0.0]], dtype=F64))
        torch.testing.assert_close(d.mode[..., 0], d.marginal(0).mode)
        torch.testing.assert_close(d.mode.sum(-1), d.draws.to(F64))
        assert d.mode[1].tolist() == [20.0, 20.0]


def test_subset_modes_are_the_top_k():
    logits = torch.tensor([[0.3, 2.0, -1.0, 2.0, 0.9], [0.0, 0.0, 0.0, 0.0, 0.0]], dtype=F64)
    want = torch.tensor([[0.0, 1.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0, 0.0]], dtype=F64)
    top = GumbelTopK(logits, 3)
    torch.testing.assert_close(top.mode, want)
    torch.testing.assert_close(Wallenius(torch.ones(5, dtype=torch.int64), 3,
                                         logits=logits).mode, want)
    torch.testing.assert_close(k_subset(logits, 3).mode, want)
    # their marginals are Bernoulli laws of the inclusion probabilities
    for dist in (top, k_subset(logits, 3)):
        marginal = dist.marginal(1)
        torch.testing.assert_close(marginal.probs[..., 1], dist.mean[..., 1], rtol=0, atol=1e-9)
        torch.testing.assert_close(marginal.log_prob(torch.ones(2, dtype=F64)).exp(),
                                   dist.mean[..., 1], rtol=0, atol=1e-9)
