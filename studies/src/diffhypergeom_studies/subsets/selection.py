"""Global feature selection on the breast-cancer table: one shared logits vector over its 30
standardised features, a k-subset ``z`` of them (``k = 5``) and a logistic-regression head on
``x * z``. The expected cross-entropy over ``z`` (each draw of ``z`` scores a whole minibatch:
one urn, ``f(z)`` the minibatch's mean cross-entropy) is trained through the method's estimator,
the head through the same draws. The metric: the test cross-entropy with the top-k features of
the logits (deterministic; lower is better), more sensitive than the test accuracy on 171 rows,
which is also recorded."""

from __future__ import annotations

import torch
import torch.nn.functional as functional
from torch import nn

from diffhypergeom_studies.subsets.data import Split, breast_cancer_split
from diffhypergeom_studies.subsets.methods import Loss, top_k_mask
from diffhypergeom_studies.subsets.task import TaskModel, TaskSpec

__all__ = ["GlobalSelection", "HEAD_LEARNING_RATE", "K", "LOGITS_LEARNING_RATE", "SPEC", "build"]

K = 5
HEAD_LEARNING_RATE = 1e-2
LOGITS_LEARNING_RATE = 5e-2


class GlobalSelection(TaskModel):
    """Selection logits ``[30]`` (initialised at ``N(0, 0.01^2)``) and a linear head
    ``30 -> 2``."""

    def __init__(self, split: Split, k: int = K):
        super().__init__()
        self.split, self.k, self.n_train = split, k, split.n_train
        features = split.x_train.shape[1]
        self.logits = nn.Parameter(0.01 * torch.randn(features))
        self.head = nn.Linear(features, 2)

    def optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam([{"params": [self.logits], "lr": LOGITS_LEARNING_RATE},
                                 {"params": self.head.parameters(), "lr": HEAD_LEARNING_RATE}])

    def _cross_entropy(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``[S, 1]``: the minibatch's mean cross-entropy for each mask ``z [S, 1, 30]``."""
        scores = self.head(x * z)  # [S, B, 2]
        losses = functional.cross_entropy(scores.permute(0, 2, 1),
                                          y.expand(scores.shape[:-1]), reduction="none")
        return losses.mean(-1, keepdim=True)

    def train_loss(self, loss: Loss, rows: torch.Tensor) -> torch.Tensor:
        x, y = self.split.x_train[rows], self.split.y_train[rows]
        return loss(self.logits[None], lambda z: self._cross_entropy(x, y, z))

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        x, y = self.split.x_test, self.split.y_test
        scores = self.head(x * top_k_mask(self.logits, self.k))
        return {"cross_entropy": float(functional.cross_entropy(scores, y)),
                "accuracy": float((scores.argmax(-1) == y).float().mean())}


def build(seed: int) -> GlobalSelection:
    return GlobalSelection(breast_cancer_split(seed))


SPEC = TaskSpec(
    name="selection", title=f"Global feature selection on breast cancer: k = {K} of 30",
    description=__doc__.split("\n\n")[0].replace("\n", " "),
    metric="cross_entropy", metric_label="test cross-entropy (top-k features)",
    higher_is_better=False, items=30, k=K, batch_size=64, build=build, stream=3)
