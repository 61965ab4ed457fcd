"""Figures of the validation studies (matplotlib on the Agg backend, written as PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from diffhypergeom_studies.validation.common import pyplot, save_figure

__all__ = [
    "CLASS_COLOURS", "plot_bench", "plot_gradient_study", "plot_histograms", "plot_ks_sweep",
    "plot_urn_curves", "plot_urn_errors", "plot_urn_trajectories",
]

CLASS_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")


def plot_histograms(settings: list[dict[str, Any]], path: Path) -> str:
    """Class-2 histograms per w2: library exact and merge samplers vs the exact reference."""
    plt = pyplot()
    cols = min(5, len(settings))
    rows = int(np.ceil(len(settings) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, s in zip(axes.flat, settings, strict=False):
        hist = {k: np.asarray(v, dtype=float) for k, v in s["histograms"].items()}
        total = hist["reference"].sum()
        support = np.flatnonzero(sum(hist.values()) > 0)
        lo, hi = support.min(), support.max() + 1
        k = np.arange(lo, hi)
        ax.bar(k, hist["reference"][lo:hi] / total, width=1.0, color="0.75",
               label="exact reference (numpy)")
        ax.step(k, hist["exact-rsample"][lo:hi] / total, where="mid", color="tab:blue",
                label="library exact (rsample)")
        ax.step(k, hist["merge-rsample"][lo:hi] / total, where="mid", color="tab:red",
                label="library merge (paper)")
        ax.set_title(f"w2 = {s['value']:g}", fontsize=9)
        ax.set_xlabel("class-2 count", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(settings):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6, loc="upper left")
    fig.suptitle("Class-2 histograms, m = [200, 200, 200], n = 180, w = [1, w2, 1]")
    fig.tight_layout()
    save_figure(fig, path)
    return path.name


def plot_ks_sweep(settings: list[dict[str, Any]], label: str, alpha: float, path: Path) -> str:
    """KS distance (top) and BH-adjusted p-value (bottom) per class against the swept value,
    for the exact sampler vs the exact reference and the merge sampler vs both references."""
    plt = pyplot()
    x = [s["value"] for s in settings]
    panels = [("exact-rsample", "exact", "library exact vs exact reference"),
              ("merge-rsample", "exact", "library merge vs exact reference"),
              ("merge-rsample", "merged", "library merge vs merged (paper) reference")]
    fig, axes = plt.subplots(2, len(panels), figsize=(4.2 * len(panels), 5.6), sharex=True)
    for col, (sampler, ref_name, title) in enumerate(panels):
        rows = [next(c for c in s["comparisons"]
                     if c["sampler"] == sampler and c["reference"] == ref_name)
                for s in settings]
        for i in range(len(rows[0]["ks_statistic"])):
            colour = CLASS_COLOURS[i % len(CLASS_COLOURS)]
            axes[0, col].plot(x, [r["ks_statistic"][i] for r in rows], "o-", color=colour,
                              label=f"class {i + 1}")
            axes[1, col].plot(x, [max(r["p_adjusted"][i], 1e-300) for r in rows], "o-",
                              color=colour)
        axes[1, col].axhline(alpha, color="k", ls="--", lw=0.8, label=f"alpha = {alpha}")
        axes[1, col].set_yscale("log")
        axes[0, col].set_title(title, fontsize=9)
        axes[1, col].set_xlabel(label)
    axes[0, 0].set_ylabel("KS distance D")
    axes[1, 0].set_ylabel("BH-adjusted p-value")
    axes[0, 0].legend(fontsize=7)
    axes[1, 0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
    return path.name


def _estimator_names(results: dict[str, Any]) -> list[str]:
    return list(results["settings"][0]["estimators"])


def plot_urn_curves(results: dict[str, Any], path: Path) -> str:
    """Figure 7: training (per step) and validation (markers) losses per w2, one panel per
    estimator (the relaxed ones on the paper's loss, ML on the NLL)."""
    plt = pyplot()
    names = _estimator_names(results)
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.6), squeeze=False)
    cmap = plt.get_cmap("viridis")
    settings = results["settings"]
    for ax, name in zip(axes[0], names, strict=True):
        for j, s in enumerate(settings):
            e = s["estimators"][name]
            colour = cmap(j / max(1, len(settings) - 1))
            ax.plot(np.arange(1, len(e["train_curve"]) + 1), e["train_curve"], color=colour,
                    lw=0.7, alpha=0.8, label=f"w2 = {s['w2']:g}")
            steps, losses = zip(*e["valid_curve"], strict=True)
            ax.plot(steps, losses, "o", color=colour, ms=3)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel("NLL" if name == "ml" else "paper loss ||x - X||^2")
        ax.set_yscale("log")
    axes[0, 0].legend(fontsize=6, ncol=2)
    fig.suptitle("Training (lines) and validation (dots) losses")
    fig.tight_layout()
    save_figure(fig, path)
    return path.name


def plot_urn_trajectories(results: dict[str, Any], path: Path) -> str:
    """Figure 8: the estimated log w (raw, not centred: the scale drifts) over training, one
    row per estimator, one column per class; dashed: centred truth."""
    plt = pyplot()
    names = _estimator_names(results)
    c = len(results["config"]["population"])
    fig, axes = plt.subplots(len(names), c, figsize=(3.6 * c, 2.6 * len(names)), squeeze=False)
    cmap = plt.get_cmap("viridis")
    settings = results["settings"]
    for r, name in enumerate(names):
        for j, s in enumerate(settings):
            trajectory = np.asarray(s["estimators"][name]["trajectory"])
            colour = cmap(j / max(1, len(settings) - 1))
            for i in range(c):
                axes[r, i].plot(trajectory[:, i], color=colour, lw=0.8,
                                label=f"w2 = {s['w2']:g}")
                axes[r, i].axhline(s["estimators"][name]["centred_truth"][i], color=colour,
                                   ls="--", lw=0.5)
        for i in range(c):
            axes[r, i].set_title(f"{name}: log w{i + 1}", fontsize=9)
            axes[r, i].set_xlabel("step", fontsize=8)
    axes[0, 0].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    save_figure(fig, path)
    return path.name


def plot_urn_errors(results: dict[str, Any], path: Path) -> str:
    """Centred log-weight error against w2 per estimator, with the MLE's asymptotic 1.96-sigma
    band of the class-2 coordinate for scale."""
    plt = pyplot()
    settings = results["settings"]
    w2 = [s["w2"] for s in settings]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for name in _estimator_names(results):
        ax.plot(w2, [s["estimators"][name]["error_norm"] for s in settings], "o-", label=name)
    ax.plot(w2, [1.96 * s["estimators"]["ml"]["standard_errors"][1] for s in settings], "k--",
            lw=0.8, label="1.96 x MLE std. error (class 2)")
    ax.set_xlabel("w2")
    ax.set_ylabel("||centred log w - truth||_2")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    return path.name


def plot_gradient_study(results: dict[str, Any], path: Path) -> str:
    """Left: relative bias against relative spread of each estimator (Gumbel straight-through
    at tau = 0.5), one marker per test function, with the issue's goal boxes. Right: the
    Gumbel variants' largest bias over the smooth test functions against the temperature, the
    default (mean) gradient as a horizontal line."""
    from diffhypergeom_studies.validation.gradients import TEST_FUNCTIONS, at_reference_temperature

    plt = pyplot()
    tau, chosen = at_reference_temperature(results)
    floor = 1e-3
    # stacked, each panel with its legend beside it: readable at the page's width
    fig, (left, right) = plt.subplots(2, 1, figsize=(9, 10.5))
    markers = dict(zip(TEST_FUNCTIONS, "os^vDPX", strict=False))
    colours = plt.get_cmap("tab20")
    for k, row in enumerate(chosen):
        for name, f in row["functions"].items():
            left.scatter(max(f["relative_spread"], floor), max(f["relative_bias"], floor),
                         color=colours(k % 20), marker=markers[name], s=36,
                         label=row["label"] if name == "linear" else None)
    for bias, spread, text in ((0.10, 3.0, "default rsample goal (smooth f)"),
                               (0.03, 1.5, "score estimator goal (every f)")):
        left.plot([floor, spread, spread], [bias, bias, floor], color="0.4", lw=0.8, ls="--")
        left.annotate(text, (floor * 1.2, bias), fontsize=8, color="0.3",
                      xytext=(0, 3), textcoords="offset points")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("relative spread of one call, per draw (floored at 1e-3)", fontsize=10)
    left.set_ylabel("relative bias (floored at 1e-3)", fontsize=10)
    left.set_title(f"Each estimator on each test function (Gumbel at tau = {tau:g})\nmarkers: "
                   + ", ".join(f"{m} {n}" for n, m in markers.items()), fontsize=9)
    left.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                title="estimator (colour)", title_fontsize=8)
    smooth = [n for n, t in TEST_FUNCTIONS.items() if t.smooth]
    labels = dict.fromkeys(row["label"] for row in results["estimators"]
                           if row["gradient"] in ("gumbel", "gumbel-rao"))
    for k, key in enumerate(labels):
        rows = sorted((r for r in results["estimators"] if r["label"] == key),
                      key=lambda r: r["temperature"])
        right.plot([r["temperature"] for r in rows],
                   [max(r["functions"][n]["relative_bias"] for n in smooth) for r in rows],
                   "o-", ms=4, color=colours(k % 20), label=key)
    mean_row = next(r for r in results["estimators"] if r["gradient"] == "mean")
    right.axhline(max(max(mean_row["functions"][n]["relative_bias"] for n in smooth), floor),
                  color="k", ls="--", label=mean_row["label"])
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("temperature tau", fontsize=10)
    right.set_ylabel("largest relative bias, smooth test functions", fontsize=10)
    right.set_title("Gumbel (-Rao) straight-through against the temperature", fontsize=9)
    right.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    save_figure(fig, path)
    return path.name


def plot_bench(rows: list[dict[str, Any]], path: Path) -> str:
    """Log-log throughput (draws/s) against the swept size, one panel per sweep; solid:
    relaxed step (forward + backward), dashed: exact ``sample``; blue exact, red merge."""
    plt = pyplot()
    from matplotlib.ticker import NullFormatter

    sweeps = list(dict.fromkeys(r["sweep"] for r in rows))
    xlabels = {"classes": "classes c", "balls": "balls N (3 classes)",
               "draws": "draws n (3 x 1000 balls)", "batch": "batch of weight vectors B"}
    fig, axes = plt.subplots(1, len(sweeps), figsize=(4.0 * len(sweeps), 3.6), squeeze=False)
    for ax, sweep in zip(axes[0], sweeps, strict=True):
        for method, colour in (("exact", "tab:blue"), ("merge", "tab:red")):
            chosen = sorted((r for r in rows if r["sweep"] == sweep and r["method"] == method),
                            key=lambda r: r["value"])
            x = [r["value"] for r in chosen]
            ax.plot(x, [r["relaxed_per_second"] for r in chosen], "o-", color=colour,
                    label=f"{method}: relaxed fwd+bwd")
            ax.plot(x, [r["exact_per_second"] for r in chosen], "s--", color=colour,
                    label=f"{method}: sample")
        ax.set_xscale("log")
        ax.set_yscale("log")
        values = sorted({r["value"] for r in rows if r["sweep"] == sweep})
        ax.set_xticks(values, [f"{v:g}" for v in values])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(xlabels.get(sweep, sweep))
        ax.set_ylabel("draws per second")
    axes[0, 0].legend(fontsize=7)
    device = rows[0]["device"] if rows else "?"
    fig.suptitle(f"Sampling throughput ({device})")
    fig.tight_layout()
    save_figure(fig, path)
    return path.name
