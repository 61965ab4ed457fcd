"""A tiny end-to-end sweep on the digits (seconds), skip-on-restart, resume, and the CLI."""

from __future__ import annotations

import csv
import json
import math

import pytest

from diffhypergeom_studies.cli import main
from diffhypergeom_studies.cluster.priors import PI_INITS, PRIOR_ESTIMATORS, PRIORS
from diffhypergeom_studies.cluster.sweep import TrainConfig, paired_tests, run_sweep
from diffhypergeom_studies.commands import cluster as command

TINY = dict(hidden=[16], latent_dim=2, batch_size=64, pretrain_epochs=1, epochs=1,
            progress=False)


@pytest.mark.slow
def test_tiny_sweep_and_restart(tmp_path):
    cfg = TrainConfig(**TINY, keep_checkpoints=False)  # the sweep command's default
    messages: list[str] = []
    summary = run_sweep(tmp_path, "digits", list(PRIORS), ["sub60"], [0, 1], cfg,
                        log=messages.append)
    assert len(summary["runs"]) == 8
    for name in ("results.json", "summary.md", "weights.png"):
        assert (tmp_path / name).is_file()
    results = json.loads((tmp_path / "results.json").read_text())
    runs = results["runs"]
    for run in runs:
        assert 0 <= run["acc"] <= 1 and -1 <= run["ari"] <= 1
        assert len(run["matched_weights"]) == 10
        assert sum(run["class_proportions"]) == pytest.approx(1)
        if run["version"] == "sub60":
            assert len(run["subsampled_classes"]) == 5
            assert run["true_ratio"] == pytest.approx(0.6, abs=0.03)
    # the priors of one (version, seed) start from the same pretrained weights
    assert len({r["init"] for r in runs if r["seed"] == 0}) == 1
    assert all(r["pi_init"] == "gmm" and r["prior_estimator"] == "exact" for r in runs)
    # every learnable prior starts at the GMM's weights, so they differ from uniform
    assert all(max(r["cluster_weights"]) > 0.11 for r in runs if r["prior"] != "uniform")
    tests = results["paired_tests"]
    assert len(tests) == 6 and all(t["n"] == 2 and t["version"] == "sub60" for t in tests)
    uniform = [r for r in runs if r["prior"] == "uniform"]
    assert all(w == pytest.approx(0.1) for r in uniform for w in r["cluster_weights"])
    text = (tmp_path / "summary.md").read_text()
    assert "| hypergeometric |" in text and "sub60 ACC" in text and "Wilcoxon" in text
    assert not list(tmp_path.glob("runs/*/*/*/checkpoints/*.ckpt"))  # dropped by default
    assert not (tmp_path / "lightning_logs").exists()

    stamp = (tmp_path / "runs/sub60/hypergeometric/seed0/result.json").stat().st_mtime_ns
    messages.clear()
    again = run_sweep(tmp_path, "digits", list(PRIORS), ["sub60"], [0, 1], cfg,
                      log=messages.append)
    assert len(messages) == 8 and all("skipped" in m for m in messages)
    assert (tmp_path / "runs/sub60/hypergeometric/seed0/result.json").stat().st_mtime_ns \
        == stamp
    assert [r["acc"] for r in again["runs"]] == [r["acc"] for r in runs]


@pytest.mark.slow
def test_interrupted_run_resumes_from_checkpoint(tmp_path):
    cfg = TrainConfig(**TINY, keep_checkpoints=True)
    run_sweep(tmp_path, "digits", ["hypergeometric"], ["sub80"], [1], cfg, log=lambda m: None)
    run_dir = tmp_path / "runs/sub80/hypergeometric/seed1"
    assert (run_dir / "checkpoints/last.ckpt").is_file()
    (run_dir / "result.json").unlink()  # as if killed after the last checkpoint
    longer = TrainConfig(**{**TINY, "epochs": 2}, keep_checkpoints=True)
    run_sweep(tmp_path, "digits", ["hypergeometric"], ["sub80"], [1], longer,
              log=lambda m: None)
    assert (run_dir / "result.json").is_file()
    with open(run_dir / "logs/version_1/metrics.csv") as handle:
        epochs = {row["epoch"] for row in csv.DictReader(handle)}
    assert epochs == {"1"}  # resumed: only the second epoch was trained


def test_paired_tests_by_hand():
    runs = [{"prior": p, "version": "sub60", "seed": s, "acc": acc, "nmi": 0.5}
            for p, accs in (("a", [0.6, 0.7, 0.65, 0.8]), ("b", [0.5, 0.65, 0.6, 0.6]))
            for s, acc in enumerate(accs)]
    (row,) = paired_tests(runs, ["a", "b"], ["sub60"])
    diff = [0.1, 0.05, 0.05, 0.2]
    mean = sum(diff) / 4
    std = (sum((d - mean) ** 2 for d in diff) / 3) ** 0.5
    assert row["acc"]["mean_diff"] == pytest.approx(mean)
    assert row["acc"]["std_diff"] == pytest.approx(std)
    t = mean / (std / 2)  # 3 degrees of freedom
    from scipy import stats
    assert row["acc"]["t_p"] == pytest.approx(2 * stats.t.sf(t, 3))
    assert row["acc"]["wilcoxon_p"] == pytest.approx(0.125)  # all 4 positive: 2 / 2^4
    assert math.isnan(row["nmi"]["t_p"])  # no differences at all


def test_cli_names_match_the_library():
    assert command.PRIOR_NAMES == PRIORS
    assert command.PRIOR_ESTIMATOR_NAMES == PRIOR_ESTIMATORS
    assert command.PI_INIT_NAMES == PI_INITS


def test_cli_train_and_errors(tmp_path, capsys):
    out = tmp_path / "one"
    code = main(["cluster", "train", "--prior", "categorical", "--version", "sub80",
                 "--hidden", "16", "--latent-dim", "2", "--pretrain-epochs", "1",
                 "--epochs", "1", "--batch-size", "64", "--no-progress", "--threads", "1",
                 "--pi-init", "uniform", "--prior-estimator", "gumbel", "--gmm-n-init", "2",
                 "--out", str(out)])
    assert code == 0
    result = json.loads((out / "result.json").read_text())
    assert result["prior"] == "categorical" and result["version"] == "sub80"
    assert result["pi_init"] == "uniform" and result["prior_estimator"] == "gumbel"
    assert (out / "checkpoints/last.ckpt").is_file()
    assert '"acc"' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["cluster", "train", "--hidden", "16,x"])
    with pytest.raises(SystemExit):
        main(["cluster", "sweep", "--priors", "dirichlet"])
    with pytest.raises(SystemExit):
        main(["cluster", "sweep", "--pi-init", "kmeans"])
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        TrainConfig(epochs=0)
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        main(["cluster", "sweep", "--dataset", "fashion-mnist", "--data-dir",
              str(tmp_path / "none"), "--out", str(tmp_path / "x")])
