"""A k-subset VAE on the digits: an encoder gives logits over ``N = 32`` latent items, the code
``z`` is a k-subset of them (``k = 4``, a k-hot vector), and a decoder gives Bernoulli logits of
the 64 pixels (scaled to ``[0, 1]``). Training minimises the expected reconstruction loss
``E_z[BCE(decoder(z), x)]`` (nats per image, summed over the pixels) through the method's
estimator, plus the prior term of klaswijk/sfess's own subset VAE (``experiments/vae.py``),
``log N - H(softmax(logits))``, the same deterministic function of the logits for every method
(the exact KL divergence of each method's own law from the uniform law on k-subsets is not
available for the peers' Gumbel-top-k draws).

The metric: the test reconstruction loss (binary cross-entropy, nats per image) with the
deterministic top-k code of the encoder's logits; lower is better. It is not a negative ELBO."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as functional
from torch import nn

from diffhypergeom_studies.subsets.data import Split, digits_split
from diffhypergeom_studies.subsets.methods import Loss, top_k_mask
from diffhypergeom_studies.subsets.task import TaskModel, TaskSpec

__all__ = ["HIDDEN", "ITEMS", "K", "LEARNING_RATE", "PRIOR_WEIGHT", "SPEC", "SubsetVAE",
           "build"]

ITEMS = 32
K = 4
HIDDEN = 128
LEARNING_RATE = 1e-3
PRIOR_WEIGHT = 1.0


class SubsetVAE(TaskModel):
    """Encoder ``64 -> 128 -> N`` logits, decoder ``N -> 128 -> 64`` pixel logits."""

    def __init__(self, split: Split, items: int = ITEMS, k: int = K):
        super().__init__()
        self.split, self.k, self.items, self.n_train = split, k, items, split.n_train
        pixels = split.x_train.shape[1]
        self.encoder = nn.Sequential(nn.Linear(pixels, HIDDEN), nn.ReLU(),
                                     nn.Linear(HIDDEN, items))
        self.decoder = nn.Sequential(nn.Linear(items, HIDDEN), nn.ReLU(),
                                     nn.Linear(HIDDEN, pixels))

    def optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=LEARNING_RATE)

    def _reconstruction(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``[S, B]``: nats per image of codes ``z [S, B, N]``."""
        logits = self.decoder(z)
        return functional.binary_cross_entropy_with_logits(
            logits, x.expand(logits.shape), reduction="none").sum(-1)

    def prior_term(self, logits: torch.Tensor) -> torch.Tensor:
        """``[B]``: ``log N - H(softmax(logits))``, as klaswijk/sfess's subset VAE."""
        log_p = logits.log_softmax(-1)
        return math.log(self.items) + (log_p.exp() * log_p).sum(-1)

    def train_loss(self, loss: Loss, rows: torch.Tensor) -> torch.Tensor:
        x = self.split.x_train[rows]
        logits = self.encoder(x)
        expected = loss(logits, lambda z: self._reconstruction(x, z))
        return expected + PRIOR_WEIGHT * self.prior_term(logits).mean()

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        x = self.split.x_test
        logits = self.encoder(x)
        reconstruction = self._reconstruction(x, top_k_mask(logits, self.k)[None])[0]
        return {"reconstruction": float(reconstruction.mean()),
                "prior_term": float(self.prior_term(logits).mean())}


def build(seed: int) -> SubsetVAE:
    return SubsetVAE(digits_split(seed))


SPEC = TaskSpec(
    name="vae", title=f"k-subset VAE on the digits: k = {K} of N = {ITEMS} latent items",
    description=__doc__.split("\n\n")[0].replace("\n", " "),
    metric="reconstruction", metric_label="test reconstruction loss (nats per image, top-k code)",
    higher_is_better=False, items=ITEMS, k=K, batch_size=64, build=build, stream=2)
