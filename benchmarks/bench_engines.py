"""The two engines at scale (issue #8's targets), printed as a markdown table, and a log-log
figure of time against the urn size N for both engines with the crossover that ``auto`` uses.

    python benchmarks/bench_engines.py                      # table + figure (a few minutes)
    python benchmarks/bench_engines.py --skip-slow          # without the 40 s log-space run
    python benchmarks/bench_engines.py --device cuda        # on a GPU
    python benchmarks/bench_engines.py --figure docs/engines/time_vs_N.png

Every row runs in a fresh interpreter. Times are the best of ``--repeats`` runs after a
warm-up; peak memory is the process's peak resident set above what it held before the case,
warm-up included (``torch.cuda.max_memory_allocated`` on CUDA).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from collections.abc import Callable

import torch

from diffhypergeom import MultivariateFisherNCHypergeometric as MFNCH
from diffhypergeom.numerics.engines import choose
from diffhypergeom_studies.benchmarking import timed


def best_and_peak(fn: Callable[[], object], device: torch.device, repeats: int
                  ) -> tuple[float, float]:
    """Best seconds over ``repeats`` calls after a warm-up, and the peak MiB above the start."""
    return timed(fn, device, repeats, reduce=min)


def _logits(classes: int, device: torch.device, scale: float = 0.5) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return (scale * torch.randn(classes, generator=generator, dtype=torch.float64)).to(device)


def cases(args, device: torch.device) -> list[tuple[str, str, str, Callable[[], object], str,
                                                    int | None]]:
    """``(case, engine, what, function, target, repeats)`` for every row of the table."""
    out = []
    pop100 = torch.full((100,), 1000, device=device)
    logits100 = _logits(100, device)

    def normalizer(engine: str):
        def run():
            theta = logits100.clone().requires_grad_()
            MFNCH(pop100, 10_000, logits=theta, engine=engine).log_normalizer().backward()
        return run

    def relaxed(permute: bool):
        def run():
            theta = logits100.clone().requires_grad_()
            d = MFNCH(pop100, 10_000, logits=theta, engine="fft")
            x = d.rsample((1000,), temperature=0.5, permute=permute, gradient="gumbel")
            x.sum(0).pow(2).sum().backward()
        return run

    case = "c=100 x 1,000 balls, n=10^4"
    out.append((case, "fft", "log_normalizer fwd+bwd", normalizer("fft"), "<= 0.2 s", None))
    if not args.skip_slow:
        out.append((case, "logspace", "log_normalizer fwd+bwd", normalizer("logspace"), "", 1))
    out.append((case, "fft", "2,000 exact samples",
                lambda: MFNCH(pop100, 10_000, logits=logits100, engine="fft").sample((2000,)),
                "<= 2 s", None))
    out.append((case, "fft", "1,000 relaxed fwd+bwd, fixed order", relaxed(False), "<= 3 s",
                None))
    out.append((case, "fft", "1,000 relaxed fwd+bwd, random order", relaxed(True), "<= 3 s",
                None))

    pop1000 = torch.full((1000,), 10_000, device=device)
    logits1000 = _logits(1000, device)

    def big(engine: str):
        def run():
            d = MFNCH(pop1000, 3_000_000, logits=logits1000, engine=engine)
            return d.log_normalizer(), d.mean
        return run

    case = "c=1,000 x 10^4 balls, n=3*10^6"
    out.append((case, "fft", "log_normalizer + mean", big("fft"), "<= 5 s, < 2 GB", None))
    out.append((case, "logspace", "log_normalizer + mean", big("logspace"), "", 1))

    pop2 = torch.tensor([10**6, 10**6], device=device)
    theta2 = torch.tensor([0.0, 0.3], dtype=torch.float64, device=device)
    for n in (10**6, 2 * 10**6 - 5):
        case = f"m=[10^6, 10^6], n={n:,}"
        x = torch.tensor([n // 2 + 1, n - n // 2 - 1], device=device)
        engine = MFNCH(pop2, n, logits=theta2).engine_name
        out.append((case, engine, "mean", lambda n=n: MFNCH(pop2, n, logits=theta2).mean,
                    "<= 1 s", None))
        out.append((case, engine, "log_prob",
                    lambda n=n, x=x: MFNCH(pop2, n, logits=theta2).log_prob(x), "<= 1 s", None))
        if n == 10**6:
            out.append((case, "logspace", "mean",
                        lambda n=n: MFNCH(pop2, n, logits=theta2, engine="logspace").mean, "",
                        None))
        try:
            from scipy.stats import nchypergeom_fisher
        except ImportError:
            continue
        law = nchypergeom_fisher(2 * 10**6, 10**6, n, math.exp(-0.3))
        out.append((case, "scipy", "mean", law.mean, "", None))
        out.append((case, "scipy", "logpmf", lambda law=law, x=x: law.logpmf(int(x[0])), "",
                    None))
    return out


def run_row(args, device: torch.device, index: int) -> list[str]:
    """Row ``index`` of the table, measured in this process."""
    case, engine, what, fn, target, repeats = cases(args, device)[index]
    try:
        seconds, peak = best_and_peak(fn, device, args.repeats if repeats is None else repeats)
    except ValueError as err:
        return [case, engine, what, "ValueError: " + str(err).split(";")[0], "", target]
    return [case, engine, what, f"{seconds:.4g}", f"{peak:,.0f}", target]


def table(args, device: torch.device) -> list[list[str]]:
    """Every row in a fresh interpreter, so that its peak memory is its own (an allocator keeps
    what an earlier case freed, which hides a later case's peak)."""
    rows = []
    for index in range(len(cases(args, device))):
        command = [sys.executable, __file__, "--row", str(index), "--device", args.device,
                   "--repeats", str(args.repeats)] + (["--skip-slow"] if args.skip_slow else [])
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"row {index} failed:\n{done.stderr[-2000:]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
        if rows[-1][2] == "log_normalizer fwd+bwd" and rows[-1][1] == "logspace":
            fft = float(rows[-2][3])
            rows.append([rows[-1][0], "", "ratio logspace / fft",
                         f"{float(rows[-1][3]) / fft:,.0f}x", "", ">= 100x"])
    return rows


def sweep(args, device: torch.device) -> dict[str, list[tuple[int, float]]]:
    """Time of ``log_normalizer`` forward + backward against N, c = 10 equal classes,
    n = N / 3, for both engines (log-space up to N = ``--sweep-logspace-max``)."""
    out: dict[str, list[tuple[int, float]]] = {"logspace": [], "fft": [], "auto": []}
    logits = _logits(10, device)
    for total in args.sweep:
        pop = torch.full((10,), total // 10, device=device)
        n = total // 3
        for engine in ("logspace", "fft"):
            if engine == "logspace" and total > args.sweep_logspace_max:
                continue

            def run(engine=engine, pop=pop, n=n):
                theta = logits.clone().requires_grad_()
                MFNCH(pop, n, logits=theta, engine=engine).log_normalizer().backward()

            seconds, _ = best_and_peak(run, device, args.repeats)
            out[engine].append((total, seconds))
            print(f"sweep N={total:,} {engine}: {seconds:.4g} s", flush=True)
        chosen = choose(pop.unsqueeze(0).cpu(), torch.tensor([n]), torch.zeros(1, 10))
        out["auto"].append((total, 0.0 if chosen == "logspace" else 1.0))
    return out


def figure(points: dict[str, list[tuple[int, float]]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for engine, colour in (("logspace", "tab:blue"), ("fft", "tab:orange")):
        xs, ys = zip(*points[engine], strict=True)
        ax.loglog(xs, ys, "o-", color=colour, label=f'engine="{engine}"')
    switch = [total for total, fft in points["auto"] if fft]
    if switch:
        ax.axvline(min(switch), color="grey", linestyle="--",
                   label=f'auto switches to fft (N = {min(switch):,})')
    ax.set_xlabel("balls in the urn N (c = 10 equal classes, n = N / 3)")
    ax.set_ylabel("log_normalizer forward + backward (s)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"figure: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per quantity")
    parser.add_argument("--skip-slow", action="store_true",
                        help="skip the log-space run of the c = 100 urn (about 40 s)")
    parser.add_argument("--sweep", type=int, nargs="*",
                        default=[100, 300, 1000, 3000, 10_000, 30_000, 100_000, 10**6, 10**7],
                        help="urn sizes N of the figure's sweep (empty: no sweep)")
    parser.add_argument("--sweep-logspace-max", type=int, default=30_000,
                        help="largest N timed with the log-space engine in the sweep")
    parser.add_argument("--figure", default="docs/engines/time_vs_N.png",
                        help="where to write the figure")
    parser.add_argument("--row", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda requested but torch.cuda.is_available() is False")
    device = torch.device(args.device)
    if args.row is not None:
        print(json.dumps(run_row(args, device, args.row)))
        return
    rows = table(args, device)
    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads, {device}\n")
    header = ["case", "engine", "what", "seconds", "peak MiB", "target"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if args.sweep:
        points = sweep(args, device)
        from pathlib import Path

        Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
        figure(points, args.figure)


if __name__ == "__main__":
    main()
