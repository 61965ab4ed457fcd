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
fresh interpreter (``python -m diffhypergeom_studies.benchmarking '<json>'``).
``format_table`` writes the rows as the markdown table of ``benchmarks/bench_sampling.py``
(which measures ``CORE_CASES``); ``timed`` and ``best_seconds`` time any callable, as the other
``benchmarks/`` scripts do.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from diffhypergeom.laws.fisher import MultivariateFisherNCHypergeometric
from diffhypergeom.laws.merged import MergedFisherNCHypergeometric

__all__ = [
    "BenchCase", "COLUMNS", "CORE_CASES", "best_seconds", "format_table", "run_case",
    "run_case_isolated", "run_cases_isolated", "run_script_child", "timed",
]


@dataclasses.dataclass
class BenchCase:
    """One urn configuration to measure (a JSON-serialisable dataclass).

    Attributes:
        label: the case's name in tables.
        population: balls per class, ``[c]``.
        draws: balls drawn, ``n``.
        weights: the Fisher weights of the first weight vector; ``None`` for all ones.
        batch: weight vectors per call: ``weights`` and ``batch - 1`` random ones (standard
            normal logits, seeded).
        num_samples: samples per weight vector per call.
        device: a ``torch.device`` string, e.g. ``"cpu"`` or ``"cuda"``.
        engine: the engine of the distribution (``"auto"``, ``"logspace"`` or ``"fft"``).

    Example:
        >>> import dataclasses
        >>> from diffhypergeom_studies.benchmarking import BenchCase
        >>> case = BenchCase("HGVAE urn", [10, 10], 10, [1.0, 1.0], batch=256, num_samples=1)
        >>> case.batch * case.num_samples  # draws per call
        256
        >>> sorted(dataclasses.asdict(case))  # sent to a fresh interpreter as JSON
        ['batch', 'device', 'draws', 'engine', 'label', 'num_samples', 'population', 'weights']
    """

    label: str
    population: list[int]
    draws: int
    weights: list[float] | None = None
    batch: int = 1
    num_samples: int = 50_000
    device: str = "cpu"
    engine: str = "auto"


#: The configurations issue #2 asks for, which ``benchmarks/bench_sampling.py`` measures. The
#: paper's urn (``m = [200, 200, 200]``, ``n = 180``, weights ``[1, 10, 1]``, 50,000 samples),
#: the HGVAE's urn with a batch of 256 weight vectors and one sample each, and 100 classes of
#: 1,000 balls with ``n = 10^4`` (1,000 samples).
#:
#: :meta hide-value:
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
    and peak memory (MiB above the level before the warm-up) over all calls.

    On CUDA the device is synchronised around every call; peak memory is
    ``torch.cuda.max_memory_allocated`` there and the process's peak resident set on the CPU
    (Linux: it reads ``/proc/self/status``), which covers everything the process holds.

    Example:
        >>> import torch
        >>> from diffhypergeom_studies.benchmarking import timed
        >>> x = torch.rand(10_000)
        >>> seconds, peak_mb = timed(lambda: x.sort(), torch.device("cpu"), repeats=3)
        >>> seconds > 0, peak_mb >= 0
        (True, True)
    """
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
    """The fastest of ``repeats`` timed calls of ``fn`` after one warm-up (``timed``).

    Example:
        >>> import torch
        >>> from diffhypergeom_studies.benchmarking import best_seconds
        >>> x = torch.rand(10_000)
        >>> seconds = best_seconds(lambda: x.sort(), repeats=3)
        >>> isinstance(seconds, float), seconds > 0
        (True, True)
    """
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
    """Measure one case in this process (see the module docstring for the quantities).

    ``method="exact"`` measures ``MultivariateFisherNCHypergeometric``; ``method="merge"`` the
    paper's sampler, ``MergedFisherNCHypergeometric`` (then ``default_per_second`` is
    ``None``). Each time is the median of ``repeats`` calls after one warm-up. The row also
    holds the case (``label``, ``classes``, ``balls``, ``draws``, ``batch``, ``num_samples``),
    the ``engine`` chosen, the ``device``, torch's ``threads``, the seconds per call
    (``*_seconds``), the peak memory of each step in MiB (``table_peak_mb``, ``exact_peak_mb``,
    ``relaxed_peak_mb``) and their maximum, ``peak_memory_mb``. On the CPU, memory that
    earlier work freed but the process still holds is reused without raising its resident set,
    so in a process that has run other work the peak can read lower than the case's own:
    ``run_case_isolated`` avoids that.

    Example:
        >>> from diffhypergeom_studies.benchmarking import BenchCase, run_case
        >>> case = BenchCase("tiny urn", [3, 4], 2, [1.0, 2.0], num_samples=10)
        >>> row = run_case(case, repeats=1)
        >>> row["label"], row["method"], row["engine"], row["balls"], row["num_samples"]
        ('tiny urn', 'exact', 'logspace', 7, 10)
        >>> all(row[key] > 0 for key in ("exact_per_second", "relaxed_per_second",
        ...                              "default_per_second", "table_seconds"))
        True
        >>> row["peak_memory_mb"] >= 0
        True
        >>> run_case(case, "merge", repeats=1)["default_per_second"] is None
        True
    """
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
    """``run_case`` in a fresh interpreter, so that peak memory belongs to this case alone.

    Raises ``RuntimeError`` with the end of the interpreter's standard error if the case
    fails there.

    Example:
        The fresh interpreter imports torch first, which takes a few seconds; the row is a
        ``run_case`` row:

        >>> from diffhypergeom_studies.benchmarking import BenchCase, run_case_isolated
        >>> case = BenchCase("tiny urn", [3, 4], 2, [1.0, 2.0], num_samples=10)
        >>> row = run_case_isolated(case, repeats=1)
        >>> row["label"], row["engine"], row["exact_per_second"] > 0
        ('tiny urn', 'logspace', True)
    """
    request = json.dumps({"case": dataclasses.asdict(case), "method": method,
                          "repeats": repeats})
    done = subprocess.run([sys.executable, "-m", "diffhypergeom_studies.benchmarking", request],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark case {case.label!r} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_cases_isolated(cases: Sequence[BenchCase], method: str = "exact", repeats: int = 3,
                       progress: Callable[[BenchCase], None] | None = None) -> list[dict]:
    """``run_case_isolated`` for each case in turn, one fresh interpreter per case; ``progress``
    (if given) is called with each case before it runs.

    Example:
        ``benchmarks/bench_sampling.py`` runs ``CORE_CASES`` (minutes); one tiny case here (a
        few seconds, the fresh interpreter's import of torch):

        >>> from diffhypergeom_studies.benchmarking import CORE_CASES, BenchCase, run_cases_isolated
        >>> [case.label for case in CORE_CASES]
        ['paper urn, 50k samples', 'HGVAE: 256 weight vectors', 'c=100 x 1000 balls, n=10^4']
        >>> tiny = BenchCase("tiny urn", [3, 4], 2, [1.0, 2.0], num_samples=10)
        >>> rows = run_cases_isolated([tiny], repeats=1, progress=lambda case: print(case.label))
        tiny urn
        >>> [(row["label"], row["method"]) for row in rows]
        [('tiny urn', 'exact')]
    """
    rows = []
    for case in cases:
        if progress is not None:
            progress(case)
        rows.append(run_case_isolated(case, method, repeats))
    return rows


#: The columns of ``format_table``, each ``(title, key of a run_case row, format)``; a
#: ``None`` value is written ``-``.
#:
#: :meta hide-value:
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
    """A markdown table of ``run_case`` results, one line per row (columns: ``COLUMNS``; a
    missing or ``None`` value is written ``-``).

    Example:
        >>> from diffhypergeom_studies.benchmarking import format_table
        >>> row = {"label": "paper urn", "method": "exact", "engine": "logspace",
        ...        "device": "cpu", "relaxed_per_second": 1234567.8,
        ...        "default_per_second": None, "exact_per_second": 2.5e6,
        ...        "table_seconds": 0.01234, "relaxed_peak_mb": 12.6, "exact_peak_mb": 3.2}
        >>> print(format_table([row]))
        | case | method | engine | device | draws/s relaxed (fwd+bwd) | ... | peak MiB exact |
        |---|---|---|---|---|---|---|---|---|---|
        | paper urn | exact | logspace | cpu | 1,234,568 | - | 2,500,000 | 0.012 | 13 | 3 |
    """
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


def run_script_child(script: str | Path, spec: dict, limit: float, src: str | None = None,
                     cwd: str | Path | None = None) -> dict:
    """``python script --child '<spec as JSON>'`` in a fresh interpreter (how the
    ``benchmarks/`` scripts measure each case on its own), with the source tree ``src`` first on
    ``PYTHONPATH`` when given (another commit's ``src/``, to time it alternately with this
    one). Returns the JSON of the child's last line of output, or ``{"error": ...}`` with its
    last line of errors or the time limit it ran past.

    Example:
        >>> import pathlib, tempfile
        >>> from diffhypergeom_studies.benchmarking import run_script_child
        >>> script = pathlib.Path(tempfile.mkdtemp()) / "child.py"
        >>> _ = script.write_text("import json, sys\\n"
        ...                       "print(json.dumps({'twice': 2 * json.loads(sys.argv[2])['x']}))")
        >>> run_script_child(script, {"x": 21}, limit=60)
        {'twice': 42}
    """
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    try:
        done = subprocess.run([sys.executable, str(Path(script).resolve()), "--child",
                               json.dumps(spec)], capture_output=True, text=True,
                              timeout=limit, env=env, cwd=cwd, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"over {limit:.0f} s"}
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1][:60]}
    return json.loads(done.stdout.strip().splitlines()[-1])
