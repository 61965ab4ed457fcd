"""The study commands through the real command line, and the combined validate suite."""

import pytest

from diffhypergeom_studies.cli import main
from diffhypergeom_studies.runs import read_json
from diffhypergeom_studies.validation import bench, gradients, ks, suite, urn


def test_ks_command_end_to_end(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(ks.KSConfig, "quick", classmethod(
        lambda cls, seed=0: cls(num_samples=2000, class_size=30, draws=27,
                                weight_values=[1.0, 8.0], draw_values=[60], middle_values=[10],
                                sweep_draws=30, seed=seed)))
    out = tmp_path / "ks-run"
    assert main(["ks", "--quick", "--samples", "600", "--seed", "1", "--out", str(out),
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "## KS study (600 samples" in printed and str(out) in printed
    results = read_json(out / "results.json")
    assert results["config"]["num_samples"] == 600 and results["config"]["seed"] == 1
    exact = next(t for t in results["totals"] if t["sampler"] == "exact-rsample")
    assert exact["rejected"] == 0


def test_root_option_makes_timestamped_run_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(gradients.GradientConfig, "quick", classmethod(
        lambda cls, seed=0: cls(temperatures=[1.0], calls=4, samples_per_call=8, seed=seed)))
    assert main(["gradients", "--quick", "--root", str(tmp_path), "--no-progress"]) == 0
    (run_dir,) = (tmp_path / "gradients").iterdir()
    assert (run_dir / "results.json").is_file() and (run_dir / "summary.md").is_file()


@pytest.mark.parametrize("argv, match", [
    (["ks", "--samples", "1"], "num_samples"),
    (["urn", "--epochs", "0"], "epochs"),
    (["gradients", "--temperatures", "-1"], "temperatures"),
    (["bench", "--device", "tpu"], "device"),
    (["validate", "--device", "tpu"], "device"),
])
def test_bad_options_exit_with_message(tmp_path, argv, match):
    with pytest.raises(SystemExit, match=match):
        main(argv + ["--root", str(tmp_path)])
    assert not (tmp_path / argv[0]).exists()


def test_validate_runs_every_study_into_one_directory(tmp_path, monkeypatch, capsys):
    from diffhypergeom_studies import benchmarking

    monkeypatch.setattr(benchmarking, "run_case_isolated",
                        lambda case, method, repeats: benchmarking.run_case(case, method, repeats))
    tiny = {
        ks.KSConfig: lambda cls, seed=0: cls(num_samples=500, class_size=20, draws=18,
                                             weight_values=[1.0, 10.0], draw_values=[],
                                             middle_values=[], seed=seed),
        urn.UrnConfig: lambda cls, seed=0: cls(population=[20, 20, 20], draws=18,
                                               weight_values=[2.0], num_data=200,
                                               num_train=150, epochs=1, ml_iterations=10,
                                               seed=seed),
        gradients.GradientConfig: lambda cls, seed=0: cls(temperatures=[1.0], calls=4,
                                                          samples_per_call=8, seed=seed),
        bench.BenchConfig: lambda cls, device="cpu": cls(classes=[3], balls=[], draws=[],
                                                         batch=[], num_samples=20, repeats=1,
                                                         device=device),
    }
    for config_class, factory in tiny.items():
        monkeypatch.setattr(config_class, "quick", classmethod(factory))
    out = tmp_path / "validate"
    assert main(["validate", "--out", str(out), "--no-progress"]) == 0
    results = read_json(out / "results.json")
    assert set(results["studies"]) == set(suite.STUDIES)
    for name in suite.STUDIES:
        assert (out / name / "results.json").is_file()
        assert results["studies"][name]["headline"]
    printed = capsys.readouterr().out
    assert printed.startswith("# Validation suite (quick mode)")
    for title in ("## KS study", "## Learning urn weights", "## Gradient estimators",
                  "## Sampling benchmark"):
        assert title in printed


def test_validate_skip(tmp_path):
    with pytest.raises(ValueError, match="skip"):
        suite.run_suite(tmp_path, skip=["nope"])
