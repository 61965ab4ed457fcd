"""Bad input from the "Never surprised" campaign gets a library-raised ValueError or TypeError
that names the argument, not an error from deep inside torch (each case raised a RuntimeError,
IndexError or NotImplementedError from torch before)."""

import itertools

import pytest
import torch

from diffhypergeom import MultivariateFisherNCHypergeometric as MFNCH
from diffhypergeom import MultivariateWalleniusNCHypergeometric as MWNCH
from diffhypergeom import RandomPartition
from diffhypergeom.subsets import gumbel_top_k, k_subset


def _fisher(**kwargs):
    return MFNCH(torch.tensor([2, 2]), 2, logits=torch.zeros(2), **kwargs)


@pytest.mark.parametrize("build", [
    lambda: MFNCH(torch.tensor([2, 2]), 2, logits=torch.zeros(2, device="meta")),
    lambda: MWNCH(torch.tensor([2, 2]), 2, logits=torch.zeros(2, device="meta")),
    lambda: k_subset(torch.zeros(4, device="meta"), 2),
    lambda: gumbel_top_k(torch.zeros(4, device="meta"), 2),
    lambda: RandomPartition(torch.zeros(2, device="meta"), torch.zeros(3)),
])
def test_meta_parameters_are_named(build):
    with pytest.raises(ValueError, match="meta device"):
        build()


def test_meta_values_are_named():
    with pytest.raises(ValueError, match="value is on the meta device"):
        _fisher().log_prob(torch.zeros(2, device="meta"))


@pytest.mark.parametrize("validate", [True, False])
def test_an_empty_batch_works(validate):
    d = MFNCH(torch.tensor([2, 2, 2]), 2, logits=torch.zeros(0, 3), validate_args=validate)
    assert d.batch_shape == (0,)
    assert d.sample((4,)).shape == (4, 0, 3)
    assert d.log_prob(torch.zeros(0, 3)).shape == (0,)


@pytest.mark.parametrize("shape", [(-1,), (2, -3), "ab", 1.5])
@pytest.mark.parametrize("law", ["fisher", "wallenius", "k_subset", "gumbel_top_k", "partition"])
def test_a_bad_sample_shape_is_named(shape, law):
    d = {"fisher": _fisher,
         "wallenius": lambda: MWNCH(torch.tensor([2, 2]), 2, logits=torch.zeros(2)),
         "k_subset": lambda: k_subset(torch.zeros(4), 2),
         "gumbel_top_k": lambda: gumbel_top_k(torch.zeros(4), 2),
         "partition": lambda: RandomPartition(torch.zeros(2), torch.zeros(3))}[law]()
    with pytest.raises(ValueError, match="sample_shape must be"):
        d.sample(shape)


@pytest.mark.parametrize("build", [
    lambda: MFNCH(torch.tensor([2, 2]), 2, logits=torch.zeros(3, 2)),
    lambda: RandomPartition(torch.zeros(3, 2), torch.zeros(3, 3)),
])
def test_expand_to_a_shape_that_does_not_broadcast_is_named(build):
    with pytest.raises(ValueError, match="batch_shape"):
        build().expand((4,))


@pytest.mark.parametrize("index", [1.5, True, "0", None])
def test_a_class_index_that_is_not_an_int_is_named(index):
    for member in ("marginal", "log_marginal"):
        with pytest.raises(TypeError, match="class index i"):
            getattr(_fisher(), member)(index)
    with pytest.raises(TypeError, match="class index i"):
        MWNCH(torch.tensor([2, 2]), 2, logits=torch.zeros(2)).log_marginal(index)


@pytest.mark.parametrize("labels", ["ab", ["a", "b"], torch.tensor([True, False]),
                                    torch.tensor([1 + 0j, 0j])])
def test_partition_labels_that_are_not_integers_are_named(labels):
    d = RandomPartition(torch.zeros(2), torch.tensor([0.0, 1.0]))
    with pytest.raises(TypeError, match="value must hold integer block labels"):
        d.log_prob(labels)


def test_a_partition_with_a_wide_element_gap_sums_to_one():
    """All 4 labellings of 2 elements into 2 blocks, float32, element logits 0 and 1000: the
    probabilities sum to one (they summed to 0.333)."""
    d = RandomPartition(torch.tensor([0.0, 0.0]), torch.tensor([0.0, 1000.0]))
    labels = torch.tensor(list(itertools.product([0, 1], repeat=2)))
    assert float(d.log_prob(labels).exp().sum()) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("law", [k_subset, gumbel_top_k])
@pytest.mark.parametrize("validate", [True, False])
def test_a_subset_larger_than_the_items_is_named_even_without_validation(law, validate):
    """k > N has no subset: a ValueError naming k, not a vector of ones (gumbel_top_k) or an
    error from inside logspace.py (k_subset), with validate_args=False too."""
    with pytest.raises(ValueError, match="k must be <= N = 3"):
        law(torch.zeros(3), 5, validate_args=validate)
