"""The VaDE (Jiang et al. 2016) as a LightningModule, with a pluggable cluster prior.

Generative model: ``c ~ p(c; pi)`` for the whole batch (``priors``), ``z_i | c_i ~
N(mu_{c_i}, diag sigma^2_{c_i})`` with ``D``-dimensional latents, ``x_i | z_i ~
Bernoulli(decoder(z_i))``. Variational posterior ``q(z_i|x_i) = N(mu_phi(x_i),
diag sigma^2_phi(x_i))`` and ``q(c_i|x_i) = gamma_i``, ``gamma_ik ∝ p(c_i = k)
N(z_i; mu_k, sigma_k^2)`` evaluated at a sample ``z_i`` (VaDE's choice).

Loss per batch of size B (the negative ELBO divided by B, so the per-sample terms are means)::

    -(1/B) sum_i [ log p(x_i|z_i) + sum_k gamma_ik E_q log N(z_i; mu_k, sigma_k^2)
                   - E_q log q(z_i|x_i) - sum_k gamma_ik log gamma_ik ]
    -(1/B) E_{q(c|X)} [ log p(c; pi) ]

The last, batch-level term and the per-sample prior weight ``p(c_i = k)`` in ``gamma`` are
the only things that differ between priors. Every prior's term is computed the same way
(``prior_estimator``): ``"exact"`` (default) takes the exact expectation for all priors,
``"gumbel"`` a one-sample Gumbel-softmax estimate for all priors (the paper's Appendix C.3,
L = 1, which the paper used for the hypergeometric prior only), with the temperature annealed
as ``tau_t = tau_init exp(-r t)``, ``r = (log tau_init - log tau_final) / anneal_steps`` (held at
``tau_final`` afterwards). ``pi_init="gmm"`` starts every learnable prior at the pretraining
GMM's weights (as the VaDE and DRPM references do), ``"uniform"`` at uniform weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import lightning as L
import torch
from torch import nn
from torch.nn import functional as F

from diffhypergeom_studies.annealing import exponential_temperature
from diffhypergeom_studies.cluster.networks import Decoder, Encoder
from diffhypergeom_studies.cluster.priors import check_prior_options, make_prior

__all__ = ["LOG_2PI", "VaDE"]

LOG_2PI = math.log(2 * math.pi)


class VaDE(L.LightningModule):
    """VaDE with prior ``prior`` in ``priors.PRIORS``; batches are ``(x [B, d], y [B])``
    (labels are ignored in training)."""

    def __init__(self, input_dim: int, num_clusters: int, prior: str,
                 hidden: Sequence[int] = (500, 500, 2000), latent_dim: int = 10,
                 lr: float = 1e-3, prior_lr: float = 1e-2, tau_init: float = 1.0,
                 tau_final: float = 0.1,
                 anneal_steps: int = 1000, hard: bool = False, batch_size: int = 128,
                 prior_estimator: str = "exact", pi_init: str = "gmm",
                 dataset_size: int | None = None):
        super().__init__()
        check_prior_options(prior_estimator, pi_init, hard)
        if tau_init <= 0 or tau_final <= 0:
            raise ValueError(f"temperatures must be > 0, got tau_init={tau_init}, "
                             f"tau_final={tau_final}")
        if anneal_steps < 1:
            raise ValueError(f"anneal_steps must be >= 1, got {anneal_steps}")
        if lr <= 0 or prior_lr <= 0:
            raise ValueError(f"learning rates must be > 0, got lr={lr}, prior_lr={prior_lr}")
        self.save_hyperparameters()
        self.encoder = Encoder(input_dim, hidden, latent_dim)
        self.decoder = Decoder(latent_dim, hidden, input_dim)
        self.prior = make_prior(prior, num_clusters, batch_size=batch_size,
                                dataset_size=dataset_size)
        self.mu_c = nn.Parameter(torch.zeros(num_clusters, latent_dim))
        self.logvar_c = nn.Parameter(torch.zeros(num_clusters, latent_dim))

    # ------------------------------------------------------------------ initialisation
    def load_pretrained(self, state: dict, init_logvar: float = -4.0) -> None:
        """Encoder/decoder weights and GMM means / log-variances from ``pretrain``; with
        ``pi_init="gmm"`` the prior's per-sample marginal starts at the GMM's weights (and the
        data set's urn takes its ball counts from them).

        The pretraining never trains the encoder's log-variance head; it is set to an almost
        constant ``log sigma^2 = init_logvar`` (bias ``init_logvar``, weights scaled by 0.01)
        so the first sampled ``z`` stay close to the pretrained codes. With the default
        PyTorch initialisation (``sigma^2`` near 1, larger than the spread of the codes) the
        VaDE collapsed into one or a few clusters within a few epochs on the digits."""
        self.encoder.load_state_dict(state["encoder"])
        self.decoder.load_state_dict(state["decoder"])
        with torch.no_grad():
            self.encoder.logvar.weight.mul_(0.01)
            self.encoder.logvar.bias.fill_(init_logvar)
            self.mu_c.copy_(torch.as_tensor(state["gmm_means"], dtype=torch.float32))
            self.logvar_c.copy_(torch.as_tensor(state["gmm_logvars"], dtype=torch.float32))
        if self.hparams.pi_init == "gmm":
            weights = torch.as_tensor(state["gmm_weights"], dtype=torch.float64)
            self.prior.start_at(weights.clamp_min(1e-6) / weights.clamp_min(1e-6).sum())

    # ------------------------------------------------------------------ model pieces
    def temperature(self, step: int | None = None) -> float:
        hp = self.hparams
        step = self.global_step if step is None else step
        return exponential_temperature(step, hp.tau_init, hp.tau_final, hp.anneal_steps)

    def log_pz_given_c(self, z: torch.Tensor) -> torch.Tensor:
        """``log N(z_i; mu_k, sigma_k^2)`` [B, K] for ``z`` [B, D]."""
        diff = z.unsqueeze(1) - self.mu_c  # [B, K, D]
        return -0.5 * (LOG_2PI + self.logvar_c + diff.pow(2) / self.logvar_c.exp()).sum(-1)

    def posterior_c(self, z: torch.Tensor,
                    log_weights: torch.Tensor | None = None) -> torch.Tensor:
        """``gamma = q(c|x)`` [B, K] from latents ``z`` [B, D] and the prior's per-sample
        marginal (``log_weights`` [K], computed if not given)."""
        if log_weights is None:
            log_weights = self.prior.log_weights()
        return torch.softmax(log_weights + self.log_pz_given_c(z), -1)

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Negative-ELBO pieces (per-sample means) for a batch ``x`` [B, d]."""
        mu, logvar = self.encoder(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        recon = F.binary_cross_entropy_with_logits(self.decoder(z), x, reduction="none").sum(-1)
        gamma = self.posterior_c(z)
        var_c = self.logvar_c.exp()  # [K, D]
        e_log_pz = -0.5 * (gamma * (
            LOG_2PI + self.logvar_c + (logvar.exp().unsqueeze(1)
                                       + (mu.unsqueeze(1) - self.mu_c).pow(2)) / var_c
        ).sum(-1)).sum(-1)
        e_log_qz = -0.5 * (LOG_2PI + 1 + logvar).sum(-1)
        e_log_qc = (gamma * gamma.clamp_min(1e-12).log()).sum(-1)
        batch = x.shape[0]
        if self.hparams.prior_estimator == "exact":
            prior_term = self.prior.expected_log_prob(gamma) / batch
        else:
            prior_term = self.prior.sampled_log_prob(gamma, temperature=self.temperature(),
                                                     hard=self.hparams.hard) / batch
        loss = (recon - e_log_pz + e_log_qz + e_log_qc).mean() - prior_term
        return {"loss": loss, "recon": recon.mean(), "prior": prior_term}

    # ------------------------------------------------------------------ Lightning hooks
    def training_step(self, batch, batch_idx):
        terms = self.loss_terms(batch[0])
        self.log_dict({f"train/{k}": v for k, v in terms.items()}, prog_bar=True,
                      on_step=False, on_epoch=True, batch_size=batch[0].shape[0])
        self.log("tau", self.temperature(), on_step=False, on_epoch=True)
        return terms["loss"]

    def configure_optimizers(self):
        """Adam; the prior's logits get their own learning rate ``prior_lr``: with Adam a
        parameter moves about ``lr`` per step, and a cluster weight ratio of 0.6 needs its
        logit to move by ``log 0.6 = -0.51``, out of reach of a few hundred steps at 1e-3."""
        prior_params = list(self.prior.parameters())
        ids = {id(p) for p in prior_params}
        groups = [{"params": [p for p in self.parameters() if id(p) not in ids]}]
        if prior_params:
            groups.append({"params": prior_params, "lr": self.hparams.prior_lr})
        return torch.optim.Adam(groups, lr=self.hparams.lr)

    @torch.no_grad()
    def predict_gamma(self, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        """``q(c|x)`` [n, K] at the posterior means (no sampling)."""
        out = []
        log_weights = self.prior.log_weights()
        for start in range(0, len(x), batch_size):
            mu, _ = self.encoder(x[start:start + batch_size].to(self.device))
            out.append(self.posterior_c(mu, log_weights).cpu())
        return torch.cat(out)
