"""Sampling throughput and peak memory against size, exact against merge.

Four sweeps, each varying one size of the urn (``diffhypergeom_studies.benchmarking`` does the
measuring, every case in a fresh subprocess so that peak memory is per case):

- ``classes``: ``c`` classes of ``class_size`` balls, ``n = 0.3 * N``;
- ``balls``: 3 classes of ``m`` balls each, ``n = 0.3 * N``;
- ``draws``: 3 classes of ``draws_class_size`` balls, ``n`` varied;
- ``batch``: a batch of ``B`` weight vectors for the HGVAE urn (2 classes of 10, n = 10), one
  draw each (throughput counts ``B * num_samples`` draws per call).

Throughputs are draws per second: ``exact`` = ``sample`` (tables included), ``relaxed`` = a
training step (``rsample(gradient="gumbel")`` forward + backward to the logits,
tables included; the default ``gradient="mean"`` costs ``sample`` plus the mean's backward).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffhypergeom_studies.runs import markdown_table
from diffhypergeom_studies.validation.common import cached_part, config_dict, finish

__all__ = ["BenchConfig", "METHODS", "run_bench", "summary_markdown"]

METHODS = ("exact", "merge")


@dataclass
class BenchConfig:
    """Sizes of the benchmark sweeps (see module docstring)."""

    classes: list[int] = field(default_factory=lambda: [3, 10, 30, 100])
    class_size: int = 100
    balls: list[int] = field(default_factory=lambda: [50, 200, 1000, 5000])
    draws: list[int] = field(default_factory=lambda: [10, 100, 1000, 2500])
    draws_class_size: int = 1000
    batch: list[int] = field(default_factory=lambda: [1, 16, 256, 4096])
    num_samples: int = 10_000
    repeats: int = 3
    device: str = "cpu"
    threads: int | None = None  # torch intra-op threads of each case (None: torch's default)

    @classmethod
    def paper(cls, device: str = "cpu") -> BenchConfig:
        return cls(device=device)

    @classmethod
    def quick(cls, device: str = "cpu") -> BenchConfig:
        return cls(classes=[3, 20], balls=[50, 500], draws=[], batch=[1, 256],
                   num_samples=1_000, repeats=1, device=device)

    def validate(self) -> None:
        import torch

        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device {self.device!r} requested but torch.cuda.is_available() "
                             "is False (no GPU or a CPU-only torch build); use --device cpu")
        if self.device != "cpu" and not self.device.startswith("cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda[:k]', got {self.device!r}")
        if min(self.classes, default=2) < 2 or min(self.balls, default=1) < 1:
            raise ValueError("classes must be >= 2 and balls >= 1")
        if any(not 0 < n <= 3 * self.draws_class_size for n in self.draws):
            raise ValueError(f"draws must be in (0, 3 * draws_class_size], got {self.draws}")
        if min(self.batch, default=1) < 1 or self.num_samples < 1 or self.repeats < 1:
            raise ValueError("batch, num_samples and repeats must be >= 1")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")

    def cases(self) -> list[dict[str, Any]]:
        """``[{"sweep", "value", "case": BenchCase kwargs}]`` for every size."""
        out = []
        for c in self.classes:
            out.append(("classes", c, [self.class_size] * c, int(0.3 * c * self.class_size),
                        1, self.num_samples))
        for m in self.balls:
            out.append(("balls", 3 * m, [m] * 3, int(0.9 * m), 1, self.num_samples))
        for n in self.draws:
            out.append(("draws", n, [self.draws_class_size] * 3, n, 1, self.num_samples))
        for b in self.batch:
            out.append(("batch", b, [10, 10], 10, b, 1))
        return [{"sweep": sweep, "value": value,
                 "case": dict(label=f"{sweep}={value}", population=pop, draws=n, batch=b,
                              num_samples=s, device=self.device)}
                for sweep, value, pop, n, b, s in out]


def summary_markdown(results: dict[str, Any]) -> str:
    from diffhypergeom_studies.benchmarking import format_table

    rows = results["rows"]
    lines = [f"## Sampling benchmark ({rows[0]['device'] if rows else '-'}, "
             f"{rows[0]['threads'] if rows else '-'} threads)", "",
             "draws/s: exact = `sample`; relaxed = `rsample(gradient='gumbel')` "
             "forward + backward (tables included in both). Peak memory above the process's "
             "baseline.", "",
             format_table(rows), "", "Speed-up of exact over merge (relaxed draws/s ratio):",
             ""]
    ratio_rows = []
    for exact_row in (r for r in rows if r["method"] == "exact"):
        merge_row = next((r for r in rows if r["method"] == "merge"
                          and r["label"] == exact_row["label"]), None)
        if merge_row:
            ratio_rows.append([exact_row["label"],
                               exact_row["relaxed_per_second"] / merge_row["relaxed_per_second"],
                               exact_row["exact_per_second"] / merge_row["exact_per_second"]])
    lines.append(markdown_table(["case", "relaxed exact/merge", "sample exact/merge"],
                                ratio_rows, floatfmt=".2f"))
    return "\n".join(lines) + "\n"


def run_bench(config: BenchConfig, out_dir: Path, progress: bool = True) -> dict[str, Any]:
    """Run every case for both methods, write ``results.json``, ``summary.md`` and the
    log-log figure into ``out_dir``."""
    from diffhypergeom_studies.validation.plotting import plot_bench

    config.validate()
    started = time.perf_counter()
    out_dir = Path(out_dir)
    jobs = [(spec, method) for spec in config.cases() for method in METHODS]
    with _thread_limit(config.threads):
        rows = _run_jobs(jobs, config, out_dir, progress)
    results = {"study": "bench", "config": config_dict(config), "rows": rows}
    results["figures"] = [plot_bench(rows, out_dir / "bench_throughput.png")]
    return finish(out_dir, results, summary_markdown(results), started)


@contextlib.contextmanager
def _thread_limit(threads: int | None):
    """Set ``OMP_NUM_THREADS`` (read by torch at start-up) for the case subprocesses."""
    before = os.environ.get("OMP_NUM_THREADS")
    if threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = before


def _run_jobs(jobs, config: BenchConfig, out_dir: Path, progress: bool) -> list[dict[str, Any]]:
    from tqdm.auto import tqdm

    from diffhypergeom_studies.benchmarking import BenchCase, run_case_isolated

    rows = []
    bar = tqdm(jobs, desc="bench cases", disable=not progress)
    for index, (spec, method) in enumerate(bar):
        bar.set_postfix_str(f"{spec['case']['label']} {method}")
        key = {**spec, "method": method, "repeats": config.repeats, "threads": config.threads}
        row = cached_part(out_dir, f"bench_{index:03d}", key,
                          lambda s=spec, m=method: run_case_isolated(BenchCase(**s["case"]), m,
                                                                     config.repeats))
        rows.append({**row, "sweep": spec["sweep"], "value": spec["value"]})
    return rows
