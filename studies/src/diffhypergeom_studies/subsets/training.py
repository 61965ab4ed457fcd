"""Training one model with one method under a budget, with evaluations at fixed checkpoints.

The budget is wall-clock seconds of training (``Budget(seconds=...)``: the equal-time
comparison) or a number of steps (``Budget(steps=...)``: deterministic, for tests and checks;
not equal time). The clock runs only while training: drawing the minibatch, the loss, the
backward pass and the optimiser step. The evaluations at the checkpoints
(``budget * i / checkpoints``, ``i = 0 .. checkpoints``) are off the clock, and so is one
warm-up step before the clock starts (a forward and backward pass whose gradient is dropped:
SIMPLE compiles its circuit there), so that no method pays a one-off cost that a longer run
would not.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch

from diffhypergeom_studies.subsets.methods import Loss
from diffhypergeom_studies.subsets.task import TaskModel

__all__ = ["Budget", "train"]


@dataclass(frozen=True)
class Budget:
    """``seconds`` of training, or ``steps`` (exactly one of them), with ``checkpoints``
    evaluations after the one at the start."""

    seconds: float | None = None
    steps: int | None = None
    checkpoints: int = 10

    def __post_init__(self) -> None:
        if (self.seconds is None) == (self.steps is None):
            raise ValueError("give exactly one of seconds and steps")
        if self.seconds is not None and not (math.isfinite(self.seconds) and self.seconds > 0):
            raise ValueError(f"the budget must be a positive number of seconds, got "
                             f"{self.seconds}")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"the budget must be a positive number of steps, got {self.steps}")
        if self.checkpoints < 1:
            raise ValueError(f"checkpoints must be >= 1, got {self.checkpoints}")

    @property
    def unit(self) -> str:
        return "seconds" if self.seconds is not None else "steps"

    def marks(self) -> list[float]:
        """The checkpoints, in the budget's unit, from 0 to the whole budget."""
        total = float(self.seconds if self.seconds is not None else self.steps)
        return [total * i / self.checkpoints for i in range(self.checkpoints + 1)]


def _evaluate(model: TaskModel) -> dict[str, float]:
    model.eval()
    try:
        return model.evaluate()
    finally:
        model.train()


def train(model: TaskModel, loss: Loss, budget: Budget, batch_size: int,
          generator: torch.Generator) -> dict[str, Any]:
    """Train ``model`` with ``loss`` (a method's) on minibatches of ``batch_size`` training rows
    drawn with ``generator`` (so every method sees the same minibatches), until the budget is
    spent.

    Returns ``checkpoints`` (each: ``mark``, the checkpoint in the budget's unit; ``seconds``
    and ``steps`` of training when it was taken; ``metrics``), ``steps``, ``train_seconds``,
    ``ms_per_step``, ``warmup_seconds`` and ``nonfinite_steps`` (steps whose loss was not
    finite and that were skipped).
    """
    optimizer = model.optimizer()
    model.train()
    started = time.perf_counter()
    rows = torch.randint(model.n_train, (batch_size,))  # the warm-up's: off the shared stream
    model.train_loss(loss, rows).backward()
    optimizer.zero_grad(set_to_none=True)
    warmup = time.perf_counter() - started
    marks = budget.marks()
    records = [{"mark": marks[0], "seconds": 0.0, "steps": 0, "metrics": _evaluate(model)}]
    clock, steps, nonfinite = 0.0, 0, 0
    while len(records) < len(marks):
        started = time.perf_counter()
        rows = torch.randint(model.n_train, (batch_size,), generator=generator)
        value = model.train_loss(loss, rows)
        optimizer.zero_grad(set_to_none=True)
        if torch.isfinite(value):
            value.backward()
            optimizer.step()
        else:
            nonfinite += 1
        clock += time.perf_counter() - started
        steps += 1
        spent = clock if budget.seconds is not None else steps
        while len(records) < len(marks) and spent >= marks[len(records)]:
            records.append({"mark": marks[len(records)], "seconds": clock, "steps": steps,
                            "metrics": _evaluate(model)})
    return {"checkpoints": records, "steps": steps, "train_seconds": clock,
            "ms_per_step": 1e3 * clock / max(steps, 1), "warmup_seconds": warmup,
            "nonfinite_steps": nonfinite}
