"""k-subset training steps and large urns (issue 17's targets), printed as a markdown table.

    python benchmarks/bench_subsets.py                          # diffhypergeom and torch.topk
    python benchmarks/bench_subsets.py --peers /path/to/sfess   # also SIMPLE and SFESS
    python benchmarks/bench_subsets.py --baseline-src /path/to/old/checkout/src
    python benchmarks/bench_subsets.py --huge --figure subsets.png

One training step: ``S = 16`` draws of a ``k``-subset of ``N`` items from per-item logits, a
linear loss ``sum_s <c, x_s>``, backward to the logits. Methods:

- ``diffhypergeom``: ``k_subset(logits, k).rsample((S,))`` (``KSubset``; the Fisher law of an urn
  of ones on source trees from before it): exact conditional Poisson draws
  whose backward is the exact marginals' gradient (``engine="auto"``; ``/logspace`` and
  ``/fft``: forced engines, which compute the marginals' gradient);
- ``torch.topk``: Gumbel-top-k draws (``topk`` of ``logits + Gumbel``), no gradient: the floor
  for drawing ``k`` of ``N`` (a different law: sampling without replacement);
- ``SIMPLE`` and ``SFESS`` as shipped in klaswijk/sfess (``samplers/simple_scheme.py``,
  ``samplers/sfess/sfess.py``, loaded from ``--peers``; skipped without it): SIMPLE's exact
  marginals with straight-through samples; SFESS's Gumbel-top-k samples scored with its Fourier
  ``log_prob`` and the control-variate score-function loss.

Urn cases (``--urns``): ``c = 10^4`` classes of 1-100 balls, ``n = N/2``: the log-normaliser and
its backward, and 1,000 exact draws. With ``--baseline-src`` every measurement is also run,
alternately, with that source tree on ``PYTHONPATH`` (e.g. the previous commit's ``src``).

Each measurement runs in a fresh interpreter (its peak resident memory is its own) with a time
limit (``--limit``); the best of ``--repeats`` timed runs after one warm-up is reported.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

SUBSET_CASES = [(64, 8), (1_000, 50), (10_000, 100), (100_000, 1_000)]
HUGE_CASE = (1_000_000, 10_000)
SAMPLES = 16


def _step_fn(method: str, n: int, k: int, peers: str | None):
    """A zero-argument training step for ``method``."""
    torch.manual_seed(0)
    logits = torch.randn(n, requires_grad=True)
    cost = torch.randn(n)
    if method.startswith("diffhypergeom"):
        from diffhypergeom import MultivariateFisherNCHypergeometric as MFNCH
        engine = method.partition("/")[2] or "auto"
        ones = torch.ones(n, dtype=torch.int64)
        try:  # what a user builds; source trees from before the helper (--baseline-src)
            from diffhypergeom.subsets import k_subset
        except ImportError:
            def k_subset(logits, k, engine="auto"):
                return MFNCH(ones, k, logits=logits, engine=engine)

        def step():
            x = k_subset(logits, k, engine=engine).rsample((SAMPLES,))
            (x * cost).sum().backward()
        return step
    if method == "torch.topk":
        def step():
            with torch.no_grad():
                gumbel = -torch.empty(SAMPLES, n).exponential_().log()
                index = (logits + gumbel).topk(k, dim=-1).indices
                torch.zeros(SAMPLES, n).scatter_(-1, index, 1.0)
        return step
    sys.path.insert(0, peers)
    if method == "SIMPLE":
        from samplers.simple_scheme import SIMPLESampler
        sampler = SIMPLESampler(k, torch.device("cpu"), n_samples=SAMPLES)

        def step():
            samples, _ = sampler(logits.view(1, n, 1))
            (samples.squeeze(-1) * cost).sum().backward()
        return step
    if method == "SFESS":
        from samplers.sfess.sfess import SFESSSampler, score_function_estimator
        sampler = SFESSSampler(k, torch.device("cpu"), n_samples=SAMPLES)

        def step():
            samples, log_p = sampler(logits.view(1, n, 1))
            values = (samples.squeeze(-1) * cost).sum(-1)
            score_function_estimator(values, log_p, "control-variate").backward()
        return step
    raise ValueError(method)


def _urn_fn(task: str):
    """The urn cases: ``c = 10^4`` classes of 1-100 balls, ``n = N/2``."""
    from diffhypergeom import MultivariateFisherNCHypergeometric as MFNCH
    gen = torch.Generator().manual_seed(0)
    population = torch.randint(1, 101, (10_000,), generator=gen)
    draws = int(population.sum()) // 2
    logits = torch.randn(10_000, generator=gen, dtype=torch.float64).requires_grad_()
    if task == "log-normaliser + backward":
        def step():
            MFNCH(population, draws, logits=logits).log_normalizer().backward()
        return step

    def step():
        MFNCH(population, draws, logits=logits.detach()).sample((1_000,))
    return step


def measure(spec: dict) -> dict:
    """Runs in the child: the best time of ``repeats`` runs after a warm-up, and peak RSS."""
    torch.set_num_threads(spec["threads"])
    if spec["kind"] == "subset":
        fn = _step_fn(spec["method"], spec["n"], spec["k"], spec.get("peers"))
    else:
        fn = _urn_fn(spec["task"])
    fn()
    times = []
    for _ in range(spec["repeats"]):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": min(times), "peak_mib": peak}


def run_isolated(spec: dict, limit: float, src: str | None = None) -> dict:
    """``measure(spec)`` in a fresh interpreter, in a scratch folder (SIMPLE writes files)."""
    # the parent only: a child may run another version of the library, which the studies
    # package does not import
    from diffhypergeom_studies.benchmarking import run_script_child

    with tempfile.TemporaryDirectory() as scratch:
        return run_script_child(__file__, spec, limit, src, cwd=scratch)


def _cell(result: dict) -> str:
    if "error" in result:
        return result["error"]
    return f"{result['seconds'] * 1e3:,.1f} ms ({result['peak_mib']:,.0f} MiB)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", help="local copy of klaswijk/sfess (its root folder); "
                        "SIMPLE and SFESS are skipped without it")
    parser.add_argument("--baseline-src", help="a source tree (its src/ folder) to time "
                        "alternately with this one, e.g. the previous commit's")
    parser.add_argument("--huge", action="store_true", help="add N = 10^6, k = 10^4")
    parser.add_argument("--max-n", type=int, help="only the subset cases with N up to this")
    parser.add_argument("--urns", action="store_true", help="add the c = 10^4 urn cases")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement")
    parser.add_argument("--limit", type=float, default=300.0,
                        help="seconds allowed per measurement (warm-up and repeats)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch threads in each measurement")
    parser.add_argument("--figure", help="write a figure of step time against N here (PNG)")
    parser.add_argument("--json", help="write the raw results here")
    parser.add_argument("--busy", type=int, default=0,
                        help="processes kept busy (one core each) during the whole run: a data "
                        "loader beside training")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(json.loads(args.child))))
        return
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(args.busy)]
    try:
        run(args, parser)
    finally:
        for process in busy:
            process.kill()


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if args.peers and not (Path(args.peers) / "samplers" / "sfess" / "sfess.py").is_file():
        parser.error(f"--peers {args.peers} has no samplers/sfess/sfess.py")
    methods = ["diffhypergeom", "diffhypergeom/logspace", "diffhypergeom/fft", "torch.topk"] \
        + (["SIMPLE", "SFESS"] if args.peers else [])
    cases = [(n, k) for n, k in SUBSET_CASES + ([HUGE_CASE] if args.huge else [])
             if args.max_n is None or n <= args.max_n]
    base = {"repeats": args.repeats, "threads": args.threads, "peers": args.peers}
    results: dict[str, dict] = {}
    print(f"torch {torch.__version__}, {args.threads} threads, S = {SAMPLES} draws per step, "
          f"{args.busy} busy process(es) beside")
    for n, k in cases:
        for method in methods:
            key = f"{method}|{n}|{k}"
            print(f"... N={n:,} k={k:,} {method}", flush=True)
            results[key] = run_isolated(dict(base, kind="subset", method=method, n=n, k=k),
                                        args.limit)
            if args.baseline_src and method == "diffhypergeom":
                results["baseline|" + key] = run_isolated(
                    dict(base, kind="subset", method=method, n=n, k=k), args.limit,
                    args.baseline_src)
    columns = methods + (["baseline"] if args.baseline_src else [])
    print("\n| N | k | " + " | ".join(columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for n, k in cases:
        cells = [_cell(results[f"{m}|{n}|{k}"]) for m in methods]
        if args.baseline_src:
            cells.append(_cell(results[f"baseline|diffhypergeom|{n}|{k}"]))
        print(f"| {n:,} | {k:,} | " + " | ".join(cells) + " |")
    if args.urns:
        print("\n| c = 10^4 urn, 1-100 balls, n = N/2 | this tree |"
              + (" baseline |" if args.baseline_src else ""))
        print("|---|---|" + ("---|" if args.baseline_src else ""))
        for task in ("log-normaliser + backward", "1,000 exact draws"):
            print(f"... {task}", flush=True)
            spec = dict(base, kind="urn", task=task)
            row = [_cell(run_isolated(spec, args.limit))]
            if args.baseline_src:
                row.append(_cell(run_isolated(spec, args.limit, args.baseline_src)))
            results["urn|" + task] = row
            print(f"| {task} | " + " | ".join(row) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if args.figure:
        _figure(results, methods, cases, args.figure)


def _figure(results: dict, methods: list[str], cases: list[tuple[int, int]], path: str
            ) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for method in methods:
        points = [(n, results[f"{method}|{n}|{k}"]["seconds"]) for n, k in cases
                  if "seconds" in results[f"{method}|{n}|{k}"]]
        if points:
            ax.loglog(*zip(*points, strict=True), marker="o", label=method)
    ax.set_xlabel("items N (subset size k as in the table: 8, 50, 100, 1,000)")
    ax.set_ylabel("seconds per training step (S = 16)")
    ax.set_title("k-subset step on the CPU")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
