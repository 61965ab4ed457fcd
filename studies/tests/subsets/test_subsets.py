"""``diffhypergeom subsets``: the command end to end (quick, library methods and the peers'
code path on a stand-in copy), resuming, its help, and a method without a gradient learning
worse than a working one (seeded, fixed steps: deterministic)."""

import json
import math

import pytest
import torch

from diffhypergeom_studies.cli import build_parser, main
from diffhypergeom_studies.subsets import selection
from diffhypergeom_studies.subsets.methods import control_method, library_method
from diffhypergeom_studies.subsets.names import LIBRARY_METHODS, PEER_METHODS, TASKS
from diffhypergeom_studies.subsets.stats import best_method, paired_comparison
from diffhypergeom_studies.subsets.study import run_cell
from diffhypergeom_studies.subsets.training import Budget

FAST = ["--quick", "--budget", "0.2", "--checkpoints", "2", "--threads", "1", "--no-progress"]


def _parts(out):
    return {p.name: p.stat().st_mtime_ns for p in (out / "parts").iterdir()}


def test_quick_run_writes_everything_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["subsets", *FAST, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Peers skipped: no --peers PATH given" in printed
    results = json.loads((out / "results.json").read_text())
    summary = (out / "summary.md").read_text()
    assert set(results["tasks"]) == set(TASKS)
    for name, task in results["tasks"].items():
        assert set(task["methods"]) == set(LIBRARY_METHODS)
        assert task["comparison"] is None
        assert (out / f"subsets_{name}.png").stat().st_size > 0
        for m in task["methods"].values():
            assert len(m["curve_mean"]) == 3 and math.isfinite(m["mean"])
            assert m["steps"] >= 1
    assert len(results["cells"]) == len(TASKS) * len(LIBRARY_METHODS)
    assert all(c["checkpoints"][-1]["seconds"] >= 0.2 for c in results["cells"])
    assert "No paired comparison" in summary and "| reinforce-loo | library |" in summary
    before = _parts(out)
    assert len(before) == len(results["cells"])
    assert main(["subsets", *FAST, "--out", str(out)]) == 0  # resumes: nothing recomputed
    assert _parts(out) == before
    assert json.loads((out / "results.json").read_text())["cells"] == results["cells"]
    assert main(["subsets", *FAST, "--out", str(out), "--seeds", "2", "--tasks", "selection",
                 "--methods", "reinforce-loo"]) == 0  # one new cell, the old one kept
    after = _parts(out)
    assert after["selection_reinforce-loo_seed000.json"] == \
        before["selection_reinforce-loo_seed000.json"]
    assert "selection_reinforce-loo_seed001.json" in after


def test_peers_code_path_and_paired_comparison(tmp_path, fake_peers):
    out = tmp_path / "run"
    assert main(["subsets", *FAST, "--out", str(out), "--tasks", "selection", "--seeds", "2",
                 "--peers", str(fake_peers), "--methods",
                 "reinforce-loo," + ",".join(PEER_METHODS)]) == 0
    results = json.loads((out / "results.json").read_text())
    task = results["tasks"]["selection"]
    assert {m["family"] for m in task["methods"].values()} == {"library", "peer"}
    assert task["best_library"] == "reinforce-loo" and task["best_peer"] in PEER_METHODS
    assert task["comparison"]["n"] == 2
    assert (out / "peers-cwd" / "simple_configs").is_dir()  # SIMPLE's files: not in the cwd
    assert "paired over 2 seeds" in (out / "summary.md").read_text()


def test_bad_settings_exit_cleanly(tmp_path):
    with pytest.raises(SystemExit, match="need --peers PATH"):
        main(["subsets", *FAST, "--out", str(tmp_path / "a"), "--methods", "SIMPLE"])
    with pytest.raises(SystemExit, match="no samplers/ folder"):
        main(["subsets", *FAST, "--out", str(tmp_path / "b"), "--peers", str(tmp_path)])
    with pytest.raises(SystemExit):
        main(["subsets", "--methods", "nope"])


def test_help_explains_every_option():
    parser = build_parser()
    sub = next(a for a in parser._actions if hasattr(a, "choices") and a.choices
               and "subsets" in a.choices).choices["subsets"]
    text = sub.format_help()
    for action in sub._actions:
        assert action.help, action.dest
        assert all(option in text for option in action.option_strings)
    for name in [*TASKS, *LIBRARY_METHODS, *PEER_METHODS, "no-gradient"]:
        assert name in text


def test_a_method_without_a_gradient_learns_worse():
    """The control gives the selection logits no gradient (the head still learns): with the
    same seed, data, initialisation and 200 steps, reinforce-loo ends clearly better."""
    spec, budget = selection.SPEC, Budget(steps=200, checkpoints=1)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        final = {}
        for method in (library_method("reinforce-loo"), control_method("no-gradient"),
                       library_method("reinforce-loo")):
            cell = run_cell(spec, method, method.build(spec.k, 8), 0, budget)
            final.setdefault(method.name, []).append(cell["checkpoints"][-1]["metrics"])
    finally:
        torch.set_num_threads(before)
    assert final["reinforce-loo"][0] == final["reinforce-loo"][1]  # deterministic
    working = final["reinforce-loo"][0]["cross_entropy"]
    broken = final["no-gradient"][0]["cross_entropy"]
    assert working < broken - 0.03, (working, broken)


def test_paired_comparison_and_best_method():
    lower = paired_comparison([1.0, 1.1, 0.9, 1.0, 1.05], [1.5, 1.6, 1.45, 1.5, 1.55],
                              higher_is_better=False)
    assert (lower["wins"], lower["losses"], lower["verdict"]) == (5, 0, "library better")
    assert lower["mean_difference"] > 0
    assert lower["wilcoxon_p_value"] == pytest.approx(0.0625)  # the floor at 5 seeds
    higher = paired_comparison([0.5, 0.6, 0.55], [0.8, 0.9, 0.86], higher_is_better=True)
    assert higher["verdict"] == "peer better" and higher["losses"] == 3
    assert paired_comparison([1.0], [2.0], True)["verdict"] == "too few seeds"
    assert best_method({"a": [0.2], "b": [float("nan")], "c": [0.1]}, False) == "c"
