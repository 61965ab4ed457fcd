"""RandomPartition side by side with the published DRPM (Sutter et al. 2023, thomassutter/drpm)
on its own inputs, printed as a markdown table.

    python benchmarks/bench_partition.py --drpm /path/to/drpm --mvhg /path/to/mvhg

``--drpm`` and ``--mvhg`` are local copies of thomassutter/drpm and thomassutter/mvhg (their root
folders; DRPM imports ``mvhg.pt_fmvhg``); without them only this library's rows are printed.
Both models get the same parameters: ``B`` batches of ``N`` element scores and ``K`` size
logits (standard normal; by default ``B = 256``, ``N = 256``, ``K = 10``, DRPM's clustering
experiment). DRPM runs on the CPU with its defaults (``hard`` samples, ``temperature = 1e-2``).

Rows:

- *invalid partitions*: draws in which some element is in no block or in two (DRPM's clustering
  code retries those up to 5 times; here every draw is counted);
- *log p above the exact value*: for DRPM's valid draws, ``log p`` from this library's exact
  ``log_prob`` against (a) the upper bound ``log p(n) + sum_k log n_k! + max_pi log PL(pi)``
  (with the exact size law; the max is over the orders consistent with the labels: each block's
  elements by decreasing score) and (b) what DRPM's forward returns, ``log p(n) + log PL(pi)``
  of its own size sampler and sampled order (neither a bound nor the probability of the
  partition);
- *time*: a batch of exact draws; a training step (draws with a gradient, a linear loss of the
  one-hot assignments, backward to both parameters); the exact ``log_prob`` of a batch.

Times are the best of ``--repeats`` runs after a warm-up, in this process.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import torch

from diffhypergeom import RandomPartition

F64 = torch.float64


def best(fn: Callable[[], object], repeats: int) -> float:
    """Best seconds of ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def upper_bound(dist: RandomPartition, labels: torch.Tensor) -> torch.Tensor:
    """``[B]``: ``log p(n) + sum_k log n_k! + max_pi log PL(pi)`` for labels ``[B, N]``."""
    blocks = torch.arange(dist.num_blocks)
    one_hot = (labels.long().unsqueeze(-1) == blocks).to(F64)
    sizes = one_hot.sum(-2)
    scores = dist.element_logits.to(F64)
    # the best order: blocks in turn, each block's elements by decreasing score
    order = torch.argsort(labels.long() * 1e6 - scores.argsort(-1).argsort(-1).to(F64), -1)
    ranked = scores.gather(-1, order)
    log_pl = (ranked - ranked.flip(-1).logcumsumexp(-1).flip(-1)).sum(-1)
    return dist.sizes.log_prob(sizes).to(F64) + torch.lgamma(sizes + 1).sum(-1) + log_pl


def our_rows(size_logits: torch.Tensor, scores: torch.Tensor, cost: torch.Tensor,
             repeats: int) -> dict[str, str]:
    dist = RandomPartition(size_logits, scores)
    labels = dist.sample()
    blocks = torch.arange(size_logits.shape[-1])
    invalid = int(((labels < 0) | (labels >= len(blocks))).any(-1).sum())

    def step() -> None:
        s, e = size_logits.clone().requires_grad_(), scores.clone().requires_grad_()
        x = RandomPartition(s, e).rsample_one_hot(temperature=0.5)
        (x * cost).sum().backward()

    return {"invalid": f"{invalid} of {labels.shape[0]}",
            "sample": f"{1e3 * best(dist.sample, repeats):.1f} ms",
            "step": f"{1e3 * best(step, repeats):.1f} ms",
            "log_prob": f"{1e3 * best(lambda: dist.log_prob(labels), repeats):.1f} ms",
            "bound": "exact", "returned": "exact"}


def drpm_rows(size_logits: torch.Tensor, scores: torch.Tensor, cost: torch.Tensor,
              repeats: int, drpm: str, mvhg: str) -> dict[str, str]:
    sys.path[:0] = [mvhg, drpm]
    from drpm.diff_rand_part_model import RandPart

    blocks = size_logits.shape[-1]
    model = RandPart(blocks, device="cpu")
    with torch.no_grad():
        part, _, _, _, sizes, log_p_mvhg, log_p_pi = model(scores.float(), size_logits.float())
    hard = part.detach()                                                   # [B, K, N]
    valid = ((hard.sum(1) == 1).all(-1) & ((hard == 0) | (hard == 1)).all(-1).all(-1))
    labels = hard.argmax(1).to(F64)[valid]
    exact = RandomPartition(size_logits[valid], scores[valid])
    truth = exact.log_prob(labels).to(F64)
    bound_gap = upper_bound(exact, labels) - truth
    returned_gap = (log_p_mvhg + log_p_pi).to(F64).reshape(-1)[valid] - truth

    def sample() -> None:
        with torch.no_grad():
            model(scores.float(), size_logits.float())

    def step() -> None:
        s = size_logits.float().clone().requires_grad_()
        e = scores.float().clone().requires_grad_()
        x = model(e, s)[0]                                                 # [B, K, N]
        (x.transpose(-1, -2) * cost.float()).sum().backward()

    return {"invalid": f"{int((~valid).sum())} of {len(valid)}",
            "sample": f"{1e3 * best(sample, repeats):.1f} ms",
            "step": f"{1e3 * best(step, repeats):.1f} ms",
            "log_prob": "none (its get_log_prob raises NameError)",
            "bound": f"{float(bound_gap.mean()):.1f} (min {float(bound_gap.min()):.2f})",
            "returned": f"{float(returned_gap.mean()):+.1f} (range {float(returned_gap.min()):+.1f}"
                        f" .. {float(returned_gap.max()):+.1f})"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drpm", default=None, help="local copy of thomassutter/drpm (root)")
    parser.add_argument("--mvhg", default=None, help="local copy of thomassutter/mvhg (root)")
    parser.add_argument("--batch", type=int, default=256, help="B, partitions per batch")
    parser.add_argument("--elements", type=int, default=256, help="N, elements per partition")
    parser.add_argument("--blocks", type=int, default=10, help="K, blocks per partition")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per row (best)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0, help="seed of the parameters")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.seed)
    size_logits = torch.randn(args.batch, args.blocks, generator=gen, dtype=F64)
    scores = torch.randn(args.batch, args.elements, generator=gen, dtype=F64)
    cost = torch.randn(args.batch, args.elements, args.blocks, generator=gen, dtype=F64)
    torch.manual_seed(args.seed)
    columns = {"diffhypergeom": our_rows(size_logits, scores, cost, args.repeats)}
    if args.drpm and args.mvhg:
        columns["DRPM"] = drpm_rows(size_logits, scores, cost, args.repeats, args.drpm,
                                    args.mvhg)
    labels = {"invalid": "invalid partitions among the draws",
              "bound": "upper bound - exact log p (mean)",
              "returned": "returned log p - exact log p (mean)",
              "sample": "a batch of draws", "step": "training step (draws, backward)",
              "log_prob": "exact log_prob of a batch"}
    print(f"B = {args.batch}, N = {args.elements}, K = {args.blocks}; torch {torch.__version__}, "
          f"{args.threads} threads; DRPM {'from ' + args.drpm if 'DRPM' in columns else 'skipped'}"
          f" (pass --drpm and --mvhg)")
    print()
    print("| | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for key, label in labels.items():
        print(f"| {label} | " + " | ".join(c[key] for c in columns.values()) + " |")


if __name__ == "__main__":
    main()
