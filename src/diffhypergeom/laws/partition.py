"""``RandomPartition``: the random partition model of Sutter et al. (NeurIPS 2023, DRPM) with its
exact probability.

``N`` elements with scores ``s = element_logits`` are split into ``K`` ordered blocks:

1. the block sizes ``n`` follow the multivariate Fisher law with urn ``[N] * K``, ``N`` draws
   and weights ``exp(size_logits)`` (``MultivariateFisherNCHypergeometric``);
2. the elements are ranked by Plackett-Luce on their scores (``argsort(s + Gumbel)``), and block
   ``k`` takes the next ``n_k`` of them.

Plackett-Luce restarts on the elements left after each block, so given the sizes the labelling
``z`` has probability

    p(z | n) = prod_{k < K} integral_0^1 prod_{i in S_k} (1 - t^(w_i / d_k)) dt,
    w_i = e^{s_i},  d_k = sum of the weights of the elements in later blocks,

a product of unit-count Wallenius probabilities (``numerics.wallenius``: block ``k`` draws
``S_k`` from the elements not in earlier blocks), so ``log p(z) = log MFNCH(n) + sum_k log
I_k`` exactly. Identifiability: blocks are ordered by the scores (block 0 tends to take the
highest-scoring elements), so two labellings that differ by renaming blocks are different
events with different probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.distributions import Distribution, constraints, register_kl

from diffhypergeom.laws.checks import (
    TensorLike,
    as_float_tensor,
    broadcast_batch,
    broadcast_value,
    check_labels,
    check_logits,
    check_positive,
    check_sample_shape,
    expanded_shape,
)
from diffhypergeom.laws.fisher import MultivariateFisherNCHypergeometric
from diffhypergeom.numerics import wallenius as quadrature
from diffhypergeom.numerics.sort import neural_sort
from diffhypergeom.numerics.special import NEG_INF

__all__ = ["ENTROPY_SAMPLES", "RandomPartition", "kl_partition_partition"]

# draws of the Monte Carlo entropy
ENTROPY_SAMPLES = 4096


class RandomPartition(Distribution):
    """A random partition of ``N`` elements into ``K`` ordered blocks (module docstring).

    Args:
        size_logits: ``[..., K]`` log-weights of the block sizes (finite).
        element_logits: ``[..., N]`` Plackett-Luce scores of the elements (finite).
        engine: the engine of the size law (``MultivariateFisherNCHypergeometric``).
        temperature: ``tau > 0``, the default temperature of ``rsample``'s straight-through
            gradient (``rsample_one_hot``; default 1.0): what ``rsample(sample_shape)`` uses at
            a Pyro site. A per-call ``temperature=`` overrides it.
        validate_args: as in ``torch.distributions``.

    Events: labels ``z [..., N]`` in ``{0..K-1}`` (floating, as the other laws' counts); every
    labelling is in the support, empty blocks included; ``one_hot(z)`` gives the ``[..., N, K]``
    view. ``batch_shape`` broadcasts the two logits' batch shapes; ``event_shape == (N,)``.

    Members: ``log_prob`` (exact, differentiable in both logits), ``sample`` (exact: never an
    invalid partition), ``rsample`` / ``rsample_one_hot`` (exact draws with a straight-through
    gradient: biased, see ``rsample_one_hot``), ``sizes`` (the size law), ``entropy`` (a Monte
    Carlo estimate with the exact ``log_prob`` over ``ENTROPY_SAMPLES`` draws: standard error
    about ``sd / 64``), and ``kl_divergence`` between two of them (the same kind of estimate).
    The score-function estimators of ``diffhypergeom.estimators`` work
    through the exact ``log_prob`` (unbiased).

    Example:
        >>> import itertools
        >>> import torch
        >>> from diffhypergeom import RandomPartition
        >>> d = RandomPartition(torch.zeros(2, dtype=torch.float64),
        ...                     torch.tensor([2.0, 0.0, -1.0], dtype=torch.float64))
        >>> round(float(d.log_prob(torch.tensor([0.0, 0.0, 1.0])).exp()), 4)
        0.3265
        >>> every = torch.tensor(list(itertools.product(range(2), repeat=3)), dtype=torch.float64)
        >>> round(float(d.log_prob(every).exp().sum()), 12)  # all 2^3 labellings
        1.0
    """

    arg_constraints = {"size_logits": constraints.real_vector,
                       "element_logits": constraints.real_vector}
    has_rsample = True

    def __init__(self, size_logits: TensorLike, element_logits: TensorLike, *,
                 engine: str = "auto", temperature: float = 1.0,
                 validate_args: bool | None = None):
        size_logits = as_float_tensor(size_logits, "size_logits")
        element_logits = as_float_tensor(element_logits, "element_logits")
        for name, value in (("size_logits", size_logits), ("element_logits", element_logits)):
            if value.dim() == 0 or value.shape[-1] == 0:
                raise ValueError(f"{name} must have shape [..., {'K' if name[0] == 's' else 'N'}]"
                                 f" with at least one entry, got {tuple(value.shape)}")
            try:
                check_logits(value)
            except ValueError as err:
                raise ValueError(str(err).replace("logits", name, 1)) from err
        batch_shape = broadcast_batch(size_logits.shape[:-1], element_logits.shape[:-1],
                                      names=("size_logits", "element_logits"))
        self.size_logits = size_logits.expand(batch_shape + size_logits.shape[-1:])
        self.element_logits = element_logits.expand(batch_shape + element_logits.shape[-1:])
        check_positive(temperature, "temperature")
        self.engine = engine
        self.temperature = temperature
        self.num_blocks, self.num_elements = size_logits.shape[-1], element_logits.shape[-1]
        super().__init__(batch_shape, torch.Size((self.num_elements,)),
                         validate_args=validate_args)

    @constraints.dependent_property(is_discrete=True, event_dim=1)
    def support(self) -> constraints.Constraint:
        return constraints.independent(constraints.integer_interval(0, self.num_blocks - 1), 1)

    @property
    def sizes(self) -> MultivariateFisherNCHypergeometric:
        """The law of the block sizes: Fisher with urn ``[N] * K`` and ``N`` draws."""
        population = torch.full((self.num_blocks,), self.num_elements, dtype=torch.int64,
                                device=self.size_logits.device)
        return MultivariateFisherNCHypergeometric(population, self.num_elements,
                                                  logits=self.size_logits, engine=self.engine,
                                                  validate_args=False)

    def expand(self, batch_shape: Sequence[int], _instance=None) -> RandomPartition:
        batch_shape = expanded_shape(batch_shape, self.batch_shape)
        new = self._get_checked_instance(RandomPartition, _instance)
        new.size_logits = self.size_logits.expand(batch_shape + (self.num_blocks,))
        new.element_logits = self.element_logits.expand(batch_shape + (self.num_elements,))
        new.engine, new.num_blocks, new.num_elements = (self.engine, self.num_blocks,
                                                        self.num_elements)
        new.temperature = self.temperature
        super(RandomPartition, new).__init__(batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def log_prob(self, value: TensorLike) -> torch.Tensor:
        """``[*sample, *batch]``: ``log MFNCH(bincount(z)) + sum_k log I_k``, exact."""
        z = check_labels(value)
        if z.dim() == 0 or z.shape[-1] != self.num_elements:
            raise ValueError(f"value must hold labels of shape [..., {self.num_elements}], got "
                             f"{tuple(z.shape)}")
        if z.is_floating_point() and not bool((z == z.round()).all()):
            raise ValueError("value must hold whole-number labels")
        if bool(((z < 0) | (z >= self.num_blocks)).any()):
            raise ValueError(f"labels must be in 0..{self.num_blocks - 1} (K = "
                             f"{self.num_blocks} blocks)")
        shape = broadcast_value(z.shape, self.batch_shape + self.event_shape)
        z = z.to(torch.int64).expand(shape)
        blocks = torch.arange(self.num_blocks, device=z.device)
        one_hot = (z.unsqueeze(-1) == blocks).to(torch.float64)          # [..., N, K]
        sizes = one_hot.sum(-2)
        log_p = self.sizes.log_prob(sizes).to(torch.float64)
        if self.num_blocks > 1:
            log_p = log_p + self._log_orders(z, one_hot, sizes)
        return log_p.to(self.element_logits.dtype)

    def _log_orders(self, z: torch.Tensor, one_hot: torch.Tensor, sizes: torch.Tensor
                    ) -> torch.Tensor:
        """``sum_k log I_k``: block ``k`` as a unit-count Wallenius draw of its elements from
        those not in earlier blocks. Only the drawn elements enter the integrand; the elements
        left for later blocks enter through their total weight alone, so each block is computed
        on its own elements and one merged element of that weight (the same integral)."""
        log_w = self.element_logits.to(torch.float64).expand(z.shape)
        x = one_hot[..., :-1].transpose(-1, -2)                          # [..., K-1, N]
        width = max(int(sizes[..., :-1].max()), 1)
        members = torch.sort(x, dim=-1, descending=True, stable=True).indices[..., :width]
        drawn = x.gather(-1, members)                                     # 1, then 0 padding
        member_w = log_w.unsqueeze(-2).expand(x.shape).gather(-1, members)
        member_w = torch.where(drawn > 0, member_w, torch.full_like(member_w, NEG_INF))
        later = z.unsqueeze(-2) > torch.arange(self.num_blocks - 1, device=z.device).unsqueeze(-1)
        rest_w = torch.logsumexp(torch.where(later, log_w.unsqueeze(-2), NEG_INF), -1)
        has_rest = later.any(-1).to(torch.float64).unsqueeze(-1)
        counts = torch.cat([drawn, torch.zeros_like(has_rest)], -1)
        population = torch.cat([drawn, has_rest], -1)
        weights = torch.cat([member_w, torch.where(has_rest > 0, rest_w.unsqueeze(-1),
                                                   NEG_INF)], -1)
        return quadrature.log_prob(counts, population, weights).sum(-1)

    def sample(self, sample_shape: Sequence[int] = torch.Size()) -> torch.Tensor:
        """Exact draws ``[*sample_shape, *batch, N]`` of the labels (floating)."""
        with torch.no_grad():
            return self._draw(check_sample_shape(sample_shape))[0]

    def _draw(self, sample_shape: torch.Size) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Exact labels, and the sizes ``[..., K]`` and the Gumbel-perturbed scores ``[..., N]``
        they were drawn from."""
        sizes = self.sizes.sample(sample_shape)                          # [..., K]
        scores = self.element_logits.expand(sample_shape + self.element_logits.shape)
        keys = scores - torch.empty_like(scores).exponential_().log()
        order = keys.detach().argsort(-1, descending=True)
        ends = sizes.to(torch.int64).cumsum(-1)
        position = torch.arange(self.num_elements, device=scores.device).expand_as(order)
        block = torch.searchsorted(ends.contiguous(), position.contiguous(), right=True)
        labels = torch.empty_like(order).scatter_(-1, order, block)
        return labels.to(self.element_logits.dtype), sizes, keys

    def rsample_one_hot(self, sample_shape: Sequence[int] = torch.Size(), *,
                        temperature: float | None = None) -> torch.Tensor:
        """Exact draws as one-hot assignments ``[*sample_shape, *batch, N, K]`` with a
        straight-through gradient: the sizes carry the gradient of the Fisher law's exact mean,
        the Gumbel-perturbed scores a NeuralSort relaxation at ``temperature`` (default: the
        constructor's) of the ranking (``diffhypergeom.numerics.sort.neural_sort``), and a
        position belongs to block ``k`` softly, ``sigmoid((end_k - j) / tau) - sigmoid((start_k
        - j) / tau)``. Biased (a relaxation of the ranking and of the block boundaries); its bias
        on a small model is measured in ``tests/laws/test_partition.py``. The score-function
        estimators through the exact ``log_prob`` are unbiased."""
        temperature = self.temperature if temperature is None else temperature
        check_positive(temperature, "temperature")
        sample_shape = check_sample_shape(sample_shape)
        labels, sizes, keys = self._draw(sample_shape)
        mean = self.sizes.mean
        relaxed_sizes = sizes + (mean - mean.detach())
        permutation = neural_sort(keys, temperature)                    # [..., N pos, N items]
        ends = relaxed_sizes.cumsum(-1)
        starts = ends - relaxed_sizes
        position = torch.arange(self.num_elements, dtype=keys.dtype, device=keys.device) + 0.5
        inside = (torch.sigmoid((ends.unsqueeze(-2) - position.unsqueeze(-1)) / temperature)
                  - torch.sigmoid((starts.unsqueeze(-2) - position.unsqueeze(-1)) / temperature))
        soft = permutation.transpose(-1, -2) @ inside                    # [..., N items, K]
        hard = torch.nn.functional.one_hot(labels.long(), self.num_blocks).to(soft.dtype)
        return hard + (soft - soft.detach())

    def rsample(self, sample_shape: Sequence[int] = torch.Size(), *,
                temperature: float | None = None) -> torch.Tensor:
        """Exact labels ``[*sample_shape, *batch, N]`` whose gradient is that of
        ``sum_k k * rsample_one_hot(...)[..., k]`` (see ``rsample_one_hot``)."""
        one_hot = self.rsample_one_hot(sample_shape, temperature=temperature)
        blocks = torch.arange(self.num_blocks, dtype=one_hot.dtype, device=one_hot.device)
        return one_hot @ blocks

    def entropy(self) -> torch.Tensor:
        """``[...]``: a Monte Carlo estimate of ``-E[log p(z)]`` from ``ENTROPY_SAMPLES`` exact
        draws and the exact ``log_prob`` (not exact: the support has ``K^N`` points)."""
        return -self.log_prob(self.sample((ENTROPY_SAMPLES,))).mean(0)

    def __repr__(self) -> str:
        return (f"RandomPartition(blocks={self.num_blocks}, elements={self.num_elements}, "
                f"batch_shape={tuple(self.batch_shape)})")


@register_kl(RandomPartition, RandomPartition)
def kl_partition_partition(p: RandomPartition, q: RandomPartition) -> torch.Tensor:
    """``[...]``: a Monte Carlo estimate of ``KL(p || q)`` from ``ENTROPY_SAMPLES`` exact draws
    of ``p`` and both exact ``log_prob`` (not exact: the support has ``K^N`` points); ``p`` and
    ``q`` must have the same ``K`` and ``N``; batch shapes broadcast.

    Example:
        Exactly 0 from a law to itself (both ``log_prob`` agree on every draw); positive
        against the reversed scores (the exact sum over the ``2^3`` labellings gives 2.448):

        >>> import torch
        >>> from diffhypergeom import RandomPartition
        >>> p = RandomPartition(torch.zeros(2), torch.tensor([2.0, 0.0, -1.0]))
        >>> q = RandomPartition(torch.zeros(2), torch.tensor([-1.0, 0.0, 2.0]))
        >>> float(torch.distributions.kl_divergence(p, p)), bool(
        ...     torch.distributions.kl_divergence(p, q) > 0)
        (0.0, True)
    """
    if (p.num_blocks, p.num_elements) != (q.num_blocks, q.num_elements):
        raise ValueError(f"kl_divergence needs the same blocks and elements, got "
                         f"K = {p.num_blocks}, N = {p.num_elements} and K = {q.num_blocks}, "
                         f"N = {q.num_elements}")
    z = p.sample((ENTROPY_SAMPLES,))
    return (p.log_prob(z) - q.log_prob(z)).mean(0)
