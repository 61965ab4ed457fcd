"""KL divergence between two MFNCH distributions over the same urn.

MFNCH is an exponential family in ``theta = logits`` with sufficient statistic ``x`` and
log-partition ``A``, so ``KL(p_theta || p_phi) = A(phi) - A(theta) - (phi - theta) . E_theta[x]``.
"""

from __future__ import annotations

import torch
from torch.distributions import register_kl

from diffhypergeom.distribution import MultivariateFisherNCHypergeometric
from diffhypergeom.special import times_logit


@register_kl(MultivariateFisherNCHypergeometric, MultivariateFisherNCHypergeometric)
def kl_mfnch_mfnch(p: MultivariateFisherNCHypergeometric, q: MultivariateFisherNCHypergeometric
                   ) -> torch.Tensor:
    """``[...]``: exact ``KL(p || q)``; ``p`` and ``q`` must share population and draws.
    Computed in float64 from both distributions' float64 log-normalisers and ``p``'s mean, and
    returned in the promoted dtype of their logits."""
    if p.batch_shape != q.batch_shape or p.event_shape != q.event_shape:
        raise ValueError(f"kl_divergence needs equal batch and event shapes, got "
                         f"{tuple(p.batch_shape)} + {tuple(p.event_shape)} and "
                         f"{tuple(q.batch_shape)} + {tuple(q.event_shape)}")
    if not (bool((p.population == q.population).all()) and bool((p.draws == q.draws).all())):
        raise ValueError("kl_divergence needs two distributions with the same population and "
                         "draws (only the weights may differ)")
    p_urn, q_urn = p._urn(), q._urn()
    difference = q.logits.to(torch.float64) - p.logits.to(torch.float64)
    mean = p._unflatten(p_urn.mean(), (p.num_classes,))
    # classes p never draws contribute nothing, whatever q's weight
    inner = times_logit(mean, torch.where(mean == 0, 0.0, difference)).sum(-1)
    kl = q._unflatten(q_urn.log_normalizer) - p._unflatten(p_urn.log_normalizer) - inner
    return kl.to(torch.promote_types(p.logits.dtype, q.logits.dtype))
