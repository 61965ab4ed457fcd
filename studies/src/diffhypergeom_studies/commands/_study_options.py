"""Options and plumbing shared by the validation-study commands (ks, urn, gradients, bench,
validate). Standard library only at module level, so that ``diffhypergeom --help`` stays fast."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

__all__ = ["add_common", "fail", "report", "run_dir", "run_study"]


def add_common(parser: argparse.ArgumentParser, command: str, quick: bool = True) -> None:
    """``--quick`` (if ``quick``), ``--seed``, ``--out``, ``--root`` and ``--no-progress``."""
    if quick:
        parser.add_argument("--quick", action="store_true",
                            help="shrink every size so the run takes about a minute on 2 CPU "
                            "cores (default: the paper's scale)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--out", default=None,
                        help=f"run directory (default: <root>/{command}/<UTC timestamp>); an "
                        "existing one is reused and its finished settings are skipped")
    parser.add_argument("--root", default="runs", help="root of the run directories")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def run_dir(args: argparse.Namespace, command: str) -> Path:
    from diffhypergeom_studies.runs import make_run_dir

    return make_run_dir(command, root=args.root, out=args.out)


def report(results: dict, out_dir: Path) -> int:
    """Print the summary and where the run directory is."""
    print(results["summary"])
    print(f"Results, summary and figures in {out_dir}")
    return 0


def fail(err: Exception) -> SystemExit:
    """A clean command-line error for bad settings."""
    return SystemExit(f"error: {err}")


def run_study(args: argparse.Namespace, command: str, config,
              runner: Callable[..., dict]) -> int:
    """Check ``config`` (bad settings exit with a clean error), run
    ``runner(config, out_dir, progress=...)`` in the command's run directory, print the
    summary."""
    try:
        config.validate()
    except ValueError as err:
        raise fail(err) from err
    out_dir = run_dir(args, command)
    return report(runner(config, out_dir, progress=not args.no_progress), out_dir)
