"""Convolutional encoder and decoder of Locatello et al. (2020) (disentanglement_lib's
``conv_encoder`` / ``deconv_decoder``), sized by the image.

Encoder: ``L = log2(S / 4)`` convolutions (kernel 4, stride 2, padding 1, ReLU) with channels
``(32, 32, 64, 64)`` (the last ``L`` of them, times ``width``), a dense layer of ``hidden`` (256)
units, and two dense heads giving the Gaussian posterior's mean and log-variance ``[B, d]``.
Decoder: dense ``hidden``, dense to a ``4 x 4`` map, ``L`` transposed convolutions mirroring the
encoder, output Bernoulli logits ``[B, C, S, S]``. ``kernels="4x4"`` (default) uses 4 x 4
kernels with padding 1 in every encoder layer; ``kernels="reference"`` uses 2 x 2 kernels
(stride 2, no padding) in the encoder's last two conv layers, as disentanglement_lib's
``conv_encoder`` does in its 3rd and 4th (its decoder is 4 x 4 throughout, as here). Both halve
any even size.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["BASE_CHANNELS", "ConvDecoder", "ConvEncoder", "KERNELS"]

BASE_CHANNELS = (32, 32, 64, 64)
KERNELS = ("4x4", "reference")


def _layer_channels(image_size: int, width: float) -> list[int]:
    levels = math.log2(image_size / 4)
    if image_size < 8 or levels != int(levels):
        raise ValueError(f"image_size must be 4 * 2^L with L >= 1 (8, 16, 32, 64, ...), got "
                         f"{image_size}")
    if width <= 0:
        raise ValueError(f"width must be > 0, got {width}")
    levels = int(levels)
    base = list(BASE_CHANNELS[-levels:]) if levels <= 4 else \
        [BASE_CHANNELS[0]] * (levels - 4) + list(BASE_CHANNELS)
    return [max(1, round(c * width)) for c in base]


class ConvEncoder(nn.Module):
    """``x [B, C, S, S] -> (mu [B, d], logvar [B, d])``."""

    def __init__(self, in_channels: int, image_size: int, latent_dim: int,
                 width: float = 1.0, hidden: int = 256, kernels: str = "4x4"):
        super().__init__()
        if kernels not in KERNELS:
            raise ValueError(f"kernels must be one of {KERNELS}, got {kernels!r}")
        channels = _layer_channels(image_size, width)
        small = 2 if kernels == "reference" else 0
        layers: list[nn.Module] = []
        previous = in_channels
        for i, c in enumerate(channels):
            if i >= len(channels) - small:
                layers += [nn.Conv2d(previous, c, 2, stride=2), nn.ReLU()]
            else:
                layers += [nn.Conv2d(previous, c, 4, stride=2, padding=1), nn.ReLU()]
            previous = c
        self.features = nn.Sequential(*layers, nn.Flatten(),
                                      nn.Linear(previous * 16, hidden), nn.ReLU())
        self.mean = nn.Linear(hidden, latent_dim)
        self.logvar = nn.Linear(hidden, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x)
        return self.mean(h), self.logvar(h)


class ConvDecoder(nn.Module):
    """``z [B, d] -> Bernoulli logits [B, C, S, S]``."""

    def __init__(self, out_channels: int, image_size: int, latent_dim: int,
                 width: float = 1.0, hidden: int = 256):
        super().__init__()
        channels = _layer_channels(image_size, width)[::-1]
        self.first = channels[0]
        self.dense = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(),
                                   nn.Linear(hidden, channels[0] * 16), nn.ReLU())
        layers: list[nn.Module] = []
        for i, c in enumerate(channels):
            last = i == len(channels) - 1
            out = out_channels if last else channels[i + 1]
            layers.append(nn.ConvTranspose2d(c, out, 4, stride=2, padding=1))
            if not last:
                layers.append(nn.ReLU())
        self.deconv = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.dense(z).view(z.shape[0], self.first, 4, 4)
        return self.deconv(h)
