"""The whole validation suite in quick mode (``diffhypergeom validate``): every study writes
into its own subfolder of one run directory; a combined ``results.json`` and ``summary.md``
give an overview line per study followed by each study's own summary."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from diffhypergeom_studies.runs import markdown_table
from diffhypergeom_studies.validation.common import finish

__all__ = ["STUDIES", "run_suite"]

STUDIES = ("ks", "urn", "gradients", "bench")


def _headline(name: str, results: dict[str, Any]) -> str:
    if name == "ks":
        t = {f"{r['sampler']}|{r['reference']}": r for r in results["totals"]}
        parts = [f"{label}: {t[k]['rejected']}/{t[k]['tests']} tests reject"
                 for label, k in (("exact rsample vs exact ref", "exact-rsample|exact"),
                                  ("exact sample vs exact ref", "exact-sample|exact"),
                                  ("merge vs exact ref", "merge-rsample|exact"),
                                  ("merge vs merged ref", "merge-rsample|merged"))]
        chance = results["config"]["alpha"] * len(results["settings"])
        return "; ".join(parts) + f" (by chance under H0: <= ~{chance:.1f} settings per sampler)"
    if name == "urn":
        return "; ".join(f"{k}: recovered {v['recovered']}/{v['settings']} "
                         f"(median err {v['median_error']:.3f})"
                         for k, v in results["totals"].items())
    if name == "gradients":
        goals = results["goals"]
        default = goals["pathwise, mean (default rsample)"]
        best = min((g for k, g in goals.items() if k.startswith("reinforce")),
                   key=lambda g: g["max_relative_spread"])
        best_name = next(k for k, g in goals.items() if g is best)
        return (f"default rsample: max rel. bias {default['max_relative_bias']:.3f} on smooth "
                f"f; best score estimator: {best_name} (max rel. spread "
                f"{best['max_relative_spread']:.2f}); exact gradient = finite difference to "
                f"{results['max_finite_difference_error']:.1e}")
    rows = [r for r in results["rows"] if r["sweep"] == "balls" and r["method"] == "exact"]
    if rows:
        r = max(rows, key=lambda r: r["value"])
        return (f"exact, 3 classes, {r['balls']} balls, n = {r['draws']}: "
                f"{r['relaxed_per_second']:,.0f} relaxed draws/s (fwd+bwd), "
                f"{r['exact_per_second']:,.0f} exact draws/s")
    return f"{len(results['rows'])} cases"


def run_suite(out_dir: Path, seed: int = 0, device: str = "cpu", skip=(),
              progress: bool = True) -> dict[str, Any]:
    """Run the quick version of every study not in ``skip`` into ``out_dir/<study>/``."""
    from diffhypergeom_studies.validation.bench import BenchConfig, run_bench
    from diffhypergeom_studies.validation.gradients import GradientConfig, run_gradients
    from diffhypergeom_studies.validation.ks import KSConfig, run_ks
    from diffhypergeom_studies.validation.urn import UrnConfig, run_urn

    unknown = set(skip) - set(STUDIES)
    if unknown:
        raise ValueError(f"skip must name studies among {STUDIES}, got {sorted(unknown)}")
    if "bench" not in skip:
        BenchConfig.quick(device).validate()  # fail before the other studies run, not after
    runners = {
        "ks": lambda d: run_ks(KSConfig.quick(seed), d, progress),
        "urn": lambda d: run_urn(UrnConfig.quick(seed), d, progress),
        "gradients": lambda d: run_gradients(GradientConfig.quick(seed), d, progress),
        "bench": lambda d: run_bench(BenchConfig.quick(device), d, progress),
    }
    started = time.perf_counter()
    out_dir = Path(out_dir)
    studies: dict[str, Any] = {}
    summaries = []
    for name in STUDIES:
        if name in skip:
            continue
        results = runners[name](out_dir / name)
        studies[name] = {"directory": name, "runtime_seconds": results["runtime_seconds"],
                         "headline": _headline(name, results)}
        summaries.append(results["summary"])
    overview = markdown_table(
        ["study", "headline", "runtime s"],
        [[name, s["headline"], f"{s['runtime_seconds']:.1f}"] for name, s in studies.items()])
    summary = "\n\n".join(["# Validation suite (quick mode)", overview, *summaries])
    return finish(out_dir, {"study": "validate", "seed": seed, "studies": studies}, summary,
                  started)
