"""Which gradient estimator to use? On a small urn (m = [5, 7, 4], n = 8) the exact gradient of
E[f(X)] is Cov(f(X), X); compare, as users call them through surrogate_loss, the default
rsample (gradient of the exact mean), straight-through Gumbel-softmax (temperatures, fixed vs
random class order, with and without coupled rows, exact vs merge), REINFORCE with the exact
score and a leave-one-out baseline or control variate, and exact enumeration: bias, spread and
time per call on seven test functions. Writes results.json, summary.md and a figure."""

from __future__ import annotations

import argparse

from diffhypergeom_studies.commands._study_options import add_common, run_study

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    add_common(parser, "gradients")
    parser.add_argument("--calls", type=int, default=None,
                        help="gradient estimates per estimator and test function "
                             "(default 400; 60 with --quick)")
    parser.add_argument("--samples-per-call", type=int, default=None,
                        help="draws per estimate, num_samples of surrogate_loss (default 64)")
    parser.add_argument("--temperatures", type=float, nargs="+", default=None,
                        help="temperatures of the Gumbel straight-through estimators "
                             "(default 0.1 0.25 0.5 1 2; 0.5 1 with --quick)")


def run(args: argparse.Namespace) -> int:
    from diffhypergeom_studies.validation.gradients import GradientConfig, run_gradients

    config = GradientConfig.quick(args.seed) if args.quick else GradientConfig.paper(args.seed)
    if args.calls is not None:
        config.calls = args.calls
    if args.samples_per_call is not None:
        config.samples_per_call = args.samples_per_call
    if args.temperatures is not None:
        config.temperatures = args.temperatures
    return run_study(args, "gradients", config, run_gradients)
