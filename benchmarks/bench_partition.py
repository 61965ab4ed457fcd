"""RandomPartition side by side with the published DRPM (Sutter et al. 2023, thomassutter/drpm)
on its own inputs, printed as a markdown table.

    python benchmarks/bench_partition.py --drpm /path/to/drpm --mvhg /path/to/mvhg

``--drpm`` and ``--mvhg`` are local copies of thomassutter/drpm and thomassutter/mvhg (their root
folders; DRPM imports ``mvhg.pt_fmvhg``); without them only this library's rows are printed.
Both models get the same parameters: ``B`` batches of ``N`` element scores and ``K`` size
logits (standard normal; by default ``B = 256``, ``N = 256``, ``K = 10``, DRPM's clustering
experiment). DRPM runs on the CPU with hard samples at ``--drpm-temperature`` (default 0.5, the
final temperature of its clustering experiment, which starts at 1), in batches of
``--drpm-batch`` (default 8): its shift matrices hold ``B (N + 1) N^2`` floats, 17 GB at
``B = N = 256``. Times are therefore given per partition.

Rows:

- *invalid partitions*: among ``--validity-draws`` draws, those in which some element is in
  no block or in two (DRPM's clustering code retries those up to 5 times; here every draw is
  counted);
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

import torch

from diffhypergeom import RandomPartition
from diffhypergeom_studies.benchmarking import best_seconds

F64 = torch.float64


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


def _valid(part: torch.Tensor) -> torch.Tensor:
    """``[B]``: whether each hard assignment ``[B, K, N]`` puts every element in one block."""
    return (part.sum(1) == 1).all(-1) & ((part == 0) | (part == 1)).all(-1).all(-1)


def our_rows(size_logits: torch.Tensor, scores: torch.Tensor, cost: torch.Tensor,
             repeats: int, validity_draws: int) -> dict[str, str]:
    dist = RandomPartition(size_logits, scores)
    batch, blocks = size_logits.shape
    labels = dist.sample((max(1, -(-validity_draws // batch)),))
    invalid = int(((labels < 0) | (labels >= blocks) | (labels != labels.round())).any(-1).sum())
    drawn, labels = labels.shape[0] * batch, labels[0]

    def step() -> None:
        s, e = size_logits.clone().requires_grad_(), scores.clone().requires_grad_()
        x = RandomPartition(s, e).rsample_one_hot(temperature=0.5)
        (x * cost).sum().backward()

    per = 1e3 / batch
    return {"invalid": f"{invalid} of {drawn}",
            "sample": f"{per * best_seconds(dist.sample, repeats):.2f} ms",
            "step": f"{per * best_seconds(step, repeats):.2f} ms",
            "log_prob": f"{per * best_seconds(lambda: dist.log_prob(labels), repeats):.2f} ms",
            "bound": "exact", "returned": "exact"}


def drpm_rows(size_logits: torch.Tensor, scores: torch.Tensor, cost: torch.Tensor,
              repeats: int, drpm: str, mvhg: str, batch: int, temperature: float,
              validity_draws: int) -> dict[str, str]:
    sys.path[:0] = [mvhg, drpm]
    from drpm.diff_rand_part_model import RandPart

    size_logits, scores, cost = size_logits[:batch], scores[:batch], cost[:batch]
    model = RandPart(size_logits.shape[-1], device="cpu")

    def forward(s: torch.Tensor, e: torch.Tensor) -> tuple:
        return model(e, s, temperature=temperature)

    invalid, seen = 0, 0
    with torch.no_grad():
        while seen < validity_draws:
            invalid += int((~_valid(forward(size_logits.float(), scores.float())[0])).sum())
            seen += batch
        part, _, _, _, _, log_p_mvhg, log_p_pi = forward(size_logits.float(), scores.float())
    valid = _valid(part)
    labels = part.argmax(1).to(F64)[valid]
    exact = RandomPartition(size_logits[valid], scores[valid])
    truth = exact.log_prob(labels).to(F64)
    bound_gap = upper_bound(exact, labels) - truth
    returned_gap = (log_p_mvhg + log_p_pi).to(F64).reshape(-1)[valid] - truth

    def sample() -> None:
        with torch.no_grad():
            forward(size_logits.float(), scores.float())

    def step() -> None:
        s = size_logits.float().clone().requires_grad_()
        e = scores.float().clone().requires_grad_()
        x = forward(s, e)[0]                                               # [B, K, N]
        (x.transpose(-1, -2) * cost.float()).sum().backward()

    per = 1e3 / batch
    return {"invalid": f"{invalid} of {seen}",
            "sample": f"{per * best_seconds(sample, repeats):.2f} ms",
            "step": f"{per * best_seconds(step, repeats):.2f} ms",
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
    parser.add_argument("--drpm-batch", type=int, default=8,
                        help="DRPM's batch (its memory grows as B N^3)")
    parser.add_argument("--drpm-temperature", type=float, default=0.5,
                        help="DRPM's temperature (its clustering experiment anneals 1 -> 0.5)")
    parser.add_argument("--validity-draws", type=int, default=64,
                        help="draws of each model checked for valid partitions")
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
    columns = {"diffhypergeom": our_rows(size_logits, scores, cost, args.repeats,
                                         args.validity_draws)}
    if args.drpm and args.mvhg:
        columns["DRPM"] = drpm_rows(size_logits, scores, cost, args.repeats, args.drpm,
                                    args.mvhg, args.drpm_batch, args.drpm_temperature,
                                    args.validity_draws)
    labels = {"invalid": "invalid partitions among the draws",
              "bound": "upper bound - exact log p (mean)",
              "returned": "returned log p - exact log p (mean)",
              "sample": "draws, per partition", "step": "training step, per partition",
              "log_prob": "exact log_prob, per partition"}
    drpm = (f"DRPM from {args.drpm} in batches of {args.drpm_batch} at temperature "
            f"{args.drpm_temperature}" if "DRPM" in columns else
            "DRPM skipped (pass --drpm and --mvhg)")
    print(f"B = {args.batch}, N = {args.elements}, K = {args.blocks}; torch {torch.__version__}, "
          f"{args.threads} threads; {drpm}")
    print()
    print("| | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for key, label in labels.items():
        print(f"| {label} | " + " | ".join(c[key] for c in columns.values()) + " |")


if __name__ == "__main__":
    main()
