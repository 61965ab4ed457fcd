"""The paper's Kolmogorov-Smirnov study (Section 5.1, Figures 1, 9 and 10), extended.

For each urn setting (three classes), ``num_samples`` draws of each library sampler are compared
class by class with a two-sample KS test (``scipy.stats.ks_2samp``) against

- an independent exact reference (``reference.enumerate_urn``: numpy/scipy enumeration and
  ``Generator.choice``, no library code), and
- for the merge sampler also the paper's merged reference (sequential
  ``scipy.stats.nchypergeom_fisher`` draws with merged weights).

The three p-values of a comparison are corrected with Benjamini-Hochberg
(``scipy.stats.false_discovery_control``); a class is rejected when the adjusted p < ``alpha``.
Each sampler's empirical marginals are also compared with the exact marginals by total variation
``TV = 0.5 * sum_k |p_hat(k) - p(k)|`` (the reference's own TV gives the sampling-noise floor),
and the merge sampler's *exact* law (``reference.merged_law``) gives its population-level TV.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from diffhypergeom.laws.fisher import MultivariateFisherNCHypergeometric
from diffhypergeom.laws.merged import MergedFisherNCHypergeometric
from diffhypergeom_studies.runs import markdown_table
from diffhypergeom_studies.validation import reference
from diffhypergeom_studies.validation.common import (
    cached_part,
    config_dict,
    finish,
    seed_everything,
)

__all__ = [
    "COMPARISONS", "KSConfig", "compare", "library_draws", "marginal_tv", "plot", "run_ks",
    "run_setting", "summary_markdown", "totals",
]

# (library sampler, reference) pairs compared in every setting
COMPARISONS = (
    ("exact-rsample", "exact"),
    ("exact-sample", "exact"),
    ("merge-rsample", "exact"),
    ("merge-rsample", "merged"),
)


@dataclass
class KSConfig:
    """Sizes of the KS study. ``weight_values`` sweeps w2 with ``w = [1, w2, 1]``,
    ``m = [m, m, m]`` and ``n = draws`` (Figure 1); ``draw_values`` sweeps n with
    ``w = [1, 5, 1]`` (Figure 9); ``middle_values`` sweeps m2 with ``n = 200`` (Figure 10)."""

    num_samples: int = 50_000
    class_size: int = 200
    draws: int = 180
    weight_values: list[float] = field(default_factory=lambda: [float(w) for w in range(1, 11)])
    draw_values: list[int] = field(
        default_factory=lambda: [20, 60, 100, 180, 260, 340, 420, 500, 580])
    middle_values: list[int] = field(
        default_factory=lambda: [20, 50, 100, 150, 200, 300, 400, 500])
    sweep_weight: float = 5.0
    sweep_draws: int = 200
    alpha: float = 0.05
    seed: int = 0

    @classmethod
    def paper(cls, seed: int = 0) -> KSConfig:
        return cls(seed=seed)

    @classmethod
    def quick(cls, seed: int = 0) -> KSConfig:
        return cls(num_samples=10_000, weight_values=[1.0, 2.0, 5.0, 10.0], draw_values=[60, 420],
                   middle_values=[50, 400], seed=seed)

    def validate(self) -> None:
        if self.num_samples < 10:
            raise ValueError(f"num_samples must be >= 10, got {self.num_samples}")
        if self.class_size < 1 or not 0 < self.draws <= 3 * self.class_size:
            raise ValueError("class_size must be >= 1 and draws in (0, 3 * class_size]")
        if any(w <= 0 for w in self.weight_values):
            raise ValueError(f"weight_values must be > 0, got {self.weight_values}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")

    def settings(self) -> list[dict[str, Any]]:
        """Every urn of the study, tagged with its figure and swept value."""
        m = self.class_size
        out = [dict(figure="w2", value=w, population=[m, m, m], draws=self.draws,
                    weights=[1.0, w, 1.0]) for w in self.weight_values]
        out += [dict(figure="n", value=n, population=[m, m, m], draws=n,
                     weights=[1.0, self.sweep_weight, 1.0])
                for n in self.draw_values if 0 < n <= 3 * m]
        out += [dict(figure="m2", value=m2, population=[m, m2, m], draws=self.sweep_draws,
                     weights=[1.0, self.sweep_weight, 1.0])
                for m2 in self.middle_values if self.sweep_draws <= 2 * m + m2]
        return out


def library_draws(setting: dict[str, Any], sampler: str, num: int) -> np.ndarray:
    """``[num, 3]`` int64 draws of one library sampler (``"<method>-rsample"``: the argmax of the
    Gumbel-perturbed conditionals, ``rsample(gradient="gumbel")``, or
    ``"exact-sample"``: inverse-CDF ``sample``), without autograd."""
    method, kind = sampler.split("-")
    law = MergedFisherNCHypergeometric if method == "merge" else MultivariateFisherNCHypergeometric
    dist = law(torch.tensor(setting["population"]), setting["draws"],
               weights=torch.tensor(setting["weights"], dtype=torch.float64))
    # the fixed class order 1, 2, 3 of the paper's Algorithm 1 and of the merged reference
    fixed = {} if method == "merge" else {"permute": False}
    with torch.no_grad():
        draws = (dist.rsample((num,), gradient="gumbel", **fixed)
                 if kind == "rsample" else dist.sample((num,)))
    return draws.round().to(torch.int64).numpy()


def compare(samples: np.ndarray, ref: np.ndarray, alpha: float) -> dict[str, Any]:
    """Per-class two-sample KS tests with Benjamini-Hochberg over the classes."""
    from scipy.stats import false_discovery_control, ks_2samp

    tests = [ks_2samp(samples[:, i], ref[:, i]) for i in range(samples.shape[1])]
    p_values = np.array([t.pvalue for t in tests])
    adjusted = false_discovery_control(p_values, method="bh")
    return {
        "ks_statistic": [float(t.statistic) for t in tests],
        "p_value": p_values.tolist(),
        "p_adjusted": adjusted.tolist(),
        "rejected": (adjusted < alpha).tolist(),
        "num_rejected": int((adjusted < alpha).sum()),
    }


def marginal_tv(samples: np.ndarray, urn: reference.EnumeratedUrn) -> list[float]:
    """TV distance of each empirical marginal from the exact one."""
    return [reference.total_variation(
        reference.empirical_marginal(samples, i, int(urn.population[i]) + 1), urn.marginal(i))
        for i in range(samples.shape[1])]


def run_setting(setting: dict[str, Any], config: KSConfig, index: int) -> dict[str, Any]:
    """All comparisons of one urn setting (seeded by ``(config.seed, index)``)."""
    rng = seed_everything(config.seed, index)
    num = config.num_samples
    pop, n, w = setting["population"], setting["draws"], setting["weights"]
    exact = reference.enumerate_urn(pop, n, w)
    merged = reference.merged_law(pop, n, w)
    refs = {"exact": exact.draw(num, rng), "merged": reference.merged_draws(pop, n, w, num, rng)}
    # a fixed order of the samplers (not a set's) keeps the torch random stream reproducible
    draws = {s: library_draws(setting, s, num) for s in dict.fromkeys(s for s, _ in COMPARISONS)}
    comparisons = []
    for sampler, ref_name in COMPARISONS:
        row = {"sampler": sampler, "reference": ref_name}
        row.update(compare(draws[sampler], refs[ref_name], config.alpha))
        row["tv"] = marginal_tv(draws[sampler], exact)
        comparisons.append(row)
    size = max(pop) + 1
    return {
        **setting,
        "comparisons": comparisons,
        "tv_reference": marginal_tv(refs["exact"], exact),
        "tv_merge_law": [reference.total_variation(merged.marginal(i), exact.marginal(i))
                         for i in range(3)],
        "mean_exact": exact.mean().tolist(),
        "mean_merge_law": merged.mean().tolist(),
        # class-2 histograms for the figure (library exact / merge, reference)
        "histograms": {
            "exact-rsample": np.bincount(draws["exact-rsample"][:, 1], minlength=size).tolist(),
            "merge-rsample": np.bincount(draws["merge-rsample"][:, 1], minlength=size).tolist(),
            "reference": np.bincount(refs["exact"][:, 1], minlength=size).tolist(),
        },
    }


def totals(settings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per comparison: how many class tests were run and rejected, and the largest TV."""
    out = []
    for k, (sampler, ref_name) in enumerate(COMPARISONS):
        rows = [s["comparisons"][k] for s in settings]
        out.append({
            "sampler": sampler, "reference": ref_name,
            "tests": sum(len(r["rejected"]) for r in rows),
            "rejected": sum(r["num_rejected"] for r in rows),
            "max_ks_statistic": max(max(r["ks_statistic"]) for r in rows),
            "min_p_adjusted": min(min(r["p_adjusted"]) for r in rows),
            "max_tv": max(max(r["tv"]) for r in rows),
        })
    return out


def summary_markdown(results: dict[str, Any]) -> str:
    cfg = results["config"]
    lines = [f"## KS study ({cfg['num_samples']} samples per setting, "
             f"BH-corrected alpha = {cfg['alpha']})", "",
             "Rejected class tests out of all (3 per setting), per sampler and reference. Under "
             "the null hypothesis each setting's BH-corrected family rejects anything with "
             f"probability <= alpha, so up to ~{cfg['alpha'] * len(results['settings']):.1f} "
             "settings per sampler may reject by chance (KS on discrete data is conservative, "
             "so fewer are typical).", ""]
    lines.append(markdown_table(
        ["sampler", "reference", "rejected / tests", "max KS D", "min adj. p", "max TV"],
        [[t["sampler"], t["reference"], f"{t['rejected']} / {t['tests']}",
          t["max_ks_statistic"], t["min_p_adjusted"], t["max_tv"]] for t in results["totals"]]))
    lines += ["", "Per setting (KS D and adjusted p of class 2; TV = max over classes of the "
              "empirical-marginal TV vs the exact marginal; 'merge law TV' is the exact TV of "
              "the merge sampler's class-1 marginal; 'ref TV' is the reference's own sampling "
              "noise):", ""]
    rows = []
    for s in results["settings"]:
        c = {f"{x['sampler']}|{x['reference']}": x for x in s["comparisons"]}
        ex, me, mm = c["exact-rsample|exact"], c["merge-rsample|exact"], c["merge-rsample|merged"]
        rows.append([
            f"{s['figure']}={s['value']:g}", f"{ex['ks_statistic'][1]:.4f}",
            f"{ex['p_adjusted'][1]:.3f}", ex["num_rejected"], f"{max(ex['tv']):.4f}",
            f"{me['ks_statistic'][1]:.4f}", f"{me['p_adjusted'][1]:.2g}", me["num_rejected"],
            f"{max(me['tv']):.4f}", mm["num_rejected"], f"{s['tv_merge_law'][0]:.4f}",
            f"{max(s['tv_reference']):.4f}"])
    lines.append(markdown_table(
        ["setting", "exact D", "exact adj. p", "exact rej.", "exact TV", "merge D",
         "merge adj. p", "merge rej.", "merge TV", "merge vs merged-ref rej.", "merge law TV",
         "ref TV"], rows))
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], out_dir: Path) -> list[str]:
    """Figure 1a (class-2 histograms per w2), Figure 1b (KS distance and adjusted p-value
    against w2) and the same KS panels against n (Figure 9) and m2 (Figure 10)."""
    from diffhypergeom_studies.validation.plotting import plot_histograms, plot_ks_sweep

    names = []
    weights = [s for s in results["settings"] if s["figure"] == "w2"]
    if weights:
        names.append(plot_histograms(weights, out_dir / "ks_histograms_class2.png"))
    for label in ("w2", "n", "m2"):
        rows = [s for s in results["settings"] if s["figure"] == label]
        if rows:
            names.append(plot_ks_sweep(rows, label, results["config"]["alpha"],
                                       out_dir / f"ks_vs_{label}.png"))
    return names


def run_ks(config: KSConfig, out_dir: Path, progress: bool = True) -> dict[str, Any]:
    """Run the study, write ``results.json``, ``summary.md`` and figures into ``out_dir``."""
    from tqdm.auto import tqdm

    config.validate()
    started = time.perf_counter()
    out_dir = Path(out_dir)
    settings = config.settings()
    done = []
    for index, setting in enumerate(tqdm(settings, desc="ks settings", disable=not progress)):
        key = {"setting": setting, "num_samples": config.num_samples, "seed": config.seed,
               "alpha": config.alpha, "index": index}
        done.append(cached_part(out_dir, f"ks_{index:03d}", key,
                                lambda s=setting, i=index: run_setting(s, config, i)))
    results = {"study": "ks", "config": config_dict(config), "settings": done,
               "totals": totals(done)}
    results["figures"] = plot(results, out_dir)
    return finish(out_dir, results, summary_markdown(results), started)
