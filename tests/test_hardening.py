"""Issue 9's defects: each case gave a wrong number, a NaN or a crash deep inside torch before;
now a correct answer or a ValueError naming the parameter and the constraint."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from goodness_of_fit import any_rejected, marginal_pvalues

from diffhypergeom import MergedFisherNCHypergeometric as Merged
from diffhypergeom import MultivariateFisherNCHypergeometric as MFNCH
from diffhypergeom import RelaxedMultivariateFisherNCHypergeometric as Relaxed

POP = torch.tensor([5, 7, 4])


@pytest.mark.parametrize("kwargs,match", [
    (dict(weights=torch.tensor([1, 1j, 1])), "weights must be real"),
    (dict(logits=torch.tensor([0, 2j, 0])), "logits must be real"),
    (dict(logits="abc"), "logits must be a real tensor"),
    (dict(logits=torch.tensor([True, False, True])), "logits must be real"),
    (dict(logits=torch.zeros(0), population=torch.zeros(0, dtype=torch.long), draws=0),
     "at least one class"),
    (dict(logits=torch.zeros(3), population=torch.tensor([2**62, 2**62, 1])),
     r"population.sum\(-1\) must be <= 2\*\*53"),
    (dict(logits=torch.zeros(3), engine=None), "engine must be one of"),
])
def test_bad_arguments(kwargs, match):
    args = dict(population=POP, draws=6)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        MFNCH(**args)


def test_bad_sampling_arguments():
    d = MFNCH(POP, 6, logits=torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"temperature of shape \(3,\) must broadcast"):
        d.rsample((4,), gradient="gumbel", temperature=torch.ones(3))
    with pytest.raises(ValueError, match="permute must be True or False"):
        d.rsample((4,), gradient="gumbel", permute="yes")
    assert d.rsample((4,), gradient="gumbel", temperature=torch.full((4, 2), 0.5)).shape \
        == (4, 2, 3)
    for value in (torch.tensor([True, False, True]), torch.tensor([1 + 0j, 2, 3])):
        with pytest.raises(ValueError, match="value must hold real counts"):
            d.log_prob(value)


def test_kl_between_batch_shapes_that_do_not_broadcast_says_so():
    p, q = MFNCH(POP, 6, logits=torch.zeros(3, 3)), MFNCH(POP, 6, logits=torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"batch shapes \(3,\) and \(2,\) do not broadcast"):
        torch.distributions.kl_divergence(p, q)


@pytest.mark.parametrize("engine", ["logspace", "fft"])
def test_zero_weight_gradients_are_finite(engine):
    w = torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64, requires_grad=True)
    d = MFNCH(POP, 6, weights=w, engine=engine)
    for value in (d.log_normalizer(), d.entropy()):
        (grad,) = torch.autograd.grad(value, w, retain_graph=True)
        assert torch.isfinite(grad).all()
    logits = torch.tensor([0.0, 1.0, -800.0], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(MFNCH(POP, 6, weights=logits.exp(),
                                        engine=engine).log_normalizer(), logits)
    assert torch.isfinite(grad).all()
    torch.testing.assert_close(grad[:2], MFNCH(POP[:2], 6, logits=logits[:2].detach()).mean)


def test_common_offset_changes_nothing():
    base = torch.tensor([0.0, 1.0, -0.7], dtype=torch.float64)
    reference = MFNCH(POP, 6, logits=base)
    for offset in (1e3, 1e6):
        d = MFNCH(POP, 6, logits=base + offset)
        # the offset costs the logits' own digits: eps * offset
        tolerance = 10 * 2.0**-52 * offset
        torch.testing.assert_close(d.entropy(), reference.entropy(), rtol=0, atol=tolerance)
        torch.testing.assert_close(d.mean, reference.mean, rtol=0, atol=tolerance)


def test_one_extreme_logit():
    """[1e16, 0, 0]: class 0 gives all 5 balls, the one left is split 7 : 4."""
    d = MFNCH(POP, 6, logits=torch.tensor([1e16, 0.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(d.mean, torch.tensor([5.0, 7 / 11, 4 / 11], dtype=torch.float64))
    p = np.array([7 / 11, 4 / 11])
    torch.testing.assert_close(d.entropy(), torch.tensor(float(-(p * np.log(p)).sum()),
                                                         dtype=torch.float64))
    torch.testing.assert_close(d.log_prob(torch.tensor([5, 1, 0])),
                               torch.tensor(math.log(7 / 11), dtype=torch.float64))
    x = d.sample((200,))
    assert (x[:, 0] == 5).all() and (x.sum(-1) == 6).all()
    with pytest.raises(ValueError, match="overflows float64"):
        _ = MFNCH(POP, 6, logits=torch.tensor([1e308, 0.0, 0.0], dtype=torch.float64)).mean


def test_kl_in_float32_is_computed_in_float64():
    logits = torch.tensor([100.0, 100.3, 99.5])
    other = torch.tensor([100.2, 99.9, 100.1])
    kl32 = torch.distributions.kl_divergence(MFNCH(POP, 6, logits=logits),
                                             MFNCH(POP, 6, logits=other))
    kl64 = torch.distributions.kl_divergence(MFNCH(POP, 6, logits=logits.double()),
                                             MFNCH(POP, 6, logits=other.double()))
    assert kl32.dtype == torch.float32 and float(kl32) >= 0
    assert abs(float(kl32) - float(kl64)) <= 1e-6 * float(kl64)


def test_sample_never_rounds_into_the_next_row(monkeypatch):
    """u = 1 - 2^-53 plus a row offset j > 0 rounds to j + 1 in float64."""
    real = torch.rand

    def almost_one(*args, **kwargs):
        return torch.full_like(real(*args, **kwargs), 1 - 2.0**-53)

    d = MFNCH(torch.tensor([[10, 1]] * 4), torch.tensor([10, 9, 3, 2]),
              logits=torch.zeros(4, 2, dtype=torch.float64))
    monkeypatch.setattr(torch, "rand", almost_one)
    x = d.sample((3,))
    monkeypatch.undo()
    assert bool(d.support.check(x).all()) and (x >= 0).all()


def test_learnable_temperature_gets_a_finite_gradient():
    temperature = torch.tensor(0.5, requires_grad=True)
    logits = torch.tensor([0.0, 1.0, -0.5], requires_grad=True)
    x = Relaxed(POP, 6, logits=logits, temperature=temperature).rsample((64,))
    (x * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert torch.isfinite(temperature.grad) and torch.isfinite(logits.grad).all()
    assert temperature.grad != 0
    hard = MFNCH(POP, 6, logits=logits).rsample((64,), gradient="gumbel", temperature=temperature)
    temperature.grad = None
    (hard * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert temperature.grad is not None and torch.isfinite(temperature.grad)


def test_relaxed_counts_stay_in_the_hull_of_the_support():
    """m = [3, 3, 3], n = 8: relaxed counts used to exceed m_i in 15% of draws."""
    torch.manual_seed(0)
    logits = torch.tensor([0.0, 0.5, -0.5], requires_grad=True)
    x = Relaxed(torch.tensor([3, 3, 3]), 8, logits=logits, temperature=1.0).rsample((4000,))
    assert (x >= 0).all() and (x <= 3 + 1e-6).all()
    torch.testing.assert_close(x.sum(-1), torch.full((4000,), 8.0))
    exact = MFNCH(torch.tensor([3, 3, 3]), 8, logits=logits, validate_args=False)
    assert torch.isfinite(exact.log_prob(x)).all()
    x.pow(2).sum().backward()
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_relaxed_draws_are_exact(dtype):
    """rsample(gradient="gumbel") in half precision: exact draws (chi-square against the pmf at the
    rounded logits, which rejects the merged sampler), counts summing to draws."""
    torch.manual_seed(0)
    logits = torch.tensor([0.0, math.log(3.0), -0.4]).to(dtype)
    population = torch.tensor([40, 60, 30])
    d = MFNCH(population, 50, logits=logits)
    x = d.rsample((20_000,), gradient="gumbel", temperature=0.5)
    assert x.dtype == dtype and (x.sum(-1) == 50).all()
    exact = MFNCH(population, 50, logits=logits.double())
    marginals = [exact.marginal(i).probs.numpy() for i in range(3)]
    assert not any_rejected(marginal_pvalues(x.long().numpy(), marginals), 0.01)
    merge = Merged(population, 50, logits=logits.double()).sample((20_000,)).long()
    assert any_rejected(marginal_pvalues(merge.numpy(), marginals), 0.01)
    with pytest.raises(ValueError, match="cannot be represented exactly"):
        MFNCH(torch.tensor([3000, 3000]), 2501, logits=torch.zeros(2, dtype=dtype)).rsample()


@pytest.mark.parametrize("engine", ["logspace", "fft"])
def test_gradient_in_a_zero_weight_is_its_true_limit(engine):
    """d log P0 / d w_i at w_i = 0 is m_i P0(n - 1) / P0(n) over the other classes (brute
    force), and log_prob's is minus that where x_i = 0."""
    from enumeration import log_pmf_table

    w = torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(MFNCH(POP, 6, weights=w, engine=engine).log_normalizer(), w)
    below = log_pmf_table([5, 7], 5, [1.0, 2.0])[2]
    here = log_pmf_table([5, 7], 6, [1.0, 2.0])[2]
    assert abs(float(grad[2]) - 4 * math.exp(below - here)) < 1e-10
    (grad_x,) = torch.autograd.grad(
        MFNCH(POP, 6, weights=w, engine=engine).log_prob(torch.tensor([2, 4, 0])), w)
    assert abs(float(grad_x[2]) + 4 * math.exp(below - here)) < 1e-10


@pytest.mark.parametrize("engine", ["logspace", "fft"])
def test_mean_gradient_in_a_zero_weight_is_its_true_limit(engine):
    """d E[X] / d w_i at w_i = 0 against a one-sided difference quotient of brute-force means
    (w_i = 1e-7), so that rsample's default gradient can move a weight away from zero."""
    from enumeration import moments

    w = torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64, requires_grad=True)
    d = MFNCH(POP, 6, weights=w, engine=engine)
    (grad,) = torch.autograd.grad(d.mean @ torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64),
                                  w)
    eps = 1e-7
    slope = (moments(POP.tolist(), 6, [1.0, 2.0, eps])["mean"]
             - moments(POP.tolist(), 6, [1.0, 2.0, 0.0])["mean"]) / eps
    assert abs(float(grad[2]) - slope @ [1.0, -2.0, 3.0]) < 1e-5
    x = MFNCH(POP, 6, weights=w, engine=engine).rsample((3,))
    (grad_x,) = torch.autograd.grad(x[..., 2].sum(), w)
    assert abs(float(grad_x[2]) - 3 * slope[2]) < 1e-5


@pytest.mark.parametrize("engine", ["logspace", "fft"])
def test_variance_and_covariance_gradients_in_a_zero_weight_are_their_true_limits(engine):
    """d Var[X] / d w_i and d Cov[X] / d w_i at w_i = 0 against one-sided difference quotients
    of brute-force moments (they were 0 while the quotient at w_i = 1e-9 was about 1)."""
    from enumeration import moments

    w = torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64, requires_grad=True)
    d = MFNCH(POP, 6, weights=w, engine=engine)
    probe = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    (grad_var,) = torch.autograd.grad(d.variance @ probe, w)
    d = MFNCH(POP, 6, weights=w, engine=engine)
    (grad_cov,) = torch.autograd.grad(probe @ d.covariance_matrix @ probe, w)
    eps = 1e-7
    at, near = (moments(POP.tolist(), 6, [1.0, 2.0, v]) for v in (0.0, eps))
    var_slope = (np.diag(near["cov"]) - np.diag(at["cov"])) / eps
    cov_slope = (near["cov"] - at["cov"]) / eps
    p = probe.numpy()
    assert abs(float(grad_var[2]) - var_slope @ p) < 1e-4 * (1 + abs(var_slope @ p))
    assert abs(float(grad_cov[2]) - p @ cov_slope @ p) < 1e-4 * (1 + abs(p @ cov_slope @ p))
    assert abs(var_slope @ p) > 0.1  # the limit is not zero


def test_constructor_rejects_what_the_law_does_not_use():
    """``hard`` and ``method`` belonged to another law: the constructor does not take them; a
    gradient option that the chosen gradient does not use is refused, not ignored."""
    for kwargs in (dict(hard=False), dict(method="merge")):
        with pytest.raises(TypeError):
            MFNCH(POP, 6, logits=torch.zeros(3), **kwargs)
    for kwargs in (dict(temperature=0.5), dict(gradient="gumbel", rao_samples=3)):
        with pytest.raises(ValueError, match="applies only to gradient in"):
            MFNCH(POP, 6, logits=torch.zeros(3), **kwargs)


@pytest.mark.parametrize("engine", ["logspace", "fft"])
def test_marginal_gradients_in_a_zero_weight_are_their_true_limits(engine):
    """d P(x_j = k) / d w_i at w_i = 0 against one-sided difference quotients of brute-force
    marginals, for the classes of positive weight (``marginal`` and ``log_marginal``). Class 1
    cannot hold 0 balls at ``w_2 = 0`` (class 0 has only 5 of the 6) but can for ``w_2 > 0``: a
    limit that is infinite in log space, left out (documented)."""
    from enumeration import moments

    generator = torch.Generator().manual_seed(0)
    w = torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64, requires_grad=True)
    eps = 1e-8
    at, near = (moments(POP.tolist(), 6, [1.0, 2.0, v]) for v in (0.0, eps))
    slope = (near["marginals"][0] - at["marginals"][0]) / eps
    probe = torch.randn(len(slope), dtype=torch.float64, generator=generator)
    d = MFNCH(POP, 6, weights=w, engine=engine)
    (grad,) = torch.autograd.grad(d.marginal(0).probs @ probe, w)
    assert abs(float(grad[2]) - slope @ probe.numpy()) < 1e-6
    slope = (near["marginals"][1] - at["marginals"][1]) / eps
    assert at["marginals"][1][0] == 0 and slope[0] > 0
    offset, log_probs = MFNCH(POP, 6, weights=w, engine=engine).log_marginal(1)
    counts = offset + torch.arange(log_probs.shape[-1])
    keep = (counts >= 1) & (counts <= POP[1])
    probe = torch.randn(8, dtype=torch.float64, generator=generator)
    (grad,) = torch.autograd.grad((log_probs.exp()[keep] * probe[counts[keep]]).sum(), w)
    want = slope[1:] @ probe[1:].numpy()
    assert abs(float(grad[2]) - want) < 1e-6 and abs(want) > 0.01
