"""Gradient study: the exact reference gradient and the estimators' bias/spread."""

import numpy as np
import pytest
import torch

from diffhypergeom.runs import read_json
from diffhypergeom.validation.gradients import (
    TEST_FUNCTIONS,
    GradientConfig,
    exact_gradient,
    finite_difference_gradient,
    run_gradients,
)


@pytest.mark.parametrize("name", list(TEST_FUNCTIONS))
def test_exact_gradient_matches_finite_differences(name):
    f = TEST_FUNCTIONS[name][0]
    theta = np.log([1.0, 3.0, 0.5])
    exact = exact_gradient([5, 7, 4], 8, theta, f)
    np.testing.assert_allclose(exact, finite_difference_gradient([5, 7, 4], 8, theta, f),
                               atol=1e-7)
    assert abs(exact.sum()) < 1e-10  # sum_i x_i = n: no gradient along the all-ones direction


def test_exact_gradient_of_linear_f_is_covariance_times_coefficients():
    from diffhypergeom import MultivariateFisherNCHypergeometric

    theta = np.log([1.0, 3.0, 0.5])
    sigma = MultivariateFisherNCHypergeometric(
        torch.tensor([5, 7, 4]), 8, logits=torch.tensor(theta)).covariance_matrix.numpy()
    exact = exact_gradient([5, 7, 4], 8, theta, TEST_FUNCTIONS["linear"][0])
    np.testing.assert_allclose(exact, sigma @ np.array([1.0, -1.0, 2.0]), atol=1e-8)


@pytest.fixture(scope="module")
def gradient_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gradients")
    config = GradientConfig(temperatures=[0.5], num_samples=4000, chunk=250, seed=7)
    run_gradients(config, out, progress=False)
    return out, read_json(out / "results.json")


def test_results_content(gradient_run):
    out, results = gradient_run
    assert (out / "gradient_bias_std.png").is_file()
    assert results["max_finite_difference_error"] < 1e-6
    kinds = {(r["estimator"], r["method"], r["order"]) for r in results["estimators"]}
    assert kinds == {("straight-through", m, o) for m in ("exact", "merge")
                     for o in ("fixed", "random")} | {("reinforce", "exact", "-")}
    assert "REINFORCE + baseline" in (out / "summary.md").read_text()


def test_reinforce_is_unbiased_and_a_baseline_reduces_spread(gradient_run):
    _, results = gradient_run
    for row in (r for r in results["estimators"] if r["estimator"] == "reinforce"):
        for name, f in row["functions"].items():
            assert f["bias_norm"] < 4 * f["bias_se"], (row["baseline"], name, f)
    plain, based = (next(r for r in results["estimators"]
                         if r["estimator"] == "reinforce" and r["baseline"] is b)
                    for b in (False, True))
    # ||x - 3||^2 has a large mean, which the baseline removes from the score's multiplier
    assert based["functions"]["quadratic"]["std"] < 0.9 * plain["functions"]["quadratic"]["std"]


def test_straight_through_fixed_order_bias_is_detected(gradient_run):
    """The fixed-order straight-through estimator is biased far beyond its noise level."""
    _, results = gradient_run
    row = next(r for r in results["estimators"]
               if r["estimator"] == "straight-through" and r["method"] == "exact"
               and r["order"] == "fixed")
    f = row["functions"]["linear"]
    assert f["bias_norm"] > 5 * f["bias_se"]


def test_bad_config_raises(tmp_path):
    with pytest.raises(ValueError, match="temperatures"):
        run_gradients(GradientConfig(temperatures=[0.0]), tmp_path, progress=False)
    with pytest.raises(ValueError, match="num_samples"):
        run_gradients(GradientConfig(num_samples=100, chunk=100), tmp_path, progress=False)
