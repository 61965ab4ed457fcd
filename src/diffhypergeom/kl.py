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
    """``[...]``: exact ``KL(p || q)``; ``p`` and ``q`` must share population and draws."""
    try:
        same_urn = bool((p.population == q.population).all()) and bool(
            (p.draws == q.draws).all())
    except RuntimeError:
        same_urn = False
    if not same_urn:
        raise ValueError("kl_divergence needs two distributions with the same population and "
                         "draws (only the weights may differ)")
    difference = q.logits.to(torch.float64) - p.logits.to(torch.float64)
    mean = p.mean.to(torch.float64)
    # classes p never draws contribute nothing, whatever q's weight
    inner = times_logit(mean, torch.where(mean == 0, 0.0, difference)).sum(-1)
    kl = q.log_normalizer().to(torch.float64) - p.log_normalizer().to(torch.float64) - inner
    return kl.to(torch.promote_types(p.logits.dtype, q.logits.dtype))
