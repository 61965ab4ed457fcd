"""NeuralSort: a continuous relaxation of the sorting operator (Grover et al., ICLR 2019).

For scores ``s`` of length ``n`` let ``A_s[j, l] = |s_j - s_l|`` and ``1`` the all-ones vector.
The permutation matrix that sorts ``s`` in *descending* order has, in row ``i`` (1-based), a one
at ``argmax_j [(n + 1 - 2i) s_j - (A_s 1)_j]``. NeuralSort replaces the argmax by a softmax at
temperature ``tau > 0``:

    P_hat[i, :] = softmax( ((n + 1 - 2i) s - A_s 1) / tau )

Every row of ``P_hat`` is a distribution over the ``n`` items (rows sum to one; the matrix is
unimodal row-stochastic), and as ``tau -> 0`` it tends to the true sorting permutation (for
distinct scores). ``hard=True`` returns the row-wise argmax in the forward pass and the gradient
of the soft matrix in the backward pass (straight-through), as in the paper's deterministic
"hard" variant.

Shapes: ``scores [..., n]`` -> ``P [..., n, n]`` with ``P[..., i, j]`` the (relaxed) indicator
that item ``j`` has rank ``i`` (rank 0 = largest). ``P @ s[..., None]`` gives the (relaxed)
scores in descending order.
"""

from __future__ import annotations

import torch

__all__ = ["neural_sort", "soft_top_k_mask"]


def neural_sort(scores: torch.Tensor, temperature: float | torch.Tensor = 1.0,
                hard: bool = False, descending: bool = True) -> torch.Tensor:
    """Relaxed sorting permutation ``[..., n, n]`` of ``scores [..., n]`` (see module docs).

    Args:
        scores: ``[..., n]`` real scores (floating point, finite).
        temperature: ``tau > 0``; smaller is closer to the hard permutation.
        hard: straight-through: forward one-hot rows (argmax of each relaxed row).
        descending: rank 0 is the largest score if True, the smallest otherwise.

    Example:
        >>> import torch
        >>> from diffhypergeom.numerics.sort import neural_sort
        >>> neural_sort(torch.tensor([0.3, 2.0, -1.0]), temperature=0.01).round()  # row r: rank r
        tensor([[0., 1., 0.],
                [1., 0., 0.],
                [0., 0., 1.]])
    """
    if not torch.is_tensor(scores) or not scores.is_floating_point():
        raise ValueError("scores must be a floating-point tensor of shape [..., n]")
    if scores.dim() == 0:
        raise ValueError("scores must have an item dimension: shape [..., n]")
    if not bool(torch.isfinite(scores).all()):
        raise ValueError("scores must be finite")
    tau = torch.as_tensor(temperature, dtype=scores.dtype, device=scores.device)
    if not bool((tau > 0).all()):
        raise ValueError(f"temperature must be > 0, got {temperature}")
    s = scores if descending else -scores
    n = s.shape[-1]
    pairwise = (s.unsqueeze(-1) - s.unsqueeze(-2)).abs()            # [..., n, n]
    row_sum = pairwise.sum(-1)                                       # [..., n]  (A_s 1)
    scaling = n + 1 - 2 * torch.arange(1, n + 1, dtype=s.dtype, device=s.device)  # [n]
    logits = scaling.unsqueeze(-1) * s.unsqueeze(-2) - row_sum.unsqueeze(-2)      # [..., n, n]
    soft = torch.softmax(logits / tau, dim=-1)
    if not hard:
        return soft
    one_hot = torch.nn.functional.one_hot(soft.argmax(-1), n).to(soft.dtype)
    return one_hot + soft - soft.detach()


def soft_top_k_mask(permutation: torch.Tensor, rank_weights: torch.Tensor) -> torch.Tensor:
    """Item mask ``[..., n]`` from a (relaxed) permutation ``[..., n, n]`` and per-rank weights
    ``[..., n]``: ``mask_j = sum_i rank_weights_i * P[i, j]``.

    With ``rank_weights_i = 1[i < k]`` this is the indicator of the top-``k`` items; relaxed
    rank weights (e.g. from a relaxed one-hot over ``k``) give a differentiable top-``k``.

    Example:
        >>> import torch
        >>> from diffhypergeom.numerics.sort import neural_sort, soft_top_k_mask
        >>> scores, top_2 = torch.tensor([0.3, 2.0, -1.0, 1.0]), torch.tensor([1.0, 1.0, 0.0, 0.0])
        >>> soft_top_k_mask(neural_sort(scores, temperature=0.01), top_2).round()  # items 1 and 3
        tensor([0., 1., 0., 1.])
        >>> round(float(soft_top_k_mask(neural_sort(scores), top_2).sum()), 5)  # relaxed: sums to k
        2.0
    """
    if permutation.shape[-1] != permutation.shape[-2]:
        raise ValueError(f"permutation must be square [..., n, n], got {tuple(permutation.shape)}")
    if rank_weights.shape[-1] != permutation.shape[-1]:
        raise ValueError(f"rank_weights must be [..., {permutation.shape[-1]}], got "
                         f"{tuple(rank_weights.shape)}")
    return (rank_weights.unsqueeze(-1) * permutation).sum(-2)
