"""Learn the urn weights from samples (paper Appendix B.5.1): gradient descent through the
relaxed sampler on the paper's squared-error loss (exact and merge samplers) against maximum
likelihood with the exact log_prob. Reports the centred log-weight error, a Fisher-information
z-statistic, losses and learning curves. Writes results.json, summary.md and figures."""

from __future__ import annotations

import argparse

from diffhypergeom_studies.commands._study_options import add_common, run_study

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    add_common(parser, "urn")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs of the relaxed estimators (default 10; 5 with --quick)")
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="Gumbel-softmax temperature of the relaxed estimators")
    parser.add_argument("--lr", type=float, default=0.05,
                        help="initial Adam learning rate of the relaxed estimators (decayed "
                        "linearly to 0)")


def run(args: argparse.Namespace) -> int:
    from diffhypergeom_studies.validation.urn import UrnConfig, run_urn

    config = UrnConfig.quick(args.seed) if args.quick else UrnConfig.paper(args.seed)
    if args.epochs is not None:
        config.epochs = args.epochs
    config.temperature, config.learning_rate = args.temperature, args.lr
    return run_study(args, "urn", config, run_urn)
