"""Training one VaDE run and sweeping priors x dataset versions x seeds.

Layout of a sweep directory::

    pretrain/<dataset>-<version>-seed<s>-<hash>.pt   shared initialisation (all priors)
    runs/<version>/<prior>/seed<s>/result.json       one finished run (written atomically)
    runs/<version>/<prior>/seed<s>/checkpoints/      Lightning checkpoints (resume)
    runs/<version>/<prior>/seed<s>/logs/             Lightning CSV logs
    results.json, summary.md, weights.png            the aggregate

A run whose ``result.json`` exists is skipped when the sweep restarts; an interrupted run
resumes from its ``last.ckpt``.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from diffhypergeom_studies.cluster.datasets import VERSIONS, ClusterData, load_splits, make_version
from diffhypergeom_studies.cluster.metrics import (
    clustering_scores,
    matched_weights,
    rank_correlation,
)
from diffhypergeom_studies.cluster.priors import PRIORS, check_prior_options
from diffhypergeom_studies.runs import (
    markdown_table,
    read_json,
    write_json_atomic,
    write_text_atomic,
)

__all__ = [
    "METRICS", "TrainConfig", "paired_tests", "plot_weights", "pretrain_for", "run_sweep",
    "train_one", "write_summary",
]

METRICS = ("acc", "nmi", "ari")


@dataclass
class TrainConfig:
    """Settings shared by every run of a sweep (see ``commands/cluster.py`` for help)."""

    hidden: list[int] = field(default_factory=lambda: [500, 500, 2000])
    latent_dim: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    prior_lr: float = 1e-2
    pretrain_lr: float = 1e-3
    pretrain_epochs: int = 10
    epochs: int = 20
    tau_init: float = 1.0
    tau_final: float = 0.1
    hard: bool = False
    prior_estimator: str = "exact"
    pi_init: str = "gmm"
    gmm_n_init: int = 10
    gmm_reg: float = 1e-5
    accelerator: str = "cpu"
    devices: str = "1"
    strategy: str = "auto"
    progress: bool = True
    keep_checkpoints: bool = True

    def __post_init__(self) -> None:
        for name in ("latent_dim", "batch_size", "epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.pretrain_epochs < 0:
            raise ValueError(f"pretrain_epochs must be >= 0, got {self.pretrain_epochs}")
        check_prior_options(self.prior_estimator, self.pi_init, self.hard)
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden sizes must be >= 1, got {self.hidden}")

    def trainer_kwargs(self) -> dict:
        devices: int | str = int(self.devices) if self.devices.isdigit() else self.devices
        return {"accelerator": self.accelerator, "devices": devices, "strategy": self.strategy,
                "enable_progress_bar": self.progress}


def _loader(x: np.ndarray, batch_size: int, seed: int, shuffle: bool):
    import torch

    data = torch.utils.data.TensorDataset(torch.as_tensor(x))
    return torch.utils.data.DataLoader(
        data, batch_size=batch_size, shuffle=shuffle, drop_last=shuffle and len(x) >= batch_size,
        generator=torch.Generator().manual_seed(seed))


def pretrain_for(data: ClusterData, seed: int, cfg: TrainConfig, cache_dir: str | Path) -> dict:
    """The shared initialisation of every prior's run on ``(data, seed)`` (cached)."""
    from diffhypergeom_studies.cluster.pretrain import pretrain

    return pretrain(data, seed, hidden=cfg.hidden, latent_dim=cfg.latent_dim,
                    epochs=cfg.pretrain_epochs, batch_size=cfg.batch_size, lr=cfg.pretrain_lr,
                    cache_dir=cache_dir, trainer_kwargs=cfg.trainer_kwargs(),
                    gmm_n_init=cfg.gmm_n_init, gmm_reg=cfg.gmm_reg)


def train_one(data: ClusterData, prior: str, seed: int, cfg: TrainConfig, run_dir: Path,
              init_state: dict) -> dict | None:
    """Train one VaDE from ``init_state`` (``pretrain.pretrain``), evaluate it on the test
    split and write ``run_dir/result.json``. Returns the result (None on non-zero ranks)."""
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from diffhypergeom_studies.cluster.module import VaDE

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    L.seed_everything(seed, workers=True, verbose=False)
    steps_per_epoch = max(1, len(data.train.y) // cfg.batch_size)
    model = VaDE(data.train.x.shape[1], data.num_classes, prior, hidden=cfg.hidden,
                 latent_dim=cfg.latent_dim, lr=cfg.lr, prior_lr=cfg.prior_lr, tau_init=cfg.tau_init,
                 tau_final=cfg.tau_final, anneal_steps=steps_per_epoch * cfg.epochs,
                 hard=cfg.hard, batch_size=cfg.batch_size, prior_estimator=cfg.prior_estimator,
                 pi_init=cfg.pi_init, dataset_size=len(data.train.y))
    model.load_pretrained(init_state)
    checkpoint_dir = run_dir / "checkpoints"
    last = checkpoint_dir / "last.ckpt"
    trainer = L.Trainer(max_epochs=cfg.epochs, logger=CSVLogger(run_dir, name="logs"),
                        callbacks=[ModelCheckpoint(dirpath=checkpoint_dir, save_last=True,
                                                   save_top_k=0)],
                        enable_model_summary=False, log_every_n_steps=1,
                        **cfg.trainer_kwargs())
    trainer.fit(model, _loader(data.train.x, cfg.batch_size, seed, shuffle=True),
                ckpt_path=str(last) if last.is_file() else None)
    if not trainer.is_global_zero:
        return None
    model = model.cpu().eval()
    gamma = model.predict_gamma(torch.as_tensor(data.test.x)).numpy()
    predictions = gamma.argmax(-1)
    weights = model.prior.cluster_weights().detach().cpu().numpy()
    train_clusters = model.predict_gamma(torch.as_tensor(data.train.x)).numpy().argmax(-1)
    cluster_sizes = np.bincount(train_clusters, minlength=data.num_classes) / len(train_clusters)
    proportions = data.class_proportions()
    matched = matched_weights(weights, data.test.y, predictions, data.num_classes)
    result = {
        "dataset": data.name, "version": data.version, "prior": prior, "seed": seed,
        "subsampled_classes": data.subsampled_classes, "rate": data.rate,
        "n_train": len(data.train.y), "n_test": len(data.test.y),
        **clustering_scores(data.test.y, predictions),
        "cluster_weights": weights.tolist(),
        "matched_weights": matched.tolist(),
        "class_proportions": proportions.tolist(),
        "spearman": rank_correlation(matched, proportions),
        "cluster_sizes": cluster_sizes.tolist(),
        "size_spearman": rank_correlation(weights, cluster_sizes),
        "weight_ratio": _subsampled_ratio(matched, data.subsampled_classes),
        "true_ratio": _subsampled_ratio(proportions, data.subsampled_classes),
        "init": init_state.get("key"),
        "epochs": cfg.epochs, "prior_estimator": cfg.prior_estimator, "pi_init": cfg.pi_init,
        "seconds": time.perf_counter() - start,
    }
    write_json_atomic(run_dir / "result.json", result)
    if not cfg.keep_checkpoints:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return result


def _subsampled_ratio(values: np.ndarray, subsampled: list[int]) -> float:
    """Mean of ``values`` over the subsampled classes / mean over the others (NaN if none)."""
    if not subsampled:
        return math.nan
    mask = np.zeros(len(values), dtype=bool)
    mask[subsampled] = True
    rest = values[~mask].mean()
    return float(values[mask].mean() / rest) if rest > 0 else math.nan


def run_sweep(out: Path, dataset: str, priors: list[str], versions: list[str],
              seeds: list[int], cfg: TrainConfig, data_dir: str | None = None,
              max_train: int | None = None, cache_dir: str | None = None,
              log=print) -> dict | None:
    """Every (version, seed, prior) run not finished yet, then the aggregate files. Under
    DDP every rank runs this; only global rank 0 writes and returns the summary (others
    return None)."""
    from lightning.pytorch.utilities import rank_zero_only

    bad = [p for p in priors if p not in PRIORS] + [v for v in versions if v not in VERSIONS]
    if bad:
        raise ValueError(f"unknown priors/versions {bad}; priors: {PRIORS}, "
                         f"versions: {tuple(VERSIONS)}")
    if not seeds or not priors or not versions:
        raise ValueError("need at least one prior, one version and one seed")
    out = Path(out)
    train, test = load_splits(dataset, data_dir)
    cache = Path(cache_dir) if cache_dir else out / "pretrain"
    results = []
    total = len(versions) * len(seeds) * len(priors)
    done = 0
    for version in versions:
        for seed in seeds:
            data = make_version(dataset, train, test, version, seed, max_train=max_train)
            init = None
            for prior in priors:
                done += 1
                run_dir = out / "runs" / version / prior / f"seed{seed}"
                if (run_dir / "result.json").is_file():
                    log(f"[{done}/{total}] {version} {prior} seed {seed}: done, skipped")
                    results.append(read_json(run_dir / "result.json"))
                    continue
                if init is None:
                    init = pretrain_for(data, seed, cfg, cache)
                result = train_one(data, prior, seed, cfg, run_dir, init)
                if result is None:
                    continue
                log(f"[{done}/{total}] {version} {prior} seed {seed}: acc {result['acc']:.3f} "
                    f"nmi {result['nmi']:.3f} ari {result['ari']:.3f} "
                    f"({result['seconds']:.1f} s)")
                results.append(result)
    if rank_zero_only.rank != 0:
        return None
    return write_summary(out, dataset, priors, versions, seeds, cfg, results)


def _mean_std(values: list[float]) -> tuple[float, float]:
    arr = np.array([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if arr.size == 0:
        return math.nan, math.nan
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0


def paired_tests(results: list[dict], priors: list[str], versions: list[str],
                 metrics: tuple[str, ...] = ("acc", "nmi")) -> list[dict]:
    """Every pair of priors per version, paired by seed (same data version and pretraining):
    the mean and sample std of the differences ``a - b``, the paired t-test's and the
    Wilcoxon signed-rank test's two-sided p-values (NaN where undefined; with n seeds the
    exact Wilcoxon p cannot go below ``2 / 2^n``, 0.0625 for 5 seeds)."""
    from itertools import combinations

    from scipy import stats

    rows = []
    for version in versions:
        by_prior = {p: {r["seed"]: r for r in results if r["prior"] == p
                        and r["version"] == version} for p in priors}
        for a, b in combinations(priors, 2):
            seeds = sorted(set(by_prior[a]) & set(by_prior[b]))
            row: dict = {"version": version, "a": a, "b": b, "n": len(seeds)}
            for metric in metrics:
                diff = np.array([by_prior[a][s][metric] - by_prior[b][s][metric]
                                 for s in seeds])
                mean, std = _mean_std(list(diff))
                t_p = w_p = math.nan
                if len(diff) >= 2 and np.any(diff != 0):
                    t_p = float(stats.ttest_rel(diff, np.zeros_like(diff)).pvalue)
                    w_p = float(stats.wilcoxon(diff).pvalue)
                row[metric] = {"mean_diff": mean, "std_diff": std, "t_p": t_p,
                               "wilcoxon_p": w_p}
            rows.append(row)
    return rows


def _fmt_test(cell: dict) -> str:
    if math.isnan(cell["mean_diff"]):
        return "n/a"
    p_values = ", ".join(f"{name} n/a" if math.isnan(cell[k]) else f"{name} {cell[k]:.3f}"
                         for k, name in (("t_p", "t"), ("wilcoxon_p", "W")))
    return f"{cell['mean_diff']:+.3f} ± {cell['std_diff']:.3f} ({p_values})"


def _fmt(pair: tuple[float, float], digits: int = 3) -> str:
    mean, std = pair
    return "n/a" if math.isnan(mean) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def write_summary(out: Path, dataset: str, priors: list[str], versions: list[str],
                  seeds: list[int], cfg: TrainConfig, results: list[dict]) -> dict:
    """``results.json``, ``summary.md`` (Table 2 layout) and ``weights.png``."""
    table: dict = {}
    for prior in priors:
        for version in versions:
            runs = [r for r in results if r["prior"] == prior and r["version"] == version]
            cell = {m: _mean_std([r[m] for r in runs]) for m in METRICS}
            cell["spearman"] = _mean_std([r["spearman"] for r in runs])
            cell["weight_ratio"] = _mean_std([r["weight_ratio"] for r in runs])
            cell["size_spearman"] = _mean_std([r.get("size_spearman") for r in runs])
            cell["runs"] = len(runs)
            table.setdefault(prior, {})[version] = cell
    tests = paired_tests(results, priors, versions)
    summary = {"dataset": dataset, "priors": priors, "versions": versions, "seeds": seeds,
               "config": asdict(cfg), "std": "sample standard deviation over seeds (ddof=1)",
               "table": table, "paired_tests": tests, "runs": results}
    write_json_atomic(out / "results.json", summary)
    header = ["prior"] + [f"{v} {m.upper()}" for v in versions for m in METRICS]
    rows = [[p] + [_fmt(table[p][v][m]) for v in versions for m in METRICS] for p in priors]
    weight_header = ["prior"] + [f"{v} Spearman ρ" for v in versions] + \
        [f"{v} weight ratio (true {VERSIONS[v]:.1f})" for v in versions if VERSIONS[v] < 1] + \
        [f"{v} ρ(weights, own cluster sizes)" for v in versions]
    weight_rows = [[p] + [_fmt(table[p][v]["spearman"], 2) for v in versions]
                   + [_fmt(table[p][v]["weight_ratio"], 2) for v in versions if VERSIONS[v] < 1]
                   + [_fmt(table[p][v]["size_spearman"], 2) for v in versions]
                   for p in priors]
    text = (f"# Clustering sweep: {dataset}\n\n"
            f"Priors x dataset versions, test-split metrics, mean ± std over seeds {seeds} "
            f"({len(results)} runs; {cfg.pretrain_epochs} pretraining + {cfg.epochs} VaDE "
            f"epochs, batch {cfg.batch_size}, hidden {cfg.hidden}, latent {cfg.latent_dim}, "
            f"prior term {cfg.prior_estimator}, pi init {cfg.pi_init}).\n\n"
            + markdown_table(header, rows)
            + "\n\nLearned cluster weights (matched to classes) vs true class proportions: "
            "Spearman rank correlation, and the mean weight of the subsampled classes divided "
            "by that of the others (the true ratio is the subsampling rate); last columns: "
            "Spearman correlation of the weights with the sizes of the model's own clusters "
            "(fraction of the training split assigned to each).\n\n"
            + markdown_table(weight_header, weight_rows)
            + "\n\nPaired comparisons (same seed = same data version and pretraining): mean ± "
            "std over seeds of the difference a - b, paired t-test (t) and Wilcoxon signed-rank "
            "(W) two-sided p-values.\n\n"
            + markdown_table(["version", "a", "b", "seeds", "Δ ACC", "Δ NMI"],
                             [[t["version"], t["a"], t["b"], str(t["n"]), _fmt_test(t["acc"]),
                               _fmt_test(t["nmi"])] for t in tests]) + "\n")
    write_text_atomic(out / "summary.md", text)
    if results:
        plot_weights(out / "weights.png", results, priors, versions)
    return summary


def plot_weights(path: Path, results: list[dict], priors: list[str],
                 versions: list[str]) -> None:
    """The paper's Figure 3 over all seeds: per version, each class's learned (matched)
    cluster weight against its true proportion, one point per (class, seed) and a colour per
    learnable prior; subsampled classes hollow. On the diagonal the weights follow the data."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from diffhypergeom_studies.runs import write_bytes_atomic

    learnable = [p for p in priors if p != "uniform"] or priors
    fig, axes = plt.subplots(1, len(versions), squeeze=False,
                             figsize=(4.2 * len(versions), 4.8))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for col, version in enumerate(versions):
        ax = axes[0][col]
        top = 0.0
        for i, prior in enumerate(learnable):
            runs = [r for r in results if r["prior"] == prior and r["version"] == version]
            if not runs:
                continue
            colour = colours[i % len(colours)]
            offset = (i - (len(learnable) - 1) / 2) * 0.002
            for j, run in enumerate(runs):
                true = np.asarray(run["class_proportions"])
                learned = np.asarray(run["matched_weights"])
                sub = np.isin(np.arange(len(true)), run["subsampled_classes"])
                ratio = _mean_std([r["weight_ratio"] for r in runs])
                label = None if j else (f"{prior}" + (f" (ratio {_fmt(ratio, 2)})"
                                                      if run["subsampled_classes"] else ""))
                ax.scatter(true[~sub] + offset, learned[~sub], s=14, color=colour, alpha=0.6,
                           label=label)
                ax.scatter(true[sub] + offset, learned[sub], s=14, facecolors="none",
                           edgecolors=colour, alpha=0.8)
                top = max(top, float(true.max()), float(learned.max()))
        ax.plot([0, top * 1.05], [0, top * 1.05], color="gray", lw=0.8, ls="--")
        ax.set_title(f"{version} (hollow: subsampled classes)", fontsize=9)
        ax.set_xlabel("true class proportion")
        if col == 0:
            ax.set_ylabel("learned cluster weight (matched)")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    write_bytes_atomic(path, buffer.getvalue())
