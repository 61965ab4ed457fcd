"""Weak supervision (the paper's Section 5.2): learn how many of K generative factors two views
share. `weak train` trains one model (LabelVAE, AdaVAE or HGVAE) on pairs sharing s factors;
`weak sweep` runs methods x s values x seeds and writes results.json, summary.md and summary.png
(skipping finished runs when restarted); `weak selector` asks whether the selector can learn s
at all, on perfect latents with only the selector trained; `weak render` saves a PNG grid of the
procedural mpi3d-like dataset with each factor varying."""

from __future__ import annotations

import argparse
import os
import sys

__all__ = ["METHOD_CHOICES", "configure", "run"]

METHOD_CHOICES = ("label", "ada", "hg")


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") \
            from err
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def _method_list(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in values if v not in METHOD_CHOICES]
    if bad or not values:
        raise argparse.ArgumentTypeError(f"methods must be among {METHOD_CHOICES}, got {text!r}")
    return values


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", choices=("procedural", "mpi3d", "dsprites"),
                   default="procedural", help="procedural mpi3d-like images (no download), or "
                   "a real dataset .npz given by --data-path")
    p.add_argument("--data-path", default=None, help="the mpi3d or dSprites .npz file")
    p.add_argument("--image-size", type=int, default=None,
                   help="image side in pixels (default 64; 32 with --quick)")


def _add_training_options(p: argparse.ArgumentParser) -> None:
    _add_data_options(p)
    p.add_argument("--quick", action="store_true",
                   help="small preset for a 2-core CPU: 32x32, half-width nets, 600 steps, "
                   "lr 1e-3, small evaluation sets (explicit options still override)")
    p.add_argument("--latent-dim", type=int, default=None, help="d; 0 = number of factors K")
    p.add_argument("--width", type=float, default=None, help="conv channel multiplier (1.0)")
    p.add_argument("--hidden", type=int, default=None, help="dense layer size (256)")
    p.add_argument("--kernels", choices=("4x4", "reference"), default=None,
                   help="encoder conv kernels: 4x4 in every layer (default), or 'reference': "
                   "2x2 in the last two layers, as disentanglement_lib's conv_encoder")
    p.add_argument("--batch-size", type=int, default=None, help="pairs per step (64)")
    p.add_argument("--steps", type=int, default=None, help="training steps (20000)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (1e-4)")
    p.add_argument("--aggregation", choices=("mean", "poe"), default=None,
                   help="shared dims: GroupVAE mean (default) or ML-VAE product of experts")
    p.add_argument("--num-independent", type=int, default=None,
                   help="LabelVAE's known number of independent dims (1)")
    p.add_argument("--tau-init", type=float, default=None, help="initial temperature (10)")
    p.add_argument("--tau-final", type=float, default=None, help="final temperature (0.01)")
    p.add_argument("--anneal-steps", type=int, default=None,
                   help="temperature annealing steps (0 = all training steps)")
    p.add_argument("--omega-input", choices=("raw", "sorted", "log-sorted"), default=None,
                   help="HGVAE: what the omega layer sees: the raw symmetric-KL vector (paper), "
                   "it sorted, or log1p of it sorted")
    p.add_argument("--pairs", choices=("fixed", "locatello"), default=None,
                   help="pair protocol: 'fixed' pairs share exactly s factors (default); "
                   "'locatello' as disentanglement_lib's simple_dynamics (half the pairs redraw "
                   "1 factor, half k; k = -1: random per pair)")
    p.add_argument("--selector-gradient", choices=("gumbel", "mean"), default=None,
                   help="HGVAE: rsample's backward pass for k: Gumbel straight-through (the "
                   "paper's; default) or the exact mean's gradient")
    p.add_argument("--k-penalty", type=float, default=None,
                   help="HGVAE: nats per independent dim added to the loss on the exact E[k] "
                   "(default 0; rewards sharing, see `weak selector`)")
    p.add_argument("--soft-sort", action="store_true",
                   help="HGVAE: soft NeuralSort permutation in the forward pass (default hard, "
                   "straight-through)")
    p.add_argument("--val-every", type=int, default=None, help="validate/checkpoint every N steps")
    p.add_argument("--eval-pairs", type=int, default=None, help="held-out pairs for s_hat")
    p.add_argument("--eval-train", type=int, default=None, help="probe training images (10000)")
    p.add_argument("--eval-test", type=int, default=None, help="probe test images (5000)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default 1: on a shared 2-core machine more threads "
                   "oversubscribe and run far slower)")
    p.add_argument("--accelerator", default="cpu", help="Lightning accelerator (cpu, gpu, auto)")
    p.add_argument("--devices", default="1", help="Lightning devices (a count, a list or auto)")
    p.add_argument("--strategy", default="auto", help="Lightning strategy (auto, ddp, ...)")
    p.add_argument("--out", default=None, help="output directory (default runs/weak/<time>)")
    p.add_argument("--root", default="runs", help="root of new run directories")


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="weak_command", metavar="SUBCOMMAND", required=True)
    fmt = argparse.ArgumentDefaultsHelpFormatter
    train = sub.add_parser("train", help="train and evaluate one model", formatter_class=fmt)
    _add_training_options(train)
    train.add_argument("--method", choices=METHOD_CHOICES, default="hg",
                       help="label (LabelVAE), ada (AdaVAE) or hg (HGVAE)")
    train.add_argument("--s", type=int, default=3,
                       help="factors shared by the two views (--pairs fixed)")
    train.add_argument("--k", type=int, default=-1,
                       help="factors redrawn by simple_dynamics (--pairs locatello; -1 random)")
    train.add_argument("--seed", type=int, default=0, help="random seed")
    train.add_argument("--resume", default=None,
                       help="checkpoint to resume from ('last' = this run dir's last.ckpt)")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    sweep = sub.add_parser("sweep", help="methods x s values x seeds, with summary",
                           formatter_class=fmt)
    _add_training_options(sweep)
    sweep.add_argument("--methods", type=_method_list, default=list(METHOD_CHOICES),
                       help="comma-separated methods")
    sweep.add_argument("--s-values", type=_int_list, default=[0, 1, 3, 5],
                       help="comma-separated numbers of shared factors (--pairs fixed)")
    sweep.add_argument("--k-values", type=_int_list, default=[-1, 2, 4, 6],
                       help="comma-separated k of simple_dynamics (--pairs locatello; the "
                       "paper's Table 3)")
    sweep.add_argument("--seeds", type=_int_list, default=None,
                       help="comma-separated seeds (default 0,1,2; 0,1 with --quick)")
    sweep.add_argument("--workers", type=int, default=1,
                       help="train this many runs at once in CPU worker processes "
                       "(--threads torch threads each)")
    sweep.add_argument("--progress", action="store_true",
                       help="show each run's Lightning progress bar")

    selector = sub.add_parser(
        "selector",
        help="can the selector learn s? perfect latents, only the selector trained",
        description="The selector study (diffhypergeom_studies.weak.selector): posteriors of a "
        "perfect representation, data through a fixed linear map; trains only the selector and "
        "a linear decoder for each variant, s and seed; writes results.json (s_hat, "
        "expected_k per run), summary.md and selector_s_hat.png.")
    selector.add_argument("--quick", action="store_true",
                          help="2 seeds, 300 steps, 500 evaluation pairs (80 s on 2 cores)")
    selector.add_argument("--s-values", type=_int_list, default=None,
                          help="comma-separated numbers of shared dims (default 0,1,3,5)")
    selector.add_argument("--seeds", type=_int_list, default=None,
                          help="comma-separated seeds (default 0,1,2; 0,1 with --quick)")
    selector.add_argument("--steps", type=int, default=None,
                          help="Adam steps per run (default 1000; 300 with --quick)")
    selector.add_argument("--latent-dim", type=int, default=None, help="d (default 7)")
    selector.add_argument("--representation", choices=("perfect", "supervised"),
                          default=None,
                          help="posteriors: the true latent codes (default), or a "
                          "convolutional encoder trained with factor supervision on the "
                          "procedural images (frozen; its residual sd as posterior sd)")
    selector.add_argument("--k-penalty", type=float, default=None,
                          help="nats per independent dim of the penalised variant (default 1)")
    selector.add_argument("--out", default=None,
                          help="run directory (default runs/weak-selector/<time>); an existing "
                          "one is reused and its finished runs are skipped")
    selector.add_argument("--root", default="runs",
                          help="root of new run directories (default runs)")
    selector.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    render = sub.add_parser("render", help="PNG grid: each factor varying",
                            formatter_class=fmt)
    _add_data_options(render)
    render.add_argument("--columns", type=int, default=8, help="values shown per factor")
    render.add_argument("--seed", type=int, default=0, help="seed of the base factor vector")
    render.add_argument("--out", default=None,
                        help="PNG path (default runs/weak-render/<time>/factors.png)")
    render.add_argument("--root", default="runs", help="root of new run directories")


def _config(args: argparse.Namespace, **fixed):
    from diffhypergeom_studies.weak.config import QUICK, RunConfig

    values = dict(QUICK) if args.quick else {}
    options = {"dataset": args.dataset, "data_path": args.data_path,
               "image_size": args.image_size, "latent_dim": args.latent_dim,
               "width": args.width, "hidden": args.hidden, "kernels": args.kernels,
               "batch_size": args.batch_size,
               "steps": args.steps, "lr": args.lr, "aggregation": args.aggregation,
               "num_independent": args.num_independent, "tau_init": args.tau_init,
               "tau_final": args.tau_final, "anneal_steps": args.anneal_steps,
               "omega_input": args.omega_input, "pairs": args.pairs,
               "selector_gradient": args.selector_gradient, "k_penalty": args.k_penalty,
               "val_every": args.val_every,
               "eval_pairs": args.eval_pairs, "eval_train": args.eval_train,
               "eval_test": args.eval_test}
    values.update({k: v for k, v in options.items() if v is not None})
    if args.soft_sort:
        values["hard_sort"] = False
    values.update(fixed)
    return RunConfig(**values)


def _devices(text: str):
    return int(text) if text.isdigit() else text


def _set_threads(args: argparse.Namespace) -> None:
    import torch

    threads = args.threads if args.threads is not None else 1
    if threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)


def _command_line() -> str:
    return "diffhypergeom " + " ".join(sys.argv[1:])


def run(args: argparse.Namespace) -> int:
    from diffhypergeom_studies.runs import make_run_dir

    if args.weak_command == "render":
        from diffhypergeom_studies.weak.config import RunConfig
        from diffhypergeom_studies.weak.train import make_source
        from diffhypergeom_studies.weak.visualize import render_factor_grid

        config = RunConfig(dataset=args.dataset, data_path=args.data_path,
                           image_size=args.image_size or 64)
        if args.out is None:
            path = make_run_dir("weak-render", root=args.root) / "factors.png"
        else:
            path = args.out
        path = render_factor_grid(make_source(config), path, args.columns, args.seed)
        print(f"wrote {path}")
        return 0

    if args.weak_command == "selector":
        from diffhypergeom_studies.weak.selector import SelectorConfig, run_selector_study

        config = SelectorConfig.quick() if args.quick else SelectorConfig.paper()
        for name, value in (("s_values", args.s_values), ("seeds", args.seeds),
                            ("steps", args.steps), ("latent_dim", args.latent_dim),
                            ("k_penalty", args.k_penalty),
                            ("representation", args.representation)):
            if value is not None:
                setattr(config, name, value)
        out_dir = make_run_dir("weak-selector", root=args.root, out=args.out)
        run_selector_study(config, out_dir, progress=not args.no_progress)
        print(open(os.path.join(out_dir, "summary.md"), encoding="utf-8").read())
        print(f"results in {out_dir}")
        return 0

    _set_threads(args)
    if args.weak_command == "train":
        config = _config(args, method=args.method, num_shared=args.s, k=args.k, seed=args.seed)
        from diffhypergeom_studies.weak.train import train_run

        run_dir = make_run_dir("weak-train", root=args.root, out=args.out)
        result = train_run(config, run_dir, args.accelerator, _devices(args.devices),
                           args.strategy, ckpt_path=args.resume,
                           progress=not args.no_progress)
        if result is not None:
            print(f"s = {result['s_true_mean']:.2f}: s_hat mean {result['s_hat_mean']:.3f}, "
                  f"MSE {result['mse_s']:.3f}; probe accuracy shared "
                  f"{result['acc_shared']:.3f}, independent {result['acc_independent']:.3f}")
            print(f"results in {run_dir}")
        return 0

    from diffhypergeom_studies.weak.sweep import run_sweep

    seeds = args.seeds or ([0, 1] if args.quick else [0, 1, 2])
    base = _config(args)
    out_dir = make_run_dir("weak", root=args.root, out=args.out)
    values = args.k_values if base.pairs == "locatello" else args.s_values
    outcome = run_sweep(out_dir, base, args.methods, values, seeds, args.accelerator,
                        _devices(args.devices), args.strategy, progress=args.progress,
                        command=_command_line(), workers=args.workers,
                        threads=args.threads or 1)
    summary = os.path.join(out_dir, "summary.md")
    if os.path.exists(summary):
        print(open(summary, encoding="utf-8").read())
    print(f"{len(outcome['skipped'])} finished runs skipped; results in {out_dir}")
    return 0
