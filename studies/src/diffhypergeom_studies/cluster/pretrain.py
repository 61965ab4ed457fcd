"""Autoencoder pretraining and GMM initialisation of the VaDE, cached per dataset and seed.

The encoder's mean head and the decoder are trained as a deterministic autoencoder
(``x -> mu_phi(x) -> decoder``, Bernoulli cross-entropy) with Lightning; then a diagonal
Gaussian mixture (scikit-learn ``GaussianMixture``, K components, by default the references'
``n_init=10`` restarts and ``reg_covar=1e-5``) is fitted to the encoded training set and gives
the cluster means, log-variances and weights. The result is stored with
``torch.save`` (atomically) under a name holding the dataset, its version, the seed and a hash
of the settings, so the three priors of one (dataset, version, seed) start from identical
weights and a restarted sweep reuses it.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.nn import functional as F

from diffhypergeom_studies.cluster.datasets import ClusterData
from diffhypergeom_studies.cluster.networks import Decoder, Encoder
from diffhypergeom_studies.runs import write_bytes_atomic

__all__ = ["Autoencoder", "cache_key", "pretrain"]


class Autoencoder(L.LightningModule):
    """Deterministic autoencoder ``x [B, d] -> mu [B, D] -> logits [B, d]``."""

    def __init__(self, input_dim: int, hidden: Sequence[int], latent_dim: int, lr: float):
        super().__init__()
        self.save_hyperparameters()
        self.encoder = Encoder(input_dim, hidden, latent_dim)
        self.decoder = Decoder(latent_dim, hidden, input_dim)
        # the autoencoder only uses the mean head; frozen so DDP sees no unused parameters
        self.encoder.logvar.requires_grad_(False)

    def training_step(self, batch, batch_idx):
        x = batch[0]
        mu, _ = self.encoder(x)
        loss = F.binary_cross_entropy_with_logits(self.decoder(mu), x, reduction="none")
        loss = loss.sum(-1).mean()
        self.log("pretrain/loss", loss, prog_bar=True, on_step=False, on_epoch=True,
                 batch_size=x.shape[0])
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def cache_key(data: ClusterData, seed: int, settings: dict) -> str:
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    return f"{data.name}-{data.version}-seed{seed}-{digest}"


def pretrain(data: ClusterData, seed: int, *, hidden: Sequence[int], latent_dim: int,
             epochs: int, batch_size: int, lr: float, cache_dir: str | Path,
             trainer_kwargs: dict | None = None, gmm_n_init: int = 10,
             gmm_reg: float = 1e-5) -> dict:
    """Pretrained weights and GMM initialisation for ``(data, seed)``, from the cache in
    ``cache_dir`` if present. Returns ``{"encoder", "decoder", "gmm_means" [K, D],
    "gmm_logvars" [K, D], "gmm_weights" [K], "key"}``."""
    from sklearn.mixture import GaussianMixture

    if epochs < 0:
        raise ValueError(f"pretrain epochs must be >= 0, got {epochs}")
    if gmm_n_init < 1 or gmm_reg <= 0:
        raise ValueError(f"gmm_n_init must be >= 1 and gmm_reg > 0, got {gmm_n_init}, "
                         f"{gmm_reg}")
    settings = {"hidden": list(hidden), "latent_dim": latent_dim, "epochs": epochs,
                "batch_size": batch_size, "lr": lr, "n_train": len(data.train.y),
                "subsampled": data.subsampled_classes, "gmm_n_init": gmm_n_init,
                "gmm_reg": gmm_reg}
    key = cache_key(data, seed, settings)
    path = Path(cache_dir) / f"{key}.pt"
    if path.is_file():
        return torch.load(path, weights_only=False)
    L.seed_everything(seed, workers=True, verbose=False)
    model = Autoencoder(data.train.x.shape[1], hidden, latent_dim, lr)
    x = torch.as_tensor(data.train.x)
    if epochs > 0:
        loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(x), batch_size=batch_size, shuffle=True,
            generator=torch.Generator().manual_seed(seed))
        kwargs = {"logger": False, "enable_checkpointing": False, "enable_model_summary": False,
                  **(trainer_kwargs or {})}
        L.Trainer(max_epochs=epochs, **kwargs).fit(model, loader)
    model = model.cpu().eval()
    with torch.no_grad():
        latents = model.encoder(x)[0].cpu().numpy().astype(np.float64)
    gmm = GaussianMixture(data.num_classes, covariance_type="diag", random_state=seed,
                          n_init=gmm_n_init, reg_covar=gmm_reg).fit(latents)
    state = {"encoder": model.encoder.cpu().state_dict(),
             "decoder": model.decoder.cpu().state_dict(),
             "gmm_means": torch.as_tensor(gmm.means_, dtype=torch.float32),
             "gmm_logvars": torch.as_tensor(np.log(gmm.covariances_), dtype=torch.float32),
             "gmm_weights": torch.as_tensor(gmm.weights_, dtype=torch.float32),
             "key": key}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_bytes_atomic(path, buffer.getvalue())
    return state
