"""diffhypergeom: the exact, differentiable multivariate Fisher noncentral hypergeometric
distribution for PyTorch.

    >>> import torch
    >>> from diffhypergeom import MultivariateFisherNCHypergeometric
    >>> d = MultivariateFisherNCHypergeometric(torch.tensor([200, 200, 200]), 180,
    ...                                        weights=torch.tensor([1.0, 10.0, 1.0]))
    >>> d.sample((4,)).sum(-1).tolist()
    [180, 180, 180, 180]
"""

from diffhypergeom import kl as _kl  # noqa: F401  (registers kl_divergence)
from diffhypergeom.distribution import MultivariateFisherNCHypergeometric
from diffhypergeom.sampling import RelaxedDraw

__all__ = ["MultivariateFisherNCHypergeometric", "RelaxedDraw"]
__version__ = "0.1.0"
