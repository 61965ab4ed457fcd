"""Deep variational clustering (VaDE) with a categorical, uniform or hypergeometric cluster
prior: `cluster train` runs one model, `cluster sweep` runs priors x dataset versions x seeds
and writes results.json, summary.md (the paper's Table 2 layout) and weights.png (learned
cluster weights vs true class proportions, the paper's Figure 3)."""

from __future__ import annotations

import argparse

__all__ = [
    "DATASET_NAMES", "PI_INIT_NAMES", "PRIOR_ESTIMATOR_NAMES", "PRIOR_NAMES", "VERSION_NAMES",
    "configure", "run",
]

PRIOR_NAMES = ("categorical", "uniform", "hypergeometric", "hypergeometric-dataset")
PRIOR_ESTIMATOR_NAMES = ("exact", "gumbel")
PI_INIT_NAMES = ("uniform", "gmm")
VERSION_NAMES = ("balanced", "sub80", "sub60")
DATASET_NAMES = ("digits", "fashion-mnist", "idx")
_OUT_ENV = "DIFFHYPERGEOM_CLUSTER_OUT"


def _hidden(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--hidden must be comma-separated integers, "
                                         f"got {text!r}") from err
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"--hidden sizes must be >= 1, got {text!r}")
    return sizes


def _add_common(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", choices=DATASET_NAMES, default="digits",
                      help="digits: scikit-learn's 8x8 digits (built in); fashion-mnist: the "
                      "Debian package dataset-fashion-mnist; idx: an MNIST-style IDX directory "
                      "given by --data-dir")
    data.add_argument("--data-dir", default=None,
                      help="directory with train-/t10k- images and labels IDX files (.gz or "
                      "raw); default for fashion-mnist: /usr/share/datasets/fashion-mnist")
    data.add_argument("--max-train", type=int, default=None,
                      help="use a seeded random subset of this many training images")
    model = parser.add_argument_group("model and training")
    model.add_argument("--hidden", type=_hidden, default=[500, 500, 2000],
                       help="encoder hidden sizes (decoder mirrors them)")
    model.add_argument("--latent-dim", type=int, default=10, help="latent dimension D")
    model.add_argument("--batch-size", type=int, default=128,
                       help="batch size B (also the hypergeometric urn: K colours x B balls)")
    model.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate of the VaDE")
    model.add_argument("--prior-lr", type=float, default=1e-2,
                       help="Adam learning rate of the prior's cluster-weight logits")
    model.add_argument("--pretrain-lr", type=float, default=1e-3,
                       help="Adam learning rate of the autoencoder pretraining")
    model.add_argument("--pretrain-epochs", type=int, default=10,
                       help="autoencoder pretraining epochs (cached per dataset and seed)")
    model.add_argument("--epochs", type=int, default=20, help="VaDE training epochs")
    model.add_argument("--prior-estimator", choices=PRIOR_ESTIMATOR_NAMES, default="exact",
                       help="how every prior's ELBO term E_q[log p(c)] is computed, the same "
                       "for all priors: exact (the exact expectation; for the hypergeometric "
                       "priors from the Poisson-binomial laws of the cluster counts) or gumbel "
                       "(log p at one Gumbel-softmax sample of q(c|x), the paper's estimator)")
    model.add_argument("--pi-init", choices=PI_INIT_NAMES, default="gmm",
                       help="initial prior weights: gmm (the pretraining GMM's weights, as in "
                       "the VaDE and DRPM references; the data set's urn also takes its ball "
                       "counts from them) or uniform")
    model.add_argument("--tau-init", type=float, default=1.0,
                       help="initial Gumbel-softmax temperature (--prior-estimator gumbel)")
    model.add_argument("--tau-final", type=float, default=0.1,
                       help="final temperature, reached at the last training step")
    model.add_argument("--hard", action="store_true",
                       help="with --prior-estimator gumbel: straight-through (integer) cluster "
                       "assignments instead of relaxed ones")
    model.add_argument("--gmm-n-init", type=int, default=10,
                       help="GaussianMixture restarts of the initialisation (references: 10)")
    model.add_argument("--gmm-reg", type=float, default=1e-5,
                       help="GaussianMixture reg_covar of the initialisation (references: 1e-5)")
    model.add_argument("--cache-dir", default=None,
                       help="pretraining cache directory (default: <out>/pretrain)")
    run = parser.add_argument_group("execution")
    run.add_argument("--out", default=None,
                     help="run directory (default: runs/cluster/<timestamp>); reuse it to "
                     "resume: finished runs are skipped, interrupted ones resume from "
                     "their last checkpoint")
    run.add_argument("--accelerator", default="cpu",
                     help="Lightning accelerator (cpu, gpu, auto, ...)")
    run.add_argument("--devices", default="1", help="Lightning devices (count, list or auto)")
    run.add_argument("--strategy", default="auto",
                     help="Lightning strategy (auto, ddp, ...)")
    run.add_argument("--threads", type=int, default=None,
                     help="torch CPU threads (default: torch's choice)")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="cluster_command", metavar="SUBCOMMAND", required=True)
    train = sub.add_parser("train", help="train and evaluate one VaDE",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    train.add_argument("--prior", choices=PRIOR_NAMES, default="hypergeometric",
                       help="cluster prior p(c): categorical (learnable pi), uniform, "
                       "hypergeometric (the paper's urn: K colours of B balls, B drawn) or "
                       "hypergeometric-dataset (the urn of the training set: max(N p_k, B) balls "
                       "of colour k)")
    train.add_argument("--version", choices=VERSION_NAMES, default="balanced",
                       help="dataset version: balanced, or half of the classes subsampled to "
                       "80%% / 60%%")
    train.add_argument("--seed", type=int, default=0, help="seed (data subsampling, init)")
    train.add_argument("--keep-checkpoints", action=argparse.BooleanOptionalAction,
                       default=True, help="keep the Lightning checkpoints after the run")
    _add_common(train)
    sweep = sub.add_parser("sweep", help="priors x dataset versions x seeds, with summary",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sweep.add_argument("--priors", nargs="+", choices=PRIOR_NAMES, default=list(PRIOR_NAMES),
                       help="priors to compare")
    sweep.add_argument("--versions", nargs="+", choices=VERSION_NAMES,
                       default=list(VERSION_NAMES), help="dataset versions")
    sweep.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds")
    sweep.add_argument("--keep-checkpoints", action=argparse.BooleanOptionalAction,
                       default=False,
                       help="keep each run's checkpoints after it finished (they are only "
                       "needed to resume it)")
    _add_common(sweep)


def _config(args: argparse.Namespace):
    from diffhypergeom_studies.cluster.sweep import TrainConfig

    return TrainConfig(hidden=args.hidden, latent_dim=args.latent_dim,
                       batch_size=args.batch_size, lr=args.lr, prior_lr=args.prior_lr,
                       pretrain_lr=args.pretrain_lr,
                       pretrain_epochs=args.pretrain_epochs, epochs=args.epochs,
                       tau_init=args.tau_init, tau_final=args.tau_final, hard=args.hard,
                       prior_estimator=args.prior_estimator, pi_init=args.pi_init,
                       gmm_n_init=args.gmm_n_init, gmm_reg=args.gmm_reg,
                       accelerator=args.accelerator, devices=str(args.devices),
                       strategy=args.strategy, progress=not args.no_progress,
                       keep_checkpoints=args.keep_checkpoints)


def run(args: argparse.Namespace) -> int:
    import logging
    import os

    import torch

    from diffhypergeom_studies.runs import make_run_dir

    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    cfg = _config(args)
    # Lightning's DDP launcher re-runs this command for ranks > 0: they inherit the
    # environment, so they find rank 0's run directory instead of making a new one
    previous = os.environ.get(_OUT_ENV)
    out = make_run_dir("cluster", out=args.out or previous)
    os.environ[_OUT_ENV] = str(out)
    try:
        return _run_in(out, args, cfg)
    finally:
        if previous is None:
            os.environ.pop(_OUT_ENV, None)
        else:
            os.environ[_OUT_ENV] = previous


def _run_in(out, args: argparse.Namespace, cfg) -> int:
    import json

    if args.cluster_command == "sweep":
        from diffhypergeom_studies.cluster.sweep import run_sweep

        summary = run_sweep(out, args.dataset, args.priors, args.versions, args.seeds, cfg,
                            data_dir=args.data_dir, max_train=args.max_train,
                            cache_dir=args.cache_dir, log=lambda msg: print(msg, flush=True))
        if summary is None:  # a DDP rank > 0
            return 0
        print((out / "summary.md").read_text(encoding="utf-8"))
        print(f"results in {out}")
        return 0
    from diffhypergeom_studies.cluster.datasets import load_splits, make_version
    from diffhypergeom_studies.cluster.sweep import pretrain_for, train_one

    train, test = load_splits(args.dataset, args.data_dir)
    data = make_version(args.dataset, train, test, args.version, args.seed,
                        max_train=args.max_train)
    init = pretrain_for(data, args.seed, cfg, args.cache_dir or out / "pretrain")
    result = train_one(data, args.prior, args.seed, cfg, out, init)
    if result is not None:
        shown = {k: result[k] for k in ("prior", "version", "seed", "acc", "nmi", "ari",
                                        "spearman", "matched_weights", "class_proportions")}
        print(json.dumps(shown, indent=2, default=str))
        print(f"results in {out / 'result.json'}")
    return 0
