"""The pathwise gradients of ``rsample``, chosen on the distribution as torch and Pyro expect.

``rsample(sample_shape)`` is all that torch's contract (and Pyro's ``Trace_ELBO``) calls, so a
law takes its gradient in the constructor: ``gradient=`` and the options that gradient uses.
``rsample``'s keywords of the same names stay as a per-call override.

- ``"mean"``: exact draws whose backward pass is the gradient of the exact mean (``Cov(X)``);
  no options;
- ``"gumbel"``: straight-through Gumbel-softmax over the sequential conditionals; options
  ``temperature`` (default 1.0), ``permute`` (default True), ``couple_rows`` (default False);
- ``"gumbel-rao"``: the same, Rao-Blackwellised over ``rao_samples`` (default 10) noise draws.

Example:
    >>> import torch
    >>> from diffhypergeom import MultivariateFisherNCHypergeometric
    >>> d = MultivariateFisherNCHypergeometric(torch.tensor([4, 5, 6]), 7,
    ...                                        logits=torch.zeros(3), gradient="gumbel",
    ...                                        temperature=0.5)
    >>> d.gradient
    Gradient(name='gumbel', temperature=0.5, permute=None, couple_rows=None, rao_samples=None)
    >>> d.rsample((2,)).sum(-1)  # exact draws; the backward pass is straight-through Gumbel
    tensor([7., 7.])
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from diffhypergeom.laws.checks import check_bool, check_positive
from diffhypergeom.numerics.sampling import GumbelSettings

__all__ = ["GRADIENTS", "OPTIONS", "Gradient", "gumbel_settings"]

GRADIENTS = ("mean", "gumbel", "gumbel-rao")
# the options each gradient uses
OPTIONS = {"mean": (), "gumbel": ("temperature", "permute", "couple_rows"),
           "gumbel-rao": ("temperature", "permute", "couple_rows", "rao_samples")}


class Gradient(NamedTuple):
    """A pathwise gradient and its options (``None``: the gradient's default).

    Example:
        >>> from diffhypergeom.laws.gradients import Gradient
        >>> chosen = Gradient("gumbel", temperature=0.5)
        >>> chosen.settings()  # what the sampler gets, defaults filled in
        (GumbelSettings(temperature=0.5, hard=True, coupled=False, rao_samples=0), True)
        >>> chosen.override(temperature=0.1).temperature  # a per-call keyword
        0.1
        >>> chosen.override(gradient="mean")  # another gradient: its own options only
        Gradient(name='mean', temperature=None, permute=None, couple_rows=None, rao_samples=None)
    """

    name: str = "mean"
    temperature: float | torch.Tensor | None = None
    permute: bool | None = None
    couple_rows: bool | None = None
    rao_samples: int | None = None

    def settings(self) -> tuple[GumbelSettings | None, bool]:
        """The checked Gumbel settings and class order (``(None, False)`` for ``"mean"``)."""
        return gumbel_settings(self.name, self.temperature, self.permute, self.couple_rows,
                               self.rao_samples)

    def override(self, gradient: str | None = None, **options) -> Gradient:
        """This choice with ``rsample``'s per-call keywords applied: a different ``gradient``
        starts from its own defaults; options given (not ``None``) replace this one's."""
        given = {k: v for k, v in options.items() if v is not None}
        if gradient is not None and gradient != self.name:
            return Gradient(gradient, **given)
        return self._replace(**given)


def gumbel_settings(gradient: str, temperature: float | torch.Tensor | None,
                    permute: bool | None, couple_rows: bool | None, rao_samples: int | None
                    ) -> tuple[GumbelSettings | None, bool]:
    """A gradient's options checked against it: the hard Gumbel settings and the class order
    (``None`` and ``False`` for ``gradient="mean"``).

    Example:
        >>> from diffhypergeom.laws.gradients import gumbel_settings
        >>> gumbel_settings("mean", None, None, None, None)  # the exact mean's gradient
        (None, False)
        >>> gumbel_settings("gumbel-rao", 0.5, None, None, None)  # defaults filled in
        (GumbelSettings(temperature=0.5, hard=True, coupled=False, rao_samples=10), True)
        >>> gumbel_settings("mean", 0.5, None, None, None)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        ValueError: temperature applies only to gradient in ('gumbel', 'gumbel-rao'); ...
    """
    if not isinstance(gradient, str) or gradient not in GRADIENTS:
        raise ValueError(f"gradient must be one of {GRADIENTS}, got {gradient!r}")
    given = {"temperature": temperature, "permute": permute, "couple_rows": couple_rows,
             "rao_samples": rao_samples}
    for name, value in given.items():
        if value is not None and name not in OPTIONS[gradient]:
            users = tuple(g for g in GRADIENTS if name in OPTIONS[g])
            raise ValueError(f"{name} applies only to gradient in {users}; "
                             f"gradient={gradient!r} does not use it")
    if gradient == "mean":
        return None, False
    temperature = 1.0 if temperature is None else temperature
    check_positive(temperature, "temperature")
    permute = True if permute is None else permute
    check_bool(permute, "permute")
    couple_rows = False if couple_rows is None else couple_rows
    check_bool(couple_rows, "couple_rows")
    rao = 0
    if gradient == "gumbel-rao":
        rao = 10 if rao_samples is None else rao_samples
        if isinstance(rao, bool) or not isinstance(rao, int) or rao < 1:
            raise ValueError(f"rao_samples must be a positive int, got {rao_samples!r}")
    return GumbelSettings(temperature, True, bool(couple_rows), rao), bool(permute)
