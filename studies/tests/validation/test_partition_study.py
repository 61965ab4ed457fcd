"""The partition-learning study end to end on a small problem: files, curves, resumption, and a
gradient-quality measurement that tells an unbiased estimator from a biased one."""

import dataclasses

import numpy as np
import pytest
import torch

from diffhypergeom.laws.partition import RandomPartition
from diffhypergeom_studies.cli import main
from diffhypergeom_studies.runs import read_json
from diffhypergeom_studies.validation.partition import (
    PartitionConfig,
    gradient_quality,
    log_likelihood,
    planted_problem,
    run_partition,
)


def tiny_config(**overrides) -> PartitionConfig:
    config = PartitionConfig(sizes=[4, 3, 2], steps=30, seeds=1, eval_every=10,
                             eval_samples=16, gradient_replicates=60, seed=3)
    return dataclasses.replace(config, **overrides)


@pytest.fixture(scope="module")
def partition_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("partition")
    run_partition(tiny_config(), out, progress=False)
    return out, read_json(out / "results.json")


def test_files_curves_and_resumption(partition_run):
    out, results = partition_run
    assert "Learning a planted partition" in (out / "summary.md").read_text()
    assert all((out / name).is_file() for name in results["figures"])
    assert {r["estimator"] for r in results["runs"]} == {"score", "relaxed"}
    for run in results["runs"]:
        assert [point[0] for point in run["curve"]] == [0, 10, 20, 30]
        assert all(-1 <= point[1] <= 1 for point in run["curve"])
        together = np.array(run["together"])
        assert together.shape == (9, 9) and np.allclose(np.diag(together), 1)
    before = {p.name: p.stat().st_mtime_ns for p in (out / "parts").iterdir()}
    run_partition(tiny_config(), out, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "parts").iterdir()} == before


def test_the_planted_partition_is_the_most_likely_labelling_of_clean_observations():
    """With little noise the planted labels score higher than every relabelling that moves one
    item (the objective the study maximises points at the planted partition)."""
    labels, a = planted_problem([4, 3, 2], 0.01, np.random.default_rng(0))
    one_hot = torch.nn.functional.one_hot(torch.as_tensor(labels), 3).double()
    best = log_likelihood(one_hot, a)
    for item in range(9):
        for block in range(3):
            if block != labels[item]:
                moved = labels.copy()
                moved[item] = block
                other = torch.nn.functional.one_hot(torch.as_tensor(moved), 3).double()
                assert log_likelihood(other, a) < best


def test_gradient_quality_separates_the_unbiased_estimator():
    """The test of "no bias" keeps the score-function estimator (p > 0.001) and rejects the
    relaxed one at temperature 1 (p < 1e-4), from 200 estimates of 64 draws each. (A score
    term scaled by 0.7 was rejected with p < 1e-4 when tried.)"""
    config = tiny_config(gradient_replicates=200, samples=64, temperature=1.0)
    quality = gradient_quality(config)
    score, relaxed = quality["score"], quality["relaxed"]
    assert score["unbiased_p_value"] > 1e-3, score
    assert relaxed["unbiased_p_value"] < 1e-4, relaxed
    assert score["cosine"] > 0.9


def test_score_estimator_runs_through_the_exact_log_prob():
    """``surrogate_loss`` with ``reinforce-loo`` takes a RandomPartition (labels in, values
    out) and gives gradients to both logits."""
    from diffhypergeom.estimators import surrogate_loss

    size_logits = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    element_logits = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    d = RandomPartition(size_logits, element_logits)
    surrogate_loss(d, lambda z: (z == 0).double().sum(-1), num_samples=8,
                   estimator="reinforce-loo").backward()
    assert size_logits.grad is not None and element_logits.grad is not None
    with pytest.raises(ValueError, match="reinforce-loo"):
        surrogate_loss(d, lambda z: z.sum(-1), estimator="exact")


def test_command_line(tmp_path, capsys):
    assert main(["partition", "--quick", "--sizes", "3", "2", "--steps", "4", "--seeds", "1",
                 "--no-progress", "--out", str(tmp_path)]) == 0
    assert "Learning a planted partition" in capsys.readouterr().out
    assert (tmp_path / "results.json").is_file()
    with pytest.raises(SystemExit, match="flip must be in"):
        main(["partition", "--quick", "--flip", "0.7", "--out", str(tmp_path / "bad")])
