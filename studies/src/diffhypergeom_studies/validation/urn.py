"""Learning the urn weights from samples (paper Appendix B.5.1, Figures 7 and 8), extended.

Data: ``num_data`` exact draws (independent numpy reference, ``reference.enumerate_urn``) of
``MFNCH(m, n, w_gt)`` with ``w_gt = [1, w2, 1]``, split ``num_train`` / rest for validation.
Estimators of ``theta = log w`` (initialised at 0):

- *relaxed*: Adam on the paper's loss (its Equation 36), the batch mean of
  ``||x_data - X||^2`` with one exact draw ``X ~ rsample()`` per data point:
  ``relaxed-exact`` with the default gradient (that of the exact mean), ``gumbel-exact`` with
  straight-through Gumbel-softmax and a random class order per step (the default before),
  ``relaxed-merge`` with the paper's merged sampler (Gumbel). The loss's expectation is
  ``||x_data - E X||^2 + tr Cov X``: a moment-matching loss.
- ``reinforce-cv``: Adam on the same expected loss, ``f(x) = mean_b ||x_data_b - x||^2``, with
  ``surrogate_loss(..., estimator="reinforce-cv")`` and as many draws per step as the batch
  holds: an unbiased gradient of the paper's objective.
- *maximum likelihood*: L-BFGS on the exact mean negative log-likelihood ``-log_prob`` (which
  does not depend on ``method``).

Only differences of logits are identified, so estimates are compared through the centred
log-weights ``theta - mean(theta)``. The tolerance comes from the Fisher information: the MLE is
asymptotically normal with covariance ``(N Sigma)^+`` on the centred subspace, ``Sigma`` the
exact covariance of ``X`` at ``w_gt`` (``covariance_matrix``; its null space is the all-ones
direction). Hence ``z2 = N * d^T Sigma d`` for the centred error ``d`` is ~ chi2(c - 1), and
recovery within tolerance means ``z2 <= chi2.ppf(level, c - 1)``.
"""

from __future__ import annotations

import math
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
    single_thread,
)

__all__ = [
    "ESTIMATORS", "UrnConfig", "centred", "conclusion", "evaluate", "fit_ml", "fit_relaxed",
    "mle_covariance", "paper_loss", "plot", "run_setting", "run_urn", "summary_markdown", "totals",
]

ESTIMATORS = ("relaxed-exact", "gumbel-exact", "relaxed-merge", "reinforce-cv", "ml")


@dataclass
class UrnConfig:
    """Sizes of the urn-learning study (defaults: the paper's Appendix B.5.1)."""

    population: list[int] = field(default_factory=lambda: [200, 200, 200])
    draws: int = 180
    weight_values: list[float] = field(default_factory=lambda: [float(w) for w in range(1, 11)])
    num_data: int = 1000
    num_train: int = 800
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 0.05
    temperature: float = 1.0
    ml_iterations: int = 50
    level: float = 0.999
    seed: int = 0

    @classmethod
    def paper(cls, seed: int = 0) -> UrnConfig:
        return cls(seed=seed)

    @classmethod
    def quick(cls, seed: int = 0) -> UrnConfig:
        return cls(weight_values=[1.0, 2.0, 5.0, 10.0], epochs=5, seed=seed)

    def validate(self) -> None:
        if len(self.population) < 2 or min(self.population) < 0:
            raise ValueError(f"population must list >= 2 class sizes >= 0, got {self.population}")
        if not 0 < self.draws <= sum(self.population):
            raise ValueError(f"draws must be in (0, sum(population)], got {self.draws}")
        if not 0 < self.num_train < self.num_data:
            raise ValueError(f"num_train must be in (0, num_data={self.num_data}), "
                             f"got {self.num_train}")
        if any(w <= 0 for w in self.weight_values):
            raise ValueError(f"weight_values must be > 0, got {self.weight_values}")
        for name in ("epochs", "batch_size", "ml_iterations"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.learning_rate <= 0 or self.temperature <= 0 or not 0 < self.level < 1:
            raise ValueError("learning_rate and temperature must be > 0, level in (0, 1)")

    def true_weights(self, w2: float) -> list[float]:
        weights = [1.0] * len(self.population)
        weights[1] = float(w2)
        return weights


def centred(theta: np.ndarray) -> np.ndarray:
    return theta - theta.mean(-1, keepdims=True)


def _dist(config: UrnConfig, logits: torch.Tensor) -> MultivariateFisherNCHypergeometric:
    return MultivariateFisherNCHypergeometric(torch.tensor(config.population), config.draws,
                                              logits=logits)


def paper_loss(data: torch.Tensor, relaxed: torch.Tensor) -> torch.Tensor:
    """The paper's loss: mean over the batch of ``||x_data - x_relaxed||^2`` (``[B, c]``
    each, one relaxed draw per data point)."""
    return (data - relaxed).square().sum(-1).mean()


def _sampler(config: UrnConfig, logits: torch.Tensor, estimator: str):
    """The law an estimator draws from: the paper's merged one for ``relaxed-merge``."""
    if estimator == "relaxed-merge":
        return MergedFisherNCHypergeometric(torch.tensor(config.population), config.draws,
                                            logits=logits)
    return _dist(config, logits)


def _step_loss(config: UrnConfig, logits: torch.Tensor, batch: torch.Tensor, estimator: str
               ) -> torch.Tensor:
    """One step's loss, whose gradient estimates that of the expected paper loss."""
    if estimator == "reinforce-cv":
        from diffhypergeom.estimators import surrogate_loss

        def f(x: torch.Tensor) -> torch.Tensor:  # [S, c] -> [S]: mean over the batch
            return (x.unsqueeze(1) - batch).square().sum(-1).mean(-1)

        return surrogate_loss(_dist(config, logits), f, num_samples=len(batch),
                              estimator="reinforce-cv")
    if estimator == "relaxed-exact":
        relaxed = _dist(config, logits).rsample((len(batch),))
    elif estimator == "gumbel-exact":
        relaxed = _dist(config, logits).rsample((len(batch),), gradient="gumbel",
                                                temperature=config.temperature)
    else:  # the published sampler: the merged law in a new random class order per call
        order = torch.randperm(len(config.population))
        law = MergedFisherNCHypergeometric(torch.tensor(config.population)[order], config.draws,
                                           logits=logits[order])
        relaxed = law.rsample((len(batch),), gradient="gumbel",
                              temperature=config.temperature)[..., torch.argsort(order)]
    return paper_loss(batch, relaxed)


def fit_relaxed(config: UrnConfig, train: torch.Tensor, valid: torch.Tensor, estimator: str
                ) -> dict[str, Any]:
    """Adam on the paper loss with the gradient of ``estimator`` (one of ``ESTIMATORS`` but
    ``"ml"``), the learning rate decayed linearly to 0 (so the last iterate is not dominated by
    step noise); a new distribution per step (the tables depend on the current logits).
    Validation loss once per epoch (fresh draws)."""
    logits = torch.zeros(len(config.population), dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.Adam([logits], lr=config.learning_rate)
    total = config.epochs * math.ceil(len(train) / config.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 1.0 - step / total)
    steps, train_curve, valid_curve, trajectory = 0, [], [], []
    for _ in range(config.epochs):
        order = torch.randperm(len(train))
        for start in range(0, len(train), config.batch_size):
            batch = train[order[start:start + config.batch_size]]
            loss = _step_loss(config, logits, batch, estimator)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            steps += 1
            train_curve.append(loss.item())
            trajectory.append(logits.detach().tolist())
        with torch.no_grad():
            dist = _sampler(config, logits.detach(), estimator)
            draws = dist.sample((len(valid),)).double()
            valid_curve.append([steps, float(paper_loss(valid, draws))])
    return {"logits": logits.detach().tolist(), "train_curve": train_curve,
            "valid_curve": valid_curve, "trajectory": trajectory}


def fit_ml(config: UrnConfig, train: torch.Tensor, valid: torch.Tensor) -> dict[str, Any]:
    """L-BFGS (strong Wolfe) on the exact mean NLL, a concave problem in the logits."""
    logits = torch.zeros(len(config.population), dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([logits], lr=1.0, max_iter=1, max_eval=25,
                                  line_search_fn="strong_wolfe")
    train_curve, valid_curve, trajectory = [], [], []

    def closure():
        optimiser.zero_grad()
        nll = -_dist(config, logits).log_prob(train).mean()
        nll.backward()
        return nll

    for step in range(1, config.ml_iterations + 1):
        train_curve.append(optimiser.step(closure).item())
        trajectory.append(logits.detach().tolist())
        with torch.no_grad():
            valid_curve.append([step, float(-_dist(config, logits).log_prob(valid).mean())])
    return {"logits": logits.detach().tolist(), "train_curve": train_curve,
            "valid_curve": valid_curve, "trajectory": trajectory}


def mle_covariance(sigma: np.ndarray, num: int) -> np.ndarray:
    """``[c, c]``: asymptotic covariance ``P (num * Sigma)^+ P`` of the centred MLE, with
    ``P = I - 11^T / c`` and the pseudo-inverse taken on the centred subspace (``Sigma`` is
    singular along the all-ones direction since ``sum x = n``)."""
    c = sigma.shape[0]
    project = np.eye(c) - np.full((c, c), 1.0 / c)
    inverse = np.linalg.pinv(project @ sigma @ project, rcond=1e-8, hermitian=True)
    return project @ inverse @ project / num


def evaluate(config: UrnConfig, logits: list[float], truth: list[float], train: torch.Tensor,
             valid: torch.Tensor) -> dict[str, Any]:
    """Centred log-weight error, its Fisher-information z2 statistic, and exact losses."""
    from scipy.stats import chi2

    theta = torch.tensor(logits, dtype=torch.float64)
    true_theta = torch.log(torch.tensor(truth, dtype=torch.float64))
    error = centred(theta.numpy()) - centred(true_theta.numpy())
    sigma = _dist(config, true_theta).covariance_matrix.numpy()
    z2 = float(len(train) * error @ sigma @ error)
    fitted = _dist(config, theta)
    mean, variance = fitted.mean, fitted.variance
    with torch.no_grad():
        nll = [float(-fitted.log_prob(x).mean()) for x in (train, valid)]
        expected = [float(((x - mean).square().sum(-1)).mean() + variance.sum())
                    for x in (train, valid)]
    return {
        "centred_logits": centred(theta.numpy()).tolist(),
        "centred_truth": centred(true_theta.numpy()).tolist(),
        "centred_error": error.tolist(),
        "error_norm": float(np.linalg.norm(error)),
        "z2": z2,
        "z2_tolerance": float(chi2.ppf(config.level, len(truth) - 1)),
        "within_tolerance": bool(z2 <= chi2.ppf(config.level, len(truth) - 1)),
        "standard_errors": np.sqrt(np.diag(mle_covariance(sigma, len(train)))).tolist(),
        "train_nll": nll[0], "valid_nll": nll[1],
        "train_expected_paper_loss": expected[0], "valid_expected_paper_loss": expected[1],
    }


def run_setting(config: UrnConfig, w2: float, index: int) -> dict[str, Any]:
    rng = seed_everything(config.seed, index)
    truth = config.true_weights(w2)
    urn = reference.enumerate_urn(config.population, config.draws, truth)
    data = torch.tensor(urn.draw(config.num_data, rng), dtype=torch.float64)
    train, valid = data[:config.num_train], data[config.num_train:]
    fits = {name: fit_relaxed(config, train, valid, name) for name in ESTIMATORS[:-1]}
    fits["ml"] = fit_ml(config, train, valid)
    return {"w2": w2, "weights": truth,
            "estimators": {name: {**fit, **evaluate(config, fit["logits"], truth, train, valid)}
                           for name, fit in fits.items()}}


def summary_markdown(results: dict[str, Any]) -> str:
    cfg = results["config"]
    tolerance = results["settings"][0]["estimators"]["ml"]["z2_tolerance"]
    lines = [f"## Learning urn weights from samples (m = {cfg['population']}, n = {cfg['draws']}, "
             f"w = [1, w2, 1], {cfg['num_train']} train / {cfg['num_data'] - cfg['num_train']} "
             "validation draws)", "",
             "err = ||centred log w - centred log w_gt||_2; z2 = N d^T Sigma d ~ chi2(c-1) for "
             f"the MLE, recovered if z2 <= {tolerance:.2f} "
             f"(chi2 quantile {cfg['level']}). 'paper loss' is the exact expected validation "
             "loss E||x - X||^2 at the estimate; NLL the exact validation NLL.", ""]
    rows = []
    for s in results["settings"]:
        for name in ESTIMATORS:
            e = s["estimators"][name]
            rows.append([f"{s['w2']:g}", name, e["error_norm"], e["z2"],
                         "yes" if e["within_tolerance"] else "no",
                         " ".join(f"{v:+.3f}" for v in e["centred_error"]),
                         e["valid_expected_paper_loss"], e["valid_nll"]])
    lines.append(markdown_table(["w2", "estimator", "err", "z2", "recovered",
                                 "centred error per class", "valid paper loss", "valid NLL"],
                                rows))
    lines += ["", "Recovered (z2 within tolerance) per estimator:", ""]
    lines.append(markdown_table(
        ["estimator", "recovered", "median err", "max err"],
        [[name, f"{t['recovered']} / {t['settings']}", t["median_error"], t["max_error"]]
         for name, t in results["totals"].items()]))
    lines += ["", conclusion(results["totals"])]
    return "\n".join(lines) + "\n"


def conclusion(totals_by_estimator: dict[str, Any]) -> str:
    """One sentence per estimator: recovered in how many settings, and how closely."""
    parts = []
    for name, t in totals_by_estimator.items():
        verdict = ("recovers w_gt" if t["recovered"] == t["settings"] else
                   "does not recover w_gt" if t["recovered"] == 0 else
                   "recovers w_gt only in some settings")
        parts.append(f"{name} {verdict} within the ML sampling tolerance "
                     f"({t['recovered']}/{t['settings']}; centred log-weight error median "
                     f"{t['median_error']:.3f}, max {t['max_error']:.3f})")
    return "Conclusion: " + "; ".join(parts) + "."


def totals(settings: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for name in ESTIMATORS:
        errors = [s["estimators"][name]["error_norm"] for s in settings]
        out[name] = {"settings": len(settings),
                     "recovered": sum(s["estimators"][name]["within_tolerance"]
                                      for s in settings),
                     "median_error": float(np.median(errors)), "max_error": float(max(errors))}
    return out


def plot(results: dict[str, Any], out_dir: Path) -> list[str]:
    from diffhypergeom_studies.validation.plotting import (
        plot_urn_curves,
        plot_urn_errors,
        plot_urn_trajectories,
    )

    return [plot_urn_curves(results, out_dir / "urn_losses.png"),
            plot_urn_trajectories(results, out_dir / "urn_log_weights.png"),
            plot_urn_errors(results, out_dir / "urn_errors.png")]


def run_urn(config: UrnConfig, out_dir: Path, progress: bool = True) -> dict[str, Any]:
    """Run the study, write ``results.json``, ``summary.md`` and figures into ``out_dir``."""
    from tqdm.auto import tqdm

    config.validate()
    started = time.perf_counter()
    out_dir = Path(out_dir)
    done = []
    key_base = config_dict(config)
    key_base.pop("weight_values")
    for index, w2 in enumerate(tqdm(config.weight_values, desc="urn w2", disable=not progress)):
        with single_thread():
            done.append(cached_part(out_dir, f"urn_{index:03d}",
                                    {**key_base, "w2": w2, "index": index},
                                    lambda w=w2, i=index: run_setting(config, w, i)))
    results = {"study": "urn", "config": config_dict(config), "settings": done,
               "totals": totals(done)}
    results["figures"] = plot(results, out_dir)
    return finish(out_dir, results, summary_markdown(results), started)
