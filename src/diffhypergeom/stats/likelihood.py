"""The log-likelihood of logits shared by every urn of a data set: ``S`` observed draws
``x_s`` from urns ``(m_s, n_s)`` (one urn or many) under the Fisher or the Wallenius law,

    l(theta) = sum_s log p(x_s; m_s, n_s, theta),   theta_0 = 0,

as a function of the free logits ``theta_1..theta_{c-1}``, with its gradient and Hessian, and
whether its maximum exists.

Fisher: an exponential family, ``l = theta . T - sum_u k_u A_u(theta) + const`` over the
distinct urns ``u`` (``k_u`` draws from it, totals ``T``), so the gradient is ``T - sum_u k_u
E_u[X]`` and the Hessian ``-sum_u k_u Cov_u(X)``: one engine per distinct urn, whatever ``S``.
Wallenius: ``log_prob`` of the distinct draws, differentiated twice by autograd.

Where the maximum is: the support of an urn is the polytope ``{0 <= x <= m, sum x = n}``. The
logits are identified when the classes that can vary within some urn link every class to
every other; then the maximum exists exactly when no set ``A`` of classes is, in every draw,
either all drawn or all that was drawn (``x_i = m_i`` for every ``i`` in ``A``, or ``x_j = 0``
for every ``j`` outside it): such data sit on a face of the summed supports, and the
likelihood keeps rising as ``A``'s logits grow (for Fisher by convexity; for Wallenius since
raising ``A``'s weights only moves ``A``'s balls earlier in the draw). The check is a
reachability closure on the ``c x c`` graph ``i -> j`` "some draw has ``x_i < m_i`` and
``x_j > 0``": the maximum exists iff the graph is strongly connected.
"""

from __future__ import annotations

import torch

from diffhypergeom.laws import (
    MultivariateFisherNCHypergeometric,
    MultivariateWalleniusNCHypergeometric,
)

__all__ = ["SharedLogitLikelihood", "closure"]


def closure(adjacency: torch.Tensor) -> torch.Tensor:
    """``[c, c]`` bool: ``j`` reachable from ``i`` in the directed graph ``adjacency [c, c]``
    (each node reaches itself).

    Example:
        >>> import torch
        >>> from diffhypergeom.stats.likelihood import closure
        >>> closure(torch.tensor([[False, True, False], [False, False, True],
        ...                       [False, False, False]])).int()
        tensor([[1, 1, 1],
                [0, 1, 1],
                [0, 0, 1]], dtype=torch.int32)
    """
    c = adjacency.shape[-1]
    reach = adjacency | torch.eye(c, dtype=torch.bool, device=adjacency.device)
    for _ in range(max(1, (c - 1).bit_length())):
        reach = (reach.to(torch.float64) @ reach.to(torch.float64)) > 0
    return reach


class SharedLogitLikelihood:
    """The log-likelihood of shared logits (see the module docstring).

    Args:
        fisher: ``True`` for the Fisher law, ``False`` for Wallenius.
        population: ``[S, c]`` int64, each draw's urn.
        draws: ``[S]`` int64.
        counts: ``[S, c]`` int64, checked to lie in their urns' supports
            (``diffhypergeom.stats.checks.urn_rows``).

    Calling it with the free logits ``[c - 1]`` (float64) gives ``(value, gradient [c - 1],
    hessian [c - 1, c - 1])``; ``value`` is the log-likelihood up to a constant for the Fisher
    law (``log_likelihood`` gives it whole).
    """

    def __init__(self, fisher: bool, population: torch.Tensor, draws: torch.Tensor,
                 counts: torch.Tensor):
        self.fisher = fisher
        self.law = (MultivariateFisherNCHypergeometric if fisher
                    else MultivariateWalleniusNCHypergeometric)
        self.population, self.draws, self.counts = population, draws, counts
        self.num_classes = c = counts.shape[-1]
        rows = torch.cat([population, draws.unsqueeze(-1), counts], -1)
        rows, weights = torch.unique(rows, dim=0, return_counts=True)
        self.row_population, self.row_draws = rows[:, :c], rows[:, c]
        self.row_counts = rows[:, c + 1:].to(torch.float64)
        self.row_weights = weights.to(torch.float64)
        urns, which = torch.unique(rows[:, : c + 1], dim=0, return_inverse=True)
        self.urn_population, self.urn_draws = urns[:, :c], urns[:, c]
        self.urn_draws_taken = torch.zeros(len(urns), dtype=torch.float64).index_add_(
            0, which, self.row_weights)
        self.totals = (self.row_counts * self.row_weights.unsqueeze(-1)).sum(0)

    # ------------------------------------------------------------------ existence
    def check_estimable(self) -> None:
        """A ``ValueError`` where the logits are not identified or the maximum-likelihood
        estimate does not exist, naming the classes and why (the module docstring)."""
        m, n, x = self.population, self.draws.unsqueeze(-1), self.counts
        rest = m.sum(-1, keepdim=True) - m
        varies = (n - rest).clamp_min(0) < torch.minimum(m, n)  # [S, c]
        c = self.num_classes
        never = (~varies.any(0)).nonzero().flatten().tolist()
        if never:
            raise ValueError(
                f"counts: the logits of classes {never} are not identified: their counts are "
                f"fixed by population and draws in every urn (no balls, or every ball drawn)")
        linked = closure((varies.T.to(torch.float64) @ varies.to(torch.float64)) > 0)
        if not bool(linked.all()):
            group = linked[0].nonzero().flatten().tolist()
            others = [i for i in range(c) if i not in group]
            raise ValueError(
                f"counts: the logits are not identified: classes {group} and {others} never "
                f"vary in the same urn, so the logits of one group relative to the other "
                f"change nothing")
        open_ = x < m
        drawn = x > 0
        edges = (open_.T.to(torch.float64) @ drawn.to(torch.float64)) > 0
        reach = closure(edges)
        sizes = reach.sum(-1)
        if bool((sizes < c).any()):
            start = int(torch.where(sizes < c, sizes, c + 1).argmin())
            group = reach[start].nonzero().flatten().tolist()
            raise ValueError(
                f"counts: the maximum-likelihood estimate does not exist: in every draw either "
                f"every ball of classes {group} is drawn or no ball of the other classes is "
                f"(counts at their bounds), so the likelihood keeps rising as the logits of "
                f"classes {group} grow relative to the others (to +inf)")

    # ------------------------------------------------------------------ the function
    def logits(self, free: torch.Tensor) -> torch.Tensor:
        """``[c]``: the logits with ``theta_0 = 0``."""
        return torch.cat([free.new_zeros(1), free])

    def start(self) -> torch.Tensor:
        """``[c - 1]``: Cornfield's approximation of the pooled data, ``theta_i = log(T_i /
        (M_i - T_i))`` relative to class 0 (half a ball added to each term), the first
        point of the search."""
        pooled = (self.row_population.to(torch.float64)
                  * self.row_weights.unsqueeze(-1)).sum(0)
        odds = (self.totals + 0.5).log() - (pooled - self.totals + 0.5).log()
        return (odds - odds[0])[1:]

    def __call__(self, free: torch.Tensor, derivatives: bool = True
                 ) -> tuple[float, torch.Tensor | None, torch.Tensor | None]:
        if self.fisher:
            return self._fisher(free, derivatives)
        return self._wallenius(free, derivatives)

    def _fisher(self, free: torch.Tensor, derivatives: bool
                ) -> tuple[float, torch.Tensor | None, torch.Tensor | None]:
        theta = self.logits(free.detach())
        law = MultivariateFisherNCHypergeometric(
            self.urn_population, self.urn_draws,
            logits=theta.expand(len(self.urn_draws), -1), validate_args=False)
        taken = self.urn_draws_taken
        value = float(theta @ self.totals - (taken * law.log_normalizer()).sum())
        if not derivatives:
            return value, None, None
        gradient = self.totals - (taken.unsqueeze(-1) * law.mean).sum(0)
        hessian = -(taken[:, None, None] * law.covariance_matrix).sum(0)
        return value, gradient[1:], hessian[1:, 1:]

    def _wallenius(self, free: torch.Tensor, derivatives: bool
                   ) -> tuple[float, torch.Tensor | None, torch.Tensor | None]:
        if not derivatives:
            with torch.no_grad():
                return float(self._wallenius_value(free)), None, None
        with torch.enable_grad():
            free = free.detach().clone().requires_grad_()
            value = self._wallenius_value(free)
            (gradient,) = torch.autograd.grad(value, free, create_graph=True)
            rows = [torch.autograd.grad(gradient[i], free, retain_graph=True)[0]
                    for i in range(free.numel())]
        hessian = torch.stack(rows) if rows else free.new_zeros(0, 0)
        return float(value.detach()), gradient.detach(), hessian.detach()

    def _wallenius_value(self, free: torch.Tensor) -> torch.Tensor:
        theta = self.logits(free)
        law = MultivariateWalleniusNCHypergeometric(
            self.row_population, self.row_draws,
            logits=theta.expand(len(self.row_draws), -1), validate_args=False)
        return (self.row_weights * law.log_prob(self.row_counts)).sum()

    def log_likelihood(self, free: torch.Tensor) -> float:
        """The whole log-likelihood ``sum_s log p(x_s)`` at the free logits."""
        theta = self.logits(free.detach())
        law = self.law(self.row_population, self.row_draws,
                       logits=theta.expand(len(self.row_draws), -1), validate_args=False)
        return float((self.row_weights * law.log_prob(self.row_counts)).sum())
