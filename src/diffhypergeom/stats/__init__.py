"""Statistics with the urn laws: maximum-likelihood estimation of the logits, BiasedUrn-style
odds and ball counts from observed means, and exact conditional inference for 2 x c
contingency tables (``docs/api/stats.rst``)."""

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
