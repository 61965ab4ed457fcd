"""Bad input: every case raises a ValueError naming the parameter and the constraint."""

import math

import numpy as np
import pytest
import torch

from diffhypergeom import MultivariateFisherNCHypergeometric as MFNCH
from diffhypergeom.laws.checks import as_count_tensor, as_float_tensor, check_bool, check_positive

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
    (dict(engine="fast"), "engine must be one of"),
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
        d.rsample((2,), gradient="gumbel", temperature=-1.0)


def test_marginal_rejects_bad_index():
    with pytest.raises(ValueError, match="class index"):
        MFNCH(M, 4, weights=W).marginal(3)


@pytest.mark.parametrize("value", [True, False, np.True_, np.False_])
def test_check_bool_accepts_python_and_numpy_bools(value):
    check_bool(value, "hard")


@pytest.mark.parametrize("value", [1, np.int64(1), "yes", None, torch.tensor(True)])
def test_check_bool_rejects_other_values(value):
    with pytest.raises(ValueError, match="hard must be True or False"):
        check_bool(value, "hard")


@pytest.mark.parametrize("value", [0.5, 2, np.float32(0.5), np.float64(0.5), np.int64(2),
                                   torch.tensor(0.5)])
def test_check_positive_accepts_python_and_numpy_numbers(value):
    check_positive(value, "temperature")


@pytest.mark.parametrize("value", [True, np.True_, np.False_, "1.0", None])
def test_check_positive_rejects_bools_and_non_numbers(value):
    with pytest.raises(ValueError, match="temperature must be a float or a real tensor"):
        check_positive(value, "temperature")


@pytest.mark.parametrize("value", [np.float32(0.0), np.float32(math.nan), np.int64(-1)])
def test_check_positive_checks_numpy_values(value):
    with pytest.raises(ValueError, match="temperature must be finite and > 0"):
        check_positive(value, "temperature")


def test_numpy_scalars_and_arrays_convert():
    draws = as_count_tensor(np.int64(5), "draws", torch.device("cpu"))
    assert draws.dtype == torch.int64 and draws.item() == 5
    population = as_count_tensor(np.array([3.0, 4.0, 5.0]), "population")
    assert population.tolist() == [3, 4, 5] and population.dtype == torch.int64
    logit = as_float_tensor(np.float32(0.5), "logits")
    assert logit.dtype == torch.float32 and logit.item() == 0.5


def test_the_distribution_takes_numpy_counts():
    d = MFNCH(np.array([3, 4, 5]), np.int64(4), weights=np.array([1.0, 2.0, 3.0]))
    reference = MFNCH(M, 4, weights=W.double())
    torch.testing.assert_close(d.log_prob(torch.tensor([1, 1, 2])),
                               reference.log_prob(torch.tensor([1, 1, 2])))


def test_a_tensor_on_another_device_names_both_devices():
    """A tensor that cannot be moved to the logits' device is reported as such, with torch's
    reason (it was reported as "must be a tensor of non-negative integers")."""
    on_meta = torch.tensor([1, 2], device="meta")
    with pytest.raises(ValueError, match=r"population is on device meta and cannot be moved "
                                         r"to the logits' device cpu \(.*meta"):
        as_count_tensor(on_meta, "population", torch.device("cpu"))
    assert as_count_tensor(on_meta, "population", check=False).device.type == "meta"


@pytest.mark.parametrize("kwargs,name", [
    (dict(population=torch.tensor([3, 4, 5], device="meta")), "population"),
    (dict(draws=torch.tensor(4, device="meta")), "draws"),
])
def test_the_distribution_names_a_tensor_on_another_device(kwargs, name):
    args = dict(population=M, draws=4, weights=W)
    args.update(kwargs)
    with pytest.raises(ValueError, match=f"{name} is on device meta and cannot be moved"):
        MFNCH(**args)


@pytest.mark.parametrize("convert,value,match", [
    (as_count_tensor, 2**70, r"draws must be a tensor of non-negative integers, got "
                             r"1180591620717411303424 \(Overflow"),
    (as_count_tensor, [1, "a"], r"draws must be a tensor of non-negative integers, got "
                                r"\[1, 'a'\] \(.*invalid data type 'str'\)"),
    (as_float_tensor, [[1.0, 2.0], [3.0]], r"draws must be a real tensor of shape \[\.\.\., c\]"
                                           r", got .* \(expected sequence of length 2"),
])
def test_conversion_errors_keep_their_cause(convert, value, match):
    with pytest.raises(ValueError, match=match) as info:
        convert(value, "draws")
    assert info.value.__cause__ is not None
