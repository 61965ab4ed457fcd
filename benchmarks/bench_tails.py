"""Upper-tail p-values of many distinct two-class urns in one batched call (issue 29's target:
20,000 in at most 1 s on the 2-core CPU), printed as a markdown table.

    python benchmarks/bench_tails.py [--urns 20000] [--repeats 3] [--threads 2]

The urns are goseq-like gene-set tests: ``M = 20,000`` genes, of which a set of 5-500 (class 0,
log-uniform) is weighted by ``w`` in 0.5-3 against the rest (class 1), ``n`` = 1,000-3,000 genes
drawn (the differentially expressed ones), and an observed count ``x`` in the upper tail (1 to 8
standard deviations above the mean, within the support). Each row times
``law(population, draws, weights=...)`` (building the laws), then ``marginal(0).log_sf(x)``
(the p-values ``log P(X_0 > x)``), both in one batched call over all urns; the best of
``--repeats`` runs after a warm-up.
"""

from __future__ import annotations

import argparse
import math

import torch

from diffhypergeom import MultivariateFisherNCHypergeometric as Fisher
from diffhypergeom import MultivariateWalleniusNCHypergeometric as Wallenius
from diffhypergeom_studies.benchmarking import best_seconds

F64 = torch.float64
GENES = 20_000


def urns(count: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                             torch.Tensor]:
    """``population [count, 2]``, ``draws [count]``, ``weights [count, 2]`` and observed counts
    ``[count]`` in the upper tail (the hypergeometric mean and spread place them)."""
    generator = torch.Generator().manual_seed(seed)
    uniform = torch.rand(4, count, generator=generator, dtype=F64)
    size = torch.exp(math.log(5) + uniform[0] * math.log(100)).round().to(torch.int64)
    draws = (1000 + uniform[1] * 2000).round().to(torch.int64)
    odds = 0.5 + 2.5 * uniform[2]
    population = torch.stack([size, GENES - size], -1)
    fraction = draws.to(F64) / GENES
    mean = size * fraction * odds / (1 + fraction * (odds - 1))
    spread = (size * fraction * (1 - fraction)).sqrt()
    observed = (mean + (1 + 7 * uniform[3]) * spread).ceil()
    observed = torch.minimum(observed, torch.minimum(size, draws).to(F64) - 1).clamp_min(0)
    return population, draws, torch.stack([odds, torch.ones_like(odds)], -1), observed


def rows(count: int, repeats: int) -> list[list[str]]:
    population, draws, weights, observed = urns(count)
    out = []
    for name, law in (("Fisher", Fisher), ("Wallenius", Wallenius)):
        def build(law=law):
            return law(population, draws, weights=weights)
        dist = build()
        p_values = dist.marginal(0).log_sf(observed)
        assert bool(torch.isfinite(p_values).all())
        build_seconds = best_seconds(build, repeats)
        tail_seconds = best_seconds(lambda dist=dist: dist.marginal(0).log_sf(observed), repeats)
        out.append([name, f"{count:,}", f"{build_seconds:.3f} s", f"{tail_seconds:.3f} s",
                    f"{build_seconds + tail_seconds:.3f} s",
                    f"{float(p_values.max()):.3g} .. {float(p_values.min()):.4g}"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--urns", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    header = ["law", "urns", "build the laws", "marginal(0).log_sf(x)", "total",
              "log p-values (max .. min)"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows(args.urns, args.repeats):
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
