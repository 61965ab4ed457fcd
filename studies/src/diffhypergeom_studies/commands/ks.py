"""The paper's Kolmogorov-Smirnov study (Figures 1, 9 and 10), against an independent exact
reference (numpy/scipy enumeration) and the paper's merged reference (scipy's univariate Fisher
distribution with merged weights). Per setting and sampler: KS distance, Benjamini-Hochberg
adjusted p-values, rejections and the total-variation distance of each marginal. Writes
results.json, summary.md and figures into the run directory."""

from __future__ import annotations

import argparse

from diffhypergeom_studies.commands._study_options import add_common, run_study

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    add_common(parser, "ks")
    parser.add_argument("--samples", type=int, default=None,
                        help="samples per setting and sampler (default 50,000; 10,000 with "
                        "--quick)")
    parser.add_argument("--alpha", type=float, default=0.05,
                        help="significance level of the BH-adjusted p-values")


def run(args: argparse.Namespace) -> int:
    from diffhypergeom_studies.validation.ks import KSConfig, run_ks

    config = KSConfig.quick(args.seed) if args.quick else KSConfig.paper(args.seed)
    if args.samples is not None:
        config.num_samples = args.samples
    config.alpha = args.alpha
    return run_study(args, "ks", config, run_ks)
