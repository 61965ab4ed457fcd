"""The KS study end to end on tiny urns: results.json content, figures, resuming."""

import dataclasses
import json

import pytest

from diffhypergeom_studies.runs import read_json
from diffhypergeom_studies.validation.ks import KSConfig, run_ks


def tiny_config(**overrides) -> KSConfig:
    config = KSConfig(num_samples=4000, class_size=40, draws=36, weight_values=[1.0, 10.0],
                      draw_values=[80], middle_values=[], sweep_draws=40, seed=3)
    return dataclasses.replace(config, **overrides)


@pytest.fixture(scope="module")
def ks_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ks")
    run_ks(tiny_config(), out, progress=False)
    return out, read_json(out / "results.json")


def _comparison(setting, sampler, ref):
    return next(c for c in setting["comparisons"]
                if c["sampler"] == sampler and c["reference"] == ref)


def test_writes_results_summary_and_figures(ks_run):
    out, results = ks_run
    assert (out / "summary.md").read_text().startswith("## KS study")
    for name in results["figures"]:
        assert (out / name).stat().st_size > 1000
    assert {s["figure"] for s in results["settings"]} == {"w2", "n"}


def test_exact_samplers_never_rejected(ks_run):
    _, results = ks_run
    for setting in results["settings"]:
        for sampler in ("exact-rsample", "exact-sample"):
            c = _comparison(setting, sampler, "exact")
            assert c["num_rejected"] == 0, (setting["figure"], setting["value"], c)
            assert len(c["p_adjusted"]) == 3


def test_merge_is_rejected_and_has_larger_tv_when_weights_differ(ks_run):
    _, results = ks_run
    w10 = next(s for s in results["settings"] if s["figure"] == "w2" and s["value"] == 10.0)
    exact, merge = (_comparison(w10, s, "exact") for s in ("exact-rsample", "merge-rsample"))
    assert max(merge["tv"]) > max(exact["tv"]) + 0.1
    assert merge["num_rejected"] >= 2
    # ... but it is the faithful sampler of the paper's merged law
    assert _comparison(w10, "merge-rsample", "merged")["num_rejected"] == 0
    assert w10["tv_merge_law"][0] > 0.1
    # at equal weights merging is exact: same law
    w1 = next(s for s in results["settings"] if s["figure"] == "w2" and s["value"] == 1.0)
    assert max(w1["tv_merge_law"]) < 1e-9


def test_totals_count_the_tests(ks_run):
    _, results = ks_run
    for total in results["totals"]:
        assert total["tests"] == 3 * len(results["settings"])


def test_restart_reuses_finished_settings_and_recomputes_corrupt_ones(ks_run, tmp_path):
    out, results = ks_run
    first = json.loads((out / "parts" / "ks_000.json").read_text())
    (out / "parts" / "ks_001.json").write_text("{truncated")
    again = run_ks(tiny_config(), out, progress=False)
    assert json.loads((out / "parts" / "ks_000.json").read_text()) == first
    assert again["settings"][0] == results["settings"][0]
    assert again["settings"][1]["comparisons"] == results["settings"][1]["comparisons"]


@pytest.mark.parametrize("overrides, match", [
    ({"num_samples": 1}, "num_samples"),
    ({"alpha": 1.5}, "alpha"),
    ({"weight_values": [0.0]}, "weight_values"),
])
def test_bad_config_raises(tmp_path, overrides, match):
    with pytest.raises(ValueError, match=match):
        run_ks(tiny_config(**overrides), tmp_path, progress=False)
