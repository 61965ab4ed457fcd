"""Both laws against R's BiasedUrn (``dMFNCHypergeo``, ``dMWNCHypergeo`` at precision 1e-14)
on ten random urns of 2-8 colours, from the fixtures that ``scripts/biasedurn_fixtures.R``
wrote (CI needs no R). BiasedUrn's own accuracy bounds the agreement: 4e-14 in log-probability
for the Fisher law (exact sums); for Wallenius a median of 1e-12 but 3.7e-7 on a 6-colour urn,
where a 40-digit mpmath integral agrees with this library to 1e-15 and not with BiasedUrn
(checked below)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from diffhypergeom import MultivariateFisherNCHypergeometric as Fisher
from diffhypergeom import MultivariateWalleniusNCHypergeometric as Wallenius

FIXTURES = Path(__file__).parent / "fixtures" / "biasedurn.csv"
LAWS = {"fisher": (Fisher, 1e-12), "wallenius": (Wallenius, 1e-6)}


def _rows(law: str) -> list[dict[str, str]]:
    with FIXTURES.open() as handle:
        return [row for row in csv.DictReader(handle) if row["law"] == law]


@pytest.mark.parametrize("law", sorted(LAWS))
def test_probabilities_match_biasedurn(law):
    cls, tolerance = LAWS[law]
    rows = _rows(law)
    assert len(rows) > 100
    worst = 0.0
    for row in rows:
        m = [int(v) for v in row["m"].split(";")]
        w = [float(v) for v in row["w"].split(";")]
        x = torch.tensor([int(v) for v in row["x"].split(";")])
        d = cls(torch.tensor(m), int(row["n"]), weights=torch.tensor(w, dtype=torch.float64))
        got = float(d.log_prob(x))
        want = np.log(float(row["p"]))
        worst = max(worst, abs(got - want))
    assert worst < tolerance, worst


def test_where_biasedurn_and_this_library_differ_mpmath_decides():
    mpmath = pytest.importorskip("mpmath")
    row = next(r for r in _rows("wallenius") if r["urn"] == "7" and r["x"] == "20;6;12;8;12;15")
    m = [int(v) for v in row["m"].split(";")]
    x = [int(v) for v in row["x"].split(";")]
    mpmath.mp.dps = 40
    w = [mpmath.mpf(v) for v in row["w"].split(";")]
    d = sum(wi * (mi - xi) for wi, mi, xi in zip(w, m, x, strict=True))

    def integrand(u):
        value = d
        for wi, mi, xi in zip(w, m, x, strict=True):
            q = 1 - mpmath.exp(-wi * u)
            value *= mpmath.binomial(mi, xi) * q**xi * (1 - q) ** (mi - xi)
        return value

    exact = float(mpmath.log(mpmath.quad(integrand, [0, 0.3, 1.25, 2.5, 5, 20, mpmath.inf])))
    got = float(Wallenius(torch.tensor(m), int(row["n"]),
                          weights=torch.tensor([float(v) for v in row["w"].split(";")],
                                               dtype=torch.float64)).log_prob(torch.tensor(x)))
    assert abs(got - exact) < 1e-13
    assert abs(np.log(float(row["p"])) - exact) > 1e-7  # BiasedUrn's own error here
