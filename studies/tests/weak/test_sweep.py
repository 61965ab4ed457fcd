import argparse
import json

import pytest

from diffhypergeom_studies.commands import weak as weak_command
from diffhypergeom_studies.weak.config import RunConfig
from diffhypergeom_studies.weak.sweep import run_sweep

TINY = dict(image_size=16, width=0.25, hidden=16, batch_size=8, steps=4, lr=1e-3,
            val_every=2, val_pairs=8, eval_pairs=16, eval_train=60, eval_test=40)


def test_tiny_sweep_and_skip_on_restart(tmp_path):
    base = RunConfig(**TINY)
    out = run_sweep(tmp_path, base, ["ada", "hg"], [5], [0], progress=False)
    assert out["skipped"] == []
    assert len(out["results"]) == 2
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results["runs"]) == 2
    for run in results["runs"]:
        assert 0 <= run["s_hat_mean"] <= 7 and run["mse_s"] >= 0
        assert sum(run["s_hat_hist"]) == TINY["eval_pairs"]
        run_dir = tmp_path / "runs" / f"{run['method']}-s{run['num_shared']}-seed0"
        assert (run_dir / "curves.png").is_file()
        assert (run_dir / "checkpoints" / "last.ckpt").is_file()
        assert (run_dir / "logs" / "version_0" / "metrics.csv").is_file()
    summary = (tmp_path / "summary.md").read_text()
    assert "| HGVAE | 5 |" in summary and "AdaVAE" in summary
    assert (tmp_path / "summary.png").read_bytes()[:4] == b"\x89PNG"

    # restart: every finished run is skipped and the summary is identical
    again = run_sweep(tmp_path, base, ["ada", "hg"], [5], [0])
    assert sorted(again["skipped"]) == ["ada-s5-seed0", "hg-s5-seed0"]
    assert again["results"] == out["results"]

    # an unfinished run (no result.json) is trained again, the others are skipped
    (tmp_path / "runs" / "hg-s5-seed0" / "result.json").unlink()
    third = run_sweep(tmp_path, base, ["ada", "hg"], [5], [0])
    assert third["skipped"] == ["ada-s5-seed0"]
    assert (tmp_path / "runs" / "hg-s5-seed0" / "result.json").is_file()


def _parse(argv):
    parser = argparse.ArgumentParser()
    weak_command.configure(parser)
    return parser.parse_args(argv)


def test_cli_train_and_render(tmp_path, capsys):
    argv = ["train", "--method", "label", "--s", "3", "--image-size", "16", "--width", "0.25",
            "--hidden", "16", "--batch-size", "8", "--steps", "2", "--val-every", "2",
            "--eval-pairs", "8", "--eval-train", "40", "--eval-test", "20", "--no-progress",
            "--out", str(tmp_path / "train")]
    assert weak_command.run(_parse(argv)) == 0
    result = json.loads((tmp_path / "train" / "result.json").read_text())
    assert result["method"] == "label" and result["s_hat_mean"] == 6.0   # d - 1 with d = K = 7
    assert result["mse_s"] == pytest.approx(9.0)
    png = tmp_path / "grid.png"
    assert weak_command.run(_parse(["render", "--image-size", "32", "--out", str(png)])) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_tiny_locatello_sweep_and_cli_train(tmp_path):
    """--pairs locatello: runs are named and summarised by k; s_hat is scored against each
    pair's own number of shared factors."""
    base = RunConfig(pairs="locatello", **TINY)
    out = run_sweep(tmp_path / "sweep", base, ["label"], [-1, 2], [0], progress=False)
    names = sorted(p.name for p in (tmp_path / "sweep" / "runs").iterdir())
    assert names == ["label-k-1-seed0", "label-k2-seed0"]
    for run in out["results"]:
        assert run["pairs"] == "locatello" and run["setting"] == run["k"]
        assert 0 < run["s_true_mean"] < 7  # varies per pair; at most K - 1 redrawn
        # LabelVAE always says 6 shared: its MSE is against the per-pair truth
        assert run["mse_s"] > (6 - run["s_true_mean"]) ** 2 - 1e-9
    summary = (tmp_path / "sweep" / "summary.md").read_text()
    assert "| LabelVAE | -1 |" in summary and "true s (mean over pairs)" in summary
    argv = ["train", "--method", "hg", "--pairs", "locatello", "--k", "3",
            "--selector-gradient", "mean", "--k-penalty", "1", "--kernels", "reference",
            "--image-size", "16", "--width", "0.25", "--hidden", "16", "--batch-size", "8",
            "--steps", "2", "--val-every", "2", "--eval-pairs", "8", "--eval-train", "40",
            "--eval-test", "20", "--no-progress", "--out", str(tmp_path / "train")]
    assert weak_command.run(_parse(argv)) == 0
    result = json.loads((tmp_path / "train" / "result.json").read_text())
    assert result["pairs"] == "locatello" and result["k"] == 3
    config = json.loads((tmp_path / "train" / "config.json").read_text())
    assert config["selector_gradient"] == "mean" and config["k_penalty"] == 1.0
    assert config["kernels"] == "reference"


def test_bad_settings():
    with pytest.raises(ValueError, match="method"):
        RunConfig(method="oracle")
    with pytest.raises(ValueError, match="data_path"):
        RunConfig(dataset="mpi3d")
    with pytest.raises(ValueError, match="tau_final"):
        RunConfig(tau_init=0.1, tau_final=1.0)
    with pytest.raises(ValueError, match="pairs must be one of"):
        RunConfig(pairs="random")
    with pytest.raises(ValueError, match="kernels must be one of"):
        RunConfig(kernels="3x3")
    with pytest.raises(ValueError, match="k must be -1"):
        RunConfig(pairs="locatello", k=0)
    with pytest.raises(ValueError, match="k_penalty must be >= 0"):
        RunConfig(k_penalty=-1.0)
    with pytest.raises(ValueError, match="selector_gradient must be one of"):
        RunConfig(selector_gradient="rao")
    with pytest.raises(SystemExit):
        _parse(["train", "--pairs", "paper"])
    with pytest.raises(SystemExit):
        _parse(["sweep", "--methods", "hg,oracle"])
    with pytest.raises(SystemExit):
        _parse(["sweep", "--s-values", "a,b"])
    with pytest.raises(FileNotFoundError, match="mpi3d.npz"):
        weak_command.run(_parse(["train", "--dataset", "mpi3d", "--data-path",
                                 "/nonexistent/mpi3d.npz", "--steps", "1"]))


def test_parallel_workers_give_the_same_results_as_sequential(tmp_path):
    import torch

    base = RunConfig(**TINY).with_(steps=2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers use 1 thread: same arithmetic, same results
    try:
        sequential = run_sweep(tmp_path / "seq", base, ["ada"], [1, 2], [0])
    finally:
        torch.set_num_threads(threads)
    parallel = run_sweep(tmp_path / "par", base, ["ada"], [1, 2], [0], workers=2, threads=1)
    assert [r["num_shared"] for r in parallel["results"]] == [1, 2]
    for a, b in zip(sequential["results"], parallel["results"], strict=True):
        assert a["s_hat_hist"] == b["s_hat_hist"]
        assert a["acc_independent"] == pytest.approx(b["acc_independent"])
    with pytest.raises(ValueError, match="workers"):
        run_sweep(tmp_path / "bad", base, ["label"], [1], [0], workers=0)


def test_cli_choices_match_the_library():
    """The CLI spells its choices out (it imports no torch for --help); they must stay the
    library's names."""
    from diffhypergeom_studies.weak.methods import AGGREGATIONS, OMEGA_INPUTS, SELECTOR_GRADIENTS
    from diffhypergeom_studies.weak.networks import KERNELS
    from diffhypergeom_studies.weak.pairs import PAIRS

    parser = argparse.ArgumentParser()
    weak_command.configure(parser)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    choices = {a.dest: tuple(a.choices) for a in sub.choices["train"]._actions if a.choices}
    assert choices["aggregation"] == AGGREGATIONS
    assert choices["omega_input"] == OMEGA_INPUTS
    assert choices["selector_gradient"] == SELECTOR_GRADIENTS
    assert choices["kernels"] == KERNELS
    assert choices["pairs"] == PAIRS
