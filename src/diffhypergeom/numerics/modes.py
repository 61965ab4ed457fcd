"""The most probable count vector of an urn (the mode of its law), by moves of one ball from one
class to another.

A move takes a ball from class ``j`` to class ``i``: ``x -> x + e_i - e_j``. From a start, the
search makes the best move that raises ``log p`` by more than ``TIE`` until none does; then,
among maxima that tie (within ``TIE``), it moves balls from later classes to earlier ones while
that loses at most ``TIE``, so the mode returned is the lexicographically largest of tied
maxima (the largest ``x_1``, then ``x_2``, ...: for two classes the larger count, as
BiasedUrn's ``modeFNCHypergeo``); and it goes on until neither kind of move is left (each
better move gains more than a tie move may lose, and tie moves make the vector
lexicographically larger, so it stops).

- ``fisher_mode``: the Fisher law, exact. Its ``log p`` is ``sum_i g_i(x_i)`` (plus a constant)
  with ``g_i(k) = log C(m_i, k) + k theta_i``, whose increments ``d_i(k) = g_i(k + 1) - g_i(k) =
  log((m_i - k) / (k + 1)) + theta_i`` fall as ``k`` grows. A count vector ``x`` that no move
  improves has ``max_i d_i(x_i) <= min_j d_j(x_j - 1)``, and then ``sum_i g_i(y_i) - g_i(x_i) <=
  0`` for every ``y`` of the support: the balls ``y`` adds to a class gain at most ``max_i
  d_i(x_i)`` each, those it removes lose at least ``min_j d_j(x_j - 1)`` each, and there are as
  many of each. So the local maximum is the global one. Each move costs ``O(c)``; the start, the
  rounded solution of the continuous version of that condition, is within about ``c`` moves.
- ``exchange_mode``: any law, given its exact ``log_prob``: every move is scored (``c (c - 1)``
  log-probabilities per step). The result is a maximum over its neighbours; the Wallenius law
  has no separable form, so nothing more is proven (for two classes it is the mode of a
  unimodal law, so exact).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from diffhypergeom.numerics.special import NEG_INF
from diffhypergeom.numerics.tails import TIE

__all__ = ["exchange_mode", "fisher_mode", "round_to_total"]


def round_to_total(values: torch.Tensor, population: torch.Tensor, draws: torch.Tensor
                   ) -> torch.Tensor:
    """``[B, c]`` int64: ``values [B, c]`` (real, ``0 <= values <= m``) rounded to whole counts
    within ``0..m`` that sum to ``draws [B]``: floors, then one more for the largest fractional
    parts (largest remainders), with what is still missing or extra spread where room is left.

    Example:
        >>> import torch
        >>> from diffhypergeom.numerics.modes import round_to_total
        >>> round_to_total(torch.tensor([[1.6, 2.7, 0.7]]), torch.tensor([[4, 5, 6]]),
        ...                torch.tensor([5]))
        tensor([[1, 3, 1]])
    """
    values = values.clamp(min=0).minimum(population.to(values.dtype))
    x = values.floor().to(torch.int64)
    missing = draws - x.sum(-1)
    order = (values - x).argsort(-1, descending=True)
    rank = torch.empty_like(order).scatter_(-1, order, torch.arange(
        x.shape[-1], device=x.device).expand_as(order).contiguous())
    x = x + ((rank < missing.unsqueeze(-1)) & (x < population)).to(torch.int64)
    for _ in range(x.shape[-1]):  # rounding lost to full classes (rare): fill in class order
        missing = draws - x.sum(-1)
        if not bool((missing != 0).any()):
            break
        room = torch.where(missing.unsqueeze(-1) > 0, population - x, x)
        before = room.cumsum(-1) - room
        change = (missing.abs().unsqueeze(-1) - before).clamp(min=0).minimum(room)
        x = x + missing.sign().unsqueeze(-1) * change
    return x


def _moves(gain: torch.Tensor, loss: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                            torch.Tensor, torch.Tensor]:
    """For each urn, the move to make (``to``, ``from``) and whether it is a better move or a
    tie move (both ``[B]``), from the gain of adding a ball to each class and the loss of
    taking one away (``[B, c]``, ``-inf`` / ``+inf`` where none can be)."""
    best_to, best_from = gain.argmax(-1), loss.argmin(-1)
    better = gain.gather(-1, best_to.unsqueeze(-1)).squeeze(-1) \
        - loss.gather(-1, best_from.unsqueeze(-1)).squeeze(-1) > TIE
    # tie moves: the earliest class i that can take a ball from a later one at no loss
    later = (-loss).flip(-1).cummax(-1)
    cheapest = torch.cat([-later.values.flip(-1)[:, 1:],
                          torch.full_like(loss[:, :1], float("inf"))], -1)
    where = torch.cat([(loss.shape[-1] - 1 - later.indices).flip(-1)[:, 1:],
                       torch.zeros_like(best_to[:, None])], -1)
    taking = gain >= cheapest - TIE
    tie = taking.any(-1)
    tie_to = taking.to(torch.int8).argmax(-1)
    tie_from = where.gather(-1, tie_to.unsqueeze(-1)).squeeze(-1)
    to = torch.where(better, best_to, tie_to)
    source = torch.where(better, best_from, tie_from)
    return to, source, better, tie & ~better


@torch.no_grad()
def fisher_mode(population: torch.Tensor, draws: torch.Tensor, theta: torch.Tensor
                ) -> torch.Tensor:
    """``[B, c]`` int64: the exact mode of the Fisher law of urns ``population [B, c]`` (int64,
    zero where the weight is zero), ``draws [B]``, ``theta [B, c]`` (float64 logits, ``-inf``
    for weight zero); of tied maxima the lexicographically largest (module docstring).

    Example:
        >>> import torch
        >>> from diffhypergeom.numerics.modes import fisher_mode
        >>> theta = torch.zeros(1, 2, dtype=torch.float64)  # C(5, x) C(5, 5 - x): 2 and 3 tie
        >>> fisher_mode(torch.tensor([[5, 5]]), torch.tensor([5]), theta)
        tensor([[3, 2]])
    """
    m = population.to(torch.float64)
    live = (population > 0) & (theta > NEG_INF)
    finite = torch.where(live, theta, 0.0)
    span = torch.log1p(m.sum(-1)) + 40
    lo = torch.where(live, finite, float("inf")).amin(-1) - span
    hi = torch.where(live, finite, NEG_INF).amax(-1) + span

    def continuous(level: torch.Tensor) -> torch.Tensor:
        a = level.unsqueeze(-1) - finite
        return torch.where(live, m * torch.sigmoid(-a) - torch.sigmoid(a), 0.0).clamp(min=0)

    for _ in range(200):  # the level where the continuous increments take n balls
        mid = 0.5 * (lo + hi)
        over = continuous(mid).sum(-1) > draws
        lo, hi = torch.where(over, mid, lo), torch.where(over, hi, mid)
    x = round_to_total(continuous(hi), torch.where(live, population, 0), draws)
    while True:
        k = x.to(torch.float64)
        gain = torch.where(live & (x < population),
                           (m - k).clamp_min(1).log() - (k + 1).log() + finite, NEG_INF)
        loss = torch.where(live & (x > 0),
                           (m - k + 1).log() - k.clamp_min(1).log() + finite, float("inf"))
        to, source, better, tie = _moves(gain, loss)
        move = better | tie
        if not bool(move.any()):
            return x
        step = torch.zeros_like(x).scatter_(-1, to.unsqueeze(-1), 1) \
            - torch.zeros_like(x).scatter_(-1, source.unsqueeze(-1), 1)
        x = x + torch.where(move.unsqueeze(-1), step, 0)


@torch.no_grad()
def exchange_mode(log_prob: Callable[[torch.Tensor], torch.Tensor], start: torch.Tensor,
                  population: torch.Tensor, max_steps: int = 100_000) -> torch.Tensor:
    """``[B, c]`` int64: a count vector that no move of one ball improves (by more than
    ``TIE``), reached from ``start [B, c]`` (a point of each urn's support) by the best move
    each step, ties resolved as in ``fisher_mode``. ``log_prob(x)`` scores count vectors
    ``x [S, B, c]`` (float64) of the urns ``population [B, c]`` as ``[S, B]``; each step scores
    the ``c (c - 1)`` moves of every urn. A ``RuntimeError`` after ``max_steps`` steps.

    Example:
        >>> import torch
        >>> from diffhypergeom.numerics.modes import exchange_mode
        >>> def central(x):  # the central hypergeometric law of the urn [6, 4, 5], up to a constant
        ...     m = torch.tensor([6.0, 4.0, 5.0], dtype=torch.float64)
        ...     return (torch.lgamma(m + 1) - torch.lgamma(x + 1) - torch.lgamma(m - x + 1)).sum(-1)
        >>> exchange_mode(central, torch.tensor([[6, 0, 0]]), torch.tensor([[6, 4, 5]]))
        tensor([[2, 2, 2]])
    """
    x = start.clone()
    c = x.shape[-1]
    pairs = [(i, j) for i in range(c) for j in range(c) if i != j]
    to = torch.tensor([i for i, _ in pairs], device=x.device)
    source = torch.tensor([j for _, j in pairs], device=x.device)
    step = torch.eye(c, dtype=torch.int64, device=x.device)
    moves = step[to] - step[source]                                       # [P, c]
    for _ in range(max_steps):
        here = log_prob(x.unsqueeze(0).to(torch.float64))[0]
        y = x.unsqueeze(0) + moves.unsqueeze(1)                            # [P, B, c]
        valid = ((y >= 0) & (y <= population)).all(-1)
        score = log_prob(torch.where(valid.unsqueeze(-1), y, x.unsqueeze(0)).to(torch.float64))
        change = torch.where(valid, score - here, NEG_INF)                 # [P, B]
        better = change.amax(0) > TIE
        best = change.argmax(0)
        # tie moves from a later class to an earlier one: the earliest receiver first
        tie_ok = valid & (change >= -TIE) & (source > to).unsqueeze(-1)
        rank = torch.where(tie_ok, to.unsqueeze(-1) * c - source.unsqueeze(-1), c * c)
        tie = tie_ok.any(0) & ~better
        chosen = torch.where(better, best, rank.argmin(0))
        move = better | tie
        if not bool(move.any()):
            return x
        x = x + torch.where(move.unsqueeze(-1), moves[chosen], 0)
    raise RuntimeError(f"exchange_mode: no mode after {max_steps} moves; please report this urn")
