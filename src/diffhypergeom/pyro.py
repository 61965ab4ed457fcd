"""The library's laws as Pyro distributions (importing this module needs ``pyro-ppl``:
``pip install -e '.[pyro]'``; ``import diffhypergeom`` alone never imports Pyro).

``MultivariateFisherNCHypergeometric``, ``MultivariateWalleniusNCHypergeometric``,
``MergedFisherNCHypergeometric`` and ``RelaxedMultivariateFisherNCHypergeometric`` here are
the core classes of the same names (same
constructor, law, shapes and members) made ``TorchDistributionMixin``\\ s: they can be called
(``d()``), so they work at latent ``pyro.sample`` sites, and have ``to_event``, ``mask`` and
``expand_by``; ``expand`` returns the same class.

Counts come in the floating dtype of the logits from ``sample``, ``rsample`` and
``enumerate_support`` alike, as from Pyro's ``Multinomial``: Pyro takes a site's value from any
of the three (``__call__`` uses ``rsample``, ``init_to_sample`` and ``Predictive`` ``sample``,
``TraceEnum_ELBO`` ``enumerate_support``). float32 holds counts exactly up to ``2**24``; larger
urns need float64 logits (a ``ValueError`` says so).

Gradients at latent sites: the Fisher class here has ``has_rsample = False`` by default, so
``Trace_ELBO`` forms score-function gradients (unbiased) and ``TraceEnum_ELBO`` may enumerate a
guide site. ``d.has_rsample_(True)`` opts into pathwise gradients: Pyro then calls ``rsample()``
with no keywords, i.e. exact draws with the gradient chosen in the constructor (``gradient=``:
the exact mean's by default, or ``"gumbel"`` / ``"gumbel-rao"`` with their options). Measured by
``python -m diffhypergeom_studies.validation.elbo`` (a latent urn ``[4, 4, 4]``, ``n = 5``, Gaussian
observations of ``x_0 - x_2``; 200,000 particles per estimator against the enumerated
gradient): relative bias 0.018 (standard error 0.0014) and a spread of 0.61 per particle
pathwise, against 0.004 (0.007, i.e. none detected) and 3.0 with the score function. The
default is the unbiased one because a reparameterised site that ``TraceEnum_ELBO`` enumerates
in the guide is summed without its probabilities (a silently wrong ELBO: 430.9 instead of 17.9
on that model); opt into ``has_rsample_(True)`` where the lower spread matters more than a bias
of a few percent, and never for a guide site that is enumerated. (The core class keeps
``has_rsample = True``: torch users call ``rsample`` themselves.)

``enumerate_support(expand=True)`` lists every count vector of the support, so
``TraceEnum_ELBO`` can sum a small urn out exactly. All batch elements must share
``population`` and ``draws``; at most ``max_support`` points (constructor keyword, default
``diffhypergeom.numerics.support.MAX_ENUMERATE_SUPPORT``, 100,000).

Example: a latent urn summed out exactly (``-loss`` is the log-evidence ``log p(y)``)::

    import pyro, pyro.distributions as dist, torch
    from diffhypergeom.pyro import MultivariateFisherNCHypergeometric as MFNCH
    def model():  # x: 5 balls from an urn of 4 + 4 + 4, weights 1, 3, 0.5; y sees x[1] + noise
        x = pyro.sample("x", MFNCH([4] * 3, 5, weights=[1, 3, .5]), infer={"enumerate": "parallel"})
        pyro.sample("y", dist.Normal(x[..., 1], 1.0), obs=torch.tensor(3.0))
    print(-pyro.infer.TraceEnum_ELBO(max_plate_nesting=0).loss(model, lambda: None))  # -1.19996
"""

from __future__ import annotations

import torch
from pyro.distributions.torch_distribution import TorchDistributionMixin
from pyro.distributions.util import broadcast_shape

from diffhypergeom.laws import fisher, merged, partition, relaxed, wallenius
from diffhypergeom.numerics.support import support_size

__all__ = ["MergedFisherNCHypergeometric", "MultivariateFisherNCHypergeometric",
           "MultivariateWalleniusNCHypergeometric", "RandomPartition",
           "RelaxedMultivariateFisherNCHypergeometric", "support_size"]


class _UrnLaw(TorchDistributionMixin):
    """Pyro's mixin with the shapes of the urn laws' constructors."""

    @classmethod
    def infer_shapes(cls, population, draws=(), logits=None, weights=None, **kwargs):
        """``(batch_shape, event_shape)`` from the shapes of the constructor's tensors."""
        params = logits if logits is not None else weights
        shapes = [population[:-1], draws] + ([params[:-1]] if params is not None else [])
        return torch.Size(broadcast_shape(*shapes)), torch.Size(population[-1:])


class MultivariateFisherNCHypergeometric(fisher.MultivariateFisherNCHypergeometric,
                                         _UrnLaw):
    """The multivariate Fisher noncentral hypergeometric distribution for Pyro (the core law;
    see ``diffhypergeom.MultivariateFisherNCHypergeometric`` and the module docstring). Latent
    sites get score-function gradients unless ``has_rsample_(True)`` is called.

    Example:
        >>> import pyro
        >>> from diffhypergeom.pyro import MultivariateFisherNCHypergeometric
        >>> d = MultivariateFisherNCHypergeometric([4, 4, 4], 5, weights=[1.0, 3.0, 0.5])
        >>> trace = pyro.poutine.trace(lambda: pyro.sample("x", d)).get_trace()
        >>> trace.nodes["x"]["value"].sum(), d.has_rsample  # a draw of 5; score-function site
        (tensor(5.), False)
    """

    has_rsample = False


class MergedFisherNCHypergeometric(merged.MergedFisherNCHypergeometric, _UrnLaw):
    """The paper's merged law for Pyro (see ``diffhypergeom.MergedFisherNCHypergeometric``).

    Example:
        >>> import torch
        >>> from diffhypergeom.pyro import MergedFisherNCHypergeometric
        >>> weights = torch.tensor([1.0, 3.0, 0.5], dtype=torch.float64)
        >>> d = MergedFisherNCHypergeometric([4, 4, 4], 5, weights=weights)
        >>> support = d.enumerate_support()  # 5 balls of 4 + 4 + 4: C(7, 2) - 3 count vectors
        >>> support.shape, round(float(d.log_prob(support).exp().sum()), 12)
        (torch.Size([18, 3]), 1.0)
    """


class RelaxedMultivariateFisherNCHypergeometric(relaxed.RelaxedMultivariateFisherNCHypergeometric,
                                                _UrnLaw):
    """Relaxed Fisher counts for Pyro (see
    ``diffhypergeom.RelaxedMultivariateFisherNCHypergeometric``; no ``log_prob``, so only at
    latent sites whose guide term is not scored, e.g. as a deterministic relaxation).

    Example:
        >>> import pyro, torch
        >>> from diffhypergeom.pyro import RelaxedMultivariateFisherNCHypergeometric as Relaxed
        >>> d = Relaxed([4, 4, 4], 5, logits=torch.zeros(3, requires_grad=True), temperature=0.5)
        >>> y = pyro.poutine.trace(lambda: pyro.sample("y", d)).get_trace().nodes["y"]["value"]
        >>> round(y.sum().item(), 4), y.requires_grad  # soft counts of the 5 draws, rsample'd
        (5.0, True)
    """


class MultivariateWalleniusNCHypergeometric(wallenius.MultivariateWalleniusNCHypergeometric,
                                            _UrnLaw):
    """The multivariate Wallenius law for Pyro (see
    ``diffhypergeom.MultivariateWalleniusNCHypergeometric``); like the Fisher class here,
    score-function gradients at latent sites unless ``has_rsample_(True)``.

    Example:
        >>> import torch
        >>> from diffhypergeom.pyro import MultivariateWalleniusNCHypergeometric
        >>> d = MultivariateWalleniusNCHypergeometric([4, 4, 4], torch.tensor([5, 6]),
        ...                                           weights=[1.0, 3.0, 0.5])
        >>> urns = d.to_event(1)  # the two urns as one event
        >>> urns.batch_shape, urns.event_shape, urns.sample().sum(-1)
        (torch.Size([]), torch.Size([2, 3]), tensor([5., 6.]))
    """

    has_rsample = False


class RandomPartition(partition.RandomPartition, TorchDistributionMixin):
    """The random partition model for Pyro (see ``diffhypergeom.laws.partition.RandomPartition``):
    observed sites score labellings exactly; latent sites draw exactly with score-function
    gradients (unbiased) unless ``has_rsample_(True)`` selects the straight-through one.

    Example:
        With all logits equal, ``z = [0, 0, 1]`` has the sizes ``(2, 1)``, of probability
        ``C(3, 2) C(3, 1) / C(6, 3) = 9/20``, and is one of the 3 labellings of those sizes:

        >>> import pyro, torch
        >>> from diffhypergeom.pyro import RandomPartition
        >>> d = RandomPartition(torch.zeros(2), torch.zeros(3))  # 3 elements, 2 blocks
        >>> model = lambda: pyro.sample("z", d, obs=torch.tensor([0.0, 0.0, 1.0]))
        >>> round(pyro.poutine.trace(model).get_trace().log_prob_sum().exp().item(), 4)
        0.15
    """

    has_rsample = False
