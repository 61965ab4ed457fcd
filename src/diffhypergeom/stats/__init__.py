"""Statistics with the urn laws: maximum-likelihood estimation of the logits (``fit``),
BiasedUrn-style odds and ball counts from observed means (``odds``, ``num``), and exact
conditional inference for 2 x c contingency tables (``odds_ratio``, ``homogeneity_test``).

Everything is computed in float64 on the CPU with torch (no scipy); ``import diffhypergeom``
does not load this package, ``diffhypergeom.stats`` does on first use.
"""

from diffhypergeom.stats.estimation import FitResult, fit
from diffhypergeom.stats.moments import num, odds
from diffhypergeom.stats.tables import (
    HomogeneityResult,
    OddsRatioResult,
    homogeneity_test,
    odds_ratio,
)

__all__ = ["FitResult", "HomogeneityResult", "OddsRatioResult", "fit", "homogeneity_test",
           "num", "odds", "odds_ratio"]
