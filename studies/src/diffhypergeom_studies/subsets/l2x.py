"""Instance-wise feature selection in the style of L2X (Chen et al. 2018) on the digits: a
selector network gives logits over the 64 pixels of each image, a k-subset ``z`` of them
(``k = 8``) masks the image, and a classifier predicts the digit from the masked image. The
expected cross-entropy ``E_z[CE(classifier(x * z), y)]`` is trained through the method's
estimator (the classifier's gradient through the same samples). The metric: test accuracy with
the top-k pixels of the selector's logits (deterministic); also the test cross-entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as functional
from torch import nn

from diffhypergeom_studies.subsets.data import Split, digits_split
from diffhypergeom_studies.subsets.methods import Loss, top_k_mask
from diffhypergeom_studies.subsets.task import TaskModel, TaskSpec

__all__ = ["HIDDEN", "K", "LEARNING_RATE", "L2XModel", "SPEC", "build"]

K = 8
HIDDEN = 100
LEARNING_RATE = 1e-3


def _mlp(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, outputs))


class L2XModel(TaskModel):
    """Selector ``64 -> 100 -> 64`` logits and classifier ``64 -> 100 -> 10`` (ReLU MLPs)."""

    def __init__(self, split: Split, k: int = K):
        super().__init__()
        self.split, self.k, self.n_train = split, k, split.n_train
        pixels = split.x_train.shape[1]
        self.selector = _mlp(pixels, pixels)
        self.classifier = _mlp(pixels, 10)

    def optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=LEARNING_RATE)

    def _cross_entropy(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``[S, B]`` cross-entropies of masks ``z [S, B, 64]``."""
        scores = self.classifier(x * z)  # [S, B, 10]
        return functional.cross_entropy(scores.permute(0, 2, 1), y.expand(z.shape[:-1]),
                                        reduction="none")

    def train_loss(self, loss: Loss, rows: torch.Tensor) -> torch.Tensor:
        x, y = self.split.x_train[rows], self.split.y_train[rows]
        return loss(self.selector(x), lambda z: self._cross_entropy(x, y, z))

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        x, y = self.split.x_test, self.split.y_test
        z = top_k_mask(self.selector(x), self.k)
        scores = self.classifier(x * z)
        return {"accuracy": float((scores.argmax(-1) == y).float().mean()),
                "cross_entropy": float(functional.cross_entropy(scores, y))}


def build(seed: int) -> L2XModel:
    return L2XModel(digits_split(seed))


SPEC = TaskSpec(
    name="l2x", title=f"L2X on the digits: k = {K} of 64 pixels per image",
    description=__doc__.split("\n\n")[0].replace("\n", " "),
    metric="accuracy", metric_label="test accuracy", higher_is_better=True,
    items=64, k=K, batch_size=64, build=build, stream=1)
