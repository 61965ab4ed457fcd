# Reference values from R's BiasedUrn (Agner Fog) for the tests, so that CI needs no R.
#
#   apt-get install r-cran-biasedurn   # Debian
#   Rscript scripts/biasedurn_fixtures.R > tests/fixtures/biasedurn.csv
#
# One row per (law, urn, count vector): the urn's balls m, draws n and weights w
# (semicolon-separated), the counts x and BiasedUrn's probability at its finest precision.
library(BiasedUrn)
set.seed(20261130)
cat("law,urn,m,n,w,x,p\n")
for (urn in 1:10) {
  classes <- c(2, 3, 3, 4, 4, 5, 6, 8, 3, 2)[urn]
  m <- sample(1:25, classes, replace = TRUE)
  n <- sample(1:(sum(m) - 1), 1)
  w <- round(exp(rnorm(classes, sd = 1.5)), 6)
  fisher <- rMFNCHypergeo(20, m, n, w)
  wallenius <- rMWNCHypergeo(20, m, n, w)
  points <- unique(t(cbind(fisher, wallenius)))
  for (i in seq_len(nrow(points))) {
    x <- points[i, ]
    row <- paste(urn, paste(m, collapse = ";"), n, paste(w, collapse = ";"),
                 paste(x, collapse = ";"), sep = ",")
    cat(sprintf("fisher,%s,%.17g\n", row, dMFNCHypergeo(x, m, n, w, precision = 1e-14)))
    cat(sprintf("wallenius,%s,%.17g\n", row, dMWNCHypergeo(x, m, n, w, precision = 1e-14)))
  }
}
