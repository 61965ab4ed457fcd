"""Sampling throughput and peak memory against size (classes, balls, draws, batch of weight
vectors), exact against merge, each case in a fresh process. Writes results.json, summary.md
with the table and a log-log figure."""

from __future__ import annotations

import argparse

from diffhypergeom_studies.commands._study_options import add_common, run_study

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    add_common(parser, "bench")
    parser.add_argument("--device", default="cpu",
                        help="'cpu' or 'cuda' (an error if no GPU is available)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads per case (default: torch's default; 1 "
                        "gives steadier numbers on a loaded machine)")
    parser.add_argument("--samples", type=int, default=None,
                        help="samples per call (default 10,000; 1,000 with --quick)")


def run(args: argparse.Namespace) -> int:
    from diffhypergeom_studies.validation.bench import BenchConfig, run_bench

    config = BenchConfig.quick(args.device) if args.quick else BenchConfig.paper(args.device)
    if args.samples is not None:
        config.num_samples = args.samples
    config.threads = args.threads
    return run_study(args, "bench", config, run_bench)
