"""Learning a planted partition from noisy co-membership observations (issue 20's demo).

Data: ``N = sum(sizes)`` items in planted blocks of the given sizes (items shuffled), and for
every pair ``i < j`` an observation ``y_ij`` of "same block", flipped with probability ``flip``.
Given a labelling ``z``, the observations' log-likelihood is, up to a constant,

    log p(y | z) = sum_{i < j} [z_i = z_j] a_ij,   a_ij = (2 y_ij - 1) log((1 - flip) / flip),

which is linear in the co-membership matrix ``Z Z^T`` of the one-hot assignments ``Z [N, K]``.

Model: ``q = RandomPartition(size_logits [K], element_logits [N])`` (both initialised at 0),
trained by Adam to maximise ``E_q[log p(y | z)]`` with ``samples`` draws per step, by:

- ``score``: the score-function estimator with a leave-one-out baseline through the exact
  ``log_prob`` (``estimators.surrogate_loss(..., estimator="reinforce-loo")``): unbiased;
- ``relaxed``: the straight-through pathwise estimator ``rsample_one_hot`` (exact draws, a
  NeuralSort relaxation of the ranking and of the block boundaries at ``temperature``): biased.

Recovery is the adjusted Rand index (``sklearn.metrics.adjusted_rand_score``, blind to block
names) of exact draws of ``q`` against the planted labels, averaged over ``eval_samples`` draws,
and that of the likeliest of those draws (highest exact ``log_prob``), every ``eval_every``
steps. Gradient quality is measured on a model small enough to enumerate
(``gradient_sizes``, ``K^N`` labellings): the exact gradient of ``E_q[log p(y | z)]`` by summing
over every labelling, against ``gradient_replicates`` estimates of each estimator at the same
parameters (the mean's relative error, the p-value of "no bias" (``_unbiased_p_value``), the
cosine of the mean to the exact gradient, the spread of one estimate).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from diffhypergeom.estimators import surrogate_loss
from diffhypergeom.laws.partition import RandomPartition
from diffhypergeom_studies.runs import markdown_table
from diffhypergeom_studies.validation.common import (
    cached_part,
    config_dict,
    finish,
    pyplot,
    save_figure,
    seed_everything,
    single_thread,
)

__all__ = [
    "ESTIMATORS", "F64", "PartitionConfig", "gradient_quality", "log_likelihood",
    "planted_problem", "plot", "run_partition", "summary_markdown", "train",
]

ESTIMATORS = ("score", "relaxed")
F64 = torch.float64


@dataclass
class PartitionConfig:
    """Sizes of the partition-learning study."""

    sizes: list[int] = field(default_factory=lambda: [12, 8, 4])
    flip: float = 0.2
    steps: int = 300
    samples: int = 16
    learning_rate: float = 0.1
    temperature: float = 0.5
    seeds: int = 3
    eval_every: int = 10
    eval_samples: int = 64
    gradient_sizes: list[int] = field(default_factory=lambda: [3, 2, 1])
    gradient_replicates: int = 200
    seed: int = 0

    @classmethod
    def quick(cls, seed: int = 0) -> PartitionConfig:
        """About half a minute on 2 CPU cores."""
        return cls(sizes=[6, 4, 2], steps=100, seeds=2, eval_every=10, eval_samples=32,
                   gradient_replicates=100, seed=seed)

    def validate(self) -> None:
        if len(self.sizes) < 2 or any(not isinstance(s, int) or s < 1 for s in self.sizes):
            raise ValueError(f"sizes must be at least two positive ints, got {self.sizes}")
        if len(self.gradient_sizes) < 2 or any(
                not isinstance(s, int) or s < 1 for s in self.gradient_sizes):
            raise ValueError(f"gradient_sizes must be at least two positive ints, got "
                             f"{self.gradient_sizes}")
        if len(self.gradient_sizes) ** sum(self.gradient_sizes) > 200_000:
            raise ValueError(f"gradient_sizes {self.gradient_sizes} have more than 200,000 "
                             f"labellings to enumerate (K^N)")
        if not 0 < self.flip < 0.5:
            raise ValueError(f"flip must be in (0, 0.5), got {self.flip}")
        if not self.temperature > 0 or not self.learning_rate > 0:
            raise ValueError("temperature and learning_rate must be positive")
        for name in ("steps", "seeds", "eval_every", "eval_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.samples < 2 or self.gradient_replicates < 2:
            raise ValueError("samples and gradient_replicates must be >= 2 (the leave-one-out "
                             "baseline and the spread need two)")


def planted_problem(sizes: list[int], flip: float, rng: np.random.Generator
                    ) -> tuple[np.ndarray, torch.Tensor]:
    """Planted labels ``[N]`` (items shuffled) and the pair weights ``a [N, N]`` (zero
    diagonal) of the noisy co-membership observations."""
    labels = rng.permutation(np.repeat(np.arange(len(sizes)), sizes))
    same = labels[:, None] == labels[None, :]
    observed = same ^ (rng.random(same.shape) < flip)
    observed = np.triu(observed, 1)
    observed = observed | observed.T
    a = (2.0 * observed - 1.0) * math.log((1 - flip) / flip)
    np.fill_diagonal(a, 0.0)
    return labels, torch.tensor(a, dtype=F64)


def log_likelihood(one_hot: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """``[...]``: ``sum_{i < j} [z_i = z_j] a_ij`` for (soft) assignments ``[..., N, K]``."""
    return 0.5 * ((one_hot @ one_hot.transpose(-1, -2)) * a).sum((-1, -2))


def _one_hot(labels: torch.Tensor, blocks: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels.long(), blocks).to(F64)


def _loss(dist: RandomPartition, a: torch.Tensor, estimator: str, samples: int,
          temperature: float) -> torch.Tensor:
    """A scalar whose gradient estimates that of ``-E_q[log p(y | z)]``."""
    if estimator == "score":
        return surrogate_loss(dist, lambda z: -log_likelihood(_one_hot(z, dist.num_blocks), a),
                              num_samples=samples, estimator="reinforce-loo")
    return -log_likelihood(dist.rsample_one_hot((samples,), temperature=temperature),
                           a).mean()


def train(config: PartitionConfig, estimator: str, seed_index: int) -> dict[str, Any]:
    """One training run: ARI and expected log-likelihood curves, and the final co-membership
    probabilities."""
    from sklearn.metrics import adjusted_rand_score

    rng = seed_everything(config.seed, 20, seed_index)
    labels, a = planted_problem(config.sizes, config.flip, rng)
    blocks, items = len(config.sizes), len(labels)
    size_logits = torch.zeros(blocks, dtype=F64, requires_grad=True)
    element_logits = torch.zeros(items, dtype=F64, requires_grad=True)
    optimiser = torch.optim.Adam([size_logits, element_logits], lr=config.learning_rate)
    seed_everything(config.seed, 21, seed_index, ESTIMATORS.index(estimator))
    curve: list[list[float]] = []
    started = time.perf_counter()
    for step in range(config.steps + 1):
        if step % config.eval_every == 0 or step == config.steps:
            with torch.no_grad():
                dist = RandomPartition(size_logits, element_logits)
                draws = dist.sample((config.eval_samples,))
                scores = [adjusted_rand_score(labels, z) for z in draws.numpy()]
                likeliest = int(dist.log_prob(draws).argmax())
                fit = float(log_likelihood(_one_hot(draws, blocks), a).mean())
            curve.append([step, float(np.mean(scores)), fit, float(scores[likeliest])])
        if step == config.steps:
            break
        optimiser.zero_grad()
        _loss(RandomPartition(size_logits, element_logits), a, estimator, config.samples,
              config.temperature).backward()
        optimiser.step()
    seconds = (time.perf_counter() - started) / config.steps
    with torch.no_grad():
        draws = _one_hot(RandomPartition(size_logits, element_logits).sample((256,)), blocks)
        together = (draws @ draws.transpose(-1, -2)).mean(0)
    return {"estimator": estimator, "seed_index": seed_index, "curve": curve,
            "final_ari": curve[-1][1], "final_log_likelihood": curve[-1][2],
            "final_likeliest_ari": curve[-1][3],
            "seconds_per_step": seconds, "labels": labels.tolist(),
            "together": together.tolist(),
            "planted_log_likelihood": float(log_likelihood(
                _one_hot(torch.as_tensor(labels), blocks), a))}


def gradient_quality(config: PartitionConfig) -> dict[str, Any]:
    """Each estimator's gradient against the exact one on an enumerable model."""
    rng = seed_everything(config.seed, 22)
    _, a = planted_problem(config.gradient_sizes, config.flip, rng)
    blocks, items = len(config.gradient_sizes), int(sum(config.gradient_sizes))
    base = (0.5 * torch.randn(blocks, dtype=F64), 0.5 * torch.randn(items, dtype=F64))
    labellings = torch.tensor(list(itertools.product(range(blocks), repeat=items)), dtype=F64)
    params = [t.clone().requires_grad_() for t in base]
    values = -log_likelihood(_one_hot(labellings, blocks), a)
    expected = (RandomPartition(*params).log_prob(labellings).exp() * values).sum()
    exact = torch.cat(torch.autograd.grad(expected, params))
    out: dict[str, Any] = {"labellings": len(labellings), "exact_norm": float(exact.norm())}
    for index, estimator in enumerate(ESTIMATORS):
        seed_everything(config.seed, 23, index)
        estimates = []
        for _ in range(config.gradient_replicates):
            params = [t.clone().requires_grad_() for t in base]
            loss = _loss(RandomPartition(*params), a, estimator, config.samples,
                         config.temperature)
            estimates.append(torch.cat(torch.autograd.grad(loss, params)))
        g = torch.stack(estimates)
        mean = g.mean(0)
        bias = mean - exact
        out[estimator] = {
            "relative_bias": float(bias.norm() / exact.norm()),
            "unbiased_p_value": _unbiased_p_value(g, exact),
            "cosine": float(torch.nn.functional.cosine_similarity(mean, exact, dim=0)),
            "relative_spread": float((g - mean).norm(dim=1).mean() / exact.norm()),
        }
    return out


def _unbiased_p_value(estimates: torch.Tensor, exact: torch.Tensor) -> float:
    """p-value of "the estimator is unbiased" from ``R`` estimates ``[R, d]``: the smaller of
    two tests, doubled (Bonferroni): Hotelling's ``T^2 = R b^T S^+ b`` (``b`` the mean's
    error, ``S`` the estimates' covariance of rank ``r``: the logits' shifts leave the law
    unchanged), with ``(R - r) T^2 / (r (R - 1)) ~ F(r, R - r)``; and Student's t of the mean
    along the exact gradient (powerful against a scaled gradient)."""
    from scipy.stats import f as f_law
    from scipy.stats import t as t_law

    replicates = estimates.shape[0]
    bias = estimates.mean(0) - exact
    covariance = torch.cov(estimates.T)
    rank = int(torch.linalg.matrix_rank(covariance, hermitian=True))
    t2 = float(replicates * bias @ torch.linalg.pinv(covariance, hermitian=True) @ bias)
    p_any = float(f_law.sf((replicates - rank) * t2 / (rank * (replicates - 1)), rank,
                           replicates - rank))
    along = estimates @ (exact / exact.norm())
    t = float((along.mean() - exact.norm()) / (along.std() / math.sqrt(replicates)))
    p_along = float(2 * t_law.sf(abs(t), replicates - 1))
    return min(1.0, 2 * min(p_any, p_along))


def summary_markdown(results: dict[str, Any]) -> str:
    config = results["config"]
    rows = []
    for estimator in ESTIMATORS:
        runs = [r for r in results["runs"] if r["estimator"] == estimator]
        ari = np.array([r["final_ari"] for r in runs])
        likeliest = np.array([r["final_likeliest_ari"] for r in runs])
        fit = np.array([r["final_log_likelihood"] for r in runs])
        planted = np.array([r["planted_log_likelihood"] for r in runs])
        rows.append([estimator, f"{ari.mean():.3f} ± {ari.std():.3f}",
                     f"{likeliest.mean():.3f} ± {likeliest.std():.3f}",
                     f"{(fit - planted).mean():+.1f}",
                     f"{1e3 * np.mean([r['seconds_per_step'] for r in runs]):.1f} ms"])
    quality = results["gradients"]
    grad_rows = [[e, f"{quality[e]['relative_bias']:.3f}",
                  f"{quality[e]['unbiased_p_value']:.2g}", f"{quality[e]['cosine']:.3f}",
                  f"{quality[e]['relative_spread']:.2f}"] for e in ESTIMATORS]
    return "\n".join([
        "# Learning a planted partition (RandomPartition)",
        "",
        f"Planted sizes {config['sizes']} (N = {sum(config['sizes'])}), every pair observed, "
        f"flipped with probability {config['flip']}; {config['steps']} Adam steps "
        f"(lr {config['learning_rate']}) of {config['samples']} draws; {config['seeds']} seeds.",
        "",
        markdown_table(["estimator", "ARI of the draws (mean ± sd over seeds)",
                        "ARI of the likeliest draw", "expected log-likelihood minus the "
                        "planted partition's", "time per step"], rows),
        "",
        f"After training; ARI averaged over {config['eval_samples']} exact draws of the model, "
        "and of the draw with the highest log_prob among them. The block sizes of the model "
        "are a Fisher law with urn [N] * K, whose spread (a few elements) no weights remove, so "
        "the draws' mean ARI stays below 1 even where the likeliest draw is the planted "
        "partition.",
        "",
        f"Gradient of E_q[log p(y|z)] on an enumerable model (sizes {config['gradient_sizes']}, "
        f"{quality['labellings']} labellings), {config['gradient_replicates']} estimates of "
        f"{config['samples']} draws each, against the exact gradient:",
        "",
        markdown_table(["estimator", "error of the mean (relative)", "p-value of no bias",
                        "cosine of the mean to exact", "spread per estimate (relative)"],
                       grad_rows),
        "",
        "The score-function estimator (exact log_prob, leave-one-out baseline) is unbiased: its "
        "mean's error is noise, of the size its spread and the replicates predict. The relaxed "
        f"one (straight-through, temperature {config['temperature']}) is biased.",
    ])


def plot(results: dict[str, Any], out_dir: Path) -> list[str]:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    colours = {"score": "tab:blue", "relaxed": "tab:orange"}
    for estimator in ESTIMATORS:
        runs = [r for r in results["runs"] if r["estimator"] == estimator]
        curves = np.array([[point[1] for point in r["curve"]] for r in runs])
        steps = [point[0] for point in runs[0]["curve"]]
        for curve in curves:
            ax.plot(steps, curve, color=colours[estimator], lw=0.6, alpha=0.4)
        ax.plot(steps, curves.mean(0), color=colours[estimator], lw=2, label=estimator)
    ax.set_xlabel("step")
    ax.set_ylabel("ARI of exact draws vs planted")
    ax.set_ylim(-0.05, 1.05)
    ax.legend()
    ax.set_title("Recovering a planted partition")
    fig.tight_layout()
    curves_path = out_dir / "partition_ari.png"
    save_figure(fig, curves_path)

    first = [next(r for r in results["runs"] if r["estimator"] == e and r["seed_index"] == 0)
             for e in ESTIMATORS]
    labels = np.array(first[0]["labels"])
    order = np.argsort(labels, kind="stable")
    planted = (labels[:, None] == labels[None, :]).astype(float)
    panels = [("planted", planted)] + [
        (f"learnt, {r['estimator']}", np.array(r["together"])) for r in first]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2))
    for ax, (title, matrix) in zip(axes, panels, strict=True):
        ax.imshow(matrix[np.ix_(order, order)], vmin=0, vmax=1, cmap="Greys")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("P(same block), items sorted by planted block (seed 0)")
    fig.tight_layout()
    matrix_path = out_dir / "partition_comembership.png"
    save_figure(fig, matrix_path)
    return [curves_path.name, matrix_path.name]


def run_partition(config: PartitionConfig, out_dir: Path, progress: bool = True
                  ) -> dict[str, Any]:
    """Run the study, write ``results.json``, ``summary.md`` and figures into ``out_dir``."""
    from tqdm.auto import tqdm

    config.validate()
    started = time.perf_counter()
    out_dir = Path(out_dir)
    key = config_dict(config)
    jobs = [(e, s) for s in range(config.seeds) for e in ESTIMATORS]
    runs = []
    with single_thread():
        for estimator, seed_index in tqdm(jobs, desc="partition runs", disable=not progress):
            runs.append(cached_part(
                out_dir, f"partition_{estimator}_{seed_index:02d}",
                {**key, "estimator": estimator, "seed_index": seed_index},
                lambda e=estimator, s=seed_index: train(config, e, s)))
        gradients = cached_part(out_dir, "partition_gradients", key,
                                lambda: gradient_quality(config))
    results = {"study": "partition", "config": config_dict(config), "runs": runs,
               "gradients": gradients}
    results["figures"] = plot(results, out_dir)
    return finish(out_dir, results, summary_markdown(results), started)
