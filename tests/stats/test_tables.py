"""``diffhypergeom.stats.tables``: the odds ratios of 2 x c tables and the exact test of
homogeneity, against scipy (2 x 2, zero cells included), exact rational enumeration, an
independent optimiser over the enumerated support (2 x c), mpmath, and R's ``fisher.test``
(fixtures from ``scripts/fisher_fixtures.R``)."""

from __future__ import annotations

import csv
import itertools
import math
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from profiles import profile_limits

from diffhypergeom.stats import homogeneity_test, odds_ratio

scipy_stats = pytest.importorskip("scipy.stats")
optimize = pytest.importorskip("scipy.optimize")
special = pytest.importorskip("scipy.special")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fisher_2xc.csv"


def _tables_2x2() -> list[list[list[int]]]:
    """Every pattern of zero cells (other cells 1 or 6), and 100 tables drawn from a grid."""
    tables = []
    for zeros in itertools.product([False, True], repeat=4):
        for fill in (1, 6):
            cells = [0 if zero else fill + 3 * k for k, zero in enumerate(zeros)]
            tables.append([cells[:2], cells[2:]])
    grid = [0, 1, 2, 3, 5, 9, 17, 40, 150]
    rng = np.random.default_rng(29)
    for cells in rng.choice(grid, size=(100, 4)):
        tables.append([[int(cells[0]), int(cells[1])], [int(cells[2]), int(cells[3])]])
    return tables


def _close(ours: torch.Tensor | float, theirs: float, rtol: float) -> bool:
    ours, theirs = float(ours), float(theirs)
    if math.isnan(theirs) or math.isinf(theirs) or theirs == 0:
        return ours == theirs or (math.isnan(ours) and math.isnan(theirs))
    return abs(ours - theirs) <= rtol * abs(theirs)


def test_2x2_conditional_odds_ratio_and_exact_interval_equal_scipy():
    """Statistic and interval, three alternatives, 132 tables: to 1e-8 relative; 0, inf and
    nan exactly where scipy has them."""
    wrong = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for table in _tables_2x2():
            ours = odds_ratio(table)
            theirs = scipy_stats.contingency.odds_ratio(table)
            if not _close(ours.statistic, theirs.statistic, 1e-8):
                wrong.append((table, "statistic", float(ours.statistic), theirs.statistic))
            for level, alternative in ((0.95, "two-sided"), (0.9, "less"), (0.99, "greater")):
                low, high = ours.confidence_interval(level, alternative)
                ref = theirs.confidence_interval(level, alternative)
                if not (_close(low, ref.low, 1e-8) and _close(high, ref.high, 1e-8)):
                    wrong.append((table, alternative, (float(low), float(high)), tuple(ref)))
            assert ours.statistic.shape == () and ours.statistic.dtype == torch.float64
    assert not wrong, wrong[:5]


def test_2x2_sample_odds_ratio_equals_scipy_zero_cells_included():
    """scipy's arithmetic for zero cells (nan and inf in the interval) is kept."""
    wrong = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for table in _tables_2x2()[:40]:
            ours = odds_ratio(table, kind="sample")
            theirs = scipy_stats.contingency.odds_ratio(table, kind="sample")
            pairs = [(ours.statistic, theirs.statistic)]
            for alternative in ("two-sided", "less", "greater"):
                pairs += list(zip(ours.confidence_interval(0.9, alternative),
                                  theirs.confidence_interval(0.9, alternative), strict=True))
            if not all(_close(a, b, 1e-12) for a, b in pairs):
                wrong.append((table, [(float(a), float(b)) for a, b in pairs]))
    assert not wrong, wrong[:3]


def test_2x2_estimate_and_limits_against_mpmath():
    """Far from 1 and with a small cell, where scipy's absolute root tolerance (1e-13 on the
    odds ratio) is no longer 1e-10 relative: the roots of the exact equations in 40 digits."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    (a, b), (c, d) = table = [[1, 40], [40, 2]]
    row, column, total = a + b, a + c, a + b + c + d
    ks = range(max(0, row + column - total), min(row, column) + 1)
    h = {k: mpmath.binomial(column, k) * mpmath.binomial(total - column, row - k) for k in ks}

    def moment(w, select=lambda k: True, power=0):
        return sum(k ** power * h[k] * w ** k for k in ks if select(k))

    theirs = scipy_stats.contingency.odds_ratio(table)  # starting points only
    start_low, start_high = theirs.confidence_interval(0.95)
    estimate = mpmath.findroot(lambda w: moment(w, power=1) / moment(w) - a, theirs.statistic)
    lower = mpmath.findroot(lambda w: moment(w, lambda k: k >= a) / moment(w) - 0.025,
                            start_low)
    upper = mpmath.findroot(lambda w: moment(w, lambda k: k <= a) / moment(w) - 0.025,
                            start_high)
    result = odds_ratio(table)
    low, high = result.confidence_interval(0.95)
    for ours, exact in ((result.statistic, estimate), (low, lower), (high, upper)):
        assert abs(float(ours) / float(exact) - 1) < 1e-10


def test_homogeneity_2x2_equals_fisher_exact():
    wrong = []
    for table in _tables_2x2():
        ours = homogeneity_test(table)
        theirs = scipy_stats.fisher_exact(table).pvalue
        if not _close(ours.pvalue, theirs, 1e-10):
            wrong.append((table, ours.pvalue, theirs))
        assert ours.method == "exact" and ours.stderr == 0.0
    assert not wrong, wrong[:5]


def _brute_force_pvalue(table: list[list[int]], rtol: float = 1e-7) -> Fraction:
    """The exact rational p-value: every first row the margins allow, compared exactly."""
    m = [a + b for a, b in zip(*table, strict=True)]
    n = sum(table[0])

    def weight(row):
        return math.prod(math.comb(mi, xi) for mi, xi in zip(m, row, strict=True))

    observed = weight(table[0]) * Fraction(1) * (1 + Fraction(rtol))
    total = kept = 0
    for row in itertools.product(*(range(mi + 1) for mi in m)):
        if sum(row) == n:
            w = weight(row)
            total += w
            kept += w if w <= observed else 0
    return Fraction(kept, total)


@pytest.mark.parametrize("table", [
    [[3, 0, 2, 5], [1, 4, 4, 0]], [[8, 2, 3], [1, 5, 4]], [[0, 0, 4], [3, 2, 1]],
    [[2, 2, 2, 2, 1], [2, 2, 2, 2, 3]], [[6, 1, 0], [0, 3, 7]], [[4, 0, 4], [0, 0, 0]],
])
def test_homogeneity_2xc_equals_exact_rational_enumeration(table):
    result = homogeneity_test(table)
    exact = _brute_force_pvalue(table)
    assert abs(result.pvalue - float(exact)) <= 1e-12 * float(exact)
    m = [a + b for a, b in zip(*table, strict=True)]
    weight = math.prod(math.comb(mi, xi) for mi, xi in zip(m, table[0], strict=True))
    assert result.statistic == pytest.approx(weight / math.comb(sum(m), sum(table[0])),
                                             rel=1e-12)


def test_homogeneity_2xc_equals_r_fisher_test():
    """40 tables from ``scripts/fisher_fixtures.R`` (R's network algorithm)."""
    rows = list(csv.DictReader(FIXTURES.open()))
    assert len(rows) >= 30
    wrong = []
    for row in rows:
        table = [[int(v) for v in row["row0"].split(";")], [int(v) for v in row["row1"].split(";")]]
        ours, theirs = homogeneity_test(table).pvalue, float(row["p"])
        if abs(ours - theirs) > 1e-9 * theirs:
            wrong.append((table, ours, theirs))
    assert not wrong, wrong[:5]


def test_homogeneity_monte_carlo_is_within_its_standard_error_of_the_exact_value():
    table = [[3, 0, 2, 5, 4], [1, 4, 4, 0, 6]]
    exact = homogeneity_test(table)
    torch.manual_seed(29)
    estimate = homogeneity_test(table, samples=4000)
    assert estimate.method == "monte carlo" and estimate.tables == 4000
    assert 0 < estimate.stderr < 0.01
    assert abs(estimate.pvalue - exact.pvalue) < 4 * estimate.stderr + 1 / 4001
    assert estimate.statistic == pytest.approx(exact.statistic, rel=1e-12)


def test_homogeneity_beyond_max_tables_is_a_named_error():
    table = [[30, 30, 30, 30, 30], [30, 30, 30, 30, 30]]
    with pytest.raises(ValueError,
                       match="above max_tables=1,000; raise max_tables, or pass samples="):
        homogeneity_test(table, max_tables=1000)


def _enumerated_fit(table: list[list[int]]):
    """The conditional log-likelihood of a 2 x c table's first row over its enumerated
    support, its maximum by BFGS, and its profile in one logit (an independent reference)."""
    m = np.array([a + b for a, b in zip(*table, strict=True)])
    x, n = np.array(table[0]), sum(table[0])
    points = np.array([p for p in itertools.product(*(range(min(k, n) + 1) for k in m))
                       if sum(p) == n])
    log_h = (special.gammaln(m + 1) - special.gammaln(points + 1)
             - special.gammaln(m - points + 1)).sum(1)

    def loglik(free):
        theta = np.concatenate([[0.0], free])
        return float(x @ theta - special.logsumexp(log_h + points @ theta))

    start = np.zeros(len(m) - 1)
    best = optimize.minimize(lambda f: -loglik(f), start, method="BFGS",
                             options={"gtol": 1e-10})
    return loglik, best


def test_2xc_conditional_estimate_and_profile_interval_against_enumeration():
    """The MLE against BFGS over the enumerated support; each profile endpoint is where a
    brute-force profile (inner 1-D maximisation) falls by chi2(1)_0.95 / 2."""
    table = [[7, 5, 4], [3, 9, 10]]
    result = odds_ratio(table)
    loglik, best = _enumerated_fit(table)
    np.testing.assert_allclose(result.statistic.numpy(), np.exp(-best.x), rtol=1e-6)
    low, high = result.confidence_interval(0.95)
    q = special.ndtri(0.975) ** 2
    for j in range(2):
        theta_low, theta_high = profile_limits(loglik, best.x, q, j, width=10)
        # the odds ratio is exp(-theta): its interval is the logit's, reversed
        assert float(low[j]) == pytest.approx(math.exp(-theta_high), rel=1e-6)
        assert float(high[j]) == pytest.approx(math.exp(-theta_low), rel=1e-6)


def test_2xc_columns_at_a_bound_give_the_limits():
    """Column 2 is absent from row 0 (odds ratio inf), column 3 wholly in it (0); column 1's
    estimate is then that of the table of columns 0 and 1 alone (the limit law), and the
    finite end of column 2's interval is where the profile of the urn of columns 0, 1, 2
    falls from its limit."""
    table = [[7, 15, 0, 4], [58, 472, 30, 0]]
    result = odds_ratio(table)
    alone = odds_ratio([[7, 15], [58, 472]])
    assert torch.isinf(result.statistic[1]) and result.statistic[2] == 0
    assert float(result.statistic[0]) == pytest.approx(float(alone.statistic), rel=1e-9)
    low, high = result.confidence_interval(0.95)
    assert torch.isinf(high[1]) and low[2] == 0
    assert 0 < float(low[1]) < math.inf and 0 < float(high[2]) < math.inf

    loglik, best = _enumerated_fit([[7, 15, 0], [58, 472, 30]])
    top = _enumerated_fit([[7, 15], [58, 472]])[1]
    q = special.ndtri(0.975) ** 2

    def excess(t):  # the profile of theta_2 (column 2 against column 0)
        inner = optimize.minimize_scalar(lambda u: -loglik(np.array([u, t])),
                                         bracket=(-5, 5), tol=1e-12)
        return -top.fun + inner.fun - q / 2

    theta = optimize.brentq(excess, -10, 10, xtol=1e-12)
    assert float(low[1]) == pytest.approx(math.exp(-theta), rel=1e-6)


def test_2xc_column_0_at_a_bound():
    result = odds_ratio([[0, 15, 3, 0], [58, 472, 30, 9]])
    assert result.statistic.tolist()[:2] == [0.0, 0.0] and math.isnan(result.statistic[2])
    with pytest.raises(ValueError, match="column 0 is at its bound"):
        result.confidence_interval()


def test_empty_rows_and_columns_give_nan_and_the_whole_line():
    result = odds_ratio([[3, 0, 2], [4, 0, 5]])
    assert math.isnan(result.statistic[0]) and not math.isnan(result.statistic[1])
    low, high = result.confidence_interval()
    assert low[0] == 0 and math.isinf(high[0])
    for table in ([[0, 0, 0], [4, 1, 5]], [[0, 2, 1], [0, 1, 5]]):
        result = odds_ratio(table)
        assert bool(result.statistic.isnan().all())
        low, high = result.confidence_interval()
        assert bool((low == 0).all()) and bool(high.isinf().all())


@pytest.mark.parametrize("table, message", [
    ([[1, -2], [3, 4]], "table must be non-negative"),
    ([[1.5, 2], [3, 4]], "table must be integers"),
    ([[1, 2, 3]], r"table must have shape \(2, c\)"),
    ([[1], [2]], r"table must have shape \(2, c\)"),
    ([[[1, 2], [3, 4]]], r"table must have shape \(2, c\)"),
])
def test_bad_tables_are_named_errors(table, message):
    for call in (odds_ratio, homogeneity_test):
        with pytest.raises(ValueError, match=message):
            call(table)


def test_bad_arguments_are_named_errors():
    result = odds_ratio([[7, 15], [58, 472]])
    for level in (0.0, 1.0, 1.5, -0.1, float("nan"), True, "0.9"):
        with pytest.raises(ValueError, match="confidence_level must be a number strictly"):
            result.confidence_interval(level)
    with pytest.raises(ValueError, match="alternative must be one of"):
        result.confidence_interval(0.95, "both")
    with pytest.raises(ValueError, match="kind must be one of"):
        odds_ratio([[7, 15], [58, 472]], kind="exact")
    with pytest.raises(ValueError, match="samples must be a positive int"):
        homogeneity_test([[7, 15], [58, 472]], samples=0)
    with pytest.raises(ValueError, match="rtol must be a finite number"):
        homogeneity_test([[7, 15], [58, 472]], rtol=-1e-7)
    with pytest.raises(ValueError, match="max_tables must be a positive int"):
        homogeneity_test([[7, 15], [58, 472]], max_tables=0)


def test_2xc_only_column_0_inside():
    """Column 1 wholly in row 0, column 2 absent from it: the finite ends come from the
    two-column urns (columns 0, 1 and 0, 2), whose profiles fall from their limits."""
    result = odds_ratio([[3, 5, 0], [4, 0, 6]])
    assert result.statistic.tolist() == [0.0, math.inf]
    low, high = result.confidence_interval(0.95)
    q = special.ndtri(0.975) ** 2
    for j, table, side in ((0, [[3, 5], [4, 0]], 1), (1, [[3, 0], [4, 6]], -1)):
        loglik, _ = _enumerated_fit(table)
        top = loglik(np.array([50.0 * side]))  # the limit, to e^-50

        def excess(t, loglik=loglik, top=top):
            return top - loglik(np.array([t])) - q / 2

        theta = optimize.brentq(excess, -30, 30, xtol=1e-12)
        end = high[j] if side > 0 else low[j]
        assert float(end) == pytest.approx(math.exp(-theta), rel=1e-7)
