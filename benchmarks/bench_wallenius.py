"""The multivariate Wallenius law at scale (issue 19's targets), side by side with what a user
would otherwise run (``torch.multinomial`` without replacement, or Gumbel-top-k, over the
balls), printed as a markdown table.

    python benchmarks/bench_wallenius.py [--repeats 3] [--threads 2]

Times are the best of ``--repeats`` runs after a warm-up, in this process. Where ``Rscript``
with BiasedUrn is installed (Debian: ``r-cran-biasedurn``) its ``dMWNCHypergeo`` is timed on the
same points (in R, per call), else that row is skipped.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from collections.abc import Callable

import torch

from diffhypergeom import MultivariateWalleniusNCHypergeometric as Wallenius
from diffhypergeom_studies.benchmarking import best_seconds

F64 = torch.float64


def ball_draws(population: list[int], weights: list[float], draws: int, num: int
               ) -> Callable[[], torch.Tensor]:
    """``num`` draws of ``torch.multinomial(ball_weights, draws, replacement=False)``, counted
    per class."""
    ball_weights = torch.cat([torch.full((m,), w, dtype=F64)
                              for m, w in zip(population, weights, strict=True)])
    labels = torch.repeat_interleave(torch.arange(len(population)), torch.tensor(population))

    def run() -> torch.Tensor:
        picked = torch.multinomial(ball_weights.expand(num, -1), draws, replacement=False)
        return torch.nn.functional.one_hot(labels[picked], len(population)).sum(1)
    return run


def rows(repeats: int) -> list[list[str]]:
    out = []
    generator = torch.Generator().manual_seed(0)
    big = Wallenius(torch.full((100,), 1000), 10_000,
                    logits=torch.randn(100, generator=generator, dtype=F64))
    x = big.sample()
    seconds = best_seconds(lambda: big.log_prob(x), repeats)
    out.append(["c=100 x 1,000 balls, n=10^4", "diffhypergeom", "log_prob of one draw",
                f"{seconds * 1e3:.1f} ms", "<= 10 ms"])

    huge = Wallenius(torch.full((3,), 10**6), 10**5,
                     weights=torch.tensor([1.0, 10.0, 1.0], dtype=F64))
    seconds = best_seconds(lambda: huge.sample((1000,)), repeats)
    out.append(["m=[10^6]*3, n=10^5", "diffhypergeom", "1,000 exact draws", f"{seconds:.3f} s",
                "<= 1 s"])
    weights = torch.tensor([1.0, 10.0, 1.0], dtype=F64).repeat_interleave(10**6)

    def gumbel_top_k() -> torch.Tensor:
        gumbel = -torch.empty_like(weights).exponential_().log()
        return (weights.log() + gumbel).topk(10**5).indices

    seconds = best_seconds(gumbel_top_k, repeats)
    out.append(["m=[10^6]*3, n=10^5", "torch Gumbel-top-k over the balls", "1,000 draws",
                f"{1000 * seconds:.1f} s (1 draw: {seconds:.3f} s)", ""])

    population, weights3, draws = [200, 200, 200], [1.0, 10.0, 1.0], 180
    paper = Wallenius(torch.tensor(population), draws, weights=torch.tensor(weights3, dtype=F64))
    seconds = best_seconds(lambda: paper.sample((50_000,)), repeats)
    out.append(["paper urn, 50k draws", "diffhypergeom", "exact draws/s",
                f"{50_000 / seconds:,.0f}", ""])
    seconds = best_seconds(ball_draws(population, weights3, draws, 50_000), repeats)
    out.append(["paper urn, 50k draws", "torch.multinomial(replacement=False)", "draws/s",
                f"{50_000 / seconds:,.0f}", ""])

    def step() -> None:
        logits = torch.tensor(weights3, dtype=F64).log().requires_grad_()
        law = Wallenius(torch.tensor(population), draws, logits=logits)
        (law.rsample((1000,)) * torch.tensor([1.0, 2.0, 3.0], dtype=F64)).sum().backward()

    seconds = best_seconds(step, repeats)
    out.append(["paper urn", "diffhypergeom", "training step (1,000 draws, rsample, backward)",
                f"{seconds * 1e3:.0f} ms", ""])
    out.extend(biasedurn_rows(paper, repeats))
    return out


R_TIMING = """
library(BiasedUrn)
x <- as.matrix(read.csv(file("stdin"), header = FALSE))
best <- Inf
for (r in 1:{repeats}) {{
  t <- system.time(for (i in 1:nrow(x)) dMWNCHypergeo(x[i, ], c(200, 200, 200), 180,
                                                       c(1, 10, 1), precision = 1e-14))
  best <- min(best, t[["elapsed"]])
}}
cat(best)
"""


def biasedurn_rows(paper: Wallenius, repeats: int) -> list[list[str]]:
    """BiasedUrn's ``dMWNCHypergeo`` against ``log_prob`` on 1,000 draws of the paper urn."""
    if shutil.which("Rscript") is None:
        print("(BiasedUrn row skipped: no Rscript)")
        return []
    torch.manual_seed(0)
    x = paper.sample((1000,)).long()
    points = "\n".join(",".join(map(str, row)) for row in x.tolist())
    done = subprocess.run(["Rscript", "-e", R_TIMING.format(repeats=repeats)], input=points,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"(BiasedUrn row skipped: {done.stderr.strip().splitlines()[-1]})")
        return []
    ours = best_seconds(lambda: paper.log_prob(x), repeats)
    return [["paper urn, 1,000 points", "R BiasedUrn dMWNCHypergeo (precision 1e-14)",
             "PMF of each", f"{float(done.stdout) * 1e3:.0f} ms", ""],
            ["paper urn, 1,000 points", "diffhypergeom", "log_prob of all (one batch)",
             f"{ours * 1e3:.0f} ms", ""]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per row (best)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    table = rows(args.repeats)
    print("| case | method | what | time | target |")
    print("|---|---|---|---|---|")
    for row in table:
        print("| " + " | ".join(row) + " |")
    print(f"\n(torch {torch.__version__}, {args.threads} threads)")


if __name__ == "__main__":
    main()
