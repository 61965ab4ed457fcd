"""
Learning urn weights by maximum likelihood
==========================================

An urn holds 20 balls of each of five classes with unknown weights; we observe the class counts
of many draws of 30 balls and recover the weights by maximising the exact log-likelihood
``MultivariateFisherNCHypergeometric.log_prob`` with Adam on the logits. Only ratios of weights
are identifiable (the law does not change when every logit moves by the same amount), so the
weights are compared after normalising them to sum to one.
"""

# %%
# The data: 400 exact draws from the true urn.
import os

import matplotlib.pyplot as plt
import torch

from diffhypergeom import MultivariateFisherNCHypergeometric

QUICK = os.environ.get("DIFFHYPERGEOM_DOCS_QUICK") == "1"  # shorter loops (the test suite)
torch.manual_seed(0)

population = torch.tensor([20, 20, 20, 20, 20])
draws = 30
true_weights = torch.tensor([1.0, 2.0, 5.0, 0.5, 3.0])
truth = MultivariateFisherNCHypergeometric(population, draws, weights=true_weights)
counts = truth.sample((400,))
print("first draws:\n", counts[:3])
print("mean count per class:", counts.mean(0))
print("exact E[x]:          ", truth.mean)

# %%
# Maximum likelihood: the loss is the mean negative log-probability of the observed counts,
# exact and differentiable in the logits. A new distribution is built at every step (the
# engine caches its tables per object).
logits = torch.zeros(5, requires_grad=True)
optimizer = torch.optim.Adam([logits], lr=0.1)
losses = []
for _ in range(30 if QUICK else 150):
    model = MultivariateFisherNCHypergeometric(population, draws, logits=logits)
    loss = -model.log_prob(counts).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())

learnt = torch.softmax(logits.detach(), 0)
target = true_weights / true_weights.sum()
best = -truth.log_prob(counts).mean().item()
print(f"final loss {losses[-1]:.4f}; loss at the true weights {best:.4f}")
print("learnt weights (normalised):", learnt.numpy().round(3))
print("true weights (normalised):  ", target.numpy().round(3))

# %%
# The loss falls to (and slightly below: the maximum-likelihood estimate fits this sample) the
# loss at the true weights, and the learnt weights match the true ones.
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
left.plot(losses, color="C0", label="exact negative log-likelihood")
left.axhline(best, color="grey", linestyle="--", label="at the true weights")
left.set_xlabel("Adam step")
left.set_ylabel("mean -log p(x)")
left.legend()
classes = torch.arange(5)
right.bar(classes - 0.2, target, width=0.4, label="true", color="grey")
right.bar(classes + 0.2, learnt, width=0.4, label="learnt", color="C0")
right.set_xticks(classes.tolist())
right.set_xlabel("class")
right.set_ylabel("weight / sum of weights")
right.legend()
fig.suptitle(f"Maximum likelihood from {len(counts)} draws of {draws} balls")
fig.tight_layout()
plt.show()
