"""One weak-supervision run: train with Lightning, then evaluate; results in a run directory.

Layout of ``run_dir``: ``config.json``; ``logs/metrics.csv`` (Lightning's CSV logger: training
and validation curves); ``checkpoints/last.ckpt`` (resume with ``ckpt_path``);
``curves.png``; ``result.json`` (written last and atomically: a run is finished iff it exists).
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from diffhypergeom_studies.runs import read_json, write_json_atomic
from diffhypergeom_studies.weak.config import RunConfig
from diffhypergeom_studies.weak.sources import FactorImageSource

__all__ = ["ACTIVE_KL", "build_model", "evaluate", "load_result", "make_source", "train_run"]

TRAIN_STREAM, VAL_STREAM, TEST_STREAM, PROBE_STREAM = 0, 1, 2, 3
ACTIVE_KL = 0.1  # nats: a latent dim with a lower mean KL to the prior counts as collapsed


def make_source(config: RunConfig) -> FactorImageSource:
    if config.dataset == "procedural":
        from diffhypergeom_studies.weak.render import ProceduralMPI3D
        return ProceduralMPI3D(config.image_size)
    from diffhypergeom_studies.weak.loaders import load_dsprites, load_mpi3d
    loader = load_mpi3d if config.dataset == "mpi3d" else load_dsprites
    return loader(config.data_path, image_size=config.image_size)


def build_model(config: RunConfig, source: FactorImageSource):
    from diffhypergeom_studies.weak.module import WeakVAE
    latent_dim = config.latent_dim or source.num_factors
    return WeakVAE(config.method, latent_dim, source.num_channels, config.image_size,
                   width=config.width, hidden=config.hidden, lr=config.lr,
                   aggregation=config.aggregation, num_independent=config.num_independent,
                   tau_init=config.tau_init, tau_final=config.tau_final,
                   anneal_steps=config.anneal_steps or config.steps,
                   omega_input=config.omega_input, hard_sort=config.hard_sort,
                   selector_gradient=config.selector_gradient, k_penalty=config.k_penalty,
                   kernels=config.kernels)


def train_run(config: RunConfig, run_dir: str | Path, accelerator: str = "cpu",
              devices: int | str = 1, strategy: str = "auto", ckpt_path: str | None = None,
              progress: bool = True) -> dict | None:
    """Train and evaluate one run; returns the result (``None`` on non-zero DDP ranks).

    ``ckpt_path``: a checkpoint to resume from, or ``"last"`` for this run's own last one.
    """
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger
    from torch.utils.data import DataLoader

    from diffhypergeom_studies.weak.pairs import PairBatches

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_dir / "config.json", config.to_dict())
    if ckpt_path == "last":
        last = run_dir / "checkpoints" / "last.ckpt"
        ckpt_path = str(last) if last.is_file() else None
    elif ckpt_path is not None and not Path(ckpt_path).is_file():
        raise FileNotFoundError(f"checkpoint to resume from not found: {ckpt_path}")
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*Experiment logs directory.*")
    warnings.filterwarnings("ignore", ".*Checkpoint directory.*exists and is not empty.*")

    L.seed_everything(config.seed, workers=True, verbose=False)
    source = make_source(config)
    model = build_model(config, source)
    train_data = PairBatches(source, config.num_shared, config.batch_size, config.steps,
                             config.seed, TRAIN_STREAM, config.pairs, config.k)
    val_batches = max(1, config.val_pairs // config.batch_size)
    val_data = PairBatches(source, config.num_shared, config.batch_size, val_batches,
                           config.seed, VAL_STREAM, config.pairs, config.k)
    trainer = L.Trainer(
        max_steps=config.steps, accelerator=accelerator, devices=devices, strategy=strategy,
        default_root_dir=run_dir, logger=CSVLogger(run_dir, name="logs", version=0),
        callbacks=[ModelCheckpoint(dirpath=run_dir / "checkpoints", save_last=True,
                                   every_n_train_steps=config.val_every)],
        val_check_interval=min(config.val_every, config.steps), check_val_every_n_epoch=None,
        log_every_n_steps=max(1, min(10, config.steps // 20)), num_sanity_val_steps=0,
        enable_progress_bar=progress, enable_model_summary=False)
    start = time.perf_counter()
    trainer.fit(model, DataLoader(train_data, batch_size=None, shuffle=False),
                DataLoader(val_data, batch_size=None), ckpt_path=ckpt_path)
    train_seconds = time.perf_counter() - start
    if not trainer.is_global_zero:
        return None
    from diffhypergeom_studies.weak.report import plot_curves
    start = time.perf_counter()
    result = evaluate(model.cpu().eval(), source, config)
    result["train_seconds"] = train_seconds
    result["eval_seconds"] = time.perf_counter() - start
    result["config"] = config.to_dict()
    metrics_csv = run_dir / "logs" / "version_0" / "metrics.csv"
    if metrics_csv.is_file():
        plot_curves(metrics_csv, run_dir / "curves.png", config)
    write_json_atomic(run_dir / "result.json", result)
    return result


@torch.no_grad()
def evaluate(model, source: FactorImageSource, config: RunConfig) -> dict:
    """``s_hat`` on held-out pairs and the linear probes on shared / independent dims."""
    from diffhypergeom_studies.weak.methods import symmetric_kl
    from diffhypergeom_studies.weak.metrics import (
        encode_posteriors,
        factor_scores,
        kl_to_prior_per_dim,
        mse_num_shared,
        part_score,
        shared_dims,
    )
    from diffhypergeom_studies.weak.pairs import PairBatches

    tau = config.tau_final
    batch = min(256, config.eval_pairs)
    test = PairBatches(source, config.num_shared, batch, -(-config.eval_pairs // batch),
                       config.seed, TEST_STREAM, config.pairs, config.k)
    s_hat, s_true, masks, logits = [], [], [], []
    for item in test:
        s_true.append(item["shared"].sum(-1).float())
        mu, logvar = model.encode(torch.cat([item["x1"], item["x2"]]))
        mu1, mu2 = mu.chunk(2)
        lv1, lv2 = logvar.clamp(-20.0, 20.0).chunk(2)
        selection = model.selector(symmetric_kl(mu1, lv1, mu2, lv2), tau)
        s_hat.append(selection.num_shared.float())
        masks.append(selection.independent)
        if selection.logits is not None:
            logits.append(selection.logits)
    s_hat_arr = torch.cat(s_hat).numpy()[: config.eval_pairs]
    s_true_arr = torch.cat(s_true).numpy()[: config.eval_pairs]
    masks_arr = torch.cat(masks).numpy()[: config.eval_pairs]
    shared = shared_dims(masks_arr)

    rng = np.random.default_rng([config.seed, PROBE_STREAM])
    f_train = source.sample_factors(rng, config.eval_train)
    f_test = source.sample_factors(rng, config.eval_test)

    def embed(factors):
        chunks = [source.images(factors[i:i + 256]) for i in range(0, len(factors), 256)]
        return encode_posteriors(model.encoder, torch.cat(chunks))

    (z_train, _), (z_test, logvar_test) = embed(f_train), embed(f_test)
    kl_per_dim = kl_to_prior_per_dim(z_test, logvar_test)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores_shared = factor_scores(z_train, f_train, z_test, f_test, shared)
        scores_indep = factor_scores(z_train, f_train, z_test, f_test, ~shared)
    result = {
        "method": config.method, "num_shared": config.num_shared, "seed": config.seed,
        "pairs": config.pairs, "k": config.k, "setting": config.setting,
        "s_true_mean": float(s_true_arr.mean()),
        "latent_dim": int(masks_arr.shape[1]),
        "mse_s": mse_num_shared(s_true_arr, s_hat_arr),
        "s_hat_mean": float(s_hat_arr.mean()), "s_hat_std": float(s_hat_arr.std()),
        "s_hat_hist": np.bincount(s_hat_arr.round().astype(int),
                                  minlength=masks_arr.shape[1] + 1).tolist(),
        "shared_dims": shared.tolist(),
        "kl_to_prior_per_dim": kl_per_dim.tolist(),
        "active_dims": int((kl_per_dim > ACTIVE_KL).sum()),
        "acc_shared": part_score(scores_shared), "acc_independent": part_score(scores_indep),
        "acc_shared_per_factor": scores_shared.tolist(),
        "acc_independent_per_factor": scores_indep.tolist(),
        "factor_names": list(source.factor_names),
    }
    if logits:
        result["omega_logits_mean"] = torch.cat(logits).mean(0).tolist()
    return result


def load_result(run_dir: str | Path) -> dict | None:
    """The finished run's result, or ``None`` if it has not finished."""
    path = Path(run_dir) / "result.json"
    return read_json(path) if path.is_file() else None
