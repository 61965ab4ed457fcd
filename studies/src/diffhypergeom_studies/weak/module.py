"""The LightningModule shared by LabelVAE, AdaVAE and HGVAE.

Per pair ``(x1, x2)``: encode both views, pick the shared dims (``methods``), aggregate them,
sample ``z_v ~ q'(z | x_v)`` by reparameterisation and decode. Loss (negative ELBO, beta = 1,
averaged over the batch, summed over the two views):

    L = sum_v [ BCE(decoder(z_v), x_v) summed over pixels + beta * KL(q'(z | x_v) || N(0, I)) ]

plus, for HGVAE with ``k_penalty > 0``, ``k_penalty * E[k]`` on the exact mean of the
selector's MFNCH (``diffhypergeom weak selector`` shows why the ELBO alone does not reward
sharing).

Temperatures (MFNCH Gumbel-softmax and NeuralSort share one) follow the paper's schedule
``tau_t = tau_init * exp(-r t)``, ``r = (log tau_init - log tau_final) / n_anneal``, held at
``tau_final`` after ``n_anneal`` steps.
"""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F

from diffhypergeom_studies.annealing import exponential_temperature
from diffhypergeom_studies.weak.methods import aggregate, make_selector, symmetric_kl
from diffhypergeom_studies.weak.networks import ConvDecoder, ConvEncoder

__all__ = ["WeakVAE"]


class WeakVAE(L.LightningModule):
    def __init__(self, method: str, latent_dim: int, in_channels: int, image_size: int,
                 width: float = 1.0, hidden: int = 256, lr: float = 1e-4,
                 aggregation: str = "mean", num_independent: int = 1, beta: float = 1.0,
                 tau_init: float = 10.0, tau_final: float = 0.01, anneal_steps: int = 20000,
                 omega_input: str = "raw", hard_sort: bool = True,
                 selector_gradient: str = "gumbel", k_penalty: float = 0.0,
                 kernels: str = "4x4"):
        super().__init__()
        self.save_hyperparameters()
        self.encoder = ConvEncoder(in_channels, image_size, latent_dim, width, hidden, kernels)
        self.decoder = ConvDecoder(in_channels, image_size, latent_dim, width, hidden)
        self.selector = make_selector(method, latent_dim, num_independent, omega_input,
                                      hard_sort, selector_gradient)

    def temperature(self) -> float:
        hp = self.hparams
        return exponential_temperature(int(self.global_step), hp.tau_init, hp.tau_final,
                                       hp.anneal_steps)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x)

    def pair_forward(self, x1: torch.Tensor, x2: torch.Tensor, temperature: float) -> dict:
        """Loss terms and the selection for a batch of pairs ``x1, x2 [B, C, S, S]``."""
        mu, logvar = self.encoder(torch.cat([x1, x2]))
        logvar = logvar.clamp(-20.0, 20.0)
        mu1, mu2 = mu.chunk(2)
        lv1, lv2 = logvar.chunk(2)
        gamma = symmetric_kl(mu1, lv1, mu2, lv2)                      # [B, d]
        selection = self.selector(gamma, temperature)
        (m1, l1), (m2, l2) = aggregate(mu1, lv1, mu2, lv2, selection.independent,
                                       self.hparams.aggregation)
        post_mu, post_lv = torch.cat([m1, m2]), torch.cat([l1, l2])
        z = post_mu + torch.randn_like(post_mu) * (0.5 * post_lv).exp()
        logits = self.decoder(z)
        target = torch.cat([x1, x2])
        batch = x1.shape[0]
        recon = F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / batch
        kl = 0.5 * (post_mu ** 2 + post_lv.exp() - post_lv - 1.0).sum() / batch
        loss = recon + self.hparams.beta * kl
        if self.hparams.k_penalty and selection.logits is not None:
            # k_penalty nats per independent dim on the exact E[k] (rewards sharing)
            expected_k = self.selector.urn(selection.logits).mean[..., 0]
            loss = loss + self.hparams.k_penalty * expected_k.mean()
        return {"loss": loss, "recon": recon, "kl": kl, "gamma": gamma, "selection": selection}

    def training_step(self, batch: dict, batch_index: int) -> torch.Tensor:
        tau = self.temperature()
        out = self.pair_forward(batch["x1"], batch["x2"], tau)
        s_true = batch["shared"].sum(-1).float()
        s_hat = out["selection"].num_shared.float()
        self.log_dict({"train/loss": out["loss"], "train/recon": out["recon"],
                       "train/kl": out["kl"], "train/s_hat": s_hat.mean(),
                       "train/mse_s": ((s_hat - s_true) ** 2).mean(), "tau": tau},
                      prog_bar=False, on_step=True, on_epoch=False)
        self.log("loss", out["loss"], prog_bar=True, on_step=True, on_epoch=False, logger=False)
        self.log("s_hat", s_hat.mean(), prog_bar=True, on_step=True, on_epoch=False,
                 logger=False)
        return out["loss"]

    def validation_step(self, batch: dict, batch_index: int) -> None:
        out = self.pair_forward(batch["x1"], batch["x2"], self.temperature())
        s_true = batch["shared"].sum(-1).float()
        s_hat = out["selection"].num_shared.float()
        self.log_dict({"val/loss": out["loss"], "val/s_hat": s_hat.mean(),
                       "val/mse_s": ((s_hat - s_true) ** 2).mean()},
                      on_step=False, on_epoch=True, sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
