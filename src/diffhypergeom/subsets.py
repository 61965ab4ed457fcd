"""k-subsets: the multivariate Fisher law with one ball per item (``docs/design/index.md``,
section 6).

With ``m_i = 1`` and ``n = k`` the MFNCH is the law of a random subset ``S`` of size ``k``,

    ``p(S) = prod_{i in S} w_i / e_k(w),   |S| = k,``

(``e_k`` the elementary symmetric polynomial): the conditional Poisson design of survey
sampling, the k-subset distribution of SIMPLE (Ahmed et al. 2023) and SFESS (Wijk et al. 2025).
It is *not* the law of Gumbel-top-k (weighted sampling without replacement, the multivariate
Wallenius law): for ``w = [1, 2, 3, 4]`` and ``k = 2``, ``P({3, 4})`` is ``12/35 = 0.343``
here and ``0.371`` under Gumbel-top-k. ``gumbel_top_k`` gives that other law, with its exact
probability.
"""

from __future__ import annotations

from diffhypergeom.laws.checks import TensorLike
from diffhypergeom.laws.ksubset import KSubset
from diffhypergeom.laws.topk import GumbelTopK

__all__ = ["gumbel_top_k", "k_subset"]


def k_subset(logits: TensorLike, k: TensorLike, engine: str = "auto",
             validate_args: bool | None = None, **gradient) -> KSubset:
    """The exact k-subset law over ``N`` items with per-item logits.

    Args:
        logits: ``[..., N]`` per-item log-weights ``log w_i`` (only differences matter).
        k: int or ``[...]`` ints, the subset size (``0 <= k <= N``).
        engine, validate_args: as in ``MultivariateFisherNCHypergeometric``.
        gradient: ``rsample``'s gradient and its options (``gradient=``, ``temperature=``,
            ...), as in ``MultivariateFisherNCHypergeometric``.

    Returns:
        A ``KSubset`` (``diffhypergeom.laws.ksubset``): a
        ``MultivariateFisherNCHypergeometric`` with ``population = ones(N)`` and ``draws = k``
        whose sampler, log-normaliser and inclusion probabilities are computed as tilted
        Bernoullis conditioned on their sum; every member of the Fisher class works on it,
        and so does ``diffhypergeom.estimators``:

        - ``rsample(sample_shape)``: exact ``k``-hot draws ``[*sample_shape, ..., N]`` whose
          backward pass is the gradient of the exact marginals (a Hessian-vector product of the
          log-normaliser; what SIMPLE does, here with exact draws);
        - ``sample(sample_shape)``: the same draws without a gradient (floating ``0``/``1``);
        - ``mean``: the exact marginals ``P(i in S)``, ``[..., N]``;
        - ``log_prob(mask)``: the exact ``log p(S)`` of ``k``-hot masks.

    Example:
        >>> import torch
        >>> from diffhypergeom.subsets import k_subset
        >>> d = k_subset(torch.tensor([1.0, 2.0, 3.0, 4.0]).log(), 2)
        >>> round(float(d.log_prob(torch.tensor([0, 0, 1, 1])).exp()), 4)
        0.3429
        >>> d.rsample((3,)).sum(-1).tolist()
        [2.0, 2.0, 2.0]
    """
    return KSubset(logits, k, engine=engine, validate_args=validate_args, **gradient)


def gumbel_top_k(logits: TensorLike, k: TensorLike, validate_args: bool | None = None
                 ) -> GumbelTopK:
    """The law of Gumbel-top-k sets over ``N`` items (``topk(logits + Gumbel noise, k)``, i.e.
    ``k`` items drawn one at a time without replacement, each with probability proportional to
    ``exp(logits)``): a ``GumbelTopK`` (``diffhypergeom.laws.topk``), the multivariate
    Wallenius law with ``population = ones(N)``: exact ``log_prob`` of ``k``-hot masks, exact
    inclusion probabilities ``mean``, exact draws by ``topk``, and ``sample_with_score`` (the
    draws with the log-probability of their order, which the score-function estimators use).

    Example:
        >>> import torch
        >>> from diffhypergeom.subsets import gumbel_top_k
        >>> d = gumbel_top_k(torch.tensor([1.0, 2.0, 3.0, 4.0]).log(), 2)
        >>> round(float(d.log_prob(torch.tensor([0, 0, 1, 1])).exp()), 4)
        0.3714
    """
    return GumbelTopK(logits, k, validate_args=validate_args)
