"""Run the whole validation suite in quick mode into one run directory: the KS study, learning
urn weights, gradient quality and the sampling benchmark (subfolders ks/, urn/, gradients/,
bench/), then print a combined summary. The README's main job (make demo)."""

from __future__ import annotations

import argparse

from diffhypergeom_studies.commands._study_options import add_common, fail, report, run_dir

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    add_common(parser, "validate", quick=False)
    parser.add_argument("--device", default="cpu", help="device of the benchmark ('cpu' or "
                        "'cuda')")
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["ks", "urn", "gradients", "bench"], help="studies to leave out")


def run(args: argparse.Namespace) -> int:
    from diffhypergeom_studies.validation.bench import BenchConfig
    from diffhypergeom_studies.validation.suite import run_suite

    if "bench" not in args.skip:
        try:
            BenchConfig.quick(args.device).validate()
        except ValueError as err:
            raise fail(err) from err
    out_dir = run_dir(args, "validate")
    results = run_suite(out_dir, seed=args.seed, device=args.device, skip=args.skip,
                        progress=not args.no_progress)
    return report(results, out_dir)
