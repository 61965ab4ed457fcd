"""The k-subset task benchmark (``diffhypergeom subsets``): every method trains every task for
the same wall-clock budget on each of several seeds; the test metric is taken at fixed
checkpoints of training time. Same seed, same task: the same data split, initialisation and
minibatches for every method.

Each (task, method, seed) cell is stored in ``parts/`` as it finishes, so a restarted run skips
the finished cells (a cell's key holds the settings that change its result, the thread count
included). The run writes ``results.json``, ``summary.md`` (per task: the final metric's mean
and standard deviation per method, and the paired comparison of the library's best method with
the best peer) and one figure per task, ``subsets_<task>.png``.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from diffhypergeom_studies.runs import markdown_table
from diffhypergeom_studies.subsets import l2x, selection, vae
from diffhypergeom_studies.subsets.methods import Loss, Method, control_method, library_method
from diffhypergeom_studies.subsets.names import (
    CONTROL_METHODS,
    LIBRARY_METHODS,
    PEER_METHODS,
    TASKS,
)
from diffhypergeom_studies.subsets.peers import (
    Peers,
    load_peers,
    peer_method,
    working_directory,
)
from diffhypergeom_studies.subsets.stats import ALPHA, best_method, paired_comparison
from diffhypergeom_studies.subsets.task import TaskSpec
from diffhypergeom_studies.subsets.training import Budget, train
from diffhypergeom_studies.validation.common import (
    cached_part,
    config_dict,
    finish,
    seed_everything,
)

__all__ = ["SPECS", "SubsetsConfig", "run_cell", "run_subsets", "summarise_task",
           "summary_markdown"]

SPECS: dict[str, TaskSpec] = {spec.name: spec for spec in (l2x.SPEC, vae.SPEC, selection.SPEC)}


@dataclass
class SubsetsConfig:
    """Settings of the task benchmark. ``methods=None``: the library's methods and, with
    ``peers`` (the path of a copy of klaswijk/sfess), the peers'. ``steps`` replaces the
    wall-clock ``budget`` by a number of steps (deterministic; not equal time)."""

    tasks: list[str] = field(default_factory=lambda: list(TASKS))
    methods: list[str] | None = None
    peers: str | None = None
    seeds: int = 5
    seed: int = 0
    budget: float = 6.0
    steps: int | None = None
    checkpoints: int = 10
    samples: int = 8
    threads: int | None = None

    @classmethod
    def quick(cls, seed: int = 0) -> SubsetsConfig:
        return cls(seeds=1, seed=seed, budget=1.0, checkpoints=4)

    def method_names(self) -> list[str]:
        if self.methods is not None:
            return list(self.methods)
        return list(LIBRARY_METHODS) + (list(PEER_METHODS) if self.peers else [])

    def budget_(self) -> Budget:
        if self.steps is not None:
            return Budget(steps=self.steps, checkpoints=self.checkpoints)
        return Budget(seconds=self.budget, checkpoints=self.checkpoints)

    def validate(self) -> None:
        unknown = [t for t in self.tasks if t not in SPECS]
        if unknown or not self.tasks:
            raise ValueError(f"tasks must be among {list(SPECS)}, got {self.tasks}")
        known = {**LIBRARY_METHODS, **PEER_METHODS, **CONTROL_METHODS}
        names = self.method_names()
        unknown = [m for m in names if m not in known]
        if unknown or not names:
            raise ValueError(f"methods must be among {list(known)}, got {names}")
        if len(set(names)) != len(names) or len(set(self.tasks)) != len(self.tasks):
            raise ValueError("tasks and methods must not repeat")
        if not self.peers and any(m in PEER_METHODS for m in names):
            raise ValueError("the peers' methods need --peers PATH (a local copy of "
                             "klaswijk/sfess)")
        if self.peers and not (Path(self.peers).expanduser() / "samplers").is_dir():
            raise ValueError(f"--peers {self.peers}: no samplers/ folder there (give the root "
                             "folder of a copy of klaswijk/sfess)")
        if self.seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {self.seeds}")
        if self.samples < 2:
            raise ValueError(f"samples must be >= 2 (the leave-one-out baselines), got "
                             f"{self.samples}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        self.budget_()  # its own checks


def _method(name: str, peers: Peers | None) -> Method:
    if name in LIBRARY_METHODS:
        return library_method(name)
    if name in CONTROL_METHODS:
        return control_method(name)
    assert peers is not None  # validate() checked
    return peer_method(peers, name)


def run_cell(spec: TaskSpec, method: Method, loss: Loss, seed: int, budget: Budget
             ) -> dict[str, Any]:
    """Train one model: ``spec``'s for ``seed`` (split and initialisation from ``(seed,
    spec.stream)``), with ``loss`` (``method``'s), under ``budget``."""
    seed_everything(seed, spec.stream)
    model = spec.build(seed)
    generator = torch.Generator().manual_seed(int(seed) * 1000 + spec.stream)
    seed_everything(seed, spec.stream, 1)  # the draws' stream starts alike for every method
    result = train(model, loss, budget, spec.batch_size, generator)
    return {"task": spec.name, "method": method.name, "family": method.family, "seed": seed,
            **result}


def summarise_task(spec: TaskSpec, cells: list[dict[str, Any]], methods: dict[str, Method]
                   ) -> dict[str, Any]:
    """Per method: the final metric per seed, its mean and sd, the curve's mean and sd at each
    checkpoint, steps and ms per step; and the paired comparison of the best library method
    with the best peer (``None`` without peers)."""
    out: dict[str, Any] = {
        "title": spec.title, "description": spec.description, "metric": spec.metric,
        "metric_label": spec.metric_label, "higher_is_better": spec.higher_is_better,
        "items": spec.items, "k": spec.k, "methods": {}}
    for name, method in methods.items():
        rows = sorted((c for c in cells if c["method"] == name), key=lambda c: c["seed"])
        curves = np.array([[p["metrics"][spec.metric] for p in c["checkpoints"]] for c in rows],
                          dtype=float)
        final = curves[:, -1]
        out["methods"][name] = {
            "family": method.family, "seeds": [c["seed"] for c in rows],
            "final": final.tolist(), "mean": float(final.mean()),
            "sd": float(final.std(ddof=1)) if len(final) > 1 else 0.0,
            "marks": [p["mark"] for p in rows[0]["checkpoints"]],
            "curve_mean": curves.mean(0).tolist(),
            "curve_sd": (curves.std(0, ddof=1) if len(rows) > 1
                         else np.zeros(curves.shape[1])).tolist(),
            "steps": float(np.mean([c["steps"] for c in rows])),
            "ms_per_step": float(np.mean([c["ms_per_step"] for c in rows])),
            "warmup_seconds": float(np.mean([c["warmup_seconds"] for c in rows])),
            "nonfinite_steps": int(sum(c["nonfinite_steps"] for c in rows))}
    finals = {family: {n: m["final"] for n, m in out["methods"].items() if m["family"] == family}
              for family in ("library", "peer")}
    best = {family: best_method(finals[family], spec.higher_is_better) for family in finals}
    out["best_library"], out["best_peer"] = best["library"], best["peer"]
    out["comparison"] = None
    if best["library"] and best["peer"]:
        out["comparison"] = paired_comparison(finals["library"][best["library"]],
                                              finals["peer"][best["peer"]],
                                              spec.higher_is_better)
    return out


def _mean_sd(m: dict[str, Any]) -> str:
    return f"{m['mean']:.4f} ± {m['sd']:.4f}"


def _task_markdown(name: str, task: dict[str, Any], unit: str) -> list[str]:
    better = "higher" if task["higher_is_better"] else "lower"
    lines = [f"### {task['title']}", "", task["description"], "",
             f"Metric: {task['metric_label']}, {better} is better. Final = at the end of the "
             f"budget.", ""]
    rows, middle = [], None
    for method, m in task["methods"].items():
        middle = len(m["marks"]) // 2
        rows.append([method, m["family"], _mean_sd(m), f"{m['curve_mean'][middle]:.4f}",
                     f"{m['steps']:.0f}", f"{m['ms_per_step']:.1f}"])
    first = next(iter(task["methods"].values()))
    at = f"at {first['marks'][middle]:g} {'s' if unit == 'seconds' else 'steps'} (mean)"
    lines.append(markdown_table(["method", "family", "final (mean ± sd)", at,
                                 "steps per run", "ms per step"], rows))
    lines.append("")
    comparison = task["comparison"]
    if comparison is None:
        lines += ["No paired comparison: it needs both a library method and a peer.", ""]
        return lines
    lib, peer = task["best_library"], task["best_peer"]
    c = comparison
    lines += [
        f"Best library method **{lib}** ({_mean_sd(task['methods'][lib])}) against the best "
        f"peer **{peer}** ({_mean_sd(task['methods'][peer])}), paired over {c['n']} seeds: "
        f"the library is better on {c['wins']}, the peer on {c['losses']}, tied on "
        f"{c['ties']}; mean difference {c['mean_difference']:+.4f} (positive favours the "
        f"library); paired t-test p = {c['t_p_value']:.3g}, Wilcoxon p = "
        f"{c['wilcoxon_p_value']:.3g}. **Verdict: {c['verdict']}**"
        + (f" (t-test at {ALPHA})." if c["verdict"] not in ("too few seeds", "not finite")
           else "."), ""]
    if unit == "steps":
        lines += ["(Budget in steps: this compares at equal steps, not at equal time.)", ""]
    return lines


def _overall(compared: dict[str, dict[str, Any]]) -> str:
    """The library's best against the best peer, over the tasks that have both."""
    def listed(names: list[str]) -> str:
        return f" ({', '.join(names)})" if names else ""

    at_or_above = [n for n, t in compared.items() if t["comparison"]["mean_difference"] >= 0]
    below = [n for n in compared if n not in at_or_above]
    better = [n for n, t in compared.items() if t["comparison"]["verdict"] == "library better"]
    worse = [n for n, t in compared.items() if t["comparison"]["verdict"] == "peer better"]
    return (f"The library's best method is at or above the best peer (by the mean) on "
            f"{len(at_or_above)} of {len(compared)} tasks{listed(at_or_above)} and below it on "
            f"{len(below)}{listed(below)}. Significantly better (paired t-test, p < {ALPHA}) "
            f"on {len(better)}{listed(better)}; significantly worse on "
            f"{len(worse)}{listed(worse)}. The best of each family is picked on these same "
            "runs, for the library and the peers alike.")


def summary_markdown(results: dict[str, Any]) -> str:
    cfg = results["config"]
    unit = results["budget_unit"]
    budget = (f"{cfg['budget']:g} s of training (wall clock)" if unit == "seconds"
              else f"{cfg['steps']} training steps")
    lines = ["## k-subset gradient estimators on tasks at equal wall-clock time", "",
             f"Every method trains every task for {budget} per seed, {cfg['seeds']} seeds "
             f"(seeds {cfg['seed']}..{cfg['seed'] + cfg['seeds'] - 1}; a seed fixes the data "
             f"split, the initialisation and the minibatches, the same for every method); "
             f"S = {cfg['samples']} draws per step; the test metric at {cfg['checkpoints']} "
             f"checkpoints, off the clock (one warm-up step off the clock too); "
             f"{results['threads']} torch threads.", "",
             f"Peers: {results['peers']['note']}", "",
             "Methods: " + "; ".join(f"`{n}`: {d}" for n, d in results["methods"].items()), ""]
    for name, task in results["tasks"].items():
        lines += _task_markdown(name, task, unit)
    compared = {n: t for n, t in results["tasks"].items() if t["comparison"] is not None}
    if compared:
        lines += ["### Overall", "", _overall(compared), ""]
    lines += ["Figures: " + ", ".join(results["figures"]), ""]
    return "\n".join(lines)


def run_subsets(config: SubsetsConfig, out_dir: Path, progress: bool = True
                ) -> dict[str, Any]:
    """Run the benchmark into ``out_dir``; return the results (with the summary)."""
    from tqdm.auto import tqdm

    from diffhypergeom_studies.subsets.plotting import plot_task

    config.validate()
    started = time.perf_counter()
    out_dir = Path(out_dir).resolve()
    peers = load_peers(config.peers) if config.peers else None
    if peers is None:
        note = ("skipped: no --peers PATH given (a local copy of klaswijk/sfess); the "
                "library's methods only")
        print(f"Peers {note}.")
    else:
        note = f"klaswijk/sfess from {peers.path}"
    names = config.method_names()
    methods = {name: _method(name, peers) for name in names}
    budget = config.budget_()
    threads_before = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    threads = torch.get_num_threads()
    losses: dict[tuple[str, int], Loss] = {}  # one per method and k (SIMPLE keeps its circuit)
    cells = [(task, name, config.seed + i) for task in config.tasks for name in names
             for i in range(config.seeds)]
    results_cells: dict[str, list[dict[str, Any]]] = {task: [] for task in config.tasks}
    place = (working_directory(out_dir / "peers-cwd") if peers is not None
             else contextlib.nullcontext())
    try:
        with place:
            bar = tqdm(cells, desc="subsets cells", disable=not progress)
            for task, name, seed in bar:
                bar.set_postfix_str(f"{task} {name} seed {seed}")
                spec, method = SPECS[task], methods[name]
                key = {"task": task, "method": name, "seed": seed, "samples": config.samples,
                       "budget": budget.seconds, "steps": budget.steps,
                       "checkpoints": budget.checkpoints, "threads": threads}

                def compute(spec=spec, method=method, seed=seed) -> dict[str, Any]:
                    loss = losses.get((method.name, spec.k))
                    if loss is None:
                        loss = losses[method.name, spec.k] = method.build(spec.k,
                                                                          config.samples)
                    return run_cell(spec, method, loss, seed, budget)

                results_cells[task].append(
                    cached_part(out_dir, f"{task}_{name}_seed{seed:03d}", key, compute))
    finally:
        torch.set_num_threads(threads_before)
    results: dict[str, Any] = {
        "study": "subsets", "config": config_dict(config), "budget_unit": budget.unit,
        "threads": threads, "methods": {n: m.description for n, m in methods.items()},
        "peers": {"path": str(peers.path) if peers else None, "note": note},
        "tasks": {task: summarise_task(SPECS[task], results_cells[task], methods)
                  for task in config.tasks},
        "cells": [c for task in config.tasks for c in results_cells[task]]}
    results["figures"] = [plot_task(task, results["tasks"][task], budget.unit,
                                    out_dir / f"subsets_{task}.png")
                          for task in config.tasks]
    return finish(out_dir, results, summary_markdown(results), started)
