"""The library's hot paths, timed alternately against another source tree (a previous commit),
printed as a markdown table.

    python benchmarks/bench_hot_paths.py --baseline-src /path/to/old/checkout/src
    python benchmarks/bench_hot_paths.py                # this tree alone

The hot paths, through the public API only (so that any version of the library runs them):

- ``k-subset step``: ``k_subset(logits, k).rsample((16,))`` with ``N = 1,000``, ``k = 50``, a
  linear loss and its backward pass (the training step of ``benchmarks/bench_subsets.py``);
- ``paper urn, mean gradient`` and ``paper urn, Gumbel gradient``: the paper's urn (``m = [200,
  200, 200]``, ``n = 180``, ``w = [1, 10, 1]``), 1,000 draws by ``rsample`` with a loss and its
  backward pass, with the default gradient and with ``gradient="gumbel"`` (temperature 0.5);
- ``c = 100 x 1,000 normaliser``: 100 classes of 1,000 balls, ``n = 10^4``: the
  log-normaliser and its backward pass.

Every measurement runs in a fresh interpreter (best of ``--repeats`` after a warm-up); with
``--baseline-src`` the two trees take turns ``--rounds`` times and each cell is the best over
its rounds. Take the timings on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

CASES = ("k-subset step", "paper urn, mean gradient", "paper urn, Gumbel gradient",
         "c = 100 x 1,000 normaliser")


def _step(case: str):
    from diffhypergeom import MultivariateFisherNCHypergeometric as MFNCH
    from diffhypergeom.subsets import k_subset

    generator = torch.Generator().manual_seed(0)
    if case == "k-subset step":
        logits = torch.randn(1_000, generator=generator).requires_grad_()
        cost = torch.randn(1_000, generator=generator)

        def step():
            (k_subset(logits, 50).rsample((16,)) @ cost).sum().backward()
        return step
    if case.startswith("paper urn"):
        logits = torch.tensor([1.0, 10.0, 1.0]).log().requires_grad_()
        options = {"gradient": "gumbel", "temperature": 0.5} if "Gumbel" in case else {}

        def step():
            urn = MFNCH(torch.tensor([200, 200, 200]), 180, logits=logits)
            urn.rsample((1_000,), **options)[..., 1].square().mean().backward()
        return step
    logits = (torch.randn(100, generator=generator, dtype=torch.float64) * 0.5).requires_grad_()

    def step():
        MFNCH(torch.full((100,), 1_000), 10_000, logits=logits).log_normalizer().backward()
    return step


def measure(spec: dict) -> dict:
    """Runs in the child: the best time of ``repeats`` runs after a warm-up."""
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    step = _step(spec["case"])
    step()
    times = []
    for _ in range(spec["repeats"]):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {"seconds": min(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-src", help="a source tree (its src/ folder) to time "
                        "alternately with this one")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per interpreter")
    parser.add_argument("--rounds", type=int, default=3,
                        help="turns each tree takes (the best over them is reported)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch intra-op threads")
    parser.add_argument("--limit", type=float, default=300.0, help="seconds per interpreter")
    parser.add_argument("--cases", type=int, nargs="*", help="indices into CASES (default all)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(json.loads(args.child))))
        return
    # the parent only: a child may run another version of the library, which the studies
    # package does not import
    from diffhypergeom_studies.benchmarking import run_script_child

    trees = {"this tree": None}
    if args.baseline_src:
        trees["baseline"] = str(Path(args.baseline_src).resolve())
    cases = [CASES[i] for i in args.cases] if args.cases else list(CASES)
    best: dict[tuple[str, str], float | str] = {}
    for _ in range(args.rounds):
        for case in cases:
            for name, src in trees.items():
                spec = {"case": case, "repeats": args.repeats, "threads": args.threads}
                result = run_script_child(__file__, spec, args.limit, src)
                key = (case, name)
                if "error" in result:
                    best.setdefault(key, result["error"])
                elif not isinstance(best.get(key), float) or result["seconds"] < best[key]:
                    best[key] = result["seconds"]
    header = "| hot path | " + " | ".join(trees) + (" | ratio |" if len(trees) > 1 else "")
    print(f"{args.rounds} rounds, best of {args.repeats} runs each, {args.threads} threads\n")
    print(header)
    print("|---" * (len(trees) + 1 + (len(trees) > 1)) + "|")
    for case in cases:
        cells = [best[(case, name)] for name in trees]
        shown = [f"{c * 1e3:,.1f} ms" if isinstance(c, float) else c for c in cells]
        ratio = ""
        if len(cells) > 1 and all(isinstance(c, float) for c in cells):
            ratio = f" {cells[0] / cells[1]:.2f} |"
        print(f"| {case} | " + " | ".join(shown) + (" |" + ratio if len(trees) > 1 else " |"))


if __name__ == "__main__":
    main()
