import pytest
import torch

from diffhypergeom.numerics.sort import neural_sort, soft_top_k_mask


def test_low_temperature_matches_torch_sort():
    gen = torch.Generator().manual_seed(0)
    # distinct scores, gaps >= 0.1: at tau = 1e-3 the relaxation is hard up to exp(-100)
    scores = torch.stack([torch.randperm(9, generator=gen) for _ in range(16)]).double() * 0.1
    scores = scores + 0.01 * torch.rand(16, 9, generator=gen, dtype=torch.float64)
    perm = neural_sort(scores, temperature=1e-3)
    order = scores.argsort(dim=-1, descending=True)
    expected = torch.nn.functional.one_hot(order, 9).to(perm.dtype)
    assert torch.allclose(perm, expected, atol=1e-6)
    sorted_scores = (perm @ scores.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(sorted_scores, scores.sort(dim=-1, descending=True).values, atol=1e-6)
    ascending = neural_sort(scores, temperature=1e-3, descending=False)
    assert torch.equal(ascending.argmax(-1), scores.argsort(dim=-1))


def test_rows_sum_to_one_and_high_temperature_is_soft():
    scores = torch.randn(4, 3, 6)
    perm = neural_sort(scores, temperature=5.0)
    assert perm.shape == (4, 3, 6, 6)
    assert torch.allclose(perm.sum(-1), torch.ones(4, 3, 6), atol=1e-6)
    assert (perm > 0).all() and perm.max() < 0.99


def test_formula_by_hand_for_three_items():
    s = torch.tensor([1.0, 3.0, 2.0])
    # A_s 1 = [3, 3, 2]; row i (1-based) logits (4 - 2i) s - A_s 1
    rows = torch.stack([2 * s - torch.tensor([3.0, 3.0, 2.0]),
                        0 * s - torch.tensor([3.0, 3.0, 2.0]),
                        -2 * s - torch.tensor([3.0, 3.0, 2.0])])
    assert torch.allclose(neural_sort(s, 0.7), torch.softmax(rows / 0.7, -1))


def test_hard_is_straight_through():
    scores = torch.randn(5, 7, requires_grad=True)
    perm = neural_sort(scores, temperature=1.0, hard=True)
    assert torch.allclose(perm.detach().sum(-1), torch.ones(5, 7))
    assert torch.allclose(perm.detach(), perm.detach().round(), atol=1e-6)
    assert torch.equal(perm.detach().argmax(-1), neural_sort(scores.detach(), 1.0).argmax(-1))
    (perm * torch.randn(5, 7, 7)).sum().backward()
    assert scores.grad is not None and scores.grad.abs().sum() > 0


def test_top_k_mask():
    scores = torch.tensor([[0.1, 5.0, 2.0, 3.0]])
    perm = neural_sort(scores, 1e-4)
    mask = soft_top_k_mask(perm, torch.tensor([[1.0, 1.0, 0.0, 0.0]]))
    assert torch.allclose(mask, torch.tensor([[0.0, 1.0, 0.0, 1.0]]), atol=1e-6)
    with pytest.raises(ValueError, match="rank_weights"):
        soft_top_k_mask(perm, torch.ones(1, 3))


@pytest.mark.parametrize("bad, match", [
    (dict(scores=torch.tensor([1, 2])), "floating"),
    (dict(scores=torch.tensor(1.0)), "item dimension"),
    (dict(scores=torch.tensor([1.0, float("nan")])), "finite"),
    (dict(scores=torch.tensor([1.0, 2.0]), temperature=0.0), "temperature"),
])
def test_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        neural_sort(**bad)
