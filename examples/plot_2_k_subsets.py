"""
Selecting k items with exact marginals
======================================

:func:`diffhypergeom.subsets.k_subset` is the Fisher law with one ball per item: a random
subset :math:`S` of exactly :math:`k` of :math:`N` items with :math:`p(S) \\propto
\\prod_{i \\in S} w_i`. Its ``mean`` is the vector of exact inclusion probabilities
:math:`P(i \\in S)`, and ``rsample`` returns exact :math:`k`-hot draws whose gradient is that of
those marginals. We compare the marginals with the frequencies of sampled subsets, then learn
logits that select the :math:`k` most valuable items with the default ``rsample`` gradient.
"""

# %%
# Exact marginals against sampled frequencies.
import os

import matplotlib.pyplot as plt
import torch

from diffhypergeom.subsets import k_subset

QUICK = os.environ.get("DIFFHYPERGEOM_DOCS_QUICK") == "1"
torch.manual_seed(0)

N, k = 12, 4
logits = torch.randn(N)
subsets = k_subset(logits, k)
marginals = subsets.mean
draws = subsets.sample((2_000 if QUICK else 50_000,))
frequencies = draws.mean(0)
print("every draw has k items:", bool((draws.sum(-1) == k).all()))
print("sum of the marginals:", round(float(marginals.sum()), 6))
print("largest |frequency - marginal|:", round(float((frequencies - marginals).abs().max()), 4))

# %%
# Learning to select. Item :math:`i` is worth :math:`v_i`; the objective is the expected value
# of the selected set, :math:`E[\sum_{i \in S} v_i]`, estimated from 32 exact draws per step.
# The objective is linear in the draw, so the gradient of ``rsample`` (that of the exact
# marginals) is the exact gradient here.
values = torch.linspace(-1.0, 1.0, N)[torch.randperm(N)]
best = values.topk(k).values.sum()
learnt = torch.zeros(N, requires_grad=True)
optimizer = torch.optim.Adam([learnt], lr=0.1)
expected = []
for _ in range(25 if QUICK else 200):
    selection = k_subset(learnt, k)
    x = selection.rsample((32,))                     # [32, N] exact k-hot draws
    loss = -(x * values).sum(-1).mean()
    expected.append(float(selection.mean.detach() @ values))  # exact E[value of S]
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
final = k_subset(learnt.detach(), k).mean
top = set(values.topk(k).indices.tolist())
start = round(expected[0], 3) + 0.0  # no "-0.000"
print(f"exact expected value: {start:.3f} at the start, {expected[-1]:.3f} at the end, "
      f"{float(best):.3f} for the best set")
print("P(i in S) of the best items:", final[sorted(top)].numpy().round(3))

# %%
# Left: the exact marginals and the frequencies of the sampled subsets. Right: the exact
# expected value of the selected set during training, approaching that of the best set.
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
items = torch.arange(N)
left.bar(items - 0.2, marginals, width=0.4, color="grey", label="exact P(i in S)")
left.bar(items + 0.2, frequencies, width=0.4, color="C0",
         label=f"frequency in {len(draws):,} draws")
left.set_xticks(items.tolist())
left.set_xlabel("item")
left.set_ylabel("inclusion probability")
left.set_title(f"k-subsets of {N} items, k = {k}")
left.legend(fontsize=8)
right.plot(expected, color="C0", label="exact E[value of S]")
right.axhline(float(best), color="grey", linestyle="--", label="best set")
right.set_xlabel("Adam step")
right.set_ylabel("expected value")
right.set_title("learning to select the best k")
right.legend()
fig.tight_layout()
plt.show()
