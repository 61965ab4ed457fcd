"""Tables and figures of the weak-supervision sweep: per-run learning curves, the paper's
Figure 2 (``s_hat`` and ``MSE(s, s_hat)`` against ``s``) and Table 1 (adjusted balanced accuracy
of linear probes on the shared (S) and independent (I) latent dims), mean and std over seeds."""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from diffhypergeom_studies.runs import markdown_table, write_bytes_atomic

__all__ = [
    "METHOD_COLORS", "METHOD_NAMES", "aggregate_results", "plot_curves", "plot_summary",
    "read_metrics_csv", "summary_markdown",
]

METHOD_NAMES = {"label": "LabelVAE", "ada": "AdaVAE", "hg": "HGVAE"}
METHOD_COLORS = {"label": "C0", "ada": "C1", "hg": "C2"}


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    write_bytes_atomic(path, buffer.getvalue())


def read_metrics_csv(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Lightning CSV log -> ``{metric: (steps, values)}`` (rows without the metric skipped)."""
    series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            step = row.get("step")
            if not step:
                continue
            for key, value in row.items():
                if key in ("step", "epoch") or value in (None, ""):
                    continue
                series[key].append((float(step), float(value)))
    return {k: (np.array([s for s, _ in v]), np.array([x for _, x in v]))
            for k, v in series.items()}


def plot_curves(metrics_csv: str | Path, out: str | Path, config) -> None:
    """Loss, ``s_hat`` (train and validation, with the true ``s``) and temperature per step."""
    plt = _pyplot()
    data = read_metrics_csv(metrics_csv)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for key in ("train/loss", "val/loss"):
        if key in data:
            axes[0].plot(*data[key], label=key)
    axes[0].set_title("negative ELBO")
    axes[0].set_yscale("log")
    for key in ("train/s_hat", "val/s_hat"):
        if key in data:
            axes[1].plot(*data[key], label=key)
    axes[1].axhline(config.num_shared, color="k", ls="--", label="true s")
    axes[1].set_title("estimated number of shared dims")
    if "tau" in data:
        axes[2].plot(*data["tau"])
        axes[2].set_yscale("log")
    axes[2].set_title("temperature")
    for ax in axes:
        ax.set_xlabel("step")
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7)
    fig.suptitle(f"{METHOD_NAMES.get(config.method, config.method)}, s = {config.num_shared}, "
                 f"seed {config.seed}", y=1.04)
    _save(fig, Path(out))
    plt.close(fig)


def _mean_std(values: list[float]) -> tuple[float, float, int]:
    """Mean, std (ddof 1) and count of the finite values (n/a values are left out)."""
    arr = np.array([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if arr.size == 0:
        return float("nan"), float("nan"), 0
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0, int(arr.size)


def aggregate_results(results: list[dict]) -> dict:
    """``{method: {s: {metric: [mean, std, n_finite, n_runs]}}}`` over seeds (``s``: the
    run's setting, the number of shared factors or, for locatello pairs, ``k``)."""
    grouped: dict = defaultdict(lambda: defaultdict(list))
    for r in results:
        grouped[r["method"]][int(r.get("setting", r["num_shared"]))].append(r)
    summary: dict = {}
    for method, by_s in grouped.items():
        summary[method] = {}
        for s, runs in sorted(by_s.items()):
            entry = {}
            for key in ("mse_s", "s_hat_mean", "s_true_mean", "acc_shared",
                        "acc_independent", "train_seconds", "active_dims"):
                mean, std, count = _mean_std([r.get(key) for r in runs])
                entry[key] = [mean, std, count, len(runs)]
            summary[method][s] = entry
    return summary


def _fmt(mean_std, digits: int = 2) -> str:
    mean, std = mean_std[0], mean_std[1]
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    text = f"{mean:.{digits}f} ± {std:.{digits}f}"
    if len(mean_std) > 3 and mean_std[2] < mean_std[3]:
        text += f" ({mean_std[2]} of {mean_std[3]} seeds)"
    return text


def summary_markdown(summary: dict, methods: list[str], s_values: list[int],
                     header_lines: list[str], axis: str = "s") -> str:
    """``axis``: what ``s_values`` are, ``"s"`` (shared factors) or ``"k"`` (locatello)."""
    lines = list(header_lines)
    lines += ["", "## Estimated number of shared dims (paper's Figure 2)", "",
              "Mean over seeds (± std over seeds) of the per-run mean s_hat and of "
              "MSE(s, s_hat) on held-out pairs; active dims: latent dims whose mean KL to the "
              "prior exceeds 0.1 nats (the others are collapsed and carry no information).", ""]
    rows = []
    for method in methods:
        for s in s_values:
            entry = summary.get(method, {}).get(s)
            if entry is None:
                continue
            rows.append([METHOD_NAMES.get(method, method), s,
                         _fmt(entry.get("s_true_mean", [s, 0.0])), _fmt(entry["s_hat_mean"]),
                         _fmt(entry["mse_s"]), _fmt(entry["active_dims"], 1),
                         entry["mse_s"][3]])
    lines.append(markdown_table(["method", axis, "true s (mean over pairs)", "s_hat",
                                 "MSE(s, s_hat)", "active dims", "seeds"], rows))
    lines += ["", "## Linear probes on the latent code (paper's Table 1)", "",
              "Adjusted balanced accuracy (chance = 0) of logistic regression on the shared (S) "
              "and on the independent (I) latent dims, averaged over all factors; n/a when "
              "a method marks no dim as shared (or none as independent).", ""]
    header = ["method"] + [f"{axis}={s} {part}" for s in s_values for part in ("S", "I")]
    rows = []
    for method in methods:
        row = [METHOD_NAMES.get(method, method)]
        for s in s_values:
            entry = summary.get(method, {}).get(s)
            row += ([_fmt(entry["acc_shared"]), _fmt(entry["acc_independent"])]
                    if entry else ["-", "-"])
        rows.append(row)
    lines.append(markdown_table(header, rows))
    return "\n".join(lines) + "\n"


def plot_summary(summary: dict, methods: list[str], s_values: list[int], out: Path,
                 axis: str = "s") -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    width = 0.8 / max(1, len(methods))
    for i, method in enumerate(methods):
        entries = [summary.get(method, {}).get(s) for s in s_values]
        xs = [s for s, e in zip(s_values, entries, strict=True) if e]
        es = [e for e in entries if e]
        label = METHOD_NAMES.get(method, method)
        color = METHOD_COLORS.get(method, f"C{3 + i}")
        axes[0].errorbar(xs, [e["s_hat_mean"][0] for e in es],
                         yerr=[e["s_hat_mean"][1] for e in es], marker="o", capsize=3,
                         label=label, color=color)
        pos = np.arange(len(xs)) + (i - (len(methods) - 1) / 2) * width
        axes[1].bar(pos, [e["mse_s"][0] for e in es], width, yerr=[e["mse_s"][1] for e in es],
                    capsize=2, label=label, color=color)
        for part, marker in (("acc_shared", "o"), ("acc_independent", "s")):
            axes[2].errorbar(xs, [e[part][0] for e in es], yerr=[e[part][1] for e in es],
                             marker=marker, capsize=3, ls="-" if part == "acc_shared" else ":",
                             color=color,
                             label=f"{label} {'S' if part == 'acc_shared' else 'I'}")
    if axis == "s":
        axes[0].plot(s_values, s_values, "k--", label="s_hat = s")
    label = "true s" if axis == "s" else "k of simple_dynamics"
    axes[0].set(xlabel=label, ylabel="estimated s_hat", title=f"s_hat vs {axis}")
    axes[1].set_xticks(np.arange(len(s_values)), [str(s) for s in s_values])
    axes[1].set(xlabel=label, ylabel="MSE(s, s_hat)", title="MSE (Figure 2)")
    axes[2].set(xlabel=label, ylabel="adjusted balanced accuracy",
                title="linear probes (Table 1)")
    for ax in axes:
        ax.legend(fontsize=7)
    _save(fig, out)
    plt.close(fig)
