"""The ``diffhypergeom`` command line: one subcommand per job.

Each subcommand lives in its own module, named in ``COMMANDS``. A command module exposes
``configure(parser: argparse.ArgumentParser) -> None`` (adds its options; it must import only the
standard library at module level so that ``--help`` stays fast) and ``run(args) -> int``
(imports what it needs and does the work). ``configure`` may add nested subcommands.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["COMMANDS", "COMMANDS_PACKAGE", "build_parser", "main"]

COMMANDS_PACKAGE = "diffhypergeom_studies.commands"
# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "cluster": (COMMANDS_PACKAGE + ".cluster", "VaDE clustering with a cluster-size prior"),
    "demo": (COMMANDS_PACKAGE + ".demo", "exact vs relaxed vs merge sampling on a small urn"),
    "ks": (COMMANDS_PACKAGE + ".ks", "the paper's KS study against exact and merged references"),
    "urn": (COMMANDS_PACKAGE + ".urn", "learn urn weights from samples: relaxed vs ML"),
    "gradients": (COMMANDS_PACKAGE + ".gradients", "bias/std of ST and REINFORCE gradients"),
    "bench": (COMMANDS_PACKAGE + ".bench", "sampling throughput and memory vs size"),
    "validate": (COMMANDS_PACKAGE + ".validate", "all validation studies in quick mode"),
    "weak": (COMMANDS_PACKAGE + ".weak", "weak supervision: LabelVAE vs AdaVAE vs HGVAE"),
    "partition": (COMMANDS_PACKAGE + ".partition",
                  "learn a planted partition: exact score function vs relaxed RandomPartition"),
    "subsets": (COMMANDS_PACKAGE + ".subsets",
                "k-subset gradient estimators on tasks at equal time, against the peers"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="diffhypergeom",
        description="The exact, differentiable multivariate Fisher noncentral hypergeometric "
        "distribution: demos, validation studies, benchmarks and the paper's experiments.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        command_parser = sub.add_parser(
            name,
            help=help_text,
            description=(module.__doc__ or help_text).strip(),
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        module.configure(command_parser)
        command_parser.set_defaults(_module=module_name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    module = importlib.import_module(args._module)
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
