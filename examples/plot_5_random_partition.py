"""
Random partitions with an exact probability
===========================================

:class:`~diffhypergeom.laws.partition.RandomPartition` splits :math:`N` elements into :math:`K`
ordered blocks: the block sizes follow the Fisher law with urn :math:`(N, \\dots, N)` and
:math:`N` draws (weights ``exp(size_logits)``), the elements are ranked by Plackett-Luce on
their scores (``element_logits``), and block :math:`k` takes the next :math:`n_k` of them. Its
``log_prob`` is exact, so it sums to one over all :math:`K^N` labellings; its draws are exact
and never an invalid partition.
"""

# %%
# A small model first: 6 elements, 3 blocks. The probabilities of all 3^6 = 729 labellings
# sum to one.
import itertools
import os

import matplotlib.pyplot as plt
import torch

from diffhypergeom import RandomPartition

QUICK = os.environ.get("DIFFHYPERGEOM_DOCS_QUICK") == "1"
torch.manual_seed(0)

small = RandomPartition(torch.tensor([0.0, 0.5, -0.5]), torch.randn(6))
labellings = torch.tensor(list(itertools.product(range(3), repeat=6)), dtype=torch.float32)
total = small.log_prob(labellings).double().exp().sum()
print(f"sum of p(z) over all {len(labellings)} labellings: {float(total):.6f} "
      f"(|sum - 1| = {abs(float(total) - 1):.1e})")

# %%
# A larger one: 24 elements in 4 blocks, the scores increasing with the element's index (so
# block 0, which takes the highest-scoring elements first, tends to hold the last elements).
N, K = 24, 4
size_logits = torch.tensor([0.5, 0.0, 0.0, -0.5])
element_logits = torch.linspace(-2.0, 2.0, N)
partition = RandomPartition(size_logits, element_logits)
z = partition.sample((8,))                                        # [8, N] labels
log_p = partition.log_prob(z)
for row, (labels, lp) in enumerate(zip(z.long().tolist(), log_p.tolist(), strict=True)):
    print(f"draw {row}: sizes {torch.bincount(torch.tensor(labels), minlength=K).tolist()}, "
          f"log p(z) = {lp:.2f}")

# %%
# The sizes: the exact marginal of each block's size under the Fisher size law
# (``partition.sizes``) against the sizes of many exact draws.
num = 2_000 if QUICK else 20_000
sizes = torch.nn.functional.one_hot(partition.sample((num,)).long(), K).sum(-2)   # [num, K]
exact = torch.stack([partition.sizes.marginal(k).probs for k in range(K)])       # [K, N + 1]
empirical = torch.stack([torch.bincount(sizes[:, k], minlength=N + 1) for k in range(K)]) / num
print("exact E[sizes]:", partition.sizes.mean.numpy().round(3))
print("mean of sizes: ", sizes.float().mean(0).numpy().round(3))
print("largest |frequency - exact| of a size:",
      round(float((empirical - exact).abs().max()), 4))

# %%
# Left: eight draws, one row each, coloured by block. Right: the exact law of each block's
# size (lines) and the frequencies in the draws (dots).
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8), width_ratios=[1.1, 1])
colours = plt.get_cmap("tab10", 10)
left.imshow(z.numpy(), aspect="auto", cmap=colours, vmin=-0.5, vmax=9.5,
            interpolation="nearest")
left.set_yticks(range(len(z)), [f"{v:.1f}" for v in log_p.tolist()])
left.set_ylabel("log p(z) of the draw")
left.set_xlabel("element (score increasing to the right)")
left.set_title(f"8 exact draws, N = {N}, K = {K}")
for k in range(K):
    right.plot(range(N + 1), exact[k], color=colours(k), label=f"block {k}")
    right.plot(range(N + 1), empirical[k], "o", color=colours(k), markersize=3)
right.set_xlabel("block size")
right.set_ylabel("probability")
right.set_title(f"size law: exact (lines), {num:,} draws (dots)")
right.legend(fontsize=8)
fig.tight_layout()
plt.show()
