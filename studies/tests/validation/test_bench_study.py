"""The benchmark sweep end to end on tiny cases (each in its own subprocess)."""

import dataclasses

import pytest
import torch

from diffhypergeom_studies.runs import read_json
from diffhypergeom_studies.validation.bench import BenchConfig, run_bench


@pytest.fixture
def in_process(monkeypatch):
    """Run the cases in this process: the subprocess start-up of ``run_case_isolated``
    (tested with the benchmarking module) would dominate the test's time."""
    from diffhypergeom_studies import benchmarking

    monkeypatch.setattr(benchmarking, "run_case_isolated",
                        lambda case, method, repeats: benchmarking.run_case(case, method, repeats))


def test_bench_writes_rows_table_and_figure(tmp_path, in_process):
    config = BenchConfig(classes=[3], balls=[], draws=[], batch=[4], num_samples=50,
                         repeats=1)
    run_bench(config, tmp_path, progress=False)
    results = read_json(tmp_path / "results.json")
    rows = results["rows"]
    assert {(r["sweep"], r["method"]) for r in rows} == {
        (s, m) for s in ("classes", "batch") for m in ("exact", "merge")}
    for row in rows:
        assert row["relaxed_per_second"] > 0 and row["exact_per_second"] > 0
        assert row["peak_memory_mb"] >= 0
        assert row["device"] == "cpu"
    batch_row = next(r for r in rows if r["sweep"] == "batch")
    assert batch_row["batch"] == 4 and batch_row["classes"] == 2
    assert "relaxed exact/merge" in (tmp_path / "summary.md").read_text()
    assert (tmp_path / "bench_throughput.png").stat().st_size > 1000


def test_cuda_without_gpu_is_a_clear_error():
    config = BenchConfig(device="cuda")
    if torch.cuda.is_available():
        config.validate()
    else:
        with pytest.raises(ValueError, match="cuda"):
            config.validate()


@pytest.mark.parametrize("overrides, match", [
    ({"device": "tpu"}, "device"),
    ({"classes": [1]}, "classes"),
    ({"draws": [10_000]}, "draws"),
    ({"threads": 0}, "threads"),
])
def test_bad_config_raises(overrides, match):
    config = dataclasses.replace(BenchConfig(), **overrides)
    with pytest.raises(ValueError, match=match):
        config.validate()


def test_cases_run_in_subprocesses_with_the_requested_threads(tmp_path):
    config = BenchConfig(classes=[3], balls=[], draws=[], batch=[], num_samples=20, repeats=1,
                         threads=1)
    results = run_bench(config, tmp_path, progress=False)
    assert [r["threads"] for r in results["rows"]] == [1, 1]
    assert [r["method"] for r in results["rows"]] == ["exact", "merge"]
