# Tail probabilities, quantiles and modes of the univariate Fisher and Wallenius laws from R's
# BiasedUrn (Agner Fog) at its finest precision, for tests/test_biasedurn_tails.py, so that CI
# needs no R.
#
#   apt-get install r-cran-biasedurn   # Debian
#   Rscript scripts/biasedurn_tails.R > tests/fixtures/biasedurn_tails.csv
#
# One row per value: the law, the kind (lower: P(X <= x); upper: P(X > x); quantile: the
# smallest x with P(X <= x) >= p, given p in column x; mode), the urn (m1 balls of weight odds,
# m2 of weight 1, n drawn), x and BiasedUrn's value.
library(BiasedUrn)
set.seed(20261208)
precision <- 1e-14
urns <- list(c(10, 12, 9, 1.7), c(40, 60, 50, 0.3), c(150, 150, 150, 2.5),
             c(500, 3000, 800, 0.5), c(25, 19975, 2000, 1.8), c(300, 19700, 2500, 2.2),
             c(1000, 1000, 1000, 1), c(60, 90, 70, 3), c(12, 40, 30, 0.6), c(80, 20, 60, 25),
             c(5, 5, 5, 1), c(7, 7, 7, 1), c(200, 800, 400, 0.1), c(2000, 200, 1500, 10))
cat("law,kind,m1,m2,n,odds,x,value\n")
row <- function(law, kind, urn, x, value) {
  cat(sprintf("%s,%s,%d,%d,%d,%.17g,%.17g,%.17g\n", law, kind, urn[1], urn[2], urn[3], urn[4],
              x, value))
}
for (urn in urns) {
  m1 <- urn[1]; m2 <- urn[2]; n <- urn[3]; odds <- urn[4]
  low <- max(0, n - m2); high <- min(m1, n)
  xs <- unique(round(seq(low, high, length.out = 15)))
  for (x in xs) {
    row("fisher", "lower", urn, x, pFNCHypergeo(x, m1, m2, n, odds, precision))
    row("fisher", "upper", urn, x, pFNCHypergeo(x, m1, m2, n, odds, precision, FALSE))
    row("wallenius", "lower", urn, x, pWNCHypergeo(x, m1, m2, n, odds, precision))
    row("wallenius", "upper", urn, x, pWNCHypergeo(x, m1, m2, n, odds, precision, FALSE))
  }
  for (p in c(0.001, 0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975, 0.999, runif(3))) {
    row("fisher", "quantile", urn, p, qFNCHypergeo(p, m1, m2, n, odds, precision))
    row("wallenius", "quantile", urn, p, qWNCHypergeo(p, m1, m2, n, odds, precision))
  }
  row("fisher", "mode", urn, NA, modeFNCHypergeo(m1, m2, n, odds, precision))
  row("wallenius", "mode", urn, NA, modeWNCHypergeo(m1, m2, n, odds, precision))
}
