"""The tilted-FFT engine: cost that grows with the spread of the draw, not with ``n * N``
(``docs/design/index.md`` section 4).

The MFNCH is a vector of independent binomials conditioned on its sum: for any tilt ``tau``, with
``p_i = sigmoid(theta_i + tau)`` and ``X_i ~ Bin(m_i, p_i)`` independent, ``S = sum_i X_i``,

    p(x) = prod_i Bin(x_i; m_i, p_i) / P(S = n),
    A = log P0 = -n tau + sum_i m_i softplus(theta_i + tau) + log P(S = n).

``tau`` solves ``sum_i m_i p_i = n`` (the saddle point; held fixed, i.e. detached, since the
identity holds for every ``tau``), so that ``n`` is the mean of ``S`` and ``P(S = n) ~ 1/sigma``,
``sigma^2 = sum_i m_i p_i (1 - p_i)``. The pmf of a sum ``T`` of some of the ``X_i`` comes from its
characteristic function on a grid of ``L`` frequencies ``a_j = 2 pi j / L``:

    P(T = s) = (1/L) sum_j phi_T(a_j) exp(-i a_j s),
    phi_T(a) = prod_{i in T} (q_i + p_i e^{ia})^m_i.

Accuracy (the rule behind ``L`` and the band of frequencies kept), with ``lam = 40 + log(2 +
sigma)``:

- aliasing: the formula gives ``sum_k P(T = s + k L)``. By Bernstein's inequality (``S`` is a sum
  of ``N`` independent Bernoulli variables) ``P(|S - n| >= t) <= 2 exp(-t^2 / (2 (sigma^2 + t/3)))``
  which is ``<= 2 e^-lam`` at ``t = lam/3 + sqrt(lam^2/9 + 2 lam sigma^2)``; ``L = 2t + 1`` (or
  ``N + 1`` when that is smaller, which is exact), and only ``s`` within ``L/2`` of ``T``'s mean
  are used;
- band: ``|phi_T(a)| <= exp(-2 sigma_T^2 a^2 / pi^2)``, so frequencies with
  ``|a| > pi sqrt(lam / 2) / sigma_T`` add less than ``e^-lam`` and are skipped: a few dozen
  frequencies for the whole urn, whatever ``N``;
- windows: class ``i`` takes counts within the same Bernstein half-width of ``m_i p_i``; the
  terms outside have binomial mass ``< 2 e^-lam``;
- rounding: each pmf value carries an absolute error of about ``eps * (1/L) sum_j |phi_T(a_j)|``
  (``eps = 2^-52``), i.e. ``~1e-15`` of its largest value; values below 16 times that (``~4e-15``
  of the mode, beyond ~8 standard deviations) cannot be resolved and count as zero (their total
  mass is below ``1e-13``). A sampler row ``r`` whose own mass is so small that this error would
  exceed ``1e-11`` of it (an atypical ``r``, many standard deviations from its mean) is computed
  instead from its own saddle point (the sub-urn of the classes left, drawing ``r``).

So the log-normaliser is accurate to ``~1e-15 (1 + n / sigma)`` relative in ``P(S = n)``,
probabilities to ``~1e-14`` of their distribution's mode. Cost ``O(c (F + W))`` per urn for ``F``
frequencies and windows of ``W`` counts (both ``O(sigma)`` at most), instead of
``O(n * sum_i m_i)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from diffhypergeom.numerics.base import Engine, Window, checkpoint_if_large
from diffhypergeom.numerics.special import NEG_INF, log_binomial_pmf, logsumexp

__all__ = [
    "FFTEngine", "LAMBDA", "MAX_TRANSFORM_WORK", "NOISE", "ROW_TOLERANCE", "TRANSFORM_ELEMENTS",
    "budget",
    "count_window", "estimated_bytes", "solve_saddle", "tail_halfwidth", "widest_window",
]

LAMBDA = 40.0
NOISE = 16 * 2.0**-52
ROW_TOLERANCE = 1e-11
# largest block of the transform's kernel (urns x frequencies x counts) held at once
TRANSFORM_ELEMENTS = 1 << 22
# most terms (urns x classes x frequencies x counts) a marginal transform may take: about 10 s
# on the 2-core CPU (an urn of 2 x 10^9 balls takes 1e8, 1 s; 2 x 10^12 takes 3e9)
MAX_TRANSFORM_WORK = 5e8


def tail_halfwidth(sigma: torch.Tensor, lam: torch.Tensor | float) -> torch.Tensor:
    """Bernstein half-width ``t`` with ``P(|S - E S| >= t) <= 2 e^-lam`` for a sum of Bernoulli
    variables with standard deviation ``sigma``."""
    return lam / 3 + torch.sqrt(lam * lam / 9 + 2 * lam * sigma * sigma)


def budget(sigma: torch.Tensor) -> torch.Tensor:
    """``lam = 40 + log(2 + sigma)``: the tail budget ``e^-lam`` relative to ``P(S = n)``."""
    return LAMBDA + torch.log(2 + sigma)


def count_window(centre: torch.Tensor, half: torch.Tensor, low: torch.Tensor,
                 high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Counts ``lo..hi`` within ``half`` of ``centre``, clipped to ``[low, high]`` (int64
    ``lo``, float ``hi``)."""
    lo = torch.maximum(torch.floor(centre - half), low)
    hi = torch.minimum(torch.ceil(centre + half), high)
    return torch.minimum(lo, hi).to(torch.int64), hi


def widest_window(population: torch.Tensor, draws: torch.Tensor, lam: float) -> torch.Tensor:
    """``[B]``: an estimate (weights taken equal) of the widest class window of each urn."""
    m = population.to(torch.float64)
    share = draws.to(torch.float64).unsqueeze(-1) / m.sum(-1, keepdim=True).clamp_min(1)
    if m.shape[-1] == 0:
        return draws.to(torch.float64)
    return (2 * tail_halfwidth((m * share * (1 - share)).sqrt(), lam)).amax(-1)


def solve_saddle(m: torch.Tensor, n: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """``[B]``: ``tau`` with ``sum_i m_i sigmoid(theta_i + tau) = n`` (safeguarded Newton).

    ``n = 0`` and ``n = N`` have no finite root; there ``tau`` puts every ``p_i`` within
    ``e^-40 / (N + 1)`` of 0 or 1 (the identity holds for any ``tau``)."""
    has = m > 0
    top = torch.where(has, theta, torch.full_like(theta, NEG_INF)).amax(-1)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    th = torch.where(has, theta - top.unsqueeze(-1), torch.zeros_like(theta))
    bottom = torch.where(has, th, torch.full_like(th, float("inf"))).amin(-1)
    bottom = torch.where(torch.isfinite(bottom), bottom, torch.zeros_like(bottom))
    total = m.sum(-1)
    empty, full = n <= 0, n >= total
    inner = ~(empty | full)
    n_safe = torch.where(inner, n, total / 2).clamp_min(0.5)
    rest = (total - n_safe).clamp_min(0.5)
    lo = torch.log(n_safe / total.clamp_min(1))
    hi = -bottom + torch.log(n_safe / rest)
    tau = torch.log(n_safe / rest).clamp(lo, hi)
    for _ in range(400):
        p = torch.sigmoid(th + tau.unsqueeze(-1))
        f = (m * p).sum(-1) - n_safe
        slope = (m * p * (1 - p)).sum(-1)
        lo = torch.where(f < 0, tau, lo)
        hi = torch.where(f > 0, tau, hi)
        newton = tau - f / slope
        ok = (newton > lo) & (newton < hi) & torch.isfinite(newton)
        new = torch.where(ok, newton, 0.5 * (lo + hi))
        new = torch.where(f == 0, tau, new)
        done = ((new - tau).abs() <= 4e-16 * (1 + tau.abs())) | (f == 0) | ~inner
        tau = new
        if bool(done.all()):
            break
    margin = LAMBDA + torch.log1p(total)
    tau = torch.where(empty, -margin, tau)
    tau = torch.where(full & ~empty, -bottom + margin, tau)
    return tau - top


def _fold(index: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    return torch.remainder(index, length)


def _transform(coeff: torch.Tensor, folded: torch.Tensor, grid: torch.Tensor,
               width: torch.Tensor) -> torch.Tensor:
    """``[B, K, W]``: ``(1/L) Re sum_j coeff[b, k, j] exp(-2 pi i j w / L_b)`` for the folded
    frequency indices ``folded [B, F]`` and grids ``grid [B, 1]``, in column blocks whose
    kernel holds at most ``TRANSFORM_ELEMENTS`` entries (each recomputed in the backward pass
    when large), so that memory grows with ``F + W``, not ``F W``."""
    total = int(width)
    step = max(1, TRANSFORM_ELEMENTS // max(1, folded.numel()))
    blocks = [checkpoint_if_large(_transform_block, coeff, folded, grid,
                                  torch.tensor(start), torch.tensor(min(total, start + step)),
                                  elements=folded.numel() * min(step, total) * coeff.shape[1])
              for start in range(0, total, step)]
    if not blocks:
        return coeff.real[..., :0]
    return blocks[0] if len(blocks) == 1 else torch.cat(blocks, -1)


def _transform_block(coeff: torch.Tensor, folded: torch.Tensor, grid: torch.Tensor,
                     start: torch.Tensor, stop: torch.Tensor) -> torch.Tensor:
    """``_transform``'s columns ``start <= w < stop``."""
    w = torch.arange(int(start), int(stop), device=coeff.device)
    steps = _fold(folded.unsqueeze(-1) * w, grid.unsqueeze(-1)).to(torch.float64)
    phase = (-2 * math.pi / grid.unsqueeze(-1).to(torch.float64)) * steps
    kernel = torch.polar(torch.ones_like(phase), phase)  # [B, F, w]
    return torch.matmul(coeff, kernel).real / grid.unsqueeze(-1).to(torch.float64)


class FFTEngine(Engine):
    """Exponentially tilted binomials and their characteristic functions; see the module
    docstring for the rule that sets the grid, the band and the windows.

    Example:
        >>> import math, torch
        >>> from diffhypergeom.numerics.engines import FFTEngine
        >>> theta = torch.zeros(1, 3, dtype=torch.float64)  # equal weights: P0 = C(N, n)
        >>> fft = FFTEngine(torch.tensor([[300, 500, 200]]), torch.tensor([400]), theta)
        >>> round(float(fft.log_normalizer), 9), round(math.log(math.comb(1000, 400)), 9)
        (669.352145126, 669.352145126)
        >>> fft.moments()[0]  # hypergeometric means n m_i / N
        tensor([[120.0000, 200.0000,  80.0000]], dtype=torch.float64)
    """

    name = "fft"

    def __init__(self, population: torch.Tensor, draws: torch.Tensor, theta: torch.Tensor):
        super().__init__(population, draws, theta)
        m = population.to(torch.float64)
        self.m = m
        self.tau = solve_saddle(m, draws.to(torch.float64), theta.detach())
        with torch.no_grad():
            p = torch.sigmoid(theta.detach() + self.tau.unsqueeze(-1))
            variance = m * p * (1 - p)
            self.sigma = variance.sum(-1).sqrt()
            self.lam = budget(self.sigma)
            total = m.sum(-1)
            self.total = total.to(torch.int64)
            half = tail_halfwidth(self.sigma, self.lam)
            grid = 2 * torch.ceil(half).to(torch.int64) + 1
            exact_grid = self.total + 1
            exact_grid = exact_grid + (exact_grid % 2 == 0).to(torch.int64)  # odd: symmetric band
            self.exact = grid >= exact_grid
            self.grid = torch.where(self.exact, exact_grid, grid)
            t = tail_halfwidth(variance.sqrt(), self.lam.unsqueeze(-1))
            centre = m * p
            self.lo, hi = count_window(centre, t, torch.zeros_like(m), m)
            self.widths = (hi - self.lo + 1).to(torch.int64)
            self._spread = (m * torch.minimum(p, 1 - p)).sum(-1)
            # moments of the suffix sums S_{>=i} (index c: the empty sum)
            zero = torch.zeros_like(m[:, :1])
            self.suffix_mean = torch.cat([centre.flip(-1).cumsum(-1).flip(-1), zero], -1)
            self.suffix_sigma = torch.cat([variance.flip(-1).cumsum(-1).flip(-1), zero],
                                          -1).clamp_min(0).sqrt()
            self.suffix_total = torch.cat([m.flip(-1).cumsum(-1).flip(-1), zero], -1)
            self.loo_mean = centre.sum(-1, keepdim=True) - centre
            self.loo_sigma = (variance.sum(-1, keepdim=True) - variance).clamp_min(0).sqrt()
            self.loo_total = total.unsqueeze(-1) - m
            band = self._band(self.sigma.unsqueeze(-1))
            self._total_band = band
            self._total_half = int(band.max()) if band.numel() else 0

    # ------------------------------------------------------------------ tilted binomials
    def _log_pq(self) -> tuple[torch.Tensor, torch.Tensor]:
        def compute():
            z = self.theta + self.tau.unsqueeze(-1)
            return F.logsigmoid(z), F.logsigmoid(-z)
        return self._cached("log_pq", compute)

    def _band(self, sigma: torch.Tensor) -> torch.Tensor:
        """Frequencies ``|j| <= J`` kept for a sum with standard deviation ``sigma`` (``[B, K]``,
        one grid per urn)."""
        grid = self.grid.view(-1, *([1] * (sigma.dim() - 1))).to(torch.float64)
        lam = self.lam.view_as(grid)
        cap = (grid - 1) // 2
        wanted = torch.ceil(torch.sqrt(lam / 2) * grid / (2 * sigma.clamp_min(1e-300)))
        return torch.minimum(wanted, cap).to(torch.int64)

    def _log_phi(self, half: int) -> torch.Tensor:
        """``[B, c, 2 half + 1]`` complex: ``log phi_i(a_j)`` for ``j = -half..half``."""
        def compute():
            log_p, log_q = self._log_pq()
            p, q = log_p.exp().unsqueeze(-1), log_q.exp().unsqueeze(-1)
            grid = self.grid.view(-1, 1, 1)
            j = torch.arange(-half, half + 1, device=self.device)
            a = 2 * math.pi * j.to(torch.float64) / grid.to(torch.float64)
            sin_half, sin_a = torch.sin(a / 2), torch.sin(a)
            modulus = 0.5 * torch.log1p((-4 * p * q * sin_half.square()).clamp_min(-1 + 2**-52))
            # arg(q + p e^{ia}); for p > 1/2 as a + arg(p + q e^{-ia}), with m * a taken in
            # whole turns (exact), so that the rounding grows with m * min(p, q), not with m
            low = torch.atan2(p * sin_a, 1 - 2 * p * sin_half.square())
            high = torch.atan2(-q * sin_a, 1 - 2 * q * sin_half.square())
            population = self.population.unsqueeze(-1)
            turns = _fold(_fold(population, grid) * _fold(j, grid), grid)
            whole = 2 * math.pi * turns.to(torch.float64) / grid.to(torch.float64)
            m = self.m.unsqueeze(-1)
            upper = p > 0.5
            phase = torch.where(upper, whole + m * high, m * low)
            return torch.complex(m * modulus, phase)
        return self._cached(("log_phi", half), compute)

    def _pmf(self, log_phi: torch.Tensor, band: torch.Tensor, base: torch.Tensor, width: int,
             mean: torch.Tensor, total: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``log P(T = base + w)``, ``w < width``, for sums ``T`` given by ``log_phi [B, K, F]``
        (frequencies ``-F//2..F//2``), each kept within ``band [B, K]``; also the absolute
        rounding error of the values (``[B, K]``). Values that cannot be resolved (below the
        error, outside ``[0, total]`` or too far from ``mean`` for the grid) are ``-inf``."""
        half = log_phi.shape[-1] // 2
        grid = self.grid.view(-1, 1)
        turn = 2 * math.pi / grid.to(torch.float64).unsqueeze(-1)  # [B, 1, 1]
        j = torch.arange(-half, half + 1, device=self.device)
        folded = _fold(j.unsqueeze(0), grid)  # [B, F]
        keep = j.abs() <= band.unsqueeze(-1)
        start = _fold(base, grid)
        turns = _fold(folded.unsqueeze(1) * start.unsqueeze(-1), grid.unsqueeze(-1))
        angle = turn * turns.to(torch.float64)
        coeff = torch.exp(log_phi - torch.complex(torch.zeros_like(angle), angle))
        coeff = torch.where(keep, coeff, torch.zeros_like(coeff))
        work = folded.numel() * coeff.shape[1] * width
        if work > MAX_TRANSFORM_WORK:
            raise ValueError(
                f"the exact marginals of this urn (draws and marginals take them) need a "
                f"transform of {work:.3g} terms ({width:,} counts per window), beyond "
                f"MAX_TRANSFORM_WORK = {MAX_TRANSFORM_WORK:.0e} (about 10 s); its spread is "
                f"too wide for them. mean, variance, covariance_matrix and log_prob do not "
                f"need them")
        values = _transform(coeff, folded, grid, torch.tensor(width))
        w = torch.arange(width, device=self.device)
        # rounding: of the transform (NOISE) and of each phase, ~eps * sum_i m_i min(p_i, q_i) |a|
        frequency = (turn * folded.unsqueeze(1).to(torch.float64)).squeeze(1)
        frequency = torch.minimum(frequency, 2 * math.pi - frequency).unsqueeze(1)
        phase_error = 4 * 2.0**-52 * self._spread.view(-1, 1, 1) * frequency
        noise = ((NOISE + phase_error) * coeff.detach().abs()).sum(-1) / grid.to(torch.float64)
        s = base.unsqueeze(-1) + w
        valid = (s >= 0) & (s <= total.unsqueeze(-1)) & (values > noise.unsqueeze(-1))
        far = (s.to(torch.float64) - mean.unsqueeze(-1)).abs() > grid.unsqueeze(-1) / 2.0
        valid = valid & (self.exact.view(-1, 1, 1) | ~far)
        safe = torch.where(valid, values, torch.ones_like(values))
        return torch.where(valid, safe.log(), torch.full_like(values, NEG_INF)), noise

    # ------------------------------------------------------------------ the interface
    def _log_sum_at_draws(self) -> torch.Tensor:
        """``[B]``: ``log P(S = n)`` at the saddle point."""
        def compute():
            band = self._total_band
            log_phi = self._log_phi(self._total_half).sum(1, keepdim=True)
            value, _ = self._pmf(log_phi, band, self.draws.unsqueeze(-1), 1,
                                 self.draws.to(torch.float64).unsqueeze(-1),
                                 self.total.unsqueeze(-1))
            return value.reshape(-1)
        return self._cached("log_sum", compute)

    @property
    def log_normalizer(self) -> torch.Tensor:
        _, log_q = self._log_pq()
        n = self.draws.to(torch.float64)
        return -n * self.tau - (self.m * log_q).sum(-1) + self._log_sum_at_draws()

    def log_prob(self, y: torch.Tensor) -> torch.Tensor:
        log_p, log_q = self._log_pq()
        terms = log_binomial_pmf(y, self.m, log_p, log_q).sum(-1)
        drift = (y.sum(-1) - self.draws.to(y.dtype)) * self.tau
        return terms - self._log_sum_at_draws() - drift

    def _marginal_terms(self) -> tuple[list[Window], list[torch.Tensor]]:
        """Per class: the marginal window, and ``log Bin(k; m_i, p_i)`` on it."""
        def compute():
            if self.num_classes == 0 or self.batch == 0:
                return [], []
            width = int(self.widths.max())
            band = self._band(self.loo_sigma)
            log_phi = self._log_phi(int(band.max()))
            # leave-one-out products from exclusive prefix and suffix sums
            zero = torch.zeros_like(log_phi[:, :1])
            prefix = torch.cat([zero, log_phi[:, :-1].cumsum(1)], 1)
            suffix = torch.cat([log_phi[:, 1:].flip(1).cumsum(1).flip(1), zero], 1)
            base = self.draws.unsqueeze(-1) - self.lo - (width - 1)
            values, _ = self._pmf(prefix + suffix, band, base, width, self.loo_mean,
                                  self.loo_total)
            k = (self.lo.unsqueeze(-1) + torch.arange(width, device=self.device))
            log_p, log_q = self._log_pq()
            log_bin = log_binomial_pmf(k, self.m.unsqueeze(-1), log_p.unsqueeze(-1),
                                       log_q.unsqueeze(-1))
            terms = log_bin + values.flip(-1)
            log_marginal = terms - logsumexp(terms, -1).unsqueeze(-1)
            windows = [Window(self.lo[:, i], log_marginal[:, i])
                       for i in range(self.num_classes)]
            return windows, [log_bin[:, i] for i in range(self.num_classes)]
        return self._cached("marginals", compute)

    def log_marginals(self) -> list[Window]:
        return self._marginal_terms()[0]

    def entropy(self) -> torch.Tensor:
        """``log P(S = n) - sum_i E[log Bin(y_i; m_i, p_i)]`` (well conditioned at any size)."""
        windows, log_bins = self._marginal_terms()
        expected = torch.zeros_like(self.tau)
        for window, log_bin in zip(windows, log_bins, strict=True):
            p = window.log_prob.exp()
            safe = torch.where(torch.isfinite(log_bin), log_bin, torch.zeros_like(log_bin))
            expected = expected + (p * safe).sum(-1)
        return self._log_sum_at_draws() - expected

    def _suffix_log_phi(self) -> torch.Tensor:
        """``[B, c + 1, F]``: ``log phi`` of the suffix sums ``S_{>=i}``."""
        def compute():
            band = self._band(self.suffix_sigma[:, 1:-1])
            log_phi = self._log_phi(int(band.max()) if band.numel() else 0)
            suffix = log_phi.flip(1).cumsum(1).flip(1)
            return torch.cat([suffix, torch.zeros_like(suffix[:, :1])], 1)
        return self._cached("suffix", compute)

    def conditional(self, i: int, rows: torch.Tensor) -> Window:
        """Row ``(b, r)``: ``log Bin(k; m_i, p_i) + log P(S_{>i} = r - k)``, normalised over the
        class's window; rows this cannot resolve come from their own saddle point."""
        length = self.n_max + 1
        urn, remaining = rows // length, rows % length
        width = int(self.widths[:, i].max())
        lo = self.lo[:, i]
        big = torch.iinfo(torch.int64).max
        r_min = torch.full((self.batch,), big, device=self.device).scatter_reduce(
            0, urn, remaining, "amin")
        r_max = torch.full((self.batch,), -1, device=self.device).scatter_reduce(
            0, urn, remaining, "amax")
        visited = r_max >= 0
        r_min = torch.where(visited, r_min, torch.zeros_like(r_min))
        r_max = torch.where(visited, r_max, torch.zeros_like(r_max))
        base = r_min - lo - (width - 1)
        span = int((r_max - r_min).max()) + width
        band = self._band(self.suffix_sigma[:, i + 1 : i + 2])
        suffix = self._suffix_log_phi()[:, i + 1 : i + 2]
        cut = suffix.shape[-1] // 2 - int(band.max())
        suffix = suffix[..., cut : suffix.shape[-1] - cut]
        log_suffix, noise = self._pmf(suffix, band, base.unsqueeze(-1), span,
                                      self.suffix_mean[:, i + 1 : i + 2],
                                      self.suffix_total[:, i + 1 : i + 2].to(torch.int64))
        log_suffix, noise = log_suffix[:, 0], noise[:, 0]
        k = lo.unsqueeze(-1) + torch.arange(width, device=self.device)  # [B, W]
        index = remaining.unsqueeze(-1) - k[urn] - base[urn].unsqueeze(-1)
        inside = (index >= 0) & (index < span)
        gathered = log_suffix.reshape(-1)[urn.unsqueeze(-1) * span + index.clamp(0, span - 1)]
        log_p, log_q = self._log_pq()
        log_bin = log_binomial_pmf(k, self.m[:, i : i + 1], log_p[:, i : i + 1],
                                   log_q[:, i : i + 1])
        terms = log_bin[urn] + torch.where(inside, gathered, torch.full_like(gathered, NEG_INF))
        norm = logsumexp(terms, -1)
        error = (noise[urn] + 2 * torch.exp(-self.lam[urn])) / norm.detach().exp()
        unresolved = ~(error <= ROW_TOLERANCE)
        safe_norm = torch.where(torch.isfinite(norm), norm, torch.zeros_like(norm))
        window = Window(lo[urn], terms - safe_norm.unsqueeze(-1))
        if bool(unresolved.any()):
            window = self._resolve_rows(window, i, urn, remaining, unresolved)
        return window

    def _resolve_rows(self, window: Window, i: int, urn: torch.Tensor,
                      remaining: torch.Tensor, unresolved: torch.Tensor) -> Window:
        """Recompute the rows ``unresolved`` as the marginal of class ``i`` in the sub-urn of
        classes ``i..c`` drawing ``r``, tilted at that sub-urn's own saddle point."""
        which = unresolved.nonzero().squeeze(-1)
        b = urn[which]
        sub = FFTEngine(self.population[b, i:], remaining[which], self.theta[b, i:])
        own = sub.log_marginals()[0]
        return _merge_rows(window, which, own)


def _merge_rows(window: Window, which: torch.Tensor, replacement: Window) -> Window:
    """``window`` with its rows ``which`` replaced (both padded to the wider width)."""
    width = max(window.log_prob.shape[-1], replacement.log_prob.shape[-1])
    base = F.pad(window.log_prob, (0, width - window.log_prob.shape[-1]), value=NEG_INF)
    new = F.pad(replacement.log_prob, (0, width - replacement.log_prob.shape[-1]),
                value=NEG_INF)
    log_prob = base.index_put((which,), new)
    offset = window.offset.index_put((which,), replacement.offset)
    return Window(offset, log_prob)


def estimated_bytes(population: torch.Tensor, draws: torch.Tensor) -> int:
    """Rough peak memory of this engine with gradients (weights taken equal): per class, its
    window of counts and about five complex tables over the frequencies of the band that the
    whole draw needs, twice over for the backward pass."""
    batch, classes = population.shape
    if batch * classes == 0:
        return 0
    width = float((widest_window(population, draws, 50.0) + 1).max())
    m = population.to(torch.float64)
    total = m.sum(-1).clamp_min(1)
    share = draws.to(torch.float64) / total
    sigma = (total * share * (1 - share)).sqrt()
    lam = budget(sigma)
    grid = torch.minimum(2 * torch.ceil(tail_halfwidth(sigma, lam)) + 1, total + 2)
    band = torch.minimum(torch.ceil(math.sqrt(LAMBDA / 2) * grid / (2 * sigma.clamp_min(1e-3))),
                         (grid - 1) / 2)
    frequencies = float((2 * band + 1).max())
    return int(2 * 16 * batch * classes * (width + 5 * frequencies))
