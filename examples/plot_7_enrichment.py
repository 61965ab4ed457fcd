"""
Gene-set enrichment with length bias (a goseq-style Wallenius test)
===================================================================

In RNA-seq, long genes collect more reads, so they are more often called differentially
expressed (DE) whatever their biology. A gene set full of long genes then looks enriched in DE
genes under the plain hypergeometric test. Young et al. (goseq, Genome Biology 2010) correct
this with the Wallenius law: the DE genes are drawn one at a time, a gene of the set with the
odds ``w`` of its average detection probability against the rest's. The test's p-value is the
upper tail ``P(X >= x)`` of the univariate Wallenius law of the set's DE count.

This example makes the data itself: genes with lengths, a detection probability that rises with
length, gene sets of which some favour long genes and a few are truly enriched. It computes the
exact upper tails of the Wallenius law of every set at once,
``MultivariateWalleniusNCHypergeometric(...).marginal(0).log_sf(x - 1)``, in log space, so that
the deep tails of the truly enriched sets are exact too. Where R's BiasedUrn is installed
(``Rscript`` on the path) it prints BiasedUrn's ``pWNCHypergeo`` beside them.
"""

# %%
# The genes, the detection bias and the gene sets. Everything comes from one seeded generator.
import os
import shutil
import subprocess

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.stats import false_discovery_control
from sklearn.isotonic import IsotonicRegression

from diffhypergeom import MultivariateWalleniusNCHypergeometric

QUICK = os.environ.get("DIFFHYPERGEOM_DOCS_QUICK") == "1"
rng = np.random.default_rng(0)
genes = 4_000 if QUICK else 12_000
sets = 120 if QUICK else 400
enriched = 8

log_length = rng.normal(7.6, 0.7, genes)
detection = 1 / (1 + np.exp(-(-2.6 + 1.3 * (log_length - 7.6))))  # longer: more often DE
members = []
for s in range(sets):
    size = int(rng.integers(15, 250))
    favour_long = s % 2 == 1  # half of the sets gather long genes (no biology)
    p = np.exp(1.2 * log_length) if favour_long else np.ones(genes)
    members.append(rng.choice(genes, size, replace=False, p=p / p.sum()))
de = rng.random(genes) < detection
for s in range(enriched):  # the truly enriched sets: their genes are DE more often
    boost = rng.random(len(members[s])) < 0.35
    de[members[s][boost]] = True
print(f"{genes} genes, {int(de.sum())} DE, {sets} gene sets ({enriched} truly enriched)")

# %%
# goseq's probability weighting function: the DE rate as a non-decreasing function of length,
# fitted by isotonic regression. A set's odds ``w`` is its genes' mean weight against the rest's.
pwf = IsotonicRegression(out_of_bounds="clip").fit(log_length, de).predict(log_length)
pwf = np.clip(pwf, 1e-6, None)
size = np.array([len(m) for m in members])
inside = np.array([pwf[m].mean() for m in members])
outside = (pwf.sum() - inside * size) / (genes - size)
odds = inside / outside
observed = np.array([int(de[m].sum()) for m in members])

population = torch.tensor(np.stack([size, genes - size], -1))
weights = torch.tensor(np.stack([odds, np.ones(sets)], -1))
draws = int(de.sum())
x = torch.tensor(observed)
wallenius = MultivariateWalleniusNCHypergeometric(population, draws, weights=weights)
plain = MultivariateWalleniusNCHypergeometric(population, draws,
                                              weights=torch.ones_like(weights))
log_p_wallenius = wallenius.marginal(0).log_sf(x - 1)  # log P(X >= x), exact
log_p_plain = plain.marginal(0).log_sf(x - 1)          # the plain hypergeometric test

# %%
# The null sets that favour long genes: the plain test calls many of them enriched, the Wallenius
# test does not. Benjamini-Hochberg at 5% over all sets (``scipy.stats.false_discovery_control``).
null = np.arange(sets) >= enriched
long_null = null & (np.arange(sets) % 2 == 1)
for name, log_p in (("plain hypergeometric", log_p_plain), ("Wallenius (goseq)", log_p_wallenius)):
    q = false_discovery_control(np.exp(log_p.numpy()))
    found = q < 0.05
    print(f"{name:>22}: {int(found[~null].sum())} of {enriched} enriched sets found, "
          f"{int(found[long_null].sum())} of {int(long_null.sum())} long-gene null sets "
          f"called enriched")

# %%
# The deep tails of the truly enriched sets, exact in log space, beside BiasedUrn's
# ``pWNCHypergeo`` at its finest precision where R is installed. BiasedUrn's precision is
# absolute, so below about 1e-12 its values lose their relative accuracy.
rows = [(s, float(log_p_wallenius[s]) / np.log(10)) for s in range(enriched)]
reference = {}
if shutil.which("Rscript"):
    calls = "; ".join(
        f"cat(format(pWNCHypergeo({observed[s] - 1}, {size[s]}, {genes - size[s]}, {draws}, "
        f"{float(odds[s])!r}, precision = 1e-14, lower.tail = FALSE), digits = 17), '\\n')"
        for s in range(enriched))
    run = subprocess.run(["Rscript", "-e", f"suppressMessages(library(BiasedUrn)); {calls}"],
                         capture_output=True, text=True, check=False)
    values = [float(v) for v in run.stdout.split()] if run.returncode == 0 else []
    if len(values) == enriched:
        reference = dict(enumerate(values))
print("set  size  DE   odds   log10 p (exact)   log10 p (BiasedUrn)")
for s, log10_p in rows:
    if s not in reference:
        theirs = "(R with BiasedUrn not installed)"
    elif reference[s] > 0:
        theirs = f"{np.log10(reference[s]):.6f} (off by {reference[s] / 10**log10_p - 1:+.1%})"
    else:
        theirs = "-inf (it returns 0)"
    print(f"{s:>3}  {size[s]:>4}  {observed[s]:>3}  {odds[s]:.3f}  {log10_p:>14.6f}   {theirs}")

# %%
# Figure: the p-values of the null sets against the uniform law (a QQ plot); the plain test's
# long-gene sets leave the diagonal, the Wallenius test keeps them on it.
fig, ax = plt.subplots(figsize=(6.5, 4.5))
expected = -np.log10((np.arange(int(null.sum())) + 0.5) / int(null.sum()))
for name, log_p, colour in (("plain hypergeometric", log_p_plain, "tab:red"),
                            ("Wallenius (goseq)", log_p_wallenius, "tab:blue")):
    shown = np.sort(-log_p[torch.from_numpy(null)].numpy() / np.log(10))[::-1]
    ax.plot(expected, shown, ".", color=colour, label=name)
ax.plot([0, expected.max()], [0, expected.max()], "k--", lw=1, label="uniform")
ax.set_xlabel("expected -log10 p (null sets)")
ax.set_ylabel("observed -log10 p")
ax.set_title("Length bias: the null gene sets' p-values")
ax.legend(loc="upper left")
fig.tight_layout()
plt.show()
