"""torch.distributions conventions: shapes, broadcasting, expand, support, dtypes, caching."""

import math

import pytest
import torch
from enumeration import moments
from hypothesis import given, settings
from hypothesis import strategies as st

from diffhypergeom import MultivariateFisherNCHypergeometric as MFNCH
from diffhypergeom import RelaxedDraw


def test_shapes_broadcast_over_population_draws_and_logits():
    population = torch.tensor([[5, 6, 7]]).expand(2, 3)          # [2, 3]
    draws = torch.tensor([[3], [4], [5], [6]])                     # [4, 1]
    logits = torch.zeros(4, 2, 3)                                  # [4, 2, 3]
    d = MFNCH(population, draws, logits=logits)
    assert d.batch_shape == (4, 2) and d.event_shape == (3,)
    assert d.sample((5,)).shape == (5, 4, 2, 3)
    assert d.rsample((5, 2)).shape == (5, 2, 4, 2, 3)
    assert d.mean.shape == (4, 2, 3)
    assert d.covariance_matrix.shape == (4, 2, 3, 3)
    assert d.entropy().shape == (4, 2)
    assert d.log_prob(d.sample((7,))).shape == (7, 4, 2)
    assert d.marginal(1).batch_shape == (4, 2)
    samples = d.sample((5,))
    torch.testing.assert_close(samples.sum(-1), draws.expand(4, 2).expand(5, 4, 2).float())
    # each batch element is its own urn
    for b, n in enumerate([3, 4, 5, 6]):
        single = MFNCH(torch.tensor([5, 6, 7]), n, logits=torch.zeros(3))
        torch.testing.assert_close(d.mean[b, 1], single.mean)


def test_expand():
    d = MFNCH(torch.tensor([4, 5]), 3, weights=torch.tensor([1.0, 2.0]))
    e = d.expand((6,))
    assert e.batch_shape == (6,) and e.sample((2,)).shape == (2, 6, 2)
    torch.testing.assert_close(e.mean, d.mean.expand(6, 2))
    assert e.engine == d.engine and e.max_support == d.max_support


def test_support_constraint():
    d = MFNCH(torch.tensor([4, 5]), 3, weights=torch.tensor([1.0, 2.0]))
    assert d.support.is_discrete and d.support.event_dim == 1
    checks = d.support.check(torch.tensor([[1, 2], [3, 0], [4, -1], [2, 2], [0.5, 2.5]]))
    assert checks.tolist() == [True, True, False, False, False]
    assert bool(d.support.check(d.sample((100,))).all())


def test_torch_conventions():
    d = MFNCH(torch.tensor([4, 5]), 3, weights=torch.tensor([1.0, 2.0]))
    assert d.has_rsample and isinstance(d, torch.distributions.Distribution)
    # floating counts, as torch's and Pyro's Multinomial give
    assert d.sample().shape == (2,) and d.sample().dtype == torch.float32
    assert MFNCH([4, 5], 3, logits=torch.zeros(2, dtype=torch.float64)).sample().dtype \
        == torch.float64
    assert d.rsample().dtype == torch.float32
    assert isinstance(d.rsample_detailed((3,)), RelaxedDraw)
    torch.testing.assert_close(d.weights, torch.tensor([1.0, 2.0]))


def test_a_subclass_with_its_own_init_keeps_its_class_in_copies():
    """Copies (``expand``, the class permutations of ``sample(permute=True)`` and of the Gumbel
    gradient) are made as instances of the subclass, with its attributes."""

    class Tagged(MFNCH):
        def __init__(self, population, draws, logits, tag):
            self.tag = tag
            super().__init__(population, draws, logits)

    d = Tagged([4, 5, 6], 7, torch.zeros(3), tag="t")
    for copy in (d.expand([2]), d._permuted(True)[0]):
        assert type(copy) is Tagged and copy.tag == "t"
    assert d.sample((2,), permute=True).shape == (2, 3)
    assert d.rsample((2,), gradient="gumbel").shape == (2, 3)


def test_reprs_show_the_law():
    d = MFNCH(torch.tensor([4, 5]), 3, weights=torch.tensor([1.0, 2.0]))
    assert repr(d) == ("MultivariateFisherNCHypergeometric(population=[4, 5], draws=3, "
                       "logits=[0.0, 0.6931])")
    assert repr(d.support) == "UrnSupport(population=[4, 5], draws=3)"
    big = MFNCH(torch.ones(100, dtype=torch.int64), 3, logits=torch.zeros(100), engine="fft")
    assert repr(big) == ("MultivariateFisherNCHypergeometric(population=<(100,) int64>, "
                         "draws=3, logits=<(100,) float32>, engine='fft')")


def test_float32_counts_must_be_exact():
    d = MFNCH(torch.tensor([2**25, 2**25]), 2**25, logits=torch.zeros(2))
    with pytest.raises(ValueError, match="cannot be represented exactly in torch.float32"):
        d.sample()
    assert MFNCH(torch.tensor([2**25, 2**25]), 2**25, logits=torch.zeros(2).double()).sample() \
        .sum() == 2**25


def test_tables_recomputed_when_gradients_are_needed_after_no_grad_use():
    logits = torch.tensor([0.2, -0.4, 1.0], requires_grad=True)
    d = MFNCH(torch.tensor([3, 4, 5]), 6, logits=logits)
    with torch.no_grad():
        d.sample((10,))
    d.log_prob(torch.tensor([1, 2, 3])).backward()
    assert logits.grad is not None and (logits.grad != 0).any()


def test_one_class_and_scale_invariance():
    d = MFNCH(torch.tensor([7]), 4, logits=torch.tensor([3.0]))
    assert d.sample((3,)).tolist() == [[4]] * 3
    assert d.log_prob(torch.tensor([4])).item() == pytest.approx(0.0, abs=1e-6)
    a = MFNCH(torch.tensor([3, 4, 5]), 6, logits=torch.tensor([0.2, -0.4, 1.0]))
    b = MFNCH(torch.tensor([3, 4, 5]), 6, logits=torch.tensor([0.2, -0.4, 1.0]) + 17.0)
    x = a.sample((20,))
    torch.testing.assert_close(a.log_prob(x), b.log_prob(x), atol=1e-5, rtol=0)


@settings(max_examples=25, deadline=None)
@given(
    population=st.lists(st.integers(0, 5), min_size=2, max_size=4),
    log_weights=st.lists(st.floats(-7, 7), min_size=4, max_size=4),
    fraction=st.floats(0, 1),
)
def test_property_pmf_sums_to_one_and_samples_in_support(population, log_weights, fraction):
    draws = int(round(fraction * sum(population)))
    logits = torch.tensor(log_weights[: len(population)], dtype=torch.float64)
    d = MFNCH(torch.tensor(population), draws, logits=logits)
    ref = moments(population, draws, [math.exp(v) for v in logits.tolist()])
    total = torch.logsumexp(d.log_prob(torch.from_numpy(ref["points"])), 0)
    assert abs(total.item()) < 1e-9
    assert bool(d.support.check(d.sample((20,))).all())
    assert bool(d.support.check(d.rsample((20,))).all())


@pytest.mark.parametrize("first_use", ["sample", "mean", "rsample_no_grad"])
def test_gradients_are_right_after_tables_were_first_built_without_them(first_use):
    """Regression: sample() fills the tables under no_grad; a later log_prob on the same object
    must still differentiate the log-normaliser (d log p / d theta = x - E[x])."""
    theta = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    d = MFNCH(torch.tensor([5, 7, 4]), 8, logits=theta)
    with torch.no_grad():
        if first_use == "sample":
            d.sample((4,))
        elif first_use == "mean":
            d.mean  # noqa: B018
        else:
            d.rsample((4,))
    x = torch.tensor([[2, 3, 3], [1, 7, 0]], dtype=torch.float64)
    (grad,) = torch.autograd.grad(d.log_prob(x).sum(), theta)
    mean = MFNCH(torch.tensor([5, 7, 4]), 8, logits=theta.detach()).mean
    torch.testing.assert_close(grad, x.sum(0) - 2 * mean)
    assert d.log_normalizer().requires_grad


@pytest.mark.parametrize("rows_per_urn,samples", [(181, 500), (50_000, 10)])
def test_visited_rows_dense_and_sparse_paths_agree_with_unique(rows_per_urn, samples):
    from diffhypergeom.numerics.sampling import _visited_rows

    remaining = torch.randint(0, rows_per_urn, (samples, 3), generator=torch.Generator()
                              .manual_seed(0))
    rows, position = _visited_rows(remaining, rows_per_urn)
    expected_rows, expected_position = torch.unique(
        torch.arange(3) * rows_per_urn + remaining, return_inverse=True)
    assert torch.equal(rows, expected_rows) and torch.equal(position, expected_position)


def test_arg_constraints_cover_the_parameters():
    """torch's own validation sees population and draws too (they bypassed it)."""
    assert set(MFNCH.arg_constraints) == {"population", "draws", "logits"}
    d = MFNCH(torch.tensor([4, 5]), 3, weights=torch.tensor([1.0, 2.0]))
    for name, constraint in d.arg_constraints.items():
        assert bool(constraint.check(getattr(d, name)).all()), name
    assert not bool(MFNCH.arg_constraints["population"].check(torch.tensor([4, -5])))
    assert not bool(MFNCH.arg_constraints["draws"].check(torch.tensor(2.5)))
