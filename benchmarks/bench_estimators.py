"""Gradient estimators for k-subsets at equal time, against the exact gradient and the peers,
printed as markdown tables (issue 31's targets).

    python benchmarks/bench_estimators.py --peers /path/to/sfess   # with SIMPLE, SFESS, I-MLE
    python benchmarks/bench_estimators.py --samples 16 64 --replicates 200
    python benchmarks/bench_estimators.py --candidates        # also the candidates not kept
    python benchmarks/bench_estimators.py --per-call 16:5 1000:50 --peers /path/to/sfess

For each law of a k-subset of ``N`` items (the conditional Poisson law, ``k_subset``; the
Wallenius law of Gumbel-top-k, ``gumbel_top_k``) and each kind of ``f`` (linear ``v . z``, a
smooth quadratic ``(v . z)^2 / k``, the max ``max_i v_i z_i`` and a hard threshold ``[v . z >
t]``), the exact gradient of ``E[f(z)]`` in the logits comes from enumerating all ``C(N, k)``
subsets with the law's exact ``log_prob``. Each estimator is called ``--replicates`` times
(building the law, drawing ``S`` samples, evaluating ``f``, the backward pass: the time of one
estimate), which gives its relative bias ``|E g - g*| / |g*|`` and spread ``sqrt(E |g - E g|^2) /
|g*|``. The relative RMS error *at the time of the fastest peer* ``T`` gives each estimator
``T / t`` estimates to average: ``sqrt(bias^2 + spread^2 t / T)``.

Peers, as klaswijk/sfess ships and calls them (``--peers``: a local copy; skipped without):
SIMPLE, SFESS (``"reinforce"``) and SFESS-cv (``"control-variate"``), I-MLE (noise scale 1,
beta 1) and straight-through Gumbel top-k (temperature 0.5). They all draw Gumbel-top-k
subsets. Take the timings on an otherwise idle machine.

``--candidates`` adds three variance reductions that were measured and not kept (docs, results
page): ``loo-subset-score`` (Wallenius law: the subset's own score, ``race.log_prob``, which
Rao-Blackwellises the order's over the draw orders), ``antithetic`` (Wallenius law: draws in
antithetic pairs of Gumbel noise, baselines from the other pairs) and ``loo-per-class``
(conditional Poisson law: leave-one-out per-class baselines ``(1 - mu_i) E[f | i in S] + mu_i
E[f | i not in S]`` with the exact inclusion probabilities). ``--per-call N:k ...`` prints
instead the median time of one unbiased estimate (``reinforce-loo``, max ``f``) for both laws
and the peers, called in alternating rounds.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import torch

from diffhypergeom.estimators import surrogate_loss
from diffhypergeom.subsets import gumbel_top_k, k_subset

FUNCTIONS = ("linear", "quadratic", "max", "threshold")
LIBRARY = ("reinforce-loo", "reinforce-cv", "reinforce-linear", "pathwise", "delta")
PEERS = ("SIMPLE", "SFESS", "SFESS-cv", "I-MLE", "ST-Gumbel")
LAWS = {"conditional Poisson (k_subset)": k_subset, "Wallenius (gumbel_top_k)": gumbel_top_k}


def make_f(kind: str, values: torch.Tensor, k: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """``f`` of k-hot ``z [..., N]`` (floating, possibly carrying a relaxation's gradient)."""
    threshold = float(values.sort(descending=True).values[:k].mean() * k * 0.8)
    if kind == "linear":
        return lambda z: z @ values
    if kind == "quadratic":
        return lambda z: (z @ values).square() / k
    if kind == "max":
        return lambda z: (z * values).amax(-1)
    return lambda z: (z @ values > threshold).to(z.dtype) + 0 * z.sum(-1)


def exact_gradient(law: str, theta: torch.Tensor, k: int, f) -> torch.Tensor:
    """``d/dtheta E[f(z)]`` by summing over every subset (float64)."""
    n = theta.shape[-1]
    masks = torch.zeros(math.comb(n, k), n, dtype=torch.float64)
    for row, chosen in enumerate(itertools.combinations(range(n), k)):
        masks[row, list(chosen)] = 1.0
    point = theta.detach().to(torch.float64).requires_grad_()
    probs = LAWS[law](point, k, validate_args=False).log_prob(masks).exp()
    (grad,) = torch.autograd.grad((probs * f(masks).detach()).sum(), point)
    return grad


def loo_subset_score(theta: torch.Tensor, f, k: int, samples: int) -> torch.Tensor:
    """Wallenius law: leave-one-out REINFORCE with the score of the subset itself."""
    from diffhypergeom.numerics import race

    x = gumbel_top_k(theta, k).sample((samples,))
    values = f(x).detach()
    baseline = (values.sum(0) - values) / (samples - 1)
    log_p = race.log_prob(x.reshape(samples, 1, -1), theta.reshape(1, -1))[:, 0]
    loss = (values + (values - baseline) * (log_p - log_p.detach())).mean()
    return torch.autograd.grad(loss, theta)[0]


def loo_per_class(theta: torch.Tensor, f, k: int, samples: int) -> torch.Tensor:
    """Conditional Poisson law: per-class leave-one-out baselines and the exact score."""
    d = k_subset(theta, k)
    with torch.no_grad():
        mu = d.mean
    x = d.sample((samples,))
    v = f(x).detach()
    with_i, count_i = (v[:, None] * x).sum(0), x.sum(0)
    others = samples - 1
    mean_in = (with_i - v[:, None] * x) / (count_i - x).clamp_min(1)
    mean_out = ((v.sum() - with_i) - v[:, None] * (1 - x)) / (others - (count_i - x)).clamp_min(1)
    fallback = ((v.sum() - v) / others)[:, None]
    mean_in = torch.where(count_i - x > 0, mean_in, fallback)
    mean_out = torch.where(others - (count_i - x) > 0, mean_out, fallback)
    baseline = (1 - mu) * mean_in + mu * mean_out
    return ((v[:, None] - baseline) * (x - mu)).mean(0)


def antithetic_pairs(theta: torch.Tensor, f, k: int, samples: int) -> torch.Tensor:
    """Wallenius law: Gumbel-top-k draws in antithetic pairs (uniforms ``u`` and ``1 - u``),
    each draw's baseline the mean of ``f`` over the other pairs (independent of it, so the
    estimate stays unbiased), scored with the order's Plackett-Luce probability."""
    n, half = theta.shape[-1], samples // 2
    u = torch.rand(half, n, dtype=torch.float64)
    keys = theta.detach().to(torch.float64) - torch.cat([u, 1 - u]).log().neg().log()
    order = keys.argsort(-1, descending=True)
    logits = theta.expand(2 * half, n).gather(-1, order)
    log_p = (logits - logits.flip(-1).logcumsumexp(-1).flip(-1))[:, :k].sum(-1)
    z = torch.zeros(2 * half, n, dtype=theta.dtype).scatter(-1, order[:, :k], 1.0)
    values = f(z).detach()
    pair = (values[:half] + values[half:]).repeat(2)
    baseline = (values.sum() - pair) / (2 * half - 2)
    return torch.autograd.grad(((values - baseline) * log_p).mean(), theta)[0]


CANDIDATES = {"loo-subset-score": ("Wallenius (gumbel_top_k)", loo_subset_score),
              "antithetic": ("Wallenius (gumbel_top_k)", antithetic_pairs),
              "loo-per-class": ("conditional Poisson (k_subset)", loo_per_class)}


def library_method(law: str, name: str, k: int, samples: int):
    if name in CANDIDATES:
        return lambda theta, f: CANDIDATES[name][1](theta, f, k, samples)

    def estimate(theta: torch.Tensor, f) -> torch.Tensor:
        loss = surrogate_loss(LAWS[law](theta, k), f, num_samples=samples, estimator=name)
        return torch.autograd.grad(loss, theta)[0]
    return estimate


def peer_method(name: str, k: int, samples: int, n: int):
    from samplers.gumbel_scheme import GumbelSampler
    from samplers.imle_scheme import IMLESampler
    from samplers.sfess.sfess import SFESSSampler, score_function_estimator
    from samplers.simple_scheme import SIMPLESampler

    cpu = torch.device("cpu")
    sampler = {"SIMPLE": lambda: SIMPLESampler(k, cpu, n_samples=samples),
               "SFESS": lambda: SFESSSampler(k, cpu, n_samples=samples),
               "SFESS-cv": lambda: SFESSSampler(k, cpu, n_samples=samples),
               "I-MLE": lambda: IMLESampler(k, cpu, samples, noise_scale=1.0, beta=1.0),
               "ST-Gumbel": lambda: GumbelSampler(k, samples, tau=0.5, hard=True)}[name]()
    scored = {"SFESS": "reinforce", "SFESS-cv": "control-variate"}.get(name)

    def estimate(theta: torch.Tensor, f) -> torch.Tensor:
        z, log_p = sampler(theta.view(1, n, 1))
        values = f(z.reshape(-1, 1, n).to(theta.dtype)).reshape(samples, 1)
        loss = (score_function_estimator(values, log_p, scored) if scored is not None
                else values.mean())
        return torch.autograd.grad(loss, theta)[0]
    return estimate


def measure(estimate, theta: torch.Tensor, f, replicates: int, budget: float
            ) -> tuple[torch.Tensor, float]:
    """Replicated estimates ``[R, N]`` (float64) and the median seconds of one estimate."""
    estimate(theta, f)  # warm-up
    grads, seconds, spent = [], [], 0.0
    while len(grads) < replicates and (spent < budget or len(grads) < 20):
        start = time.perf_counter()
        grad = estimate(theta, f)
        elapsed = time.perf_counter() - start
        grads.append(grad.detach().to(torch.float64))
        seconds.append(elapsed)
        spent += elapsed
    return torch.stack(grads), statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", help="local copy of klaswijk/sfess (its root folder)")
    parser.add_argument("--items", type=int, default=16, help="N")
    parser.add_argument("--k", type=int, default=5, help="subset size")
    parser.add_argument("--samples", type=int, nargs="+", default=[16, 64], help="S per estimate")
    parser.add_argument("--replicates", type=int, default=200, help="estimates per cell")
    parser.add_argument("--budget", type=float, default=20.0,
                        help="seconds of estimates per cell at most (at least 20 estimates)")
    parser.add_argument("--spread", type=float, default=1.0, help="std of the logits")
    parser.add_argument("--laws", nargs="*", default=list(LAWS), choices=list(LAWS))
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--candidates", action="store_true",
                        help="also the variance reductions measured and not kept")
    parser.add_argument("--per-call", nargs="+", metavar="N:k",
                        help="print the time of one unbiased estimate at these sizes instead")
    parser.add_argument("--rounds", type=int, default=30, help="--per-call: alternating rounds")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(args.seed)
    n, k = args.items, args.k
    theta = (torch.randn(n, generator=generator) * args.spread).requires_grad_()
    values = torch.rand(n, generator=generator)
    peers = PEERS if args.peers else ()
    if args.peers:
        sys.path.insert(0, os.path.abspath(args.peers))
        os.chdir(tempfile.mkdtemp())  # SIMPLE writes its compiled circuits here
    if args.per_call:
        per_call(args, peers)
        return
    print(f"N = {n}, k = {k}, logits ~ N(0, {args.spread}^2), seed {args.seed}, "
          f"{args.threads} threads; relative RMS error at the fastest peer's time (bias)\n")
    for law in args.laws:
        exact = {kind: exact_gradient(law, theta, k, make_f(kind, values.double(), k))
                 for kind in FUNCTIONS}
        for samples in args.samples:
            rows = {}
            candidates = tuple(name for name, (home, _) in CANDIDATES.items()
                               if args.candidates and home == law)
            for name in LIBRARY + candidates + peers:
                method = (library_method(law, name, k, samples) if name not in peers
                          else peer_method(name, k, samples, n))
                cells = {}
                for kind in FUNCTIONS:
                    grads, seconds = measure(method, theta, make_f(kind, values, k),
                                             args.replicates, args.budget)
                    norm = float(exact[kind].norm())
                    bias = float((grads.mean(0) - exact[kind]).norm()) / norm
                    spread = float((grads - grads.mean(0)).square().sum(-1).mean().sqrt()) / norm
                    cells[kind] = (bias, spread, seconds)
                rows[name] = cells
            fastest = min((statistics.median(c[2] for c in rows[p].values()) for p in peers),
                          default=None)
            print(f"### {law}, S = {samples}"
                  + (f" (fastest peer: {fastest * 1e3:.2f} ms)" if fastest else "") + "\n")
            print("| estimator | ms per estimate | " + " | ".join(FUNCTIONS) + " |")
            print("|---" * (len(FUNCTIONS) + 2) + "|")
            wins = dict.fromkeys(FUNCTIONS, 0)
            best_peer = dict.fromkeys(FUNCTIONS, math.inf)
            scores = {}
            for name, cells in rows.items():
                t = statistics.median(c[2] for c in cells.values())
                reference = fastest or t
                shown = []
                for kind, (bias, spread, _) in cells.items():
                    rms = math.sqrt(bias ** 2 + spread ** 2 * t / reference)
                    scores[(name, kind)] = rms
                    if name in peers:
                        best_peer[kind] = min(best_peer[kind], rms)
                    shown.append(f"{rms:.3f} ({bias:.2f})")
                print(f"| {name} | {t * 1e3:.2f} | " + " | ".join(shown) + " |")
            if peers:
                for kind in FUNCTIONS:
                    # the candidates are not in the library: they do not count
                    wins[kind] = min(scores[(name, kind)] for name in LIBRARY) < best_peer[kind]
                won = [kind for kind in FUNCTIONS if wins[kind]]
                print(f"\nThe library's best beats the best peer on {len(won)} of "
                      f"{len(FUNCTIONS)}: {', '.join(won) or 'none'}.\n")
            else:
                print()


def per_call(args: argparse.Namespace, peers: tuple[str, ...]) -> None:
    """The median milliseconds of one ``reinforce-loo`` estimate (max ``f``) per law, and of
    each peer, at each ``N:k``, the methods called in alternating rounds."""
    print(f"S = {args.samples[0]}, max f, median of {args.rounds} alternating rounds, "
          f"{args.threads} threads\n")
    print("| N, k | " + " | ".join(("k_subset", "gumbel_top_k") + peers) + " |")
    print("|---" * (len(peers) + 3) + "|")
    for size in args.per_call:
        n, k = (int(part) for part in size.split(":"))
        generator = torch.Generator().manual_seed(args.seed)
        theta = (torch.randn(n, generator=generator) * args.spread).requires_grad_()
        f = make_f("max", torch.rand(n, generator=generator), k)
        samples = args.samples[0]
        methods = [library_method(law, "reinforce-loo", k, samples) for law in LAWS]
        methods += [peer_method(name, k, samples, n) for name in peers]
        for method in methods:
            method(theta, f)  # warm-up (SIMPLE compiles here)
        seconds: list[list[float]] = [[] for _ in methods]
        for _ in range(args.rounds):
            for method, spent in zip(methods, seconds, strict=True):
                start = time.perf_counter()
                method(theta, f)
                spent.append(time.perf_counter() - start)
        print(f"| {n:,}, {k} | "
              + " | ".join(f"{statistics.median(t) * 1e3:.2f} ms" for t in seconds) + " |")


if __name__ == "__main__":
    main()
