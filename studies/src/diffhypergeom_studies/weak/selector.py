"""Can the hypergeometric selector learn how many factors two views share, apart from VAE
capacity? The selector study on a synthetic latent space (``diffhypergeom weak selector``).

The representation is fixed and perfect: each view's posterior is ``N(z_v, sigma_q^2 I)`` with
``z_v`` its true latent code (``d`` dims, one per factor). A pair shares ``s`` dims (``z_2 = z_1``
there) and redraws the other ``d - s`` from ``N(0, 1)``. The data are ``x_v = A z_v + sigma_x eps``
through a fixed random linear map ``A`` (``D x d``). Only the selector and a linear Gaussian decoder
are trained, on the weak-supervision ELBO of ``diffhypergeom_studies.weak.module`` (aggregation of
the shared dims by their mean, one reparameterised sample, ``beta = 1``). Every dim that the two
views do not share differs between them, and aggregating it costs reconstruction error (about 85
nats at the default sizes); aggregating a shared dim changes nothing (its two posteriors are equal).
The ELBO alone is therefore flat for every ``k >= d - s`` independent dims: it pushes ``s_hat`` down
to at most ``s`` and no further up. A penalty on ``k`` below the cost of aggregating a differing dim
makes ``k = d - s`` the cheapest point mass, which a selector that can put all its mass there must
find. The MFNCH selector cannot: with urn ``[d, d]`` and ``n = d``, ``k`` keeps a standard deviation
of about 0.9 at interior means (0.86-0.97 for ``d = 7``), and with costs this asymmetric the best
such law puts its mean above ``d - s``.

Variants (``VARIANTS``): the paper's HGVAE selector (raw symmetric-KL input, Gumbel
straight-through); with ``log1p`` of the sorted input; with ``rsample``'s default gradient (the
exact mean's); with the unbiased ``reinforce-cv`` estimator on the per-pair loss of each draw
``k`` (``diffhypergeom.estimators``); with a penalty of ``k_penalty`` nats per independent dim
on the exact ``E[k]``; with ML-VAE's product-of-experts aggregation instead of the mean (it
halves a shared dim's posterior variance, a gain of about 0.5 nats per shared dim here, so it
rewards sharing where the mean does not); and the two baselines, AdaVAE's threshold and
LabelVAE's fixed ``k = 1`` (no selector parameters). Reported per variant, ``s`` and seed: the
sampled ``s_hat`` (mean over evaluation pairs of ``d - k``), ``expected_k`` (mean over pairs of
the exact ``E[k]`` of the learned MFNCH; ``k`` itself for the baselines) and the MSE of the
sampled ``s_hat`` against ``s``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from diffhypergeom_studies.annealing import exponential_temperature
from diffhypergeom_studies.runs import markdown_table
from diffhypergeom_studies.validation.common import (
    cached_part,
    config_dict,
    finish,
    seed_everything,
    single_thread,
)
from diffhypergeom_studies.weak.methods import (
    AdaSelector,
    HypergeometricSelector,
    LabelSelector,
    aggregate,
    symmetric_kl,
)
from diffhypergeom_studies.weak.render import FACTOR_SIZES

__all__ = [
    "EncodedPairs", "REPRESENTATIONS", "SelectorConfig", "SelectorModel", "SyntheticPairs",
    "VARIANTS", "Variant", "aggregate_rows", "make_latent_pairs", "plot", "run_selector_study",
    "run_setting", "standardised_factors", "summary_markdown", "supervised_encoder",
]

REPRESENTATIONS = ("perfect", "supervised")


class Variant(NamedTuple):
    method: str
    omega_input: str = "-"
    gradient: str = "-"  # how k gets its gradient
    penalised: bool = False  # k_penalty nats per independent dim on the exact E[k]
    aggregation: str = "mean"


VARIANTS: dict[str, Variant] = {
    "hg (paper: raw input, Gumbel)": Variant("hg", "raw", "gumbel"),
    "hg, log-sorted input, Gumbel": Variant("hg", "log-sorted", "gumbel"),
    "hg, log-sorted input, mean gradient": Variant("hg", "log-sorted", "mean"),
    "hg, log-sorted input, reinforce-cv": Variant("hg", "log-sorted", "reinforce-cv"),
    "hg, log-sorted input, mean gradient, penalty on E[k]": Variant("hg", "log-sorted", "mean",
                                                                    penalised=True),
    "ada (threshold)": Variant("ada"),
    "label (k = 1)": Variant("label"),
    "hg, log-sorted input, mean gradient, product-of-experts aggregation": Variant(
        "hg", "log-sorted", "mean", aggregation="poe"),
}


@dataclass
class SelectorConfig:
    """Sizes of the selector study."""

    latent_dim: int = 7
    observed_dim: int = 24
    s_values: list[int] = field(default_factory=lambda: [0, 1, 3, 5])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    steps: int = 1000
    batch_size: int = 128
    lr: float = 1e-2
    posterior_std: float = 0.1
    noise_std: float = 0.1
    tau_init: float = 1.0
    tau_final: float = 0.05
    cv_samples: int = 16
    k_penalty: float = 1.0
    eval_pairs: int = 2000
    representation: str = "perfect"
    encoder_steps: int = 600
    image_size: int = 32

    @classmethod
    def paper(cls) -> SelectorConfig:
        return cls()

    @classmethod
    def quick(cls) -> SelectorConfig:
        return cls(seeds=[0, 1], steps=300, eval_pairs=500)

    def validate(self) -> None:
        if self.latent_dim < 2 or self.observed_dim < 1:
            raise ValueError(f"latent_dim must be >= 2 and observed_dim >= 1, got "
                             f"{self.latent_dim}, {self.observed_dim}")
        bad = [s for s in self.s_values if not 0 <= s <= self.latent_dim]
        if bad or not self.s_values:
            raise ValueError(f"s_values must lie in [0, latent_dim={self.latent_dim}], got "
                             f"{self.s_values}")
        unknown = sorted(set(self.variants) - set(VARIANTS))
        if unknown or not self.variants:
            raise ValueError(f"variants must be among {list(VARIANTS)}, got {unknown}")
        if min(self.steps, self.batch_size, self.eval_pairs) < 1 or self.cv_samples < 2:
            raise ValueError("steps, batch_size, eval_pairs must be >= 1 and cv_samples >= 2")
        if min(self.lr, self.posterior_std, self.noise_std, self.tau_final) <= 0 \
                or self.tau_final > self.tau_init:
            raise ValueError("lr, posterior_std, noise_std must be > 0 and "
                             "0 < tau_final <= tau_init")
        if not self.seeds:
            raise ValueError("seeds must not be empty")
        if self.representation not in REPRESENTATIONS:
            raise ValueError(f"representation must be one of {REPRESENTATIONS}, got "
                             f"{self.representation!r}")
        if self.representation == "supervised" and self.latent_dim != len(FACTOR_SIZES):
            raise ValueError(f"representation='supervised' encodes the {len(FACTOR_SIZES)} "
                             f"procedural factors: latent_dim must be {len(FACTOR_SIZES)}, got "
                             f"{self.latent_dim}")


def make_latent_pairs(generator: torch.Generator, count: int, latent_dim: int, shared: int
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """``z1, z2 [count, d]``: standard normal codes equal on ``shared`` dims chosen at random
    per pair, independent elsewhere."""
    z1 = torch.randn(count, latent_dim, generator=generator, dtype=torch.float64)
    z2 = torch.randn(count, latent_dim, generator=generator, dtype=torch.float64)
    order = torch.rand(count, latent_dim, generator=generator).argsort(-1)
    is_shared = torch.zeros(count, latent_dim, dtype=torch.bool)
    is_shared.scatter_(1, order[:, :shared], True)
    return z1, torch.where(is_shared, z1, z2)


class SyntheticPairs:
    """The fixed world of one seed: ``A``, and pairs with their data and perfect posteriors."""

    def __init__(self, config: SelectorConfig, shared: int, seed: int):
        self.config, self.shared = config, shared
        self.generator = torch.Generator().manual_seed(seed)
        self.mixing = torch.randn(config.observed_dim, config.latent_dim,
                                  generator=self.generator, dtype=torch.float64
                                  ) / math.sqrt(config.latent_dim)

    def batch(self, count: int) -> dict[str, torch.Tensor]:
        cfg = self.config
        z1, z2 = make_latent_pairs(self.generator, count, cfg.latent_dim, self.shared)
        noise = torch.randn(2, count, cfg.observed_dim, generator=self.generator,
                            dtype=torch.float64) * cfg.noise_std
        logvar = torch.full_like(z1, 2 * math.log(cfg.posterior_std))
        return {"x1": z1 @ self.mixing.T + noise[0], "x2": z2 @ self.mixing.T + noise[1],
                "mu1": z1, "mu2": z2, "logvar": logvar}


def standardised_factors(factors: np.ndarray) -> torch.Tensor:
    """Factor indices ``[N, K]`` to values in ``[-sqrt 3, sqrt 3]`` (unit variance if
    uniform)."""
    sizes = np.asarray(FACTOR_SIZES, dtype=np.float64)
    return torch.from_numpy((factors / (sizes - 1) * 2 - 1) * math.sqrt(3))


_ENCODERS: dict[tuple, tuple[nn.Module, torch.Tensor]] = {}


def supervised_encoder(config: SelectorConfig, seed: int) -> tuple[nn.Module, torch.Tensor]:
    """A convolutional encoder trained to regress the standardised factors of procedural
    images (``encoder_steps`` Adam steps of 64 images), and its per-dim residual standard
    deviation on held-out images; trained once per seed and process."""
    from diffhypergeom_studies.weak.networks import ConvEncoder
    from diffhypergeom_studies.weak.render import ProceduralMPI3D

    key = (seed, config.encoder_steps, config.image_size)
    if key in _ENCODERS:
        return _ENCODERS[key]
    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 7])
    source = ProceduralMPI3D(config.image_size)
    encoder = ConvEncoder(3, config.image_size, len(FACTOR_SIZES), width=0.5, hidden=128)
    optimiser = torch.optim.Adam(encoder.parameters(), lr=1e-3)
    for _ in range(config.encoder_steps):
        factors = source.sample_factors(rng, 64)
        mu, _ = encoder(source.images(factors))
        loss = (mu - standardised_factors(factors).float()).square().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    encoder.eval().requires_grad_(False)
    held_out = source.sample_factors(rng, 1000)
    with torch.no_grad():
        residual = encoder(source.images(held_out))[0].double() - standardised_factors(held_out)
    _ENCODERS[key] = (encoder, residual.std(0).clamp_min(1e-3))
    return _ENCODERS[key]


class EncodedPairs(SyntheticPairs):
    """Pairs of procedural images sharing ``s`` factors, with posteriors from the frozen
    supervised encoder, ``N(encoder(x_v), residual sd^2)``; the ELBO's data are the
    standardised factors through the fixed map ``A``."""

    def __init__(self, config: SelectorConfig, shared: int, seed: int):
        from diffhypergeom_studies.weak.render import ProceduralMPI3D

        super().__init__(config, shared, seed)
        self.encoder, self.residual_sd = supervised_encoder(config, seed)
        self.source = ProceduralMPI3D(config.image_size)
        self.rng = np.random.default_rng([seed, shared, 11])

    @torch.no_grad()
    def batch(self, count: int) -> dict[str, torch.Tensor]:
        from diffhypergeom_studies.weak.pairs import make_pairs

        cfg = self.config
        f1, f2, _ = make_pairs(self.rng, FACTOR_SIZES, self.shared, count)
        t1, t2 = standardised_factors(f1), standardised_factors(f2)
        noise = torch.randn(2, count, cfg.observed_dim, generator=self.generator,
                            dtype=torch.float64) * cfg.noise_std
        mu1 = self.encoder(self.source.images(f1))[0].double()
        mu2 = self.encoder(self.source.images(f2))[0].double()
        logvar = (2 * self.residual_sd.log()).expand_as(mu1)
        return {"x1": t1 @ self.mixing.T + noise[0], "x2": t2 @ self.mixing.T + noise[1],
                "mu1": mu1, "mu2": mu2, "logvar": logvar}


class SelectorModel(nn.Module):
    """A selector and a linear Gaussian decoder on the fixed posteriors of ``SyntheticPairs``."""

    def __init__(self, config: SelectorConfig, variant: str):
        super().__init__()
        method, omega_input, gradient, self.penalised, self.aggregation = VARIANTS[variant]
        self.config, self.method, self.gradient = config, method, gradient
        d = config.latent_dim
        if method == "hg":
            self.selector = HypergeometricSelector(
                d, omega_input, hard_sort=True,
                gradient="gumbel" if gradient == "reinforce-cv" else gradient).double()
        else:
            self.selector = AdaSelector() if method == "ada" else LabelSelector(d, 1)
        self.decoder = nn.Linear(d, config.observed_dim).double()

    def pair_loss(self, batch: dict[str, torch.Tensor], independent: torch.Tensor
                  ) -> torch.Tensor:
        """Negative ELBO per pair ``[...]`` for independent masks ``[..., B, d]``."""
        lv = batch["logvar"]
        (m1, l1), (m2, l2) = aggregate(batch["mu1"], lv, batch["mu2"], lv, independent,
                                       self.aggregation)
        total = 0.0
        for mu, logvar, x in ((m1, l1, batch["x1"]), (m2, l2, batch["x2"])):
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
            recon = (self.decoder(z) - x).square().sum(-1) / (2 * self.config.noise_std ** 2)
            kl = 0.5 * (mu.square() + logvar.exp() - logvar - 1.0).sum(-1)
            total = total + recon + kl
        return total

    def loss(self, batch: dict[str, torch.Tensor], temperature: float) -> torch.Tensor:
        gamma = symmetric_kl(batch["mu1"], batch["logvar"], batch["mu2"], batch["logvar"])
        if self.gradient != "reinforce-cv":
            selection = self.selector(gamma, temperature)
            loss = self.pair_loss(batch, selection.independent).mean()
            if self.penalised:  # k_penalty nats per independent dim, on the exact E[k]
                expected_k = self.selector.urn(selection.logits).mean[..., 0]
                loss = loss + self.config.k_penalty * expected_k.mean()
            return loss
        from diffhypergeom.estimators import surrogate_loss

        urn = self.selector.urn(self.selector.omega(self.selector.omega_features(gamma)))
        ranks = gamma.argsort(-1, descending=True).argsort(-1)  # rank of each dim, 0 = largest

        def per_draw(counts: torch.Tensor) -> torch.Tensor:  # [S, B, 2] -> [S, B]
            independent = (ranks < counts[..., :1]).to(gamma.dtype)
            return self.pair_loss(batch, independent)

        return surrogate_loss(urn, per_draw, num_samples=self.config.cv_samples,
                              estimator="reinforce-cv") / gamma.shape[0]

    @torch.no_grad()
    def evaluate(self, batch: dict[str, torch.Tensor], shared: int) -> dict[str, float]:
        d = self.config.latent_dim
        gamma = symmetric_kl(batch["mu1"], batch["logvar"], batch["mu2"], batch["logvar"])
        selection = self.selector(gamma, self.config.tau_final)
        s_hat = selection.num_shared.double()
        if self.method == "hg":
            expected_k = self.selector.urn(selection.logits).mean[..., 0]
        else:
            expected_k = d - s_hat
        return {"s_hat": float(s_hat.mean()), "expected_k": float(expected_k.mean()),
                "expected_s": float(d - expected_k.mean()),
                "mse": float((s_hat - shared).square().mean())}


def run_setting(config: SelectorConfig, variant: str, shared: int, seed: int
                ) -> dict[str, Any]:
    """Train one variant on one ``s`` and seed (the baselines have nothing to train); evaluate
    on fresh pairs. Every variant sees the same world (``A`` and pairs) for a given seed."""
    seed_everything(seed, list(VARIANTS).index(variant), shared)
    world = (EncodedPairs if config.representation == "supervised" else SyntheticPairs)(
        config, shared, seed)
    model = SelectorModel(config, variant)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    curve = []
    for step in range(config.steps if model.method == "hg" else 0):
        tau = exponential_temperature(step, config.tau_init, config.tau_final, config.steps)
        loss = model.loss(world.batch(config.batch_size), tau)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % max(1, config.steps // 50) == 0 or step == config.steps - 1:
            curve.append([step, float(loss.detach())])
    return {"variant": variant, "s": shared, "seed": seed, "loss_curve": curve,
            **model.evaluate(world.batch(config.eval_pairs), shared)}


def aggregate_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and standard deviation over seeds per variant and ``s``."""
    out = []
    keys = sorted({(r["variant"], r["s"]) for r in rows},
                  key=lambda k: (list(VARIANTS).index(k[0]), k[1]))
    for variant, shared in keys:
        group = [r for r in rows if r["variant"] == variant and r["s"] == shared]
        entry = {"variant": variant, "s": shared, "seeds": len(group)}
        for name in ("s_hat", "expected_k", "expected_s", "mse"):
            values = np.array([r[name] for r in group])
            entry[name] = float(values.mean())
            entry[name + "_sd"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        out.append(entry)
    return out


def summary_markdown(results: dict[str, Any]) -> str:
    cfg = results["config"]
    lines = [f"## Selector study: {cfg['representation']} representation, "
             f"d = {cfg['latent_dim']}, "
             f"{len(cfg['seeds'])} seeds, {cfg['steps']} steps", "",
             "s_hat: mean sampled number of shared dims on fresh pairs; E[s] = d - E[k] from "
             "the learned MFNCH's exact mean; MSE of the sampled s_hat against s. Mean +- sd "
             "over seeds.", ""]
    rows = [[r["variant"], r["s"], f"{r['s_hat']:.2f} +- {r['s_hat_sd']:.2f}",
             f"{r['expected_s']:.2f} +- {r['expected_s_sd']:.2f}",
             f"{r['mse']:.2f} +- {r['mse_sd']:.2f}"] for r in results["summary"]]
    lines.append(markdown_table(["variant", "s", "s_hat", "E[s]", "MSE"], rows))
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> str:
    from diffhypergeom_studies.validation.common import save_figure
    from diffhypergeom_studies.validation.plotting import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    s_values = results["config"]["s_values"]
    ax.plot(s_values, s_values, color="0.6", ls=":", label="s_hat = s")
    for variant in results["config"]["variants"]:
        rows = [r for r in results["summary"] if r["variant"] == variant]
        ax.errorbar([r["s"] for r in rows], [r["s_hat"] for r in rows],
                    yerr=[r["s_hat_sd"] for r in rows], marker="o", ms=3, capsize=2,
                    label=variant)
    ax.set_xlabel("true number of shared dims s")
    ax.set_ylabel("learned s_hat (mean over pairs; +- sd over seeds)")
    ax.set_title(f"selector on a {results['config']['representation']} representation",
                 fontsize=9)
    ax.legend(fontsize=6)
    save_figure(fig, path)
    return path.name


def run_selector_study(config: SelectorConfig, out_dir: Path, progress: bool = True
                       ) -> dict[str, Any]:
    """Run every variant x s x seed (each a resumable part); write ``results.json``,
    ``summary.md`` and ``selector_s_hat.png`` into ``out_dir``."""
    from tqdm.auto import tqdm

    config.validate()
    started = time.perf_counter()
    out_dir = Path(out_dir)
    settings = [(v, s, seed) for v in config.variants for s in config.s_values
                for seed in config.seeds]
    key_base = {k: v for k, v in config_dict(config).items()
                if k not in ("s_values", "seeds", "variants")}
    rows = []
    with single_thread():
        for variant, shared, seed in tqdm(settings, desc="selector study",
                                          disable=not progress):
            name = f"selector_{list(VARIANTS).index(variant)}_s{shared}_seed{seed}"
            rows.append(cached_part(
                out_dir, name, {**key_base, "variant": variant, "s": shared, "seed": seed},
                lambda v=variant, s=shared, sd=seed: run_setting(config, v, s, sd)))
    results = {"study": "weak-selector", "config": config_dict(config), "rows": rows,
               "summary": aggregate_rows(rows)}
    results["figures"] = [plot(results, out_dir / "selector_s_hat.png")]
    return finish(out_dir, results, summary_markdown(results), started)
