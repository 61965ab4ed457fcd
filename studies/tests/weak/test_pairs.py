import numpy as np
import pytest
import torch

from diffhypergeom_studies.weak.pairs import PairBatches, make_pairs
from diffhypergeom_studies.weak.render import FACTOR_SIZES, ProceduralMPI3D


@pytest.mark.parametrize("s", [0, 1, 3, 5, 7])
def test_exactly_s_factors_shared(s):
    f1, f2, shared = make_pairs(np.random.default_rng(s), FACTOR_SIZES, s, 2000)
    assert f1.shape == f2.shape == shared.shape == (2000, 7)
    assert (shared.sum(1) == s).all()
    assert ((f1 == f2) == shared).all()            # changed factors really differ
    assert (f2 >= 0).all() and (f2 < np.array(FACTOR_SIZES)).all()


def test_changed_factors_and_values_are_uniform():
    count = 20000
    f1, f2, shared = make_pairs(np.random.default_rng(0), FACTOR_SIZES, 5, count)
    # each factor is changed with probability (K - s) / K = 2/7; binomial 5-sigma band
    p = 2 / 7
    tol = 5 * np.sqrt(p * (1 - p) / count)
    assert np.abs((~shared).mean(0) - p).max() < tol
    # the new value of a changed 6-valued factor is uniform over the 5 other values
    changed = ~shared[:, 0]
    shift = ((f2[changed, 0] - f1[changed, 0]) % 6)
    freq = np.bincount(shift, minlength=6)[1:] / changed.sum()
    assert np.abs(freq - 0.2).max() < 5 * np.sqrt(0.2 * 0.8 / changed.sum())


def test_bad_settings():
    with pytest.raises(ValueError, match="num_shared"):
        make_pairs(np.random.default_rng(0), FACTOR_SIZES, 8, 3)
    with pytest.raises(ValueError, match=">= 2 values"):
        make_pairs(np.random.default_rng(0), (3, 1), 0, 3)
    with pytest.raises(ValueError, match="num_shared"):
        PairBatches(ProceduralMPI3D(32), -1, 4, 2)
    with pytest.raises(ValueError, match="batch_size"):
        PairBatches(ProceduralMPI3D(32), 1, 0, 2)


def test_batches_are_lazy_seeded_and_match_the_renderer():
    source = ProceduralMPI3D(32)
    data = PairBatches(source, 3, batch_size=8, num_batches=5, seed=4)
    a, b = data[2], data[2]
    for key in a:
        assert torch.equal(a[key], b[key])
    assert not torch.equal(data[1]["f1"], a["f1"])
    other_stream = PairBatches(source, 3, 8, 5, seed=4, stream=1)[2]
    assert not torch.equal(other_stream["f1"], a["f1"])
    assert a["x1"].shape == (8, 3, 32, 32)
    assert torch.equal(a["x2"], source.images(a["f2"].numpy()))
    assert (a["shared"].sum(1) == 3).all()
    with pytest.raises(IndexError):
        data[5]


# --- disentanglement_lib's simple_dynamics ("locatello" pairs) ---------------------------

def _changed_counts(sizes, k, count=20_000, seed=0):
    from diffhypergeom_studies.weak.pairs import make_locatello_pairs

    f1, f2, shared = make_locatello_pairs(np.random.default_rng(seed), sizes, k, count)
    assert np.array_equal(shared, f1 == f2)
    assert ((f2 >= 0) & (f2 < np.asarray(sizes))).all()
    return (~shared).sum(1), ~shared


def _within(frequency, probability, count, z=5.0):
    """A frequency within z binomial standard errors of its probability."""
    return abs(frequency - probability) <= z * np.sqrt(probability * (1 - probability) / count)


def test_locatello_pairs_change_one_or_k_factors_half_the_time_each():
    """With large factors a redrawn factor (almost) always changes: 1 or k changed, 1/2 each,
    and every factor is changed equally often."""
    changed, which = _changed_counts((1000,) * 6, 4)
    assert set(np.unique(changed)) <= {0, 1, 3, 4}  # 0 and 3: a redraw kept its value
    assert _within((changed == 1).mean(), 0.5, len(changed))
    assert _within((changed == 4).mean(), 0.5, len(changed))
    per_factor = which.mean(0)  # E = (1/2)(1/6) + (1/2)(4/6)
    assert all(_within(f, 5 / 12, len(changed)) for f in per_factor)


def test_locatello_pairs_with_random_k():
    """k = -1: k_obs uniform on 1..K-1, so P(1 changed) = 1/2 + 1/(2 (K - 1)) and
    P(j) = 1/(2 (K - 1)) for j = 2..K-1; never all K."""
    changed, _ = _changed_counts((1000,) * 5, -1)
    assert _within((changed == 1).mean(), 0.5 + 1 / 8, len(changed))
    for j in (2, 3, 4):
        assert _within((changed == j).mean(), 1 / 8, len(changed))
    assert (changed <= 4).all()


def test_locatello_redraws_over_all_values():
    """A redrawn factor takes any of its values, its old one included (unlike the fixed
    protocol): with binary factors and k = 1, half the pairs change nothing."""
    changed, _ = _changed_counts((2, 2, 2), 1)
    assert _within((changed == 0).mean(), 0.5, len(changed))
    assert _within((changed == 1).mean(), 0.5, len(changed))


@pytest.mark.parametrize("k,match", [(0, "k \\(factors redrawn\\)"), (8, "k \\(factors"),
                                     (-2, "k \\(factors")])
def test_locatello_bad_k(k, match):
    from diffhypergeom_studies.weak.pairs import make_locatello_pairs

    with pytest.raises(ValueError, match=match):
        make_locatello_pairs(np.random.default_rng(0), (3,) * 7, k, 4)
