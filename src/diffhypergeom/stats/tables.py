"""Exact conditional inference for 2 x c contingency tables: the odds ratios (``odds_ratio``,
after ``scipy.stats.contingency.odds_ratio``) and the exact test of homogeneity
(``homogeneity_test``, the Fisher-Freeman-Halton test; Fisher's exact test for 2 x 2).

Given both margins of a 2 x c table, its first row ``x`` is the multivariate Fisher
noncentral hypergeometric law with ``population`` = the column totals and ``draws`` = the
first row's total, and logits ``theta_j`` whose differences are the log odds ratios:
``exp(theta_0 - theta_j)`` is the odds ratio of column 0 against column ``j``,
``(x_00 / x_10) / (x_0j / x_1j)`` in expectation. For 2 x 2 it is the univariate Fisher law of
the first cell, which ``scipy.stats.contingency.odds_ratio`` and R's ``fisher.test`` use.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from diffhypergeom.laws import MultivariateFisherNCHypergeometric
from diffhypergeom.laws.checks import TensorLike, as_count_tensor
from diffhypergeom.numerics.support import support_points, support_size
from diffhypergeom.stats.checks import check_alternative, check_level, critical_value
from diffhypergeom.stats.estimation import fit, profile_endpoint
from diffhypergeom.stats.likelihood import SharedLogitLikelihood
from diffhypergeom.stats.tilting import TiltedCount

__all__ = ["KINDS", "MAX_TABLES", "HomogeneityResult", "OddsRatioResult", "check_table",
           "homogeneity_test", "odds_ratio"]

KINDS = ("conditional", "sample")
# the most tables (first rows given the margins) ``homogeneity_test`` enumerates by default
MAX_TABLES = 1_000_000

Interval = tuple[torch.Tensor, torch.Tensor]


def check_table(table: TensorLike) -> torch.Tensor:
    """A 2 x c table (``c >= 2``) of non-negative integers, as int64; a ``ValueError`` naming
    ``table`` otherwise.

    Example:
        >>> from diffhypergeom.stats.tables import check_table
        >>> check_table([[7, 15], [58, 472]])
        tensor([[  7,  15],
                [ 58, 472]])
        >>> check_table([[1, 2, 3]])
        Traceback (most recent call last):
        ...
        ValueError: table must have shape (2, c) with c >= 2 columns, got (1, 3)
    """
    table = as_count_tensor(table, "table").cpu()
    if table.dim() != 2 or table.shape[0] != 2 or table.shape[1] < 2:
        raise ValueError(f"table must have shape (2, c) with c >= 2 columns, got "
                         f"{tuple(table.shape)}")
    return table


@dataclass(eq=False)
class OddsRatioResult:
    """The odds ratio of a 2 x c table (what ``odds_ratio`` returns).

    Attributes:
        statistic: for a 2 x 2 table a 0-dim float64 tensor, the odds ratio; for 2 x c, ``[c -
            1]``, the odds ratios of column 0 against columns ``1..c-1``. ``nan`` where it is
            not defined (an empty row or column, as in scipy).
        table: ``[2, c]`` int64, the table.
        kind: ``"conditional"`` or ``"sample"``.
    """

    statistic: torch.Tensor
    table: torch.Tensor
    kind: str
    _interval: Callable[[float, str], Interval] = field(repr=False)

    def confidence_interval(self, confidence_level: float = 0.95,
                            alternative: str = "two-sided") -> Interval:
        """``(low, high)``, shaped like ``statistic``: the confidence interval of each odds ratio.

        Args:
            confidence_level: strictly between 0 and 1.
            alternative: ``"two-sided"``, ``"less"`` (``low`` is 0) or ``"greater"`` (``high``
                is ``inf``), as in scipy.

        ``kind="conditional"``, 2 x 2: the exact conditional limits (inverting the two
        one-sided tail probabilities of the first cell, each at ``(1 - confidence_level) / 2``
        for two-sided intervals), as scipy and R's ``fisher.test``. 2 x c: profile-likelihood
        limits of the conditional likelihood (``FitResult.confidence_interval``), not exact
        tail inversions. ``kind="sample"``: ``exp(log OR +- z se)``, ``se = sqrt(1/a + 1/b +
        1/c + 1/d)`` (scipy's). ``(0, inf)`` where the statistic is ``nan`` for an empty row or
        column.
        """
        level = check_level(confidence_level, "confidence_level")
        return self._interval(level, check_alternative(alternative))


def odds_ratio(table: TensorLike, *, kind: str = "conditional") -> OddsRatioResult:
    """The odds ratio of a 2 x 2 table, or the odds ratios of column 0 against each other
    column of a 2 x c table, with confidence intervals (``scipy.stats.contingency.odds_ratio``
    for 2 x c).

    Args:
        table: ``[2, c]`` non-negative integers, ``c >= 2``.
        kind: ``"conditional"`` (default): the conditional maximum-likelihood estimate given
            both margins; ``"sample"``: ``table[0, 0] * table[1, j] / (table[0, j] *
            table[1, 0])``.

    Returns:
        An ``OddsRatioResult``: ``statistic`` (0-dim for 2 x 2, ``[c - 1]`` otherwise) and
        ``confidence_interval(confidence_level=0.95, alternative="two-sided")``.

    ``kind="conditional"``, 2 x 2: the odds ratio whose Fisher law of ``table[0, 0]`` given the
    margins has mean ``table[0, 0]`` (the root of ``E[X] = x``, by safeguarded Newton steps in
    log space); 0 or ``inf`` when the cell is at the least or greatest value the margins allow
    (a zero cell), ``nan`` for an empty row or column; the confidence interval is exact (tail
    inversion). These equal scipy's ``odds_ratio`` (checked to 1e-8 relative, zero cells
    included).

    ``kind="conditional"``, 2 x c: the first row given the margins is the multivariate Fisher
    law (population = the column totals, draws = the first row's total), and the odds ratios are
    ``exp(-logits[1:])`` of its maximum-likelihood fit from that one draw
    (``diffhypergeom.stats.fit``); the intervals are profile-likelihood intervals. Where cells
    are at their bounds the estimate lies at infinity and is reported as its limit: a column
    drawn whole into row 0 (``table[1, j] == 0``) has odds ratio 0 against column 0, a column
    absent from row 0 (``table[0, j] == 0``) ``inf``, and the columns in between their
    finite estimate from the table without the former; the interval of such a column has the
    profile endpoint of the limit on one side and 0 or ``inf`` on the other. When column 0
    itself is at a bound the odds ratios against it are 0, ``inf`` or (against a column at
    the same bound) ``nan``, and ``confidence_interval`` raises: put an interior column first.
    An empty column gives ``nan`` and ``(0, inf)`` for itself (for all, if it is column 0).

    Example:
        scipy's example (cases and non-cases, exposed or not):

        >>> from diffhypergeom.stats import odds_ratio
        >>> result = odds_ratio([[7, 15], [58, 472]])
        >>> round(float(result.statistic), 10)
        3.7836687706
        >>> [round(float(v), 8) for v in result.confidence_interval(0.95)]
        [1.25148291, 10.36349372]
        >>> odds_ratio([[7, 15, 4], [58, 472, 30]]).statistic
        tensor([3.7857, 0.9055], dtype=torch.float64)
    """
    table = check_table(table)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "sample":
        statistic, interval = _sample(table)
    elif table.shape[1] == 2:
        statistic, interval = _conditional_2x2(table)
    else:
        statistic, interval = _conditional_2xc(table)
    return OddsRatioResult(statistic=statistic, table=table, kind=kind, _interval=interval)


def _empty(shape: tuple[int, ...]) -> Callable[[float, str], Interval]:
    def interval(level: float, alternative: str) -> Interval:
        return (torch.zeros(shape, dtype=torch.float64),
                torch.full(shape, math.inf, dtype=torch.float64))
    return interval


def _sample(table: torch.Tensor) -> tuple[torch.Tensor, Callable[[float, str], Interval]]:
    """scipy's sample odds ratio of column 0 against each column ``j``, and its Wald interval
    in the log, with scipy's ``nan``/``inf`` arithmetic for zero cells."""
    t = table.to(torch.float64)
    a, c = t[0, 0], t[1, 0]
    b, d = t[0, 1:], t[1, 1:]
    statistic = torch.where((c > 0) & (b > 0), a * d / (b * c),
                            torch.where((a == 0) | (d == 0), math.nan, math.inf))
    empty = ((a + b) == 0) | ((c + d) == 0) | ((a + c) == 0) | ((b + d) == 0)
    statistic = torch.where(empty, math.nan, statistic)
    se = (1 / a + 1 / b + 1 / c + 1 / d).sqrt()

    def interval(level: float, alternative: str) -> Interval:
        log_or = statistic.log()
        z = critical_value(level, alternative)
        if alternative == "two-sided":
            low, high = log_or - z * se, log_or + z * se
        else:
            low = log_or - z * se if alternative == "greater" else torch.full_like(se, -math.inf)
            high = log_or + z * se if alternative == "less" else torch.full_like(se, math.inf)
        low = torch.where(empty, -math.inf, low).exp()
        high = torch.where(empty, math.inf, high).exp()
        return _shaped(low, table), _shaped(high, table)

    return _shaped(statistic, table), interval


def _shaped(values: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """A 2 x 2 table's single odds ratio as a 0-dim tensor; ``[c - 1]`` otherwise."""
    return values.reshape(()) if table.shape[1] == 2 else values


def _conditional_2x2(table: torch.Tensor
                     ) -> tuple[torch.Tensor, Callable[[float, str], Interval]]:
    """The conditional MLE and the exact interval of a 2 x 2 table's odds ratio."""
    (a, b), (c, d) = table.tolist()
    if 0 in (a + b, c + d, a + c, b + d):
        return torch.tensor(math.nan, dtype=torch.float64), _empty(())
    row, column, total = a + b, a + c, a + b + c + d
    low_k, high_k = max(0, row + column - total), min(row, column)
    values = torch.arange(low_k, high_k + 1, dtype=torch.float64)
    central = MultivariateFisherNCHypergeometric(
        torch.tensor([column, total - column]), row,
        logits=torch.zeros(2, dtype=torch.float64), validate_args=False)
    law = TiltedCount(values, central.log_prob(torch.stack([values, row - values], -1)),
                      center=a)
    woolf = math.log((a + 0.5) * (d + 0.5) / ((b + 0.5) * (c + 0.5)))
    if a == low_k:
        theta = -math.inf
    elif a == high_k:
        theta = math.inf
    else:
        theta = law.solve_mean(a, start=woolf)
    start = theta if math.isfinite(theta) else woolf

    def lower(alpha: float) -> float:  # where P(X >= a) = alpha
        return 0.0 if a == low_k else math.exp(law.solve_upper(a, math.log(alpha), start))

    def upper(alpha: float) -> float:  # where P(X <= a) = alpha
        return math.inf if a == high_k else math.exp(law.solve_lower(a, math.log(alpha), start))

    def interval(level: float, alternative: str) -> Interval:
        if alternative == "two-sided":
            alpha = 0.5 * (1 - level)
            ends = lower(alpha), upper(alpha)
        elif alternative == "less":
            ends = 0.0, upper(1 - level)
        else:
            ends = lower(1 - level), math.inf
        return tuple(torch.tensor(end, dtype=torch.float64) for end in ends)

    return torch.tensor(math.exp(theta), dtype=torch.float64), interval


def _conditional_2xc(table: torch.Tensor
                     ) -> tuple[torch.Tensor, Callable[[float, str], Interval]]:
    """The conditional MLE of a 2 x c table's odds ratios against column 0 (``c >= 3``) and
    their profile-likelihood intervals (see ``odds_ratio``)."""
    columns = table.shape[1]
    statistic = torch.full((columns - 1,), math.nan, dtype=torch.float64)
    totals = table.sum(0)
    if bool((table.sum(1) == 0).any()) or int(totals[0]) == 0:
        return statistic, _empty((columns - 1,))
    x, m = table[0], totals
    kept = [j for j in range(columns) if int(m[j]) > 0]
    full = [j for j in kept if int(x[j]) == int(m[j])]
    none = [j for j in kept if int(x[j]) == 0]
    inside = [j for j in kept if j not in full and j not in none]
    if 0 not in inside:
        same, limit = (full, math.inf) if 0 in full else (none, 0.0)
        for j in kept[1:]:
            statistic[j - 1] = math.nan if j in same else limit

        def refused(level: float, alternative: str) -> Interval:
            bound = "all of its cases in row 0" if 0 in full else "none of its cases in row 0"
            raise ValueError(
                f"table: column 0 is at its bound ({bound}), so every odds ratio against it is "
                f"0, inf or not identified, and its profile interval is not computed; put a "
                f"column with cases in both rows first")

        return statistic, refused
    reduced = fit(MultivariateFisherNCHypergeometric, m[inside], int(x[inside].sum()),
                  x[inside].unsqueeze(0)) if len(inside) > 1 else None
    if reduced is not None:
        statistic[[j - 1 for j in inside[1:]]] = (-reduced.logits[1:]).exp()
    statistic[[j - 1 for j in full]] = 0.0
    statistic[[j - 1 for j in none]] = math.inf
    inner = SharedLogitLikelihood(True, m[inside].unsqueeze(0), x[inside].sum().reshape(1),
                                  x[inside].unsqueeze(0))
    fitted = (reduced.logits[1:] if reduced is not None
              else torch.zeros(0, dtype=torch.float64))
    top = inner(fitted, False)[0]

    def limit_bound(j: int, z: float) -> float:
        """The finite profile endpoint of ``theta_j`` for a column at its bound: the urn of
        the interior columns and ``j`` alone, the profile falling from its limit ``top``."""
        group = inside + [j]
        likelihood = SharedLogitLikelihood(True, m[group].unsqueeze(0),
                                           x[group].sum().reshape(1), x[group].unsqueeze(0))
        heavy = j in full
        edge = (float(fitted.max()) if heavy else float(fitted.min())) if len(fitted) else 0.0
        guess = edge + (2.0 if heavy else -2.0)
        start = torch.cat([fitted, fitted.new_tensor([guess])])
        return profile_endpoint(likelihood, len(inside) - 1, top, start, guess,
                                (-math.inf, math.inf), -1 if heavy else 1, z)

    def interval(level: float, alternative: str) -> Interval:
        z = critical_value(level, alternative)
        low = torch.zeros(columns - 1, dtype=torch.float64)
        high = torch.full((columns - 1,), math.inf, dtype=torch.float64)
        if reduced is not None:
            # the odds ratio is exp(-theta): its "less" is theta's "greater"
            flipped = {"two-sided": "two-sided", "less": "greater", "greater": "less"}
            theta_low, theta_high = reduced.confidence_interval(level, flipped[alternative])
            index = [j - 1 for j in inside[1:]]
            low[index], high[index] = (-theta_high[1:]).exp(), (-theta_low[1:]).exp()
        for j in full:  # odds ratio 0: the upper end is the only finite one
            if alternative != "greater":
                high[j - 1] = math.exp(-limit_bound(j, z))
        for j in none:  # odds ratio inf: the lower end
            if alternative != "less":
                low[j - 1] = math.exp(-limit_bound(j, z))
        return low, high

    return statistic, interval


@dataclass(eq=False)
class HomogeneityResult:
    """The exact test of homogeneity of a 2 x c table (what ``homogeneity_test`` returns).

    Attributes:
        statistic: the null probability of the observed table given its margins.
        pvalue: the sum of the null probabilities of the tables no more probable than the
            observed one (exact), or its Monte Carlo estimate ``(1 + hits) / (1 + samples)``.
        stderr: the Monte Carlo estimate's standard error, ``sqrt(p (1 - p) / samples)``; 0 for
            the exact p-value.
        tables: the number of tables enumerated or sampled.
        method: ``"exact"`` or ``"monte carlo"``.
    """

    statistic: float
    pvalue: float
    stderr: float
    tables: int
    method: str


def homogeneity_test(table: TensorLike, *, samples: int | None = None,
                     max_tables: int = MAX_TABLES, rtol: float = 1e-7) -> HomogeneityResult:
    """The Fisher-Freeman-Halton exact test that the c columns of a 2 x c table share one
    odds (all odds ratios 1; equivalently, rows and columns independent).

    Given the margins, the first row is the central multivariate hypergeometric law
    (population = the column totals, draws = the first row's total). The p-value sums the
    null probabilities of the first rows whose probability is at most the observed one's times
    ``1 + rtol`` (the tolerance for ties of R's ``fisher.test``; scipy's 2 x 2 test uses
    ``1e-14``), over every first row the margins allow. For 2 x 2 this is Fisher's exact test,
    two-sided (``scipy.stats.fisher_exact``).

    Args:
        table: ``[2, c]`` non-negative integers, ``c >= 2``.
        samples: ``None`` (default): the exact p-value, by enumeration; an int: a Monte Carlo
            estimate from that many exact draws of the null law (torch's global generator:
            seed it with ``torch.manual_seed``), with its standard error.
        max_tables: the most first rows enumerated; a table whose margins allow more is a
            ``ValueError`` (pass ``samples=`` for an estimate).
        rtol: the relative tolerance for ties, ``>= 0``.

    Returns:
        A ``HomogeneityResult``: ``statistic`` (the observed table's null probability),
        ``pvalue``, ``stderr``, ``tables``, ``method``.

    Example:
        >>> from diffhypergeom.stats import homogeneity_test
        >>> round(homogeneity_test([[8, 2], [1, 5]]).pvalue, 12)  # scipy: 0.034965034965
        0.034965034965
        >>> result = homogeneity_test([[8, 2, 3], [1, 5, 4]])  # R: 0.0571470527
        >>> round(result.pvalue, 6), result.tables
        (0.057147, 53)
    """
    table = check_table(table)
    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int)
                                or samples < 1):
        raise ValueError(f"samples must be a positive int or None, got {samples!r}")
    if isinstance(max_tables, bool) or not isinstance(max_tables, int) or max_tables < 1:
        raise ValueError(f"max_tables must be a positive int, got {max_tables!r}")
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float)) or not rtol >= 0 \
            or not math.isfinite(rtol):
        raise ValueError(f"rtol must be a finite number >= 0, got {rtol!r}")
    population, draws = table.sum(0), int(table[0].sum())
    null = MultivariateFisherNCHypergeometric(population, draws,
                                              logits=torch.zeros(table.shape[1],
                                                                 dtype=torch.float64),
                                              validate_args=False)
    observed = float(null.log_prob(table[0].to(torch.float64)))
    threshold = observed + math.log1p(rtol)
    if samples is None:
        size, exact = support_size(population.tolist(), draws, stop_above=max_tables)
        if size > max_tables:
            raise ValueError(
                f"table: its margins allow {'' if exact else 'more than '}{size:,} first rows, "
                f"above max_tables={max_tables:,}; raise max_tables, or pass samples= for a "
                f"Monte Carlo estimate")
        points = support_points(population.tolist(), draws, torch.device("cpu"))
        log_probs = null.log_prob(points.to(torch.float64))
        kept = torch.where(log_probs <= threshold, log_probs, -math.inf)
        pvalue = min(1.0, float(torch.logsumexp(kept, 0).exp()))
        return HomogeneityResult(statistic=math.exp(observed), pvalue=pvalue, stderr=0.0,
                                 tables=size, method="exact")
    hits = int((null.log_prob(null.sample((samples,))) <= threshold).sum())
    pvalue = (1 + hits) / (1 + samples)
    return HomogeneityResult(statistic=math.exp(observed), pvalue=pvalue,
                             stderr=math.sqrt(pvalue * (1 - pvalue) / samples), tables=samples,
                             method="monte carlo")

