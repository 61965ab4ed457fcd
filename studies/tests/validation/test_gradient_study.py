"""Gradient study: the exact reference gradient and the estimators' bias/spread."""

import numpy as np
import pytest
import torch

from diffhypergeom_studies.runs import read_json
from diffhypergeom_studies.validation.gradients import (
    TEST_FUNCTIONS,
    GradientConfig,
    call_gradient,
    exact_gradient,
    finite_difference_gradient,
    run_gradients,
)


@pytest.mark.parametrize("name", list(TEST_FUNCTIONS))
def test_exact_gradient_matches_finite_differences(name):
    f = TEST_FUNCTIONS[name].f
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
    exact = exact_gradient([5, 7, 4], 8, theta, TEST_FUNCTIONS["linear"].f)
    np.testing.assert_allclose(exact, sigma @ np.array([1.0, -1.0, 2.0]), atol=1e-8)


@pytest.fixture(scope="module")
def gradient_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gradients")
    config = GradientConfig(temperatures=[0.5], calls=40, seed=7)
    run_gradients(config, out, progress=False)
    return out, read_json(out / "results.json")


def test_results_content(gradient_run):
    out, results = gradient_run
    assert (out / "gradient_bias_std.png").is_file()
    assert results["max_finite_difference_error"] < 1e-6
    labels = {r["label"] for r in results["estimators"]}
    assert {"pathwise, mean (default rsample)", "reinforce-loo", "reinforce-cv", "exact",
            "pathwise, Gumbel exact, fixed order, coupled",
            "pathwise, Gumbel merge, random order"} <= labels
    summary = (out / "summary.md").read_text()
    assert "### Goals" in summary and "ms / call" in summary
    for row in results["estimators"]:
        assert set(row["functions"]) == set(TEST_FUNCTIONS)
        assert all(f["time_ms"] > 0 for f in row["functions"].values())


def test_unbiased_estimators_are_unbiased_and_exact_is_exact(gradient_run):
    _, results = gradient_run
    for row in results["estimators"]:
        if row["estimator"] in ("reinforce-loo", "reinforce-cv"):
            for name, f in row["functions"].items():
                assert f["bias_norm"] < 4 * f["bias_se"] + 1e-12, (row["label"], name, f)
        if row["estimator"] == "exact":
            for f in row["functions"].values():
                assert f["relative_bias"] < 1e-10 and f["relative_spread"] < 1e-10


def test_biases_the_study_must_see(gradient_run):
    """Fixed-order Gumbel straight-through is biased far beyond its noise level; the default
    (mean) gradient is exact for linear f; no pathwise estimator sees a hard step."""
    _, results = gradient_run
    rows = {r["label"]: r for r in results["estimators"]}
    f = rows["pathwise, Gumbel exact, fixed order"]["functions"]["linear"]
    assert f["bias_norm"] > 5 * f["bias_se"]
    mean = rows["pathwise, mean (default rsample)"]["functions"]
    assert mean["linear"]["relative_bias"] < 1e-10
    assert mean["step"]["relative_bias"] == pytest.approx(1.0)


def test_bad_config_raises(tmp_path):
    with pytest.raises(ValueError, match="temperatures"):
        run_gradients(GradientConfig(temperatures=[0.0]), tmp_path, progress=False)
    with pytest.raises(ValueError, match="samples_per_call"):
        run_gradients(GradientConfig(samples_per_call=1), tmp_path, progress=False)
    with pytest.raises(ValueError, match="calls"):
        run_gradients(GradientConfig(calls=1), tmp_path, progress=False)


def _independent_straight_through(theta, population, draws, temperature, num, f):
    """Mean straight-through gradient of ``f`` with fixed class order, written from scratch:
    conditional log-weights ``log C(m_i, k) + k theta_i + log S_{i+1}(r - k)`` with the suffix
    sums ``S`` enumerated directly (no library code)."""
    theta = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
    neg_inf = torch.tensor(-float("inf"), dtype=torch.float64)

    def log_binom(m, k):
        k = torch.as_tensor(k, dtype=torch.float64)
        return torch.lgamma(torch.tensor(m + 1.0)) - torch.lgamma(k + 1) - torch.lgamma(m - k + 1)

    def log_suffix(i, r):  # log sum_{x_i..x_c, sum = r} prod_j C(m_j, x_j) exp(x_j theta_j)
        if r < 0:
            return neg_inf
        if i == len(population) - 1:
            return log_binom(population[i], r) + r * theta[i] if r <= population[i] else neg_inf
        return torch.logsumexp(torch.stack([log_binom(population[i], k) + k * theta[i]
                                            + log_suffix(i + 1, r - k)
                                            for k in range(population[i] + 1)]), 0)

    remaining = torch.full((num,), draws)
    counts = []
    for i in range(len(population) - 1):
        k = torch.arange(population[i] + 1, dtype=torch.float64)
        table = torch.stack([torch.stack([log_binom(population[i], j) + j * theta[i]
                                          + log_suffix(i + 1, r - j) for j in range(len(k))])
                             for r in range(draws + 1)])
        alpha = table[remaining]
        scores = (alpha - torch.log(-torch.log(torch.rand_like(alpha)))) / temperature
        hard = scores.argmax(-1)
        soft = torch.softmax(scores, -1) @ k
        counts.append(hard.double() + soft - soft.detach())
        remaining = remaining - hard
    counts.append(draws - sum(counts))
    (grad,) = torch.autograd.grad(f(torch.stack(counts, -1)).mean(), theta)
    return grad.numpy()


def test_library_straight_through_matches_an_independent_implementation():
    """So the fixed-order bias reported by the study is the estimator's, not a library bug."""
    torch.manual_seed(11)
    f = TEST_FUNCTIONS["linear"].f
    config = GradientConfig(temperatures=[0.5], samples_per_call=500)
    spec = dict(estimator="pathwise", gradient="gumbel", method="exact", order="fixed",
                coupled=False, temperature=0.5)
    library = np.stack([call_gradient(config, spec, f)[0] for _ in range(20)])
    independent = _independent_straight_through(np.log(config.weights), config.population,
                                                config.draws, 0.5, 10_000, f)
    # both means carry noise of this size (a call's mean over 500 draws, 20 calls)
    se = np.sqrt(library.var(0) / len(library) * 2)
    np.testing.assert_array_less(np.abs(library.mean(0) - independent), 5 * se)
    exact = exact_gradient(config.population, config.draws, np.log(config.weights), f)
    assert np.linalg.norm(independent - exact) > 0.3 * np.linalg.norm(exact)


def test_the_wallenius_law_is_studied_too(gradient_run):
    """The Wallenius section: its exact gradient (summing over the support) matches central
    differences of that sum, the score estimator is unbiased, the pathwise one (the exact mean's
    gradient) is exact for linear f and blind to a hard step."""
    out, results = gradient_run
    section = results["wallenius"]
    rows = {r["estimator"]: r["functions"] for r in section["estimators"]}
    assert set(rows) == {"pathwise", "reinforce-loo", "exact"}
    for name, f in rows["reinforce-loo"].items():
        assert f["bias_norm"] < 4 * f["bias_se"] + 1e-12, (name, f)
    assert all(f["relative_bias"] < 1e-10 for f in rows["exact"].values())
    assert rows["pathwise"]["linear"]["relative_bias"] < 1e-8
    assert rows["pathwise"]["step"]["relative_bias"] == pytest.approx(1.0)
    assert "### The Wallenius law on the same urn" in (out / "summary.md").read_text()
    from diffhypergeom import MultivariateWalleniusNCHypergeometric as W

    config = GradientConfig()
    f = TEST_FUNCTIONS["quadratic"].f
    points = W(torch.tensor(config.population), config.draws,
               logits=torch.zeros(3, dtype=torch.float64)).enumerate_support()

    def expectation(theta):
        law = W(torch.tensor(config.population), config.draws, logits=theta)
        return float((law.log_prob(points).exp() * f(points)).sum())

    theta = torch.log(torch.tensor(config.weights, dtype=torch.float64))
    numeric = [(expectation(theta + 1e-6 * e) - expectation(theta - 1e-6 * e)) / 2e-6
               for e in torch.eye(3, dtype=torch.float64)]
    np.testing.assert_allclose(section["exact_gradients"]["quadratic"], numeric, atol=1e-6)


def test_the_figure_fits_the_page_width(gradient_run):
    """At most 1,150 pixels wide at the figures' 110 dpi (about 10.5 inches), so that the docs
    show it without shrinking its type; the side-by-side layout was 1,871 pixels wide."""
    from matplotlib.image import imread

    out, _ = gradient_run
    height, width = imread(out / "gradient_bias_std.png").shape[:2]
    assert width <= 1150 and height > width
