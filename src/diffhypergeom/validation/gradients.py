"""How good is the reparameterised gradient? Bias and spread of gradient estimators of
``d/dtheta E[f(X)]`` on an urn small enough to enumerate.

MFNCH is an exponential family in ``theta = logits`` with sufficient statistic ``x``, so

    d/dtheta E[f(X)] = sum_x f(x) p(x) (x - E[X]) = Cov(f(X), X),

computed exactly here by enumerating the support with numpy (``reference.enumerate_urn``) and
checked against central finite differences of ``E_theta[f]``. Estimators, each a per-sample
gradient ``g_s`` (``[S, c]``):

- straight-through Gumbel-softmax: ``g_s = d f(X_s) / d theta`` with
  ``X_s = rsample(hard=True, temperature=tau)``, for ``method`` exact/merge and fixed/random
  class order (``permute=True``; one order per chunk of samples);
- REINFORCE with the exact ``log_prob``: ``g_s = (f(X_s) - b) d log p(X_s) / d theta`` for exact
  draws ``X_s``, with ``b = 0`` or ``b`` the mean of ``f`` over an independent pilot sample.

Reported per estimator: ``bias = ||mean_s g_s - grad||_2`` (with a batch-means standard error),
``std = sqrt(trace Cov(g_s))`` (the spread of a single-sample estimate), both also relative to
``||grad||_2``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from diffhypergeom.distribution import MultivariateFisherNCHypergeometric
from diffhypergeom.runs import markdown_table
from diffhypergeom.validation import reference
from diffhypergeom.validation.common import (
    cached_part,
    config_dict,
    finish,
    seed_everything,
    single_thread,
)


def _linear(x: torch.Tensor) -> torch.Tensor:
    return x @ torch.tensor([1.0, -1.0, 2.0], dtype=x.dtype)[: x.shape[-1]]


def _quadratic(x: torch.Tensor) -> torch.Tensor:
    target = torch.full((x.shape[-1],), 3.0, dtype=x.dtype)
    return (x - target).square().sum(-1)


def _soft_indicator(x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid((x[..., 1] - 3.5) / 0.25)


# name -> (f: [..., c] -> [...], description)
TEST_FUNCTIONS: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], str]] = {
    "linear": (_linear, "x1 - x2 + 2 x3"),
    "quadratic": (_quadratic, "||x - 3||^2"),
    "indicator": (_soft_indicator, "sigmoid((x2 - 3.5) / 0.25) ~ 1{x2 >= 4}"),
}


@dataclass
class GradientConfig:
    """Sizes of the gradient study."""

    population: list[int] = field(default_factory=lambda: [5, 7, 4])
    draws: int = 8
    weights: list[float] = field(default_factory=lambda: [1.0, 3.0, 0.5])
    temperatures: list[float] = field(
        default_factory=lambda: [0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0])
    num_samples: int = 100_000
    chunk: int = 500
    pilot: int = 1000
    seed: int = 0

    @classmethod
    def paper(cls, seed: int = 0) -> GradientConfig:
        return cls(seed=seed)

    @classmethod
    def quick(cls, seed: int = 0) -> GradientConfig:
        return cls(temperatures=[0.1, 0.5, 1.0, 2.0], num_samples=10_000, seed=seed)

    def validate(self) -> None:
        if len(self.population) != len(self.weights) or len(self.population) < 2:
            raise ValueError("population and weights must list the same >= 2 classes")
        if len(self.population) != 3:
            raise ValueError("the test functions are written for 3 classes; population must "
                             f"have 3 entries, got {self.population}")
        if not 0 < self.draws < sum(self.population):
            raise ValueError(f"draws must be in (0, sum(population)), got {self.draws}")
        if any(t <= 0 for t in self.temperatures) or not self.temperatures:
            raise ValueError(f"temperatures must be > 0, got {self.temperatures}")
        if self.chunk < 2 or self.num_samples < 2 * self.chunk:
            raise ValueError("chunk must be >= 2 and num_samples >= 2 * chunk")
        if self.pilot < 1:
            raise ValueError(f"pilot must be >= 1, got {self.pilot}")


def expectation(urn_population, draws, logits: np.ndarray, f) -> float:
    """``E_theta[f(X)]`` by enumeration."""
    urn = reference.enumerate_urn(urn_population, draws, np.exp(logits))
    values = f(torch.tensor(urn.support, dtype=torch.float64)).numpy()
    return float(urn.expect(values))


def exact_gradient(population, draws, logits: np.ndarray, f) -> np.ndarray:
    """``[c]``: ``Cov(f(X), X)`` by enumeration."""
    urn = reference.enumerate_urn(population, draws, np.exp(logits))
    values = f(torch.tensor(urn.support, dtype=torch.float64)).numpy()
    return urn.expect((values - urn.expect(values))[:, None] * (urn.support - urn.mean()))


def finite_difference_gradient(population, draws, logits: np.ndarray, f, step: float = 1e-5
                               ) -> np.ndarray:
    """``[c]``: central differences of ``E_theta[f]``."""
    out = np.zeros(len(logits))
    for j in range(len(logits)):
        shift = np.zeros(len(logits))
        shift[j] = step
        out[j] = (expectation(population, draws, logits + shift, f)
                  - expectation(population, draws, logits - shift, f)) / (2 * step)
    return out


def _chunked_logits(config: GradientConfig, size: int) -> torch.Tensor:
    theta = torch.log(torch.tensor(config.weights, dtype=torch.float64))
    return theta.expand(size, len(theta)).clone().requires_grad_()


def straight_through(config: GradientConfig, method: str, permute: bool, temperature: float
                     ) -> dict[str, np.ndarray]:
    """Per-sample straight-through gradients ``{f: [S, c]}``: batched copies of the logits
    (one per sample) make ``autograd.grad`` return each sample's own gradient."""
    grads: dict[str, list[torch.Tensor]] = {name: [] for name in TEST_FUNCTIONS}
    for _ in range(config.num_samples // config.chunk):
        logits = _chunked_logits(config, config.chunk)
        dist = MultivariateFisherNCHypergeometric(torch.tensor(config.population),
                                                  config.draws, logits=logits, method=method)
        x = dist.rsample((), temperature=temperature, hard=True, permute=permute)
        for name, (f, _) in TEST_FUNCTIONS.items():
            (g,) = torch.autograd.grad(f(x).sum(), logits, retain_graph=True)
            grads[name].append(g)
    return {name: torch.cat(g).numpy() for name, g in grads.items()}


def reinforce(config: GradientConfig, baseline: bool) -> dict[str, np.ndarray]:
    """Per-sample score-function gradients ``(f(x) - b) d log p(x) / d theta`` with exact
    draws and the exact ``log_prob``."""
    theta = torch.log(torch.tensor(config.weights, dtype=torch.float64))
    dist = MultivariateFisherNCHypergeometric(torch.tensor(config.population), config.draws,
                                              logits=theta)
    pilot = dist.sample((config.pilot,)).to(torch.float64)
    grads: dict[str, list[torch.Tensor]] = {name: [] for name in TEST_FUNCTIONS}
    for _ in range(config.num_samples // config.chunk):
        x = dist.sample((config.chunk,)).to(torch.float64)
        # a fresh distribution for the score: one whose tables were first built by sample()
        # (under no_grad) would give log_prob without the log-normaliser's gradient
        logits = _chunked_logits(config, config.chunk)
        batched = MultivariateFisherNCHypergeometric(torch.tensor(config.population),
                                                     config.draws, logits=logits)
        (score,) = torch.autograd.grad(batched.log_prob(x).sum(), logits)
        for name, (f, _) in TEST_FUNCTIONS.items():
            b = f(pilot).mean() if baseline else 0.0
            grads[name].append((f(x) - b).unsqueeze(-1) * score)
    return {name: torch.cat(g).numpy() for name, g in grads.items()}


def summarise(samples: np.ndarray, exact: np.ndarray, chunk: int) -> dict[str, Any]:
    """Bias and spread of per-sample gradients ``[S, c]`` against the exact gradient."""
    mean = samples.mean(0)
    bias = mean - exact
    chunk_means = samples.reshape(-1, chunk, samples.shape[1]).mean(1)
    bias_se = float(np.sqrt(chunk_means.var(0, ddof=1).sum() / len(chunk_means)))
    scale = float(np.linalg.norm(exact))
    std = float(np.sqrt(np.trace(np.cov(samples.T))))
    return {"mean": mean.tolist(), "bias": bias.tolist(),
            "bias_norm": float(np.linalg.norm(bias)), "bias_se": bias_se,
            "relative_bias": float(np.linalg.norm(bias)) / scale,
            "std": std, "relative_std": std / scale}


def estimator_specs(config: GradientConfig) -> list[dict[str, Any]]:
    specs = [dict(estimator="straight-through", method=method, order=order, temperature=tau)
             for method in ("exact", "merge") for order in ("fixed", "random")
             for tau in config.temperatures]
    specs += [dict(estimator="reinforce", method="exact", order="-", temperature=None,
                   baseline=b) for b in (False, True)]
    return specs


def run_spec(config: GradientConfig, spec: dict[str, Any], exact: dict[str, np.ndarray],
             index: int) -> dict[str, Any]:
    seed_everything(config.seed, index)
    if spec["estimator"] == "reinforce":
        grads = reinforce(config, spec["baseline"])
    else:
        grads = straight_through(config, spec["method"], spec["order"] == "random",
                                 spec["temperature"])
    return {**spec, "functions": {name: summarise(g, exact[name], config.chunk)
                                  for name, g in grads.items()}}


def label(row: dict[str, Any]) -> str:
    if row["estimator"] == "reinforce":
        return "REINFORCE + baseline" if row["baseline"] else "REINFORCE"
    return f"ST {row['method']}, {row['order']} order"


def summary_markdown(results: dict[str, Any]) -> str:
    cfg = results["config"]
    temps = cfg["temperatures"]
    lines = [f"## Gradient estimators of d E[f(X)] / d logits (m = {cfg['population']}, "
             f"n = {cfg['draws']}, w = {cfg['weights']}, {cfg['num_samples']} samples each)", "",
             "Exact gradient Cov(f(X), X) by enumeration; max |exact - finite difference| = "
             f"{results['max_finite_difference_error']:.2e}.", "",
             "Cells: relative bias ||E[g] - grad|| / ||grad|| and, in brackets, the relative "
             "standard deviation of one single-sample estimate sqrt(tr Cov g) / ||grad||. "
             "Bias below ~2 x its standard error (in results.json) is noise.", ""]
    for name, (_, description) in TEST_FUNCTIONS.items():
        lines += [f"**f = {description}** (exact gradient "
                  f"{np.round(results['exact_gradients'][name], 4).tolist()})", ""]
        rows: dict[str, list[str]] = {}
        for row in results["estimators"]:
            f = row["functions"][name]
            cell = f"{f['relative_bias']:.3f} ({f['relative_std']:.2f})"
            key = label(row)
            if row["estimator"] == "reinforce":
                rows[key] = [key] + [cell] * len(temps)
            else:
                rows.setdefault(key, [key] + [""] * len(temps))
                rows[key][1 + temps.index(row["temperature"])] = cell
        lines.append(markdown_table(["estimator"] + [f"tau = {t:g}" for t in temps],
                                    list(rows.values())))
        lines.append("")
    return "\n".join(lines)


def run_gradients(config: GradientConfig, out_dir: Path, progress: bool = True
                  ) -> dict[str, Any]:
    """Run the study, write ``results.json``, ``summary.md`` and the figure into ``out_dir``."""
    from tqdm.auto import tqdm

    from diffhypergeom.validation.plotting import plot_gradient_study

    config.validate()
    started = time.perf_counter()
    out_dir = Path(out_dir)
    theta = np.log(np.asarray(config.weights, dtype=np.float64))
    exact = {name: exact_gradient(config.population, config.draws, theta, f)
             for name, (f, _) in TEST_FUNCTIONS.items()}
    finite = {name: finite_difference_gradient(config.population, config.draws, theta, f)
              for name, (f, _) in TEST_FUNCTIONS.items()}
    rows = []
    key_base = config_dict(config)
    with single_thread():
        for index, spec in enumerate(tqdm(estimator_specs(config), desc="gradient estimators",
                                          disable=not progress)):
            rows.append(cached_part(out_dir, f"gradients_{index:03d}",
                                    {**key_base, **spec, "index": index},
                                    lambda s=spec, i=index: run_spec(config, s, exact, i)))
    results = {
        "study": "gradients", "config": config_dict(config),
        "exact_gradients": {k: v.tolist() for k, v in exact.items()},
        "finite_difference_gradients": {k: v.tolist() for k, v in finite.items()},
        "max_finite_difference_error": float(max(np.abs(exact[k] - finite[k]).max()
                                                 for k in exact)),
        "estimators": rows,
    }
    results["figures"] = [plot_gradient_study(results, out_dir / "gradient_bias_std.png")]
    return finish(out_dir, results, summary_markdown(results), started)
