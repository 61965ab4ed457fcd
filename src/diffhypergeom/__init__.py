"""diffhypergeom: the exact, differentiable multivariate Fisher noncentral hypergeometric
distribution for PyTorch.

    >>> import torch
    >>> from diffhypergeom import MultivariateFisherNCHypergeometric
    >>> d = MultivariateFisherNCHypergeometric(torch.tensor([200, 200, 200]), 180,
    ...                                        weights=torch.tensor([1.0, 10.0, 1.0]))
    >>> d.sample((4,)).sum(-1).tolist()
    [180.0, 180.0, 180.0, 180.0]
"""

from diffhypergeom import moved
from diffhypergeom.laws import (
    MergedFisherNCHypergeometric,
    MultivariateFisherNCHypergeometric,
    MultivariateWalleniusNCHypergeometric,
    RandomPartition,
    RelaxedMultivariateFisherNCHypergeometric,
    UrnMarginal,
)
from diffhypergeom.numerics.sampling import RelaxedDraw

__all__ = [
    "MergedFisherNCHypergeometric",
    "MultivariateFisherNCHypergeometric",
    "MultivariateWalleniusNCHypergeometric",
    "RandomPartition",
    "RelaxedDraw",
    "RelaxedMultivariateFisherNCHypergeometric",
    "UrnMarginal",
]
__version__ = "0.2.0.dev0"

moved.install()


def __getattr__(name: str):
    """``diffhypergeom.stats`` loads on first use: ``import diffhypergeom`` leaves it out."""
    if name == "stats":
        import importlib

        return importlib.import_module("diffhypergeom.stats")
    raise AttributeError(f"module 'diffhypergeom' has no attribute {name!r}")
