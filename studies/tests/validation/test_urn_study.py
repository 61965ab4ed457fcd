"""Learning urn weights end to end on a small urn: ML recovers the centred log-weights within
the Fisher-information tolerance, and that tolerance rejects a wrong answer."""

import dataclasses

import numpy as np
import pytest
import torch
from scipy.stats import chi2

from diffhypergeom import MultivariateFisherNCHypergeometric
from diffhypergeom_studies.runs import read_json
from diffhypergeom_studies.validation import reference
from diffhypergeom_studies.validation.urn import UrnConfig, evaluate, mle_covariance, run_urn


def tiny_config(**overrides) -> UrnConfig:
    config = UrnConfig(population=[30, 30, 30], draws=27, weight_values=[1.0, 4.0],
                       num_data=500, num_train=400, epochs=2, batch_size=50, ml_iterations=30,
                       seed=5)
    return dataclasses.replace(config, **overrides)


@pytest.fixture(scope="module")
def urn_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("urn")
    run_urn(tiny_config(), out, progress=False)
    return out, read_json(out / "results.json")


def test_files_and_curves(urn_run):
    out, results = urn_run
    assert "Learning urn weights" in (out / "summary.md").read_text()
    assert len(results["figures"]) == 3 and all((out / f).is_file() for f in results["figures"])
    for setting in results["settings"]:
        relaxed = setting["estimators"]["relaxed-exact"]
        assert len(relaxed["train_curve"]) == 2 * 400 // 50
        assert len(relaxed["valid_curve"]) == 2
        assert len(setting["estimators"]["ml"]["train_curve"]) == 30


def test_ml_recovers_centred_log_weights_within_fisher_tolerance(urn_run):
    _, results = urn_run
    tolerance = chi2.ppf(0.999, 2)
    for setting in results["settings"]:
        ml = setting["estimators"]["ml"]
        assert ml["z2_tolerance"] == pytest.approx(tolerance)
        assert ml["within_tolerance"] and ml["z2"] <= tolerance
        # the same statistic recomputed from the reported error and the exact covariance
        truth = torch.log(torch.tensor(setting["weights"], dtype=torch.float64))
        sigma = MultivariateFisherNCHypergeometric(torch.tensor([30, 30, 30]), 27,
                                                   logits=truth).covariance_matrix.numpy()
        error = np.asarray(ml["centred_error"])
        assert abs(error.sum()) < 1e-9
        assert 400 * error @ sigma @ error == pytest.approx(ml["z2"], rel=1e-6)
        # the estimate is a stationary point of the likelihood: E_theta[X] = mean of the data
        assert ml["train_nll"] <= setting["estimators"]["relaxed-exact"]["train_nll"] + 1e-9


def test_tolerance_rejects_the_wrong_weights(urn_run):
    _, results = urn_run
    config = tiny_config()
    w1 = next(s for s in results["settings"] if s["w2"] == 1.0)
    urn = reference.enumerate_urn([30, 30, 30], 27, [1.0, 1.0, 1.0])
    data = torch.tensor(urn.draw(500, np.random.default_rng(0)), dtype=torch.float64)
    wrong = evaluate(config, w1["estimators"]["ml"]["logits"], [1.0, 2.0, 1.0], data[:400],
                     data[400:])
    assert not wrong["within_tolerance"]


def test_mle_covariance_is_the_inverse_on_centred_subspace():
    sigma = MultivariateFisherNCHypergeometric(
        torch.tensor([30, 30, 30]), 27, weights=torch.tensor([1.0, 4.0, 1.0],
                                                             dtype=torch.float64)
    ).covariance_matrix.numpy()
    cov = mle_covariance(sigma, 100)
    project = np.eye(3) - 1 / 3
    np.testing.assert_allclose(100 * sigma @ cov, project, atol=1e-8)


@pytest.mark.parametrize("overrides, match", [
    ({"num_train": 500}, "num_train"),
    ({"epochs": 0}, "epochs"),
    ({"draws": 1000}, "draws"),
])
def test_bad_config_raises(tmp_path, overrides, match):
    with pytest.raises(ValueError, match=match):
        run_urn(tiny_config(**overrides), tmp_path, progress=False)
