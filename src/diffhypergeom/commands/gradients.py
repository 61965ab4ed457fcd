"""How good is the reparameterised gradient? On a small urn (m = [5, 7, 4], n = 8) the exact
gradient of E[f(X)] is Cov(f(X), X); compare the straight-through Gumbel-softmax estimator
(temperatures, fixed vs random class order, exact vs merge) and REINFORCE with the exact log_prob
(with and without a baseline): bias and standard deviation. Writes results.json, summary.md and
a figure."""

from __future__ import annotations

import argparse

from diffhypergeom.commands._study_options import add_common, run_study


def configure(parser: argparse.ArgumentParser) -> None:
    add_common(parser, "gradients")
    parser.add_argument("--samples", type=int, default=None,
                        help="samples per estimator (default 100,000; 10,000 with --quick)")
    parser.add_argument("--temperatures", type=float, nargs="+", default=None,
                        help="temperatures of the straight-through estimator")


def run(args: argparse.Namespace) -> int:
    from diffhypergeom.validation.gradients import GradientConfig, run_gradients

    config = GradientConfig.quick(args.seed) if args.quick else GradientConfig.paper(args.seed)
    if args.samples is not None:
        config.num_samples = args.samples
    if args.temperatures is not None:
        config.temperatures = args.temperatures
    return run_study(args, "gradients", config, run_gradients)
