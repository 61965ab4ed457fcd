"""k-subset gradient estimators on learning tasks at equal wall-clock time (issue 31): the
library's estimators (surrogate_loss on k_subset and gumbel_top_k) against the peers of
klaswijk/sfess (SIMPLE, SFESS, SFESS-cv, I-MLE, straight-through Gumbel; --peers PATH, a local
copy; skipped without it) on three tasks with data that scikit-learn ships: L2X-style pixel
selection on the digits, a k-subset VAE on the digits, and global feature selection on the
breast-cancer table. Every method trains for the same wall-clock budget per task and seed (the
test evaluations at the checkpoints are off the clock); per task, the final test metric's mean
and sd per method, the paired comparison of the best library method with the best peer across
seeds, and a figure of the metric against time. Writes results.json, summary.md and
subsets_<task>.png; a restarted run skips the finished (task, method, seed) cells."""

from __future__ import annotations

import argparse

from diffhypergeom_studies.commands._study_options import add_common, run_study
from diffhypergeom_studies.subsets.names import (
    CONTROL_METHODS,
    LIBRARY_METHODS,
    PEER_METHODS,
    TASKS,
)

__all__ = ["configure", "run"]


def _names(known: dict[str, str], what: str):
    def parse(text: str) -> list[str]:
        values = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in values if v not in known]
        if bad or not values:
            raise argparse.ArgumentTypeError(f"{what} must be among {', '.join(known)}; got "
                                             f"{text!r}")
        return values
    return parse


def configure(parser: argparse.ArgumentParser) -> None:
    add_common(parser, "subsets")
    parser.add_argument("--peers", default=None, metavar="PATH",
                        help="root folder of a local copy of klaswijk/sfess; its samplers are "
                        "imported from there (without it the peers are skipped, and a line "
                        "says so)")
    parser.add_argument("--tasks", type=_names(TASKS, "tasks"), default=",".join(TASKS),
                        help="comma-separated tasks: " + "; ".join(
                            f"{n}: {d}" for n, d in TASKS.items()))
    parser.add_argument("--methods", type=_names({**LIBRARY_METHODS, **PEER_METHODS,
                                                  **CONTROL_METHODS}, "methods"),
                        default=None,
                        help="comma-separated methods (default: the library's "
                        f"{', '.join(LIBRARY_METHODS)} and, with --peers, the peers' "
                        f"{', '.join(PEER_METHODS)}); also the control "
                        f"{', '.join(CONTROL_METHODS)} (no gradient to the logits)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="seeds per task and method, from --seed on; a seed fixes the "
                        "split, the initialisation and the minibatches (default 5; 1 with "
                        "--quick)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds of training per task, method and seed, evaluation "
                        "excluded (default 6; 1 with --quick)")
    parser.add_argument("--steps", type=int, default=None,
                        help="train a fixed number of steps per run instead of the wall-clock "
                        "budget (deterministic; compares at equal steps, not equal time)")
    parser.add_argument("--checkpoints", type=int, default=None,
                        help="test evaluations per run after the one at the start, evenly "
                        "spaced in training time (default 10; 4 with --quick)")
    parser.add_argument("--samples", type=int, default=8,
                        help="k-subset draws per training example and step, S, for every "
                        "method")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's default, all cores)")


def run(args: argparse.Namespace) -> int:
    from diffhypergeom_studies.subsets.study import SubsetsConfig, run_subsets

    config = SubsetsConfig.quick(args.seed) if args.quick else SubsetsConfig(seed=args.seed)
    config.tasks, config.methods, config.peers = args.tasks, args.methods, args.peers
    for name in ("seeds", "budget", "steps", "checkpoints"):
        if getattr(args, name) is not None:
            setattr(config, name, getattr(args, name))
    config.samples, config.threads = args.samples, args.threads
    return run_study(args, "subsets", config, run_subsets)
