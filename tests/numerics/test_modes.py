"""``numerics.modes``: the Fisher mode against brute force on random urns (ties and weights of
zero included), the exchange search on a separable law, and the rounding of a start."""

from __future__ import annotations

import itertools
import math
import random

import torch

from diffhypergeom.numerics.modes import exchange_mode, fisher_mode, round_to_total

F64 = torch.float64


def _brute_fisher(population, draws, logits):
    best, found = -math.inf, []
    for x in itertools.product(*(range(m + 1) for m in population)):
        if sum(x) != draws or any(xi > 0 and t == -math.inf
                                  for xi, t in zip(x, logits, strict=True)):
            continue
        value = sum(math.log(math.comb(m, xi)) + (xi * t if xi else 0.0)
                    for m, xi, t in zip(population, x, logits, strict=True))
        if value > best + 1e-9:
            best, found = value, [x]
        elif value >= best - 1e-9:
            found.append(x)
    return max(found)


def test_fisher_mode_matches_brute_force():
    rng = random.Random(7)
    batch = []
    for _ in range(200):
        c = rng.choice([2, 3, 4, 5])
        population = [rng.randint(0, 6) for _ in range(c)]
        logits = [0.0] * c if rng.random() < 0.3 else [round(rng.gauss(0, 1.2), 1)
                                                       for _ in range(c)]
        if rng.random() < 0.2:
            logits[rng.randrange(c)] = -math.inf
        drawable = sum(m for m, t in zip(population, logits, strict=True) if t > -math.inf)
        batch.append((population, rng.randint(0, drawable), logits))
    for population, draws, logits in batch:
        theta = torch.tensor([logits], dtype=F64)
        pop = torch.tensor([[m if t > -math.inf else 0
                             for m, t in zip(population, logits, strict=True)]])
        got = tuple(fisher_mode(pop, torch.tensor([draws]), theta)[0].tolist())
        assert got == _brute_fisher(population, draws, logits), (population, draws, logits)


def test_fisher_mode_of_a_large_batch_is_one_call():
    generator = torch.Generator().manual_seed(0)
    population = torch.randint(0, 2000, (64, 6), generator=generator)
    draws = (population.sum(-1).to(F64) * torch.rand(64, generator=generator, dtype=F64)).long()
    theta = torch.randn(64, 6, generator=generator, dtype=F64)
    x = fisher_mode(population, draws, theta)
    assert (x.sum(-1) == draws).all() and (x >= 0).all() and (x <= population).all()
    k, m = x.to(F64), population.to(F64)
    gain = torch.where(x < population, (m - k).clamp_min(1).log() - (k + 1).log() + theta,
                       -math.inf)
    loss = torch.where(x > 0, (m - k + 1).log() - k.clamp_min(1).log() + theta, math.inf)
    assert (gain.amax(-1) <= loss.amin(-1) + 1e-9).all()  # the optimality condition


def test_exchange_mode_finds_the_separable_maximum_from_anywhere():
    population = torch.tensor([[6, 4, 5], [3, 9, 2]])
    theta = torch.tensor([[0.2, -0.1, 0.4], [1.0, 0.0, -2.0]], dtype=F64)
    m = population.to(F64)

    def log_prob(x):
        return (torch.lgamma(m + 1) - torch.lgamma(x + 1) - torch.lgamma(m - x + 1)
                + x * theta).sum(-1)

    start = torch.tensor([[6, 0, 0], [0, 0, 2]])
    got = exchange_mode(log_prob, start, population)
    torch.testing.assert_close(got, fisher_mode(population, torch.tensor([6, 2]), theta))


def test_round_to_total_keeps_bounds_and_total():
    generator = torch.Generator().manual_seed(3)
    population = torch.randint(0, 5, (500, 4), generator=generator)
    draws = (population.sum(-1) * torch.rand(500, generator=generator)).long()
    share = population.to(F64) * torch.rand(500, 4, generator=generator, dtype=F64)
    x = round_to_total(share, population, draws)
    assert (x.sum(-1) == draws).all() and (x >= 0).all() and (x <= population).all()
