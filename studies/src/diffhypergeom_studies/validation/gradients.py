"""Which gradient estimator to use? Bias, spread and cost of estimators of
``d/dtheta E[f(X)]`` on an urn small enough to enumerate.

MFNCH is an exponential family in ``theta = logits`` with sufficient statistic ``x``, so

    d/dtheta E[f(X)] = sum_x f(x) p(x) (x - E[X]) = Cov(f(X), X),

computed exactly here by enumerating the support with numpy (``reference.enumerate_urn``) and
checked against central finite differences of ``E_theta[f]``. Every estimator is run as a user
runs it: ``calls`` independent calls of ``surrogate_loss(dist, f, samples_per_call, estimator)``
(``diffhypergeom.estimators``), each giving one gradient ``g`` (a batch gradient). Estimators:

- ``pathwise``, ``gradient="mean"``: the default ``rsample`` (exact draws, the gradient of the
  exact mean);
- ``pathwise``, ``gradient="gumbel"``: straight-through Gumbel-softmax at each temperature, fixed
  or random class order (one order per call), with and without ``couple_rows``, for
  the exact law and for the paper's merged law (``MergedFisherNCHypergeometric``; its "random"
  order is a new class order per call, as in the published code); and ``gradient="gumbel-rao"``
  (10 noise draws per hard draw) for the exact law;
- ``reinforce-loo``, ``reinforce-cv``, ``exact``.

Reported per estimator and test function: ``relative_bias = ||mean g - grad|| / ||grad||``
(with its standard error), ``relative_spread = sqrt(samples_per_call * tr Cov g) / ||grad||``
(the spread of one call scaled to one draw: for independent draws the single-draw standard
deviation; it includes what the draws of a call share, such as their class order) and the
median time of one call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from diffhypergeom.estimators import surrogate_loss
from diffhypergeom.laws.fisher import MultivariateFisherNCHypergeometric
from diffhypergeom.laws.merged import MergedFisherNCHypergeometric
from diffhypergeom.laws.wallenius import MultivariateWalleniusNCHypergeometric
from diffhypergeom_studies.runs import markdown_table
from diffhypergeom_studies.validation import reference
from diffhypergeom_studies.validation.common import (
    cached_part,
    config_dict,
    finish,
    seed_everything,
    single_thread,
)

__all__ = [
    "GradientConfig", "TEST_FUNCTIONS", "TestFunction", "WALLENIUS_ESTIMATORS",
    "at_reference_temperature", "call_gradient", "estimator_specs", "exact_gradient",
    "expectation", "finite_difference_gradient", "goals", "label", "run_gradients", "run_spec",
    "run_wallenius_spec", "summarise", "summary_markdown", "wallenius_exact_gradient",
    "wallenius_markdown",
]


class TestFunction(NamedTuple):
    f: Callable[[torch.Tensor], torch.Tensor]
    description: str
    smooth: bool


def _linear(x: torch.Tensor) -> torch.Tensor:
    return x @ torch.tensor([1.0, -1.0, 2.0], dtype=x.dtype)[: x.shape[-1]]


def _quadratic(x: torch.Tensor) -> torch.Tensor:
    target = torch.full((x.shape[-1],), 3.0, dtype=x.dtype)
    return (x - target).square().sum(-1)


def _product(x: torch.Tensor) -> torch.Tensor:
    return x[..., 0] * x[..., 2] / 4


def _exponential(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(0.3 * (x[..., 1] - x[..., 0]))


def _soft_indicator(x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid((x[..., 1] - 3.5) / 0.25)


def _soft_difference_step(x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid((x[..., 0] - x[..., 2] - 0.5) / 0.25)


def _step(x: torch.Tensor) -> torch.Tensor:
    return (x[..., 1] >= 4).to(x.dtype)


TEST_FUNCTIONS: dict[str, TestFunction] = {
    "linear": TestFunction(_linear, "x1 - x2 + 2 x3", True),
    "quadratic": TestFunction(_quadratic, "||x - 3||^2", True),
    "product": TestFunction(_product, "x1 x3 / 4", True),
    "exponential": TestFunction(_exponential, "exp(0.3 (x2 - x1))", True),
    "indicator": TestFunction(_soft_indicator, "sigmoid((x2 - 3.5) / 0.25) ~ 1{x2 >= 4}", False),
    "difference step": TestFunction(_soft_difference_step,
                                    "sigmoid((x1 - x3 - 0.5) / 0.25) ~ 1{x1 > x3}", False),
    "step": TestFunction(_step, "1{x2 >= 4} (no pathwise gradient)", False),
}


@dataclass
class GradientConfig:
    """Sizes of the gradient study."""

    population: list[int] = field(default_factory=lambda: [5, 7, 4])
    draws: int = 8
    weights: list[float] = field(default_factory=lambda: [1.0, 3.0, 0.5])
    temperatures: list[float] = field(default_factory=lambda: [0.1, 0.25, 0.5, 1.0, 2.0])
    samples_per_call: int = 64
    calls: int = 400
    seed: int = 0

    @classmethod
    def paper(cls, seed: int = 0) -> GradientConfig:
        return cls(seed=seed)

    @classmethod
    def quick(cls, seed: int = 0) -> GradientConfig:
        return cls(temperatures=[0.5, 1.0], calls=60, seed=seed)

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
        if self.samples_per_call < 2:
            raise ValueError(f"samples_per_call must be >= 2, got {self.samples_per_call}")
        if self.calls < 2:
            raise ValueError(f"calls must be >= 2, got {self.calls}")


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


def estimator_specs(config: GradientConfig) -> list[dict[str, Any]]:
    """The estimators compared, each a dict of ``surrogate_loss`` settings."""
    specs: list[dict[str, Any]] = [dict(estimator="pathwise", gradient="mean", method="exact",
                                        order="-", coupled=False, temperature=None)]
    for gradient, method in (("gumbel", "exact"), ("gumbel-rao", "exact"), ("gumbel", "merge")):
        for order in ("fixed", "random"):
            for coupled in (False, True) if method == "exact" else (False,):
                specs += [dict(estimator="pathwise", gradient=gradient, method=method,
                               order=order, coupled=coupled, temperature=tau)
                          for tau in config.temperatures]
    specs += [dict(estimator=name, gradient=None, method="exact", order="-", coupled=False,
                   temperature=None) for name in ("reinforce-loo", "reinforce-cv", "exact")]
    return specs


def label(row: dict[str, Any]) -> str:
    if row["estimator"] != "pathwise":
        return row["estimator"]
    if row["gradient"] == "mean":
        return "pathwise, mean (default rsample)"
    kind = "Gumbel-Rao" if row["gradient"] == "gumbel-rao" else "Gumbel"
    name = f"pathwise, {kind} {row['method']}, {row['order']} order"
    return name + (", coupled" if row["coupled"] else "")


def call_gradient(config: GradientConfig, spec: dict[str, Any], f: Callable
                  ) -> tuple[np.ndarray, float]:
    """One call of ``surrogate_loss``: the gradient in the logits ``[c]`` and its time (s)."""
    logits = torch.log(torch.tensor(config.weights, dtype=torch.float64)).requires_grad_()
    started = time.perf_counter()
    population = torch.tensor(config.population)
    kwargs = {}
    if spec["method"] == "merge":
        # the published sampler: the merged law in a new random class order per call
        order = (torch.randperm(len(config.population)) if spec["order"] == "random"
                 else torch.arange(len(config.population)))
        dist = MergedFisherNCHypergeometric(population[order], config.draws,
                                            logits=logits[order])
        f = _in_order(f, torch.argsort(order))
        kwargs = dict(gradient=spec["gradient"], temperature=spec["temperature"])
    else:
        dist = MultivariateFisherNCHypergeometric(population, config.draws, logits=logits)
        if spec["estimator"] == "pathwise":
            kwargs = dict(gradient=spec["gradient"])
            if spec["gradient"] != "mean":
                kwargs.update(temperature=spec["temperature"],
                              permute=spec["order"] == "random", couple_rows=spec["coupled"])
    loss = surrogate_loss(dist, f, num_samples=config.samples_per_call,
                          estimator=spec["estimator"], **kwargs)
    if loss.requires_grad:
        (grad,) = torch.autograd.grad(loss, logits, allow_unused=True)
    else:  # f has no gradient in the counts (a step): the pathwise estimate is zero
        grad = None
    elapsed = time.perf_counter() - started
    return (np.zeros(len(config.weights)) if grad is None else grad.numpy()), elapsed


def _in_order(f: Callable, inverse: torch.Tensor) -> Callable:
    """``f`` of counts whose classes come in a permuted order."""
    return lambda x: f(x[..., inverse])


def summarise(grads: np.ndarray, exact: np.ndarray, samples_per_call: int,
              times: list[float]) -> dict[str, Any]:
    """Bias and spread of call gradients ``[calls, c]`` against the exact gradient."""
    mean = grads.mean(0)
    bias = mean - exact
    trace = float(np.trace(np.atleast_2d(np.cov(grads.T))))
    scale = float(np.linalg.norm(exact))
    spread = float(np.sqrt(max(trace, 0.0) * samples_per_call))
    return {"mean": mean.tolist(), "bias": bias.tolist(),
            "bias_norm": float(np.linalg.norm(bias)),
            "bias_se": float(np.sqrt(max(trace, 0.0) / len(grads))),
            "relative_bias": float(np.linalg.norm(bias)) / scale,
            "relative_bias_se": float(np.sqrt(max(trace, 0.0) / len(grads))) / scale,
            "spread": spread, "relative_spread": spread / scale,
            "time_ms": 1e3 * float(np.median(times))}


def run_spec(config: GradientConfig, spec: dict[str, Any], exact: dict[str, np.ndarray],
             index: int) -> dict[str, Any]:
    seed_everything(config.seed, index)
    functions = {}
    for name, test in TEST_FUNCTIONS.items():
        grads, times = [], []
        for _ in range(config.calls):
            grad, elapsed = call_gradient(config, spec, test.f)
            grads.append(grad)
            times.append(elapsed)
        functions[name] = summarise(np.stack(grads), exact[name], config.samples_per_call,
                                    times)
    return {**spec, "label": label(spec), "functions": functions}


def _cell(f: dict[str, Any]) -> str:
    return f"{f['relative_bias']:.3f} ({f['relative_spread']:.2f})"


def at_reference_temperature(results: dict[str, Any]) -> tuple[float, list[dict[str, Any]]]:
    """The temperature the tables and the figure's left panel compare at (0.5 when swept, else
    the first), and the estimators shown there: every row without a temperature and the
    Gumbel rows at it."""
    temps = results["config"]["temperatures"]
    tau = 0.5 if 0.5 in temps else temps[0]
    return tau, [row for row in results["estimators"] if row["temperature"] in (None, tau)]


def goals(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's goals, checked on the results at the reference temperature: the default
    ``rsample`` (bias <= 0.10 on smooth f, spread <= 3) and the best score estimator (bias <=
    0.03, spread <= 1.5 on every f)."""
    out = {}
    smooth = [n for n, t in TEST_FUNCTIONS.items() if t.smooth]
    for row in at_reference_temperature(results)[1]:
        names = smooth if row["estimator"] == "pathwise" else list(TEST_FUNCTIONS)
        fs = [row["functions"][n] for n in names]
        out[row["label"]] = {
            "functions": "smooth" if row["estimator"] == "pathwise" else "all",
            "max_relative_bias": max(f["relative_bias"] for f in fs),
            "max_relative_spread": max(f["relative_spread"] for f in fs),
            "max_time_ms": max(f["time_ms"] for f in fs)}
    return out


def summary_markdown(results: dict[str, Any]) -> str:
    cfg = results["config"]
    temps = cfg["temperatures"]
    tau, shown = at_reference_temperature(results)
    lines = [f"## Gradient estimators of d E[f(X)] / d logits (m = {cfg['population']}, "
             f"n = {cfg['draws']}, w = {cfg['weights']})", "",
             f"{cfg['calls']} calls of `surrogate_loss(dist, f, num_samples="
             f"{cfg['samples_per_call']}, estimator=...)` per estimator and f. Exact gradient "
             "Cov(f(X), X) by enumeration; max |exact - finite difference| = "
             f"{results['max_finite_difference_error']:.2e}.", "",
             "Cells: relative bias ||E[g] - grad|| / ||grad|| and, in brackets, the relative "
             "spread of one call scaled to one draw, sqrt(S tr Cov g) / ||grad||. A bias "
             "below about 2 standard errors (results.json) is noise. Time: median ms per call.",
             "", f"### All estimators (Gumbel straight-through at tau = {tau:g})", ""]
    names = list(TEST_FUNCTIONS)
    rows = []
    for row in shown:
        fs = row["functions"]
        rows.append([row["label"]] + [_cell(fs[n]) for n in names]
                    + [f"{max(f['time_ms'] for f in fs.values()):.1f}"])
    lines.append(markdown_table(["estimator"] + [f"{n}" for n in names] + ["ms / call"], rows))
    lines += ["", "f: " + "; ".join(f"{n} = {t.description}" for n, t in TEST_FUNCTIONS.items()),
              "", "### Goals", ""]
    goal_rows = [[label_, g["functions"], f"{g['max_relative_bias']:.3f}",
                  f"{g['max_relative_spread']:.2f}"]
                 for label_, g in results["goals"].items()]
    lines.append(markdown_table(["estimator", "test functions", "max relative bias",
                                 "max relative spread"], goal_rows))
    lines += ["", "### Gumbel and Gumbel-Rao straight-through against the temperature "
              "(smooth f: largest bias over linear, quadratic, product, exponential)", ""]
    smooth = [n for n, t in TEST_FUNCTIONS.items() if t.smooth]
    table: dict[str, list[str]] = {}
    for row in results["estimators"]:
        if row["gradient"] not in ("gumbel", "gumbel-rao"):
            continue
        key = row["label"]
        table.setdefault(key, [key] + [""] * len(temps))
        worst_bias = max(row["functions"][n]["relative_bias"] for n in smooth)
        worst_spread = max(row["functions"][n]["relative_spread"] for n in smooth)
        table[key][1 + temps.index(row["temperature"])] = f"{worst_bias:.3f} ({worst_spread:.2f})"
    lines.append(markdown_table(["estimator"] + [f"tau = {t:g}" for t in temps],
                                list(table.values())))
    lines.append("")
    return "\n".join(lines)


WALLENIUS_ESTIMATORS = ("pathwise", "reinforce-loo", "exact")


def _wallenius(config: GradientConfig, logits: torch.Tensor
               ) -> MultivariateWalleniusNCHypergeometric:
    return MultivariateWalleniusNCHypergeometric(torch.tensor(config.population), config.draws,
                                                 logits=logits)


def wallenius_exact_gradient(config: GradientConfig, f: Callable) -> np.ndarray:
    """``[c]``: the exact ``d E[f(X)] / d logits`` of the Wallenius law on the study's urn, by
    summing ``p(x) f(x)`` over its support (autograd through the exact ``log_prob``)."""
    logits = torch.log(torch.tensor(config.weights, dtype=torch.float64)).requires_grad_()
    law = _wallenius(config, logits)
    points = law.enumerate_support()
    (grad,) = torch.autograd.grad((law.log_prob(points).exp() * f(points)).sum(), logits)
    return grad.numpy()


def run_wallenius_spec(config: GradientConfig, estimator: str, exact: dict[str, np.ndarray],
                       index: int) -> dict[str, Any]:
    """Bias and spread of one estimator of the Wallenius law's gradient, per test function."""
    seed_everything(config.seed, 1000 + index)
    functions = {}
    for name, test in TEST_FUNCTIONS.items():
        grads, times = [], []
        for _ in range(config.calls):
            logits = torch.log(torch.tensor(config.weights, dtype=torch.float64))
            logits.requires_grad_()
            started = time.perf_counter()
            loss = surrogate_loss(_wallenius(config, logits), test.f,
                                  num_samples=config.samples_per_call, estimator=estimator)
            grad = (torch.autograd.grad(loss, logits)[0] if loss.requires_grad
                    else torch.zeros_like(logits))
            times.append(time.perf_counter() - started)
            grads.append(grad.numpy())
        functions[name] = summarise(np.stack(grads), exact[name], config.samples_per_call,
                                    times)
    label_ = ("pathwise, mean (default rsample)" if estimator == "pathwise" else estimator)
    return {"estimator": estimator, "label": label_, "functions": functions}


def wallenius_markdown(results: dict[str, Any]) -> str:
    """The Wallenius section of the summary."""
    names = list(TEST_FUNCTIONS)
    rows = [[row["label"]] + [_cell(row["functions"][n]) for n in names]
            + [f"{max(f['time_ms'] for f in row['functions'].values()):.1f}"]
            for row in results["wallenius"]["estimators"]]
    return "\n".join(["### The Wallenius law on the same urn", "",
                      "Exact gradient by summing over the support with the exact `log_prob`; "
                      "cells as above.", "",
                      markdown_table(["estimator"] + names + ["ms / call"], rows), ""])


def run_gradients(config: GradientConfig, out_dir: Path, progress: bool = True
                  ) -> dict[str, Any]:
    """Run the study, write ``results.json``, ``summary.md`` and the figure into ``out_dir``
    (each estimator is a resumable part)."""
    from tqdm.auto import tqdm

    from diffhypergeom_studies.validation.plotting import plot_gradient_study

    config.validate()
    started = time.perf_counter()
    out_dir = Path(out_dir)
    theta = np.log(np.asarray(config.weights, dtype=np.float64))
    exact = {name: exact_gradient(config.population, config.draws, theta, t.f)
             for name, t in TEST_FUNCTIONS.items()}
    finite = {name: finite_difference_gradient(config.population, config.draws, theta, t.f)
              for name, t in TEST_FUNCTIONS.items()}
    rows = []
    key_base = config_dict(config)
    with single_thread():
        for index, spec in enumerate(tqdm(estimator_specs(config), desc="gradient estimators",
                                          disable=not progress)):
            rows.append(cached_part(out_dir, f"gradients_{index:03d}",
                                    {**key_base, **spec, "index": index},
                                    lambda s=spec, i=index: run_spec(config, s, exact, i)))
        wallenius_exact = {name: wallenius_exact_gradient(config, t.f)
                           for name, t in TEST_FUNCTIONS.items()}
        wallenius_rows = [
            cached_part(out_dir, f"wallenius_{index:03d}",
                        {**key_base, "wallenius": name, "index": index},
                        lambda e=name, i=index: run_wallenius_spec(config, e, wallenius_exact, i))
            for index, name in enumerate(tqdm(WALLENIUS_ESTIMATORS, desc="Wallenius estimators",
                                              disable=not progress))]
    results = {
        "study": "gradients", "config": config_dict(config),
        "exact_gradients": {k: v.tolist() for k, v in exact.items()},
        "finite_difference_gradients": {k: v.tolist() for k, v in finite.items()},
        "max_finite_difference_error": float(max(np.abs(exact[k] - finite[k]).max()
                                                 for k in exact)),
        "estimators": rows,
        "wallenius": {"exact_gradients": {k: v.tolist() for k, v in wallenius_exact.items()},
                      "estimators": wallenius_rows},
    }
    results["goals"] = goals(results)
    results["figures"] = [plot_gradient_study(results, out_dir / "gradient_bias_std.png")]
    summary = summary_markdown(results) + "\n" + wallenius_markdown(results)
    return finish(out_dir, results, summary, started)
