"""Speed and memory of the core samplers (issue #2's targets), printed as a markdown table.

    python benchmarks/bench_sampling.py                 # all core cases, exact and merge
    python benchmarks/bench_sampling.py --device cuda   # on a GPU
    python benchmarks/bench_sampling.py --cases 0 1     # a subset (indices into CORE_CASES)

Each case runs in a fresh interpreter so that its peak memory is its own. Targets (2-core CPU,
m = [200, 200, 200], n = 180, w = [1, 10, 1], 50,000 samples in one batch): relaxed forward +
backward >= 100,000 draws/s with peak memory < 1.5 GB; exact sample >= 1,000,000 draws/s.
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from diffhypergeom_studies.benchmarking import CORE_CASES, format_table, run_cases_isolated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--cases", type=int, nargs="*", help="indices into CORE_CASES")
    parser.add_argument("--methods", nargs="*", default=["exact", "merge"],
                        choices=["exact", "merge"], help="samplers to measure")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per quantity")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda requested but torch.cuda.is_available() is False")
    indices = args.cases if args.cases else range(len(CORE_CASES))
    cases = [dataclasses.replace(CORE_CASES[i], device=args.device) for i in indices]
    rows = []
    for method in args.methods:
        rows += run_cases_isolated(cases, method, args.repeats,
                                   progress=lambda c, m=method: print(f"... {c.label} [{m}]",
                                                                      flush=True))
    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print(format_table(rows))


if __name__ == "__main__":
    main()
