"""
Fisher, Wallenius and Gumbel-top-k
==================================

Two ways to draw :math:`n` balls from a weighted urn give two different laws: drawn
*together*, biased by the weights, the class counts follow the Fisher law
(:class:`~diffhypergeom.laws.fisher.MultivariateFisherNCHypergeometric`); drawn *one at a
time*, each with probability proportional to its weight, they follow the Wallenius law
(:class:`~diffhypergeom.laws.wallenius.MultivariateWalleniusNCHypergeometric`). Gumbel-top-k,
``topk(logits + Gumbel noise, k)``, is the second kind: with one ball per item its sets follow
:func:`diffhypergeom.subsets.gumbel_top_k`, not :func:`diffhypergeom.subsets.k_subset`.
"""

# %%
# One urn, two laws: 200 balls of each of three classes with weights 1, 10 and 1, 180 drawn.
# The exact marginal of the heavy class under each law.
import itertools
import os

import matplotlib.pyplot as plt
import torch

from diffhypergeom import (
    MultivariateFisherNCHypergeometric,
    MultivariateWalleniusNCHypergeometric,
)
from diffhypergeom.subsets import gumbel_top_k, k_subset

QUICK = os.environ.get("DIFFHYPERGEOM_DOCS_QUICK") == "1"
torch.manual_seed(0)

population, draws = torch.tensor([200, 200, 200]), 180
weights = torch.tensor([1.0, 10.0, 1.0])
fisher = MultivariateFisherNCHypergeometric(population, draws, weights=weights)
wallenius = MultivariateWalleniusNCHypergeometric(population, draws, weights=weights)
fisher_1 = fisher.marginal(1).probs
wallenius_1 = wallenius.marginal(1).probs
print("E[x] Fisher:   ", fisher.mean.numpy().round(2))
print("E[x] Wallenius:", wallenius.mean.numpy().round(2))
print("total variation between the class-1 marginals:",
      round(0.5 * float((fisher_1 - wallenius_1).abs().sum()), 3))

# %%
# Four items with weights 1, 2, 3, 4; two are chosen. The exact probability of each of the six
# sets under both laws, and the frequencies of the sets that Gumbel-top-k picks.
w = torch.tensor([1.0, 2.0, 3.0, 4.0])
k = 2
pairs = list(itertools.combinations(range(4), k))
masks = torch.zeros(len(pairs), 4)
for row, pair in enumerate(pairs):
    masks[row, list(pair)] = 1.0
exact_fisher = k_subset(w.log(), k).log_prob(masks).exp()
exact_gumbel = gumbel_top_k(w.log(), k).log_prob(masks).exp()

num = 20_000 if QUICK else 200_000
gumbel = -torch.empty(num, 4).exponential_().log()               # standard Gumbel noise
chosen = (w.log() + gumbel).topk(k, dim=-1).indices.sort(-1).values
index = {pair: row for row, pair in enumerate(pairs)}
found = torch.tensor([index[tuple(c)] for c in chosen.tolist()])
frequency = torch.bincount(found, minlength=len(pairs)) / num
for pair, p_f, p_g, f in zip(pairs, exact_fisher, exact_gumbel, frequency, strict=True):
    print(f"{{{pair[0] + 1}, {pair[1] + 1}}}: Fisher {p_f:.4f}  Gumbel-top-k {p_g:.4f}  "
          f"frequency {f:.4f}")
print(f"P({{3, 4}}): {12 / 35:.4f} = 12/35 under Fisher (k_subset), "
      f"{float(exact_gumbel[-1]):.4f} under Gumbel-top-k")
standard_error = (exact_gumbel * (1 - exact_gumbel) / num).sqrt()
print("largest |frequency - gumbel_top_k| in standard errors:",
      round(float(((frequency - exact_gumbel).abs() / standard_error).max()), 2))

# %%
# Left: the heavy class is drawn more often when balls are drawn one at a time. Right: the
# Gumbel-top-k frequencies sit on the Wallenius probabilities, not on the Fisher ones.
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
counts = torch.arange(len(fisher_1))
left.plot(counts, fisher_1, color="C0", label="Fisher (together)")
left.plot(counts, wallenius_1, color="C1", label="Wallenius (one at a time)")
left.set_xlim(95, 160)
left.set_xlabel("balls of class 1 (weight 10) among 180")
left.set_ylabel("exact probability")
left.legend()
positions = torch.arange(len(pairs))
right.bar(positions - 0.27, exact_fisher, width=0.27, color="C0", label="Fisher: k_subset")
right.bar(positions, exact_gumbel, width=0.27, color="C1", label="Wallenius: gumbel_top_k")
right.bar(positions + 0.27, frequency, width=0.27, color="grey",
          label=f"Gumbel-top-k, {num:,} draws")
right.set_xticks(positions.tolist(), [f"{{{a + 1},{b + 1}}}" for a, b in pairs])
right.set_xlabel("set (w = 1, 2, 3, 4; k = 2)")
right.set_ylabel("probability")
right.legend(fontsize=8)
fig.tight_layout()
plt.show()
