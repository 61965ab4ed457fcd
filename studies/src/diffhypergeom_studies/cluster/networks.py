"""MLP encoder and decoder of the VaDE (Jiang et al. 2016): ``d -> 500 -> 500 -> 2000 -> D``
and back, ReLU activations; the hidden sizes are configurable."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["Decoder", "Encoder"]


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """``x`` [B, d] -> Gaussian posterior parameters ``(mu, logvar)``, each [B, latent]."""

    def __init__(self, input_dim: int, hidden: Sequence[int], latent_dim: int):
        super().__init__()
        if input_dim < 1 or latent_dim < 1 or any(h < 1 for h in hidden):
            raise ValueError(f"layer sizes must be >= 1: input_dim={input_dim}, "
                             f"hidden={list(hidden)}, latent_dim={latent_dim}")
        self.body = _mlp([input_dim, *hidden])
        width = hidden[-1] if hidden else input_dim
        self.mu = nn.Linear(width, latent_dim)
        self.logvar = nn.Linear(width, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.mu(h), self.logvar(h)


class Decoder(nn.Module):
    """``z`` [B, latent] -> Bernoulli logits [B, d] (hidden sizes in reverse order)."""

    def __init__(self, latent_dim: int, hidden: Sequence[int], output_dim: int):
        super().__init__()
        reverse = list(hidden)[::-1]
        self.body = _mlp([latent_dim, *reverse])
        self.out = nn.Linear(reverse[-1] if reverse else latent_dim, output_dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(z))
