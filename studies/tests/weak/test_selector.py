"""The selector study on perfect latents (``diffhypergeom weak selector``)."""

import pytest
import torch

from diffhypergeom_studies.cli import main
from diffhypergeom_studies.runs import read_json
from diffhypergeom_studies.weak.selector import (
    VARIANTS,
    SelectorConfig,
    make_latent_pairs,
    run_selector_study,
    run_setting,
)

PAPER, PENALISED = "hg (paper: raw input, Gumbel)", \
    "hg, log-sorted input, mean gradient, penalty on E[k]"
POE = "hg, log-sorted input, mean gradient, product-of-experts aggregation"


@pytest.mark.parametrize("shared", [0, 2, 5])
def test_latent_pairs_share_exactly_s_dims(shared):
    z1, z2 = make_latent_pairs(torch.Generator().manual_seed(0), 500, 5, shared)
    assert ((z1 == z2).sum(-1) == shared).all()
    # which dims are shared is uniform over the dims
    frequency = (z1 == z2).double().mean(0)
    assert (frequency - shared / 5).abs().max() < 0.1


def test_a_penalty_on_k_moves_the_selector_towards_s():
    """With the ELBO alone, keeping a shared dim independent costs nothing, so s_hat stays
    far below s; a penalty on E[k] makes k = d - s the cheapest point mass, and the learned
    E[s] moves towards s (d = 5, s = 3; measured 1.99 against 0.9 alone). It cannot reach it:
    an MFNCH over k with urn [d, d] and n = d keeps a standard deviation near 0.9 at interior
    means, and aggregating a differing dim costs far more than the penalty saves."""
    config = SelectorConfig(latent_dim=5, steps=300, eval_pairs=400)
    penalised = run_setting(config, PENALISED, 3, 0)
    alone = run_setting(config, "hg, log-sorted input, mean gradient", 3, 0)
    assert alone["expected_s"] < 1.5, alone
    assert penalised["expected_s"] > alone["expected_s"] + 0.5, (penalised, alone)
    assert penalised["expected_s"] < 3.2
    assert abs(penalised["s_hat"] - penalised["expected_s"]) < 0.3


def test_the_study_detects_s_where_a_selector_that_can_must():
    """On perfect latents the product-of-experts selector follows s (d = 5; measured s_hat
    0.14 / 2.53 for s = 0 / 3 at 300 steps) while the paper's stays near 0 (0.00 / 0.09): the
    study tells a selector that learns s from one that does not."""
    config = SelectorConfig(latent_dim=5, steps=300, eval_pairs=400)
    poe = [run_setting(config, POE, s, 0)["s_hat"] for s in (0, 3)]
    paper = run_setting(config, PAPER, 3, 0)["s_hat"]
    assert poe[0] < 1.0 and 2.0 < poe[1] < 3.6, poe
    assert paper < 1.0, paper


def test_study_end_to_end_and_resume(tmp_path):
    config = SelectorConfig(latent_dim=4, s_values=[0, 2], seeds=[0, 1], steps=20,
                            eval_pairs=100, variants=[PAPER, PENALISED, "ada (threshold)"])
    results = run_selector_study(config, tmp_path, progress=False)
    stored = read_json(tmp_path / "results.json")
    assert stored["rows"] == results["rows"] and len(stored["rows"]) == 12
    for row in stored["rows"]:
        assert {"s_hat", "expected_k", "expected_s", "mse"} <= set(row)
        assert 0 <= row["s_hat"] <= 4 and row["expected_k"] == pytest.approx(
            4 - row["expected_s"])
    assert (tmp_path / "selector_s_hat.png").is_file()
    assert "E[s]" in (tmp_path / "summary.md").read_text()
    parts = sorted((tmp_path / "parts").iterdir())
    stamps = [p.stat().st_mtime_ns for p in parts]
    again = run_selector_study(config, tmp_path, progress=False)  # every run is reused
    assert again["rows"] == results["rows"]
    assert [p.stat().st_mtime_ns for p in parts] == stamps


def test_cli_quick_options_and_errors(tmp_path, capsys):
    assert main(["weak", "selector", "--s-values", "1", "--seeds", "0", "--steps", "5",
                 "--latent-dim", "3", "--out", str(tmp_path), "--no-progress"]) == 0
    rows = read_json(tmp_path / "results.json")["rows"]
    assert {r["variant"] for r in rows} == set(VARIANTS)
    assert "selector study" in capsys.readouterr().out.lower()
    with pytest.raises(ValueError, match="s_values must lie in"):
        main(["weak", "selector", "--s-values", "9", "--out", str(tmp_path / "x"),
              "--no-progress"])


def test_supervised_representation_end_to_end(tmp_path):
    """Posteriors from a convolutional encoder trained with factor supervision (tiny here):
    the study runs end to end, and the posteriors are finite."""
    from diffhypergeom_studies.weak.selector import EncodedPairs

    config = SelectorConfig(representation="supervised", encoder_steps=150, steps=5,
                            eval_pairs=50, image_size=16, s_values=[3], seeds=[0],
                            variants=[PAPER, "ada (threshold)"])
    results = run_selector_study(config, tmp_path, progress=False)
    assert len(results["rows"]) == 2 and "supervised" in (tmp_path / "summary.md").read_text()
    batch = EncodedPairs(config, 3, 0).batch(40)
    assert batch["mu1"].shape == (40, 7)
    assert torch.isfinite(batch["mu1"]).all() and torch.isfinite(batch["logvar"]).all()
    with pytest.raises(ValueError, match="latent_dim must be 7"):
        run_selector_study(SelectorConfig(representation="supervised", latent_dim=5),
                           tmp_path / "bad", progress=False)
