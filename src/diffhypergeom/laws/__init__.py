"""The laws, one per module, each a ``torch.distributions.Distribution``:

- ``fisher``: ``MultivariateFisherNCHypergeometric`` (balls drawn together);
- ``ksubset``: ``KSubset``, the Fisher law with one ball per item (k-subsets);
- ``wallenius``: ``MultivariateWalleniusNCHypergeometric`` (balls drawn one at a time);
- ``topk``: ``GumbelTopK``, the Wallenius law with one ball per item (Gumbel-top-k subsets);
- ``merged``: ``MergedFisherNCHypergeometric`` (the paper's sampler, a baseline);
- ``relaxed``: ``RelaxedMultivariateFisherNCHypergeometric`` (Gumbel-softmax soft counts);
- ``partition``: ``RandomPartition`` (DRPM, exact probability);
- ``marginal``: ``UrnMarginal``, the law of one class's count (``marginal(i)`` of the Fisher and
  Wallenius laws: exact tails, quantiles and mode);
- ``base``: ``UrnDistribution``, what the urn laws share; ``checks``: argument validation.
"""

from diffhypergeom.laws.fisher import MultivariateFisherNCHypergeometric
from diffhypergeom.laws.ksubset import KSubset
from diffhypergeom.laws.marginal import UrnMarginal
from diffhypergeom.laws.merged import MergedFisherNCHypergeometric
from diffhypergeom.laws.partition import RandomPartition
from diffhypergeom.laws.relaxed import RelaxedMultivariateFisherNCHypergeometric
from diffhypergeom.laws.topk import GumbelTopK
from diffhypergeom.laws.wallenius import MultivariateWalleniusNCHypergeometric

__all__ = [
    "GumbelTopK",
    "KSubset",
    "MergedFisherNCHypergeometric",
    "MultivariateFisherNCHypergeometric",
    "MultivariateWalleniusNCHypergeometric",
    "RandomPartition",
    "RelaxedMultivariateFisherNCHypergeometric",
    "UrnMarginal",
]
