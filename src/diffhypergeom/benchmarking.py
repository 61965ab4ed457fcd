"""Throughput and peak memory of the samplers, one urn configuration at a time.

A ``BenchCase`` is an urn (``population``, ``draws``, ``weights``), a batch of ``batch`` weight
vectors (the first is ``weights``, the others random, as when a network emits one per example)
and ``num_samples`` samples per weight vector. ``run_case`` measures, after one warm-up:

- ``table_seconds``: building a distribution and its generating-function tables with gradients;
- ``exact_per_second``: draws per second of ``sample`` (tables included);
- ``relaxed_per_second``: draws per second of a training step: build the distribution, draw
  ``rsample(gradient="gumbel")``, reduce to a scalar and backpropagate to the
  logits;
- ``default_per_second`` (the exact law only): the same step with ``rsample``'s default
  gradient (exact draws, the mean's gradient);
- peak memory of the exact and the relaxed step (the process's peak resident set above what it
  held before, on the CPU; ``torch.cuda.max_memory_allocated`` on CUDA).

Peak resident memory is a per-process quantity, so ``run_cases_isolated`` runs every case in a
fresh interpreter (``python -m diffhypergeom.benchmarking '<json>'``).
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from diffhypergeom.distribution import MultivariateFisherNCHypergeometric
from diffhypergeom.merged import MergedFisherNCHypergeometric


@dataclasses.dataclass
class BenchCase:
    label: str
    population: list[int]
    draws: int
    weights: list[float] | None = None
    batch: int = 1
    num_samples: int = 50_000
    device: str = "cpu"
    engine: str = "auto"


# The configurations issue #2 asks for.
CORE_CASES = [
    BenchCase("paper urn, 50k samples", [200, 200, 200], 180, [1.0, 10.0, 1.0]),
    BenchCase("HGVAE: 256 weight vectors", [10, 10], 10, [1.0, 1.0], batch=256, num_samples=1),
    BenchCase("c=100 x 1000 balls, n=10^4", [1000] * 100, 10_000, None, num_samples=1_000),
]


def _proc_status(field: str) -> float:
    """A ``/proc/self/status`` memory field in MiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak(device: torch.device) -> float:
    """Reset the peak-memory counter; return the current usage in MiB."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device) / 2**20
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current VmRSS
    return _proc_status("VmRSS")


def _peak(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) / 2**20
    return _proc_status("VmHWM")


def timed(fn: Callable[[], object], device: torch.device, repeats: int,
          reduce: Callable[[list[float]], float] = statistics.median) -> tuple[float, float]:
    """``reduce`` (default: the median) of the seconds of ``repeats`` calls after one warm-up,
    and peak memory (MiB above the level before the warm-up) over all calls."""
    base = _reset_peak(device)
    fn()
    seconds = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds.append(time.perf_counter() - start)
    return reduce(seconds), max(_peak(device) - base, 0.0)


def best_seconds(fn: Callable[[], object], repeats: int, device: str = "cpu") -> float:
    """The fastest of ``repeats`` timed calls of ``fn`` after one warm-up (``timed``)."""
    return timed(fn, torch.device(device), repeats, reduce=min)[0]


def _logits(case: BenchCase, device: torch.device) -> torch.Tensor:
    classes = len(case.population)
    weights = case.weights if case.weights is not None else [1.0] * classes
    first = torch.tensor(weights, dtype=torch.float32).log()
    if case.batch == 1:
        return first.to(device)
    generator = torch.Generator().manual_seed(0)
    rest = torch.randn(case.batch - 1, classes, generator=generator)
    return torch.cat([first.unsqueeze(0), rest]).to(device)


def run_case(case: BenchCase, method: str = "exact", repeats: int = 3) -> dict:
    """Measure one case in this process (see the module docstring for the quantities)."""
    device = torch.device(case.device)
    population = torch.tensor(case.population, device=device)
    logits = _logits(case, device)
    probe = torch.linspace(1.0, 2.0, len(case.population), device=device)
    law = MergedFisherNCHypergeometric if method == "merge" else MultivariateFisherNCHypergeometric
    draws_total = case.num_samples * case.batch

    def tables() -> None:
        theta = logits.detach().requires_grad_()
        dist = MultivariateFisherNCHypergeometric(population, case.draws, logits=theta,
                                                  engine=case.engine)
        dist.log_normalizer().sum().backward()

    def exact() -> None:
        dist = law(population, case.draws, logits=logits, engine=case.engine)
        dist.sample((case.num_samples,))

    def relaxed() -> None:
        theta = logits.detach().requires_grad_()
        dist = law(population, case.draws, logits=theta, engine=case.engine)
        counts = dist.rsample((case.num_samples,), gradient="gumbel", temperature=0.5)
        (counts * probe).sum().backward()

    def default() -> None:  # rsample's default: exact draws, the mean's gradient
        theta = logits.detach().requires_grad_()
        dist = MultivariateFisherNCHypergeometric(population, case.draws, logits=theta,
                                                  engine=case.engine)
        (dist.rsample((case.num_samples,)) * probe).sum().backward()

    table_seconds, table_peak = timed(tables, device, repeats)
    exact_seconds, exact_peak = timed(exact, device, repeats)
    relaxed_seconds, relaxed_peak = timed(relaxed, device, repeats)
    default_seconds = timed(default, device, repeats)[0] if method == "exact" else None
    engine = law(population, case.draws, logits=logits, engine=case.engine).engine_name
    return {
        "label": case.label, "method": method, "engine": engine, "device": str(device),
        "classes": len(case.population), "balls": int(sum(case.population)),
        "draws": case.draws, "batch": case.batch, "num_samples": case.num_samples,
        "threads": torch.get_num_threads(),
        "table_seconds": table_seconds, "table_peak_mb": table_peak,
        "exact_seconds": exact_seconds, "exact_per_second": draws_total / exact_seconds,
        "exact_peak_mb": exact_peak,
        "relaxed_seconds": relaxed_seconds, "relaxed_per_second": draws_total / relaxed_seconds,
        "relaxed_peak_mb": relaxed_peak,
        "default_per_second": None if default_seconds is None else draws_total / default_seconds,
        "peak_memory_mb": max(table_peak, exact_peak, relaxed_peak),
    }


def run_case_isolated(case: BenchCase, method: str = "exact", repeats: int = 3) -> dict:
    """``run_case`` in a fresh interpreter, so that peak memory belongs to this case alone."""
    request = json.dumps({"case": dataclasses.asdict(case), "method": method,
                          "repeats": repeats})
    done = subprocess.run([sys.executable, "-m", "diffhypergeom.benchmarking", request],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark case {case.label!r} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_cases_isolated(cases: Sequence[BenchCase], method: str = "exact", repeats: int = 3,
                       progress: Callable[[BenchCase], None] | None = None) -> list[dict]:
    rows = []
    for case in cases:
        if progress is not None:
            progress(case)
        rows.append(run_case_isolated(case, method, repeats))
    return rows


COLUMNS = [
    ("case", "label", "{}"), ("method", "method", "{}"), ("engine", "engine", "{}"),
    ("device", "device", "{}"),
    ("draws/s relaxed (fwd+bwd)", "relaxed_per_second", "{:,.0f}"),
    ("draws/s default rsample (fwd+bwd)", "default_per_second", "{:,.0f}"),
    ("draws/s exact", "exact_per_second", "{:,.0f}"),
    ("tables+grad s", "table_seconds", "{:.3f}"),
    ("peak MiB relaxed", "relaxed_peak_mb", "{:,.0f}"),
    ("peak MiB exact", "exact_peak_mb", "{:,.0f}"),
]


def format_table(rows: Sequence[dict]) -> str:
    """A markdown table of ``run_case`` results."""
    lines = ["| " + " | ".join(title for title, _, _ in COLUMNS) + " |",
             "|" + "---|" * len(COLUMNS)]
    for row in rows:
        lines.append("| " + " | ".join("-" if row.get(key) is None else fmt.format(row[key])
                                       for _, key, fmt in COLUMNS) + " |")
    return "\n".join(lines)


def _main(argv: Sequence[str]) -> None:
    request = json.loads(argv[0])
    row = run_case(BenchCase(**request["case"]), request["method"], request["repeats"])
    print(json.dumps(row))


if __name__ == "__main__":
    _main(sys.argv[1:])
