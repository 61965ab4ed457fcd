"""Show the distribution at work on one urn, in seconds: the exact mean, exact and relaxed
samples, and how far the paper's merged sampler is from the exact distribution.

For each class the table gives the exact mean E[x_i], the sample means of the exact sampler, of
the relaxed sampler (hard and soft) and of the merge baseline, and the total-variation distance
between each sampler's empirical marginal and the exact marginal. The last line gives the merge
baseline's exact error on the first class (no sampling noise)."""

from __future__ import annotations

import argparse

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--population", type=int, nargs="+", default=[200, 200, 200],
                        help="balls per class m_i")
    parser.add_argument("--draws", type=int, default=180, help="balls drawn n")
    parser.add_argument("--weights", type=float, nargs="+", default=[1.0, 10.0, 1.0],
                        help="class weights w_i >= 0 (one per class)")
    parser.add_argument("--samples", type=int, default=100_000, help="samples per sampler")
    parser.add_argument("--temperature", type=float, default=0.5,
                        help="Gumbel-softmax temperature of the relaxed sampler")
    parser.add_argument("--seed", type=int, default=0, help="random seed")


def _tv_noise_floor(exact_probs, n: int) -> float:
    """Expected TV between an n-sample empirical marginal and the exact one (normal
    approximation: E|p_hat - p| = sqrt(2 p (1 - p) / (pi n)))."""
    import math

    return 0.5 * float((2 * exact_probs * (1 - exact_probs) / (math.pi * n)).sqrt().sum())


def _tv(samples, exact_probs) -> float:
    import torch

    counts = torch.bincount(samples, minlength=exact_probs.numel())[: exact_probs.numel()]
    return 0.5 * float((counts.double() / samples.numel() - exact_probs).abs().sum())


def run(args: argparse.Namespace) -> int:
    import torch

    from diffhypergeom import (
        MergedFisherNCHypergeometric,
        MultivariateFisherNCHypergeometric,
        RelaxedMultivariateFisherNCHypergeometric,
    )
    from diffhypergeom_studies.runs import markdown_table

    if len(args.weights) != len(args.population):
        raise SystemExit(f"--weights has {len(args.weights)} values but --population has "
                         f"{len(args.population)} classes")
    if args.samples <= 0:
        raise SystemExit("--samples must be > 0")
    torch.manual_seed(args.seed)
    population = torch.tensor(args.population)
    weights = torch.tensor(args.weights, dtype=torch.float64)
    exact = MultivariateFisherNCHypergeometric(population, args.draws, weights=weights)
    merge = MergedFisherNCHypergeometric(population, args.draws, weights=weights)
    relaxed = RelaxedMultivariateFisherNCHypergeometric(population, args.draws, weights=weights,
                                                        temperature=args.temperature)
    n = args.samples
    draws = {"exact sample": exact.sample((n,)).long()}
    with torch.no_grad():
        hard = exact.rsample((n,), gradient="gumbel", temperature=args.temperature)
        soft = relaxed.sample((n,))
    draws["rsample hard"] = hard.long()
    draws["merge sample"] = merge.sample((n,)).long()

    mean = exact.mean
    rows = []
    for i in range(len(args.population)):
        marginal = exact.marginal(i).probs
        rows.append([
            i + 1, float(mean[i]), float(draws["exact sample"][:, i].double().mean()),
            float(hard[:, i].mean()), float(soft[:, i].mean()),
            float(draws["merge sample"][:, i].double().mean()),
            _tv(draws["exact sample"][:, i], marginal), _tv(draws["rsample hard"][:, i], marginal),
            _tv(draws["merge sample"][:, i], marginal), _tv_noise_floor(marginal, n),
        ])
    header = ["class", "exact mean", "mean: sample", "rsample hard",
              f"rsample soft (tau={args.temperature})", "merge", "TV: sample", "rsample hard",
              "merge", "TV noise floor"]
    first_exact = exact.marginal(0).probs
    print(f"Urn m={args.population}, n={args.draws}, w={args.weights}; {n:,} samples per "
          f"sampler (seed {args.seed}).\n")
    print(markdown_table(header, rows))
    print("\nTV: total-variation distance between a sampler's empirical marginal and the exact "
          "one; the noise floor is its expected value for a correct sampler at this sample size.")
    try:
        support = merge.enumerate_support()
    except ValueError:
        print("The merged law's exact marginal is a sum over the support, too large here.")
    else:
        first_merge = torch.zeros_like(first_exact).index_add_(
            0, support[:, 0].long(), merge.log_prob(support).exp().to(first_exact.dtype))
        merge_tv = 0.5 * float((first_exact - first_merge).abs().sum())
        print(f"Exact TV of class 1's marginal, merge baseline vs exact: {merge_tv:.3f} "
              f"(exact mean {float(mean[0]):.2f}, merge mean "
              f"{float((first_merge * torch.arange(first_merge.numel())).sum()):.2f}).")
    print("Speed and memory: python benchmarks/bench_sampling.py")
    return 0
