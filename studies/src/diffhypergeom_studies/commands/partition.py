"""Learn a planted partition of items from noisy pairwise co-membership observations with
RandomPartition: the exact score-function estimator (unbiased, through the exact log_prob)
against the relaxed straight-through one (biased). Reports partition recovery (adjusted Rand
index) over training, and each estimator's gradient against the exact one on a model small
enough to enumerate. Writes results.json, summary.md and figures."""

from __future__ import annotations

import argparse

from diffhypergeom_studies.commands._study_options import add_common, run_study

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    add_common(parser, "partition")
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help="planted block sizes (default 12 8 4; 6 4 2 with --quick)")
    parser.add_argument("--flip", type=float, default=0.2,
                        help="probability that an observed co-membership is flipped")
    parser.add_argument("--steps", type=int, default=None,
                        help="Adam steps per run (default 300; 100 with --quick)")
    parser.add_argument("--samples", type=int, default=16, help="draws per step")
    parser.add_argument("--lr", type=float, default=0.1, help="Adam learning rate")
    parser.add_argument("--temperature", type=float, default=0.5,
                        help="temperature of the relaxed estimator's NeuralSort and block "
                        "boundaries")
    parser.add_argument("--seeds", type=int, default=None,
                        help="independent problems and runs per estimator (default 3; 2 with "
                        "--quick)")


def run(args: argparse.Namespace) -> int:
    from diffhypergeom_studies.validation.partition import PartitionConfig, run_partition

    config = PartitionConfig.quick(args.seed) if args.quick else PartitionConfig(seed=args.seed)
    for name, value in (("sizes", args.sizes), ("steps", args.steps), ("seeds", args.seeds)):
        if value is not None:
            setattr(config, name, value)
    config.flip, config.samples, config.learning_rate = args.flip, args.samples, args.lr
    config.temperature = args.temperature
    return run_study(args, "partition", config, run_partition)
