"""Tails, quantiles and modes of the univariate laws against R's BiasedUrn (``pFNCHypergeo``,
``pWNCHypergeo``, ``qFNCHypergeo``, ``qWNCHypergeo``, ``modeFNCHypergeo``, ``modeWNCHypergeo``
at precision 1e-14) on 14 urns, from the fixtures that ``scripts/biasedurn_tails.R`` wrote (CI
needs no R).

BiasedUrn's precision is absolute: its tails agree with this library to 1e-12 absolute where
they are above 1e-10 (its upper tails are one less its lower ones, off by up to 1.2e-13 from
mpmath's sums), and part company below. There exact references decide: mpmath sums of
binomials (Fisher), the recursion over the draws (Wallenius), and, at odds 1, where both laws
are the central hypergeometric law, Python's exact integers."""

from __future__ import annotations

import csv
import functools
import math
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from mpmath_urns import fisher_pmf, log_tail, wallenius_pmf

from diffhypergeom import MultivariateFisherNCHypergeometric as Fisher
from diffhypergeom import MultivariateWalleniusNCHypergeometric as Wallenius

FIXTURES = Path(__file__).parent / "fixtures" / "biasedurn_tails.csv"
LAWS = {"fisher": Fisher, "wallenius": Wallenius}
F64 = torch.float64


def _rows(law: str, kind: str) -> list[dict[str, str]]:
    with FIXTURES.open() as handle:
        return [r for r in csv.DictReader(handle) if r["law"] == law and r["kind"] == kind]


@functools.cache
def _urn(law: str, m1: str, m2: str, n: str, odds: str):
    return LAWS[law](torch.tensor([int(m1), int(m2)]), int(n),
                     weights=torch.tensor([float(odds), 1.0], dtype=F64)).marginal(0)


def _marginal(law: str, row: dict[str, str]):
    return _urn(law, row["m1"], row["m2"], row["n"], row["odds"])


@pytest.mark.parametrize("law", sorted(LAWS))
def test_tails_match_biasedurn_where_it_is_accurate(law):
    checked = 0
    for kind in ("lower", "upper"):
        for row in _rows(law, kind):
            want = float(row["value"])
            if want <= 1e-10:
                continue
            marginal = _marginal(law, row)
            x = torch.tensor(float(row["x"]), dtype=F64)
            got = float((marginal.log_cdf(x) if kind == "lower" else marginal.log_sf(x)).exp())
            assert abs(got - want) <= 1e-12 + 1e-9 * want, (row, got)
            checked += 1
    assert checked > 250


@pytest.mark.parametrize("law", sorted(LAWS))
def test_quantiles_match_biasedurn(law):
    """Equal wherever q is not within 1e-9 of a cdf value (where BiasedUrn's precision cannot
    tell the two counts apart: at the median of [5, 5] drawing 5 with odds 1, exactly 1/2,
    BiasedUrn's Wallenius quantile is 3, its Fisher quantile and this library's both 2)."""
    checked = 0
    urns: dict[tuple[str, ...], list[dict[str, str]]] = {}
    for row in _rows(law, "quantile"):
        urns.setdefault((row["m1"], row["m2"], row["n"], row["odds"]), []).append(row)
    for rows in urns.values():
        marginal = _marginal(law, rows[0])
        q = torch.tensor([float(r["x"]) for r in rows], dtype=F64)
        want = torch.tensor([float(r["value"]) for r in rows], dtype=F64)
        near = marginal.cdf(torch.stack([want - 1, want]))
        clear = ((near - q).abs() > 1e-9).all(0)
        assert marginal.icdf(q)[clear].tolist() == want[clear].tolist(), rows[0]
        checked += int(clear.sum())
    assert checked > 150
    median = _marginal(law, {"m1": "5", "m2": "5", "n": "5", "odds": "1"})
    assert float(median.icdf(torch.tensor(0.5, dtype=F64))) == 2.0


@pytest.mark.parametrize("law", sorted(LAWS))
def test_modes_match_biasedurn(law):
    """Ties included: BiasedUrn takes the larger count, as this library does ([5, 5] and
    [7, 7] drawing 5 and 7 with odds 1)."""
    rows = _rows(law, "mode")
    assert len(rows) == 14
    for row in rows:
        assert float(_marginal(law, row).mode) == float(row["value"]), row


def _biasedurn(law: str, kind: str, urn: tuple[str, ...], x: str) -> float:
    m1, m2, n = urn
    return next(float(r["value"]) for r in _rows(law, kind)
                if (r["m1"], r["m2"], r["n"], r["x"]) == (m1, m2, n, x))


def test_below_1e_10_exact_references_decide():
    """Fisher (200, 800, 400, odds 0.1), P(X > 57) ~ 3.9e-19: BiasedUrn is 18% low, this
    library equals mpmath's sum of binomials; Wallenius (40, 60, 50, odds 0.3), P(X > 31) ~
    3.6e-18: BiasedUrn is 11% low, this library equals the exact recursion."""
    x = torch.tensor(57.0, dtype=F64)
    fisher = _marginal("fisher", {"m1": "200", "m2": "800", "n": "400", "odds": "0.1"})
    pmf = fisher_pmf(200, 800, 400, 0.1)
    want = log_tail(pmf, range(58, 201))
    assert float(fisher.log_sf(x)) == pytest.approx(want, rel=0, abs=1e-10)
    assert abs(math.exp(want) / _biasedurn("fisher", "upper", ("200", "800", "400"), "57")
               - 1) > 0.1
    wallenius = _marginal("wallenius", {"m1": "40", "m2": "60", "n": "50", "odds": "0.3"})
    table = wallenius_pmf([40, 60], 50, [0.3, 1.0])
    want = log_tail({y[0]: p for y, p in table.items()}, range(32, 41))
    assert float(wallenius.log_sf(torch.tensor(31.0, dtype=F64))) == pytest.approx(
        want, rel=0, abs=1e-10)
    assert abs(math.exp(want) / _biasedurn("wallenius", "upper", ("40", "60", "50"), "31")
               - 1) > 0.1


def test_at_odds_one_both_laws_are_the_central_law():
    """[1000, 1000] drawing 1000 with odds 1, P(X > 571) ~ 7.476e-11: exact in integers
    (a ratio of binomial sums). Both laws here agree with it to 1e-12; BiasedUrn's Fisher is
    off by 7e-6 and its Wallenius by 5e-4 (relative)."""
    numerator = sum(math.comb(1000, k) * math.comb(1000, 1000 - k) for k in range(572, 1001))
    exact = float(Fraction(numerator, math.comb(2000, 1000)))
    urn = {"m1": "1000", "m2": "1000", "n": "1000", "odds": "1"}
    for law, off in (("fisher", 5e-6), ("wallenius", 4e-4)):
        got = float(_marginal(law, urn).sf(torch.tensor(571.0, dtype=F64)))
        assert got == pytest.approx(exact, rel=1e-12)
        assert abs(_biasedurn(law, "upper", ("1000", "1000", "1000"), "571") / exact - 1) > off
