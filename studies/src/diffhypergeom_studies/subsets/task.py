"""What a task of the k-subset benchmark is: a ``TaskSpec`` (its sizes and metric) that builds,
for a seed, a ``TaskModel`` (the data split, the networks and the training and test code)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from diffhypergeom_studies.subsets.methods import Loss

__all__ = ["TaskModel", "TaskSpec"]


class TaskModel(nn.Module):
    """A model to train with a k-subset gradient estimator. Subclasses set ``n_train`` and
    implement ``optimizer``, ``train_loss`` and ``evaluate``."""

    n_train: int

    def optimizer(self) -> torch.optim.Optimizer:
        """The optimiser of all the model's parameters."""
        raise NotImplementedError

    def train_loss(self, loss: Loss, rows: torch.Tensor) -> torch.Tensor:
        """The training loss on the training ``rows`` (indices), with ``loss`` (a method's
        ``Loss``) taking the expectation over the k-subset."""
        raise NotImplementedError

    def evaluate(self) -> dict[str, float]:
        """Metrics on the test split, with the deterministic top-k of the logits."""
        raise NotImplementedError


@dataclass(frozen=True)
class TaskSpec:
    """A task: ``build(seed, samples)`` gives the model for a seed (its data split; call it
    under a seeded torch generator for the initialisation); ``metric`` names the metric of
    ``TaskModel.evaluate`` that the study ranks by, ``higher_is_better`` which way."""

    name: str
    title: str
    description: str
    metric: str
    metric_label: str
    higher_is_better: bool
    items: int
    k: int
    batch_size: int
    build: Callable[[int], TaskModel]
    stream: int  # the task's seeding stream: same seed and task = same split and initialisation
