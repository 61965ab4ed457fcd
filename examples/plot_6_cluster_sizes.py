"""
Cluster sizes under the hypergeometric prior
============================================

A prior over the sizes :math:`(n_1, \\dots, n_K)` of :math:`K` clusters of :math:`N` items:
the Fisher law with urn :math:`(N, \\dots, N)` and :math:`N` draws,

.. math::

   p(n) \\propto \\prod_{k=1}^{K} \\binom{N}{n_k} w_k^{n_k}, \\qquad \\sum_k n_k = N,

the size law of :class:`~diffhypergeom.laws.partition.RandomPartition` and the learnable
cluster-size prior of the clustering study (``diffhypergeom cluster``). With equal weights the
sizes are balanced; the weights move mass between clusters. We show the exact marginal law of
each cluster's size for three weight vectors.
"""

# %%
# The exact marginals: ``marginal(k)`` is a ``Categorical`` over the sizes ``0..N`` of
# cluster ``k``.
import os

import matplotlib.pyplot as plt
import torch

from diffhypergeom import MultivariateFisherNCHypergeometric

QUICK = os.environ.get("DIFFHYPERGEOM_DOCS_QUICK") == "1"  # fewer urns in the last figure

N, K = 60, 5
settings = {
    "equal weights": torch.ones(K),
    "one heavy cluster (w = 4)": torch.tensor([4.0, 1.0, 1.0, 1.0, 1.0]),
    "geometric (w_k = 2^-k)": 2.0 ** -torch.arange(K, dtype=torch.float32),
}
population = torch.full((K,), N)
laws = {name: MultivariateFisherNCHypergeometric(population, N, weights=w)
        for name, w in settings.items()}
for name, law in laws.items():
    print(f"{name:28s} E[n] = {law.mean.numpy().round(2)}, sd = "
          f"{law.variance.sqrt().numpy().round(2)}")

# %%
# One heatmap per weight vector: row :math:`k` is the exact law of :math:`n_k`. Equal weights
# give every cluster about :math:`N / K = 12` items. A weight of 4 on one cluster (half of the
# total weight) gives it about 25 of the 60 items, fewer than the 30 of a multinomial with the
# same weights: the binomial coefficients :math:`\binom{N}{n_k}` favour balanced sizes.
fig, axes = plt.subplots(1, len(laws), figsize=(13, 3.4), sharey=True, layout="constrained")
for ax, (name, law) in zip(axes, laws.items(), strict=True):
    probs = torch.stack([law.marginal(k).probs for k in range(K)])      # [K, N + 1]
    image = ax.imshow(probs.numpy(), aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_title(name, fontsize=10)
    ax.set_xlabel("cluster size")
    ax.set_yticks(range(K), [f"cluster {k}" for k in range(K)])
fig.colorbar(image, ax=axes, label="P(size)", aspect=30)
plt.show()

# %%
# How one weight moves its cluster's size: the weight of cluster 0 from 1/16 to 16, the others
# at 1, as one batch of urns. The exact mean and standard deviation of :math:`n_0`, and the
# mean :math:`N w_0 / \sum_k w_k` of a multinomial with the same weights.
w0 = torch.logspace(-4, 4, 9 if QUICK else 41, base=2.0)
weights = torch.cat([w0.unsqueeze(-1), torch.ones(len(w0), K - 1)], -1)    # [B, K]
batch = MultivariateFisherNCHypergeometric(population, N, weights=weights)
mean0, sd0 = batch.mean[:, 0], batch.variance[:, 0].sqrt()
multinomial = N * w0 / weights.sum(-1)
for i in range(0, len(w0), max(len(w0) // 4, 1)):
    print(f"w0 = {float(w0[i]):7.4f}: E[n0] = {float(mean0[i]):5.2f} (sd {float(sd0[i]):.2f}),"
          f" multinomial mean {float(multinomial[i]):5.2f}")

fig, ax = plt.subplots(figsize=(6, 3.6))
ax.fill_between(w0, mean0 - sd0, mean0 + sd0, color="C0", alpha=0.25, label="± 1 sd")
ax.plot(w0, mean0, color="C0", label="hypergeometric prior: E[n0]")
ax.plot(w0, multinomial, color="grey", linestyle="--", label="multinomial mean")
ax.set_xscale("log", base=2)
ax.set_xlabel("weight of cluster 0 (the others: 1)")
ax.set_ylabel(f"size of cluster 0 (of N = {N})")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
