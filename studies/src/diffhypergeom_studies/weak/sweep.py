"""``methods x s values x seeds`` training runs and their summary.

Each run lives in ``<out>/runs/<method>-s<s>-seed<seed>/`` and is finished iff its
``result.json`` exists (written atomically, last); a restarted sweep skips finished runs and
resumes an interrupted one from its last checkpoint. After the runs: ``results.json`` (every
run's result and the mean/std summary), ``summary.md`` and ``summary.png``.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from tqdm import tqdm

from diffhypergeom_studies.runs import write_json_atomic, write_text_atomic
from diffhypergeom_studies.weak.config import RunConfig
from diffhypergeom_studies.weak.methods import METHODS
from diffhypergeom_studies.weak.report import aggregate_results, plot_summary, summary_markdown
from diffhypergeom_studies.weak.train import load_result, train_run

__all__ = ["run_name", "run_sweep"]


def run_name(method: str, num_shared: int, seed: int, axis: str = "s") -> str:
    """``<method>-s<s>-seed<seed>`` (``-k<k>-`` for locatello pairs)."""
    return f"{method}-{axis}{num_shared}-seed{seed}"


def _train_in_worker(config: RunConfig, run_dir: Path, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    return train_run(config, run_dir, "cpu", 1, "auto", ckpt_path="last", progress=False)


def run_sweep(out_dir: str | Path, base: RunConfig, methods: list[str], s_values: list[int],
              seeds: list[int], accelerator: str = "cpu", devices: int | str = 1,
              strategy: str = "auto", progress: bool = False,
              command: str | None = None, workers: int = 1, threads: int = 1) -> dict:
    """Run (or skip, when finished) every combination; write the summary files.

    ``s_values`` are the numbers of shared factors, or with ``base.pairs == "locatello"`` the
    ``k`` values of ``simple_dynamics`` (``-1``: random).

    ``workers > 1`` trains that many runs at once in CPU worker processes (``threads`` torch
    threads each); otherwise runs are trained one after another with the given Lightning
    ``accelerator`` / ``devices`` / ``strategy``."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if workers > 1 and accelerator not in ("cpu", "auto"):
        raise ValueError("workers > 1 runs CPU worker processes; use workers = 1 with "
                         f"accelerator={accelerator!r}")
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise ValueError(f"methods must be a non-empty subset of {METHODS}, got {methods}")
    if not s_values or not seeds:
        raise ValueError("s_values and seeds must be non-empty")
    out_dir = Path(out_dir)
    skipped: list[str] = []
    axis = "k" if base.pairs == "locatello" else "s"
    combos = [(m, s, seed) for m in methods for s in s_values for seed in seeds]
    configs = [base.with_(method=m, seed=seed, **{"k" if axis == "k" else "num_shared": s})
               for m, s, seed in combos]
    start = time.perf_counter()
    by_name: dict[str, dict] = {}
    pending = []
    for config in configs:
        run_dir = out_dir / "runs" / run_name(config.method, config.setting, config.seed, axis)
        result = load_result(run_dir)
        if result is not None:
            skipped.append(run_dir.name)
            by_name[run_dir.name] = result
        else:
            pending.append((config, run_dir))
    bar = tqdm(total=len(configs), initial=len(skipped), desc="weak sweep", unit="run")
    if workers > 1 and pending:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = {pool.submit(_train_in_worker, config, run_dir, threads): run_dir.name
                       for config, run_dir in pending}
            for future in as_completed(futures):
                by_name[futures[future]] = future.result()
                bar.update()
    else:
        for config, run_dir in pending:
            result = train_run(config, run_dir, accelerator, devices, strategy,
                               ckpt_path="last", progress=progress)
            if result is None:  # a non-zero DDP rank: rank 0 writes the summary
                return {"results": [], "summary": {}, "skipped": skipped}
            by_name[run_dir.name] = result
            bar.update()
    bar.close()
    results = [by_name[run_name(c.method, c.setting, c.seed, axis)] for c in configs]
    summary = aggregate_results(results)
    s_sorted = sorted(set(s_values))
    write_json_atomic(out_dir / "results.json", {
        "methods": methods, "s_values": s_sorted, "axis": axis, "seeds": seeds,
        "base_config": base.to_dict(),
        "skipped_finished_runs": skipped, "sweep_seconds": time.perf_counter() - start,
        "runs": results, "summary": {m: {str(s): e for s, e in v.items()}
                                     for m, v in summary.items()}})
    header = ["# Weak supervision sweep", ""]
    if command:
        header += [f"Command: `{command}`", ""]
    header += [f"Dataset {base.dataset}, {base.image_size}x{base.image_size} images, "
               f"{base.steps} steps of batch {base.batch_size}, lr {base.lr}, latent dim "
               f"{base.latent_dim or 'K'}, aggregation {base.aggregation}, pairs {base.pairs}, "
               f"seeds {seeds}. "
               "Figure: summary.png; learning curves: runs/*/curves.png."]
    write_text_atomic(out_dir / "summary.md",
                      summary_markdown(summary, methods, s_sorted, header, axis))
    plot_summary(summary, methods, s_sorted, out_dir / "summary.png", axis)
    return {"results": results, "summary": summary, "skipped": skipped}
