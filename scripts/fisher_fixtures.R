# Reference p-values of R's fisher.test (the network algorithm for r x c tables, Mehta and
# Patel) for the exact homogeneity test of 2 x c tables, so that CI needs no R.
#
#   Rscript scripts/fisher_fixtures.R > tests/fixtures/fisher_2xc.csv
#
# One row per table: its two rows (semicolon-separated counts) and the two-sided p-value.
set.seed(20261208)
cat("row0,row1,p\n")
for (i in 1:40) {
  columns <- c(2, 3, 3, 4, 4, 5, 6, 3)[(i - 1) %% 8 + 1]
  top <- sample(0:12, columns, replace = TRUE)
  bottom <- sample(0:12, columns, replace = TRUE)
  if (i %% 5 == 0) top[sample(columns, 1)] <- 0
  if (sum(top) == 0 || sum(bottom) == 0) next
  p <- fisher.test(rbind(top, bottom))$p.value
  cat(sprintf("%s,%s,%.17g\n", paste(top, collapse = ";"), paste(bottom, collapse = ";"), p))
}
