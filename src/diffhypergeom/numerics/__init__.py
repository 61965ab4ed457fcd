"""The numerics under the laws: no distribution objects here, only tensors in and out.

- ``special``: log-space helpers (``logsumexp`` with zero gradients on empty slices, log
  binomials, ``NEG_INF``);
- ``support``: the size of an urn's support and its points;
- ``logspace`` and ``fft``: the two engines of the Fisher law's generating function;
  ``urn``: what they share (the ``Engine`` interface, the canonical ``Urn``);
  ``engines``: ``build`` and ``choose``, which pick one;
- ``tree``: the log-depth sampler and log-normaliser over a balanced tree of classes;
- ``sampling``: the sequential samplers and their Gumbel-softmax relaxations;
- ``wallenius``: the Wallenius law's quadrature, exponential-clock sampler and moments;
- ``race``: the inclusion probabilities of Gumbel-top-k subsets, from the exponential race;
- ``sort``: differentiable sorting (NeuralSort).
"""

__all__: list[str] = []
