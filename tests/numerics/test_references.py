"""Both engines against independent references (no library code in any of them):

1. brute-force enumeration of small urns (``tests/enumeration.py``);
2. ``scipy.stats.nchypergeom_fisher`` for two classes, and mpmath where scipy is not exact
   enough;
3. exact big integers (python-flint) on a large urn with integer weights;
4. urns whose classes fall into two weight groups, where ``P0`` is a one-dimensional sum;
5. weights 1e-8..1e8 and a dominant class, on a numpy grid over ``(x1, x2)``.
"""

import math

import numpy as np
import pytest
import torch
from enumeration import moments
from scipy import stats
from scipy.special import gammaln, logsumexp

from diffhypergeom import MultivariateFisherNCHypergeometric as MFNCH

ENGINES = ["logspace", "fft"]
RTOL = 1e-10
LOG_ATOL = 1e-11  # log-values near 0
ATOL = 1e-12  # moments near 0, probabilities
NEG_INF = -math.inf


def _dist(population, draws, logits, engine, grad=False):
    """The distribution and its leaf logits; a logit of ``-inf`` is a zero weight (then the
    distribution gets ``weights=``, with the leaf's entry there a finite placeholder)."""
    logits = np.asarray(logits, dtype=np.float64)
    finite = np.isfinite(logits)
    leaf = torch.tensor(np.where(finite, logits, 0.0), dtype=torch.float64, requires_grad=grad)
    population = torch.tensor(population)
    if finite.all():
        return MFNCH(population, draws, logits=leaf, engine=engine), leaf
    weights = torch.where(torch.from_numpy(finite), leaf.exp(), torch.zeros_like(leaf))
    return MFNCH(population, draws, weights=weights, engine=engine), leaf


def _log_comb(m, k):
    return gammaln(m + 1) - gammaln(k + 1) - gammaln(m - k + 1)


def _close(got, expected, rtol=RTOL, atol=LOG_ATOL):
    assert abs(got - expected) <= atol + rtol * abs(expected), (got, expected)


# ---------------------------------------------------------------- 1. brute force, small urns
# (population, draws, logits); -inf is a zero weight
SMALL = [
    ([5, 7], 4, [30.0, -30.0]),
    ([8, 9], 1, [-30.0, 30.0]),
    ([6, 6], 11, [30.0, -30.0]),  # n = N - 1
    ([6, 3, 4], 7, [0.5, -30.0, 30.0]),
    ([4, 5, 3], 0, [0.3, -1.0, 2.0]),  # n = 0
    ([4, 5, 3], 12, [0.3, -1.0, 2.0]),  # n = N
    ([4, 5, 3], 11, [30.0, 0.0, -30.0]),  # n = N - 1
    ([4, 0, 6, 3], 5, [1.0, 2.0, -0.5, 0.3]),  # an empty class
    ([5, 4, 6], 7, [0.7, NEG_INF, -0.4]),  # a zero weight
    ([3, 4, 2], 5, [0.0, NEG_INF, 1.1]),  # a zero weight, n = all drawable balls
    ([3, 0, 4, 5], 6, [30.0, 1.0, NEG_INF, -30.0]),  # empty class and zero weight
    ([2, 9, 5, 7], 20, [-30.0, 30.0, 10.0, -10.0]),  # n = N - 3
    ([6, 40, 5, 8], 20, [18.4, 0.0, -18.4, 9.2]),  # weights 1e-8..1e8
]


def _brute(population, draws, logits):
    return moments(population, draws, [math.exp(v) for v in logits])


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("population,draws,logits", SMALL)
def test_brute_force_normaliser_and_entropy(engine, population, draws, logits):
    ref = _brute(population, draws, logits)
    d, _ = _dist(population, draws, logits, engine)
    _close(d.log_normalizer().item(), ref["log_p0"])
    _close(d.entropy().item(), ref["entropy"], atol=ATOL)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("population,draws,logits", SMALL)
def test_brute_force_log_prob_of_every_point(engine, population, draws, logits):
    ref = _brute(population, draws, logits)
    d, _ = _dist(population, draws, logits, engine)
    got = d.log_prob(torch.from_numpy(ref["points"])).numpy()
    possible = np.isfinite(ref["log_p"])
    assert np.all(np.isneginf(got[~possible]))
    np.testing.assert_allclose(got[possible], ref["log_p"][possible], rtol=RTOL, atol=LOG_ATOL)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("population,draws,logits", SMALL)
def test_brute_force_moments_and_marginals(engine, population, draws, logits):
    ref = _brute(population, draws, logits)
    d, _ = _dist(population, draws, logits, engine)
    np.testing.assert_allclose(d.mean.numpy(), ref["mean"], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(d.variance.numpy(), ref["var"], rtol=RTOL, atol=ATOL)
    for i, marginal in enumerate(ref["marginals"]):
        probs = d.marginal(i).probs.numpy()
        assert probs.shape == marginal.shape
        np.testing.assert_allclose(probs, marginal, rtol=0, atol=ATOL)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("population,draws,logits", SMALL)
def test_brute_force_gradient_of_normaliser_is_mean(engine, population, draws, logits):
    ref = _brute(population, draws, logits)
    d, leaf = _dist(population, draws, logits, engine, grad=True)
    (grad,) = torch.autograd.grad(d.log_normalizer(), leaf)
    np.testing.assert_allclose(grad.numpy(), ref["mean"], rtol=RTOL, atol=ATOL)


# ---------------------------------------------------------------- 2. scipy, two classes
def _scipy_cases():
    cases = []
    for m1, m2 in [(30, 50), (1000, 3000), (10**6, 10**6)]:
        total = m1 + m2
        for draws in [1, total // 2, total - 1]:
            for odds in [0.3, 1.0, 7.0]:
                for engine in ENGINES:
                    # the log-space table of a 10**6-ball urn at n = N/2 has ~1e12 entries
                    if engine == "logspace" and m1 == 10**6 and draws == total // 2:
                        continue
                    cases.append(pytest.param(engine, m1, m2, draws, odds,
                                              id=f"{engine}-{m1}-{m2}-{draws}-{odds}"))
    return cases


@pytest.mark.parametrize("engine,m1,m2,draws,odds", _scipy_cases())
def test_two_classes_match_scipy(engine, m1, m2, draws, odds):
    ref = stats.nchypergeom_fisher(m1 + m2, m1, draws, odds)
    d, _ = _dist([m1, m2], draws, [math.log(odds), 0.0], engine)
    assert d.mean[0].item() == pytest.approx(ref.mean(), rel=1e-9)
    assert d.mean[1].item() == pytest.approx(draws - ref.mean(), rel=1e-9)
    assert d.variance[0].item() == pytest.approx(ref.var(), rel=1e-9)
    assert d.variance[1].item() == pytest.approx(ref.var(), rel=1e-9)
    mode = round(ref.mean())
    low, high = max(0, draws - m2), min(draws, m1)
    k = np.arange(max(low, mode - 3), min(high, mode + 3) + 1)
    got = d.log_prob(torch.from_numpy(np.stack([k, draws - k], -1))).numpy()
    expected = ref.logpmf(k)
    if m1 >= 10**6:
        # scipy itself is off by up to 1.1e-8 here (n = N/2, against mpmath: see
        # test_two_classes_mpmath_exact_mid_draws, which checks this urn to 1e-12)
        np.testing.assert_allclose(got, expected, rtol=0, atol=3e-8)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("engine", ENGINES)
def test_two_classes_mpmath_exact(engine):
    """m = [10**6, 10**6], n = N - 5, logits [0, 0.3], x = (m1 - 3, m2 - 2): from the
    definition, with exact binomials (6 feasible points) at 40 digits."""
    mpmath = pytest.importorskip("mpmath")
    big, draws = 10**6, 2 * 10**6 - 5
    mp = mpmath.mp.clone()
    mp.dps = 40
    theta = mp.mpf("0.3")

    def term(x1):
        return (mp.mpf(math.comb(big, x1) * math.comb(big, draws - x1))
                * mp.exp(theta * (draws - x1)))

    x1 = big - 3
    exact = mp.log(term(x1) / mp.fsum(term(k) for k in range(draws - big, big + 1)))
    d, _ = _dist([big, big], draws, [0.0, 0.3], engine)
    got = d.log_prob(torch.tensor([x1, draws - x1])).item()
    assert abs(got - float(exact)) <= 1e-12, (got, float(exact))


def test_two_classes_mpmath_exact_mid_draws():
    """m = [10**6, 10**6], n = N / 2, odds 0.3 (FFT engine only: the log-space table would have
    ~1e12 entries): ``P0`` summed at 35 digits over the terms within 40 standard deviations of
    the mode (the rest are below e^-800 of it), by the ratio of consecutive terms."""
    mpmath = pytest.importorskip("mpmath")
    big, draws, odds_text = 10**6, 10**6, "0.3"
    mp = mpmath.mp.clone()
    mp.dps = 35
    odds = mp.mpf(odds_text)
    mode, span = 353_889, 14_000  # sigma ~ 338

    def log_term(k):
        return (mp.loggamma(big + 1) - mp.loggamma(k + 1) - mp.loggamma(big - k + 1)
                + mp.loggamma(big + 1) - mp.loggamma(draws - k + 1)
                - mp.loggamma(big - draws + k + 1) + k * mp.log(odds))

    total, ratio = mp.mpf(1), mp.mpf(1)
    for k in range(mode, mode + span):  # T(k + 1) / T(k)
        ratio *= mp.mpf((big - k) * (draws - k)) / ((k + 1) * (big - draws + k + 1)) * odds
        total += ratio
    ratio = mp.mpf(1)
    for k in range(mode, mode - span, -1):  # T(k - 1) / T(k)
        ratio *= mp.mpf(k * (big - draws + k)) / ((big - k + 1) * (draws - k + 1)) / odds
        total += ratio
    log_p0 = log_term(mode) + mp.log(total)
    ks = [mode - 3, mode, mode + 1, mode + 4]
    expected = [float(log_term(k) - log_p0) for k in ks]

    d, _ = _dist([big, big], draws, [math.log(float(odds_text)), 0.0], "fft")
    assert d.log_normalizer().item() == pytest.approx(float(log_p0), rel=1e-13)
    got = d.log_prob(torch.tensor([[k, draws - k] for k in ks])).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


# ---------------------------------------------------------------- 3. exact big integers
def test_large_urn_matches_exact_integers():
    flint = pytest.importorskip("flint")
    classes, balls, draws = 20, 500, 3000
    rng = np.random.default_rng(20240611)
    weights = [int(w) for w in rng.integers(1, 6, size=classes)]
    population = [balls] * classes
    length = draws + 1
    poly = flint.fmpz_poly([1])  # prod_i (1 + w_i t)^m_i mod t^(n+1), equal weights together
    for w in sorted(set(weights)):
        balls_w = sum(m for m, v in zip(population, weights, strict=True) if v == w)
        poly = flint.fmpz_poly((poly * flint.fmpz_poly([1, w]) ** balls_w).coeffs()[:length])
    coeffs = [int(poly[k]) for k in range(length)]
    p0 = coeffs[draws]
    log_p0 = math.log(p0)
    # E[x_i] = m_i w_i [t^(n-1)] prod_j (1 + w_j t)^m_j / (1 + w_i t) / P0
    means = {}
    for w in set(weights):
        q = 0
        for k in range(draws):  # power series of poly / (1 + w t), up to t^(n-1)
            q = coeffs[k] - w * q
        means[w] = balls * w * q / p0  # big-int true division: correctly rounded
    mean = np.array([means[w] for w in weights])

    logits = torch.tensor([math.log(w) for w in weights], dtype=torch.float64)
    points = None
    for engine in ENGINES:
        d = MFNCH(torch.tensor(population), draws, logits=logits, engine=engine)
        assert d.log_normalizer().item() == pytest.approx(log_p0, rel=1e-13), engine
        np.testing.assert_allclose(d.mean.numpy(), mean, rtol=1e-12, err_msg=engine)
        if points is None:
            torch.manual_seed(0)
            points = d.sample((3,)).long()
            assert bool((points.sum(-1) == draws).all())
        for x in points:
            numerator = 1
            for m, xi, w in zip(population, x.tolist(), weights, strict=True):
                numerator *= math.comb(m, xi) * w**xi
            exact = math.log(numerator) - log_p0
            assert abs(d.log_prob(x).item() - exact) <= 1e-9, (engine, x, exact)


# ---------------------------------------------------------------- 4. two weight groups
GROUPS = [
    pytest.param("logspace", 50, 200, 3000, id="logspace-50x200"),
    pytest.param("fft", 50, 200, 3000, id="fft-50x200"),
    pytest.param("fft", 200, 5000, 400_000, id="fft-200x5000"),
]


@pytest.mark.parametrize("engine,classes,balls,draws", GROUPS)
def test_two_weight_groups_match_one_dimensional_sum(engine, classes, balls, draws):
    """Alternating classes of logits 0.7 (group A) and -1.2 (group B): ``P0 = sum_k C(M_A, k)
    w_a^k C(M_B, n - k) w_b^(n - k)`` and ``k`` (the draws from A) has that law."""
    theta_a, theta_b = 0.7, -1.2
    logits = np.array([theta_a, theta_b] * (classes // 2))
    in_a = logits == theta_a
    big_a, big_b = balls * int(in_a.sum()), balls * int((~in_a).sum())
    k = np.arange(max(0, draws - big_b), min(draws, big_a) + 1)
    terms = (_log_comb(big_a, k) + theta_a * k + _log_comb(big_b, draws - k)
             + theta_b * (draws - k))
    log_p0 = logsumexp(terms)
    mean_a = float(np.exp(terms - log_p0) @ k)

    d, _ = _dist([balls] * classes, draws, logits, engine)
    assert d.log_normalizer().item() == pytest.approx(log_p0, rel=1e-12)
    mean = d.mean.numpy()
    expected = np.where(in_a, mean_a / in_a.sum(), (draws - mean_a) / (~in_a).sum())
    np.testing.assert_allclose(mean, expected, rtol=1e-10)


# ---------------------------------------------------------------- 5. extreme weights
def _grid_reference(population, draws, logits):
    """Exact law of a 3-class urn on a numpy grid over ``(x1, x2)`` (``x3 = n - x1 - x2``)."""
    m = population
    x1 = np.arange(m[0] + 1)[:, None]
    x2 = np.arange(m[1] + 1)[None, :]
    x3 = draws - x1 - x2
    valid = (x3 >= 0) & (x3 <= m[2])
    x3c = np.where(valid, x3, 0)
    terms = (_log_comb(m[0], x1) + _log_comb(m[1], x2) + _log_comb(m[2], x3c)
             + logits[0] * x1 + logits[1] * x2 + logits[2] * x3c)
    terms = np.where(valid, terms, -np.inf)
    log_p0 = logsumexp(terms)
    log_p = terms - log_p0
    p = np.exp(log_p)
    marginals = [p.sum(1), p.sum(0), np.bincount(x3c[valid], weights=p[valid],
                                                 minlength=m[2] + 1)]
    mean = np.array([np.arange(len(q)) @ q for q in marginals])
    var = np.array([(np.arange(len(q)) - mu) ** 2 @ q for q, mu in zip(marginals, mean,
                                                                          strict=True)])
    entropy = -float((p[valid] * log_p[valid]).sum())
    # the mode, a few points around it, and two in the tails (10 fewer of class 1; x1 at the
    # mode and x3 as large as it can be)
    i, j = np.unravel_index(np.argmax(terms), terms.shape)
    tail = draws - i - min(m[2], draws - i) - j
    points, seen = [], set()
    for di, dj in [(0, 0), (0, 1), (0, -1), (-1, 0), (-1, 2), (-2, 1), (0, -3), (-3, 3),
                   (-10, 10), (0, tail)]:
        a, b = i + di, j + dj
        if 0 <= a <= m[0] and 0 <= b <= m[1] and valid[a, b] and (a, b) not in seen:
            seen.add((a, b))
            points.append((a, b, draws - a - b, log_p[a, b]))
    return {"log_p0": log_p0, "marginals": marginals, "mean": mean, "var": var,
            "entropy": entropy, "points": np.array(points)}


EXTREME = [
    ([1000, 1000, 1000], 1500, [18.4, 0.0, -18.4]),
    ([50, 2000, 3], 60, [10.0, -10.0, 0.0]),
]


@pytest.fixture(scope="module")
def grid_references():
    return {i: _grid_reference(*urn) for i, urn in enumerate(EXTREME)}


def _summary(population, draws, logits, engine, points):
    d, _ = _dist(population, draws, logits, engine)
    return {
        "log_p0": d.log_normalizer().item(),
        "mean": d.mean.numpy(),
        "var": d.variance.numpy(),
        "entropy": d.entropy().item(),
        "log_prob": d.log_prob(torch.from_numpy(points)).numpy(),
        "marginals": [d.marginal(i).probs.numpy() for i in range(len(population))],
    }


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("which", range(len(EXTREME)))
def test_extreme_weights_match_grid(which, engine, grid_references):
    population, draws, logits = EXTREME[which]
    ref = grid_references[which]
    got = _summary(population, draws, logits, engine, ref["points"][:, :3].astype(np.int64))
    _close(got["log_p0"], ref["log_p0"])
    np.testing.assert_allclose(got["log_prob"], ref["points"][:, 3], rtol=RTOL, atol=LOG_ATOL)
    np.testing.assert_allclose(got["mean"], ref["mean"], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(got["var"], ref["var"], rtol=RTOL, atol=ATOL)
    _close(got["entropy"], ref["entropy"], atol=ATOL)
    for probs, marginal in zip(got["marginals"], ref["marginals"], strict=True):
        np.testing.assert_allclose(probs, marginal, rtol=0, atol=ATOL)


@pytest.mark.parametrize("which", range(len(EXTREME)))
def test_extreme_weights_engines_agree(which, grid_references):
    population, draws, logits = EXTREME[which]
    points = grid_references[which]["points"][:, :3].astype(np.int64)
    a, b = (_summary(population, draws, logits, engine, points) for engine in ENGINES)
    _close(a["log_p0"], b["log_p0"])
    _close(a["entropy"], b["entropy"], atol=ATOL)
    np.testing.assert_allclose(a["log_prob"], b["log_prob"], rtol=RTOL, atol=LOG_ATOL)
    np.testing.assert_allclose(a["mean"], b["mean"], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(a["var"], b["var"], rtol=RTOL, atol=ATOL)
    for pa, pb in zip(a["marginals"], b["marginals"], strict=True):
        np.testing.assert_allclose(pa, pb, rtol=0, atol=ATOL)
