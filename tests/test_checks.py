"""Bad input: every case raises a ValueError naming the parameter and the constraint."""

import math

import pytest
import torch

from diffhypergeom import MultivariateFisherNCHypergeometric as MFNCH

M = torch.tensor([3, 4, 5])
W = torch.tensor([1.0, 2.0, 3.0])


@pytest.mark.parametrize("kwargs,match", [
    (dict(population=[3, -1, 5]), "population must be non-negative"),
    (dict(population=[3.0, 4.5, 5.0]), "population must be integers"),
    (dict(population=[3.0, math.nan, 5.0]), "population must be finite"),
    (dict(population=[True, False, True]), "population must hold non-negative integers"),
    (dict(population=5), "population must have a class dimension"),
    (dict(population=[3, 4]), "population has 2 classes"),
    (dict(draws=-2), "draws must be non-negative"),
    (dict(draws=2.5), "draws must be integers"),
    (dict(draws=13), r"draws must be <= population.sum\(-1\)"),
    (dict(draws=torch.tensor([3, 20])), r"draws must be <= population.sum\(-1\)"),
    (dict(logits=torch.tensor([0.0, math.nan, 1.0]), weights=None), "logits must not be NaN"),
    (dict(logits=torch.tensor([0.0, math.inf, 1.0]), weights=None), "logits must be finite"),
    (dict(logits=torch.tensor([0.0, -math.inf, 1.0]), weights=None), "logits must be finite"),
    (dict(weights=torch.tensor([1.0, -0.5, 1.0])), "weights must be >= 0"),
    (dict(weights=torch.tensor([1.0, math.nan, 1.0])), "weights must not be NaN"),
    (dict(weights=torch.tensor([1.0, math.inf, 1.0])), "weights must be finite"),
    (dict(weights=torch.tensor([0.0, 0.0, 1.0]), draws=6), "infeasible urn"),
    (dict(logits=torch.zeros(3)), "exactly one of logits or weights"),
    (dict(weights=None), "exactly one of logits or weights"),
    (dict(weights=torch.ones(2, 3), population=torch.ones(3, 3, dtype=torch.long)),
     "batch shapes do not broadcast"),
    (dict(draws=torch.tensor([1, 2]), weights=torch.ones(3, 3)),
     "batch shapes do not broadcast"),
    (dict(method="fast"), "method must be one of"),
    (dict(temperature=0.0), "temperature must be finite and > 0"),
])
def test_bad_arguments(kwargs, match):
    args = dict(population=M, draws=4, weights=W)
    args.update(kwargs)
    if args.get("weights") is None and "logits" not in args:
        args.pop("weights")
    with pytest.raises(ValueError, match=match):
        MFNCH(**args)


def test_batch_shape_mismatch_names_the_parameters():
    with pytest.raises(ValueError, match=r"population \(2,\).*draws \(3,\)"):
        MFNCH(torch.tensor([[3, 4, 5], [3, 4, 5]]), torch.tensor([1, 2, 3]), weights=W)


@pytest.mark.parametrize("value,match", [
    (torch.tensor([1, 2]), r"value must have shape \[..., 3\]"),
    (torch.tensor(2), r"value must have shape \[..., 3\]"),
    (torch.ones(2, 3, 3), "does not broadcast"),
])
def test_log_prob_rejects_wrong_shapes(value, match):
    d = MFNCH(torch.tensor([[3, 4, 5], [3, 4, 5]]), 4, weights=W)
    with pytest.raises(ValueError, match=match):
        d.log_prob(value)


@pytest.mark.parametrize("value", [[1, 1, 1], [4, 0, 0], [-1, 2, 3], [1.5, 2.5, 0.0],
                                   [0, 0, 4], [1, 4, -1]])
def test_points_outside_the_support(value):
    x = torch.tensor(value)
    lenient = MFNCH(M, 4, weights=torch.tensor([1.0, 2.0, 0.0]), validate_args=False)
    strict = MFNCH(M, 4, weights=torch.tensor([1.0, 2.0, 0.0]), validate_args=True)
    if value == [1.5, 2.5, 0.0]:  # inside the ranges: the Gamma-function extension
        assert torch.isfinite(lenient.log_prob(x.double()))
    elif value == [0, 0, 4]:  # in the support of the counts but the class has weight zero
        assert lenient.log_prob(x).item() == -math.inf
        return
    else:
        assert lenient.log_prob(x).item() == -math.inf
    with pytest.raises(ValueError, match="support"):
        strict.log_prob(x.double() if value == [1.5, 2.5, 0.0] else x)


def test_rsample_rejects_bad_temperature():
    d = MFNCH(M, 4, weights=W)
    with pytest.raises(ValueError, match="temperature must be finite and > 0"):
        d.rsample((2,), temperature=-1.0)


def test_marginal_rejects_bad_index():
    with pytest.raises(ValueError, match="class index"):
        MFNCH(M, 4, weights=W).marginal(3)
