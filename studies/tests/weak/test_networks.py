"""Shapes and layer layout of the conv encoder/decoder, with both kernel choices."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from diffhypergeom_studies.weak.networks import ConvDecoder, ConvEncoder


@pytest.mark.parametrize("size, kernels, expected", [
    (64, "4x4", [4, 4, 4, 4]), (64, "reference", [4, 4, 2, 2]),
    (32, "reference", [4, 2, 2]), (16, "reference", [2, 2]),
])
def test_encoder_kernels_and_shapes(size, kernels, expected):
    encoder = ConvEncoder(3, size, latent_dim=10, width=0.25, hidden=16, kernels=kernels)
    convs = [m for m in encoder.modules() if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size[0] for c in convs] == expected
    assert all(c.stride == (2, 2) for c in convs)
    mu, logvar = encoder(torch.rand(2, 3, size, size))
    assert mu.shape == logvar.shape == (2, 10)
    decoder = ConvDecoder(3, size, latent_dim=10, width=0.25, hidden=16)
    assert decoder(mu).shape == (2, 3, size, size)


def test_encoder_kernel_error():
    with pytest.raises(ValueError, match="kernels"):
        ConvEncoder(3, 32, 10, kernels="2x2")
