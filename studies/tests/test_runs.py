"""Run directories and atomic result files."""

import json
import os
import stat

import pytest

from diffhypergeom_studies.runs import make_run_dir, markdown_table, read_json, write_json_atomic


def test_run_dirs_are_unique_and_reusable(tmp_path):
    first = make_run_dir("ks", root=tmp_path)
    second = make_run_dir("ks", root=tmp_path)
    assert first != second and first.parent == second.parent == tmp_path / "ks"
    assert make_run_dir("ks", out=first) == first


def test_json_round_trip_is_atomic_and_readable_by_others(tmp_path):
    import numpy as np
    import torch

    path = write_json_atomic(tmp_path / "r.json", {"a": np.float64(1.5), "b": torch.arange(3),
                                                   "nan": float("nan"), "inf": float("inf")})
    assert read_json(path) == {"a": 1.5, "b": [0, 1, 2], "nan": None, "inf": "inf"}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left
    old = os.umask(0o022)
    try:
        mode = stat.S_IMODE(write_json_atomic(tmp_path / "s.json", {}).stat().st_mode)
    finally:
        os.umask(old)
    assert mode == 0o644


def test_failed_write_keeps_the_old_file(tmp_path):
    path = write_json_atomic(tmp_path / "r.json", {"v": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"v": object()})
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_read_json_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="results file not found"):
        read_json(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupt JSON"):
        read_json(tmp_path / "bad.json")


def test_markdown_table():
    assert markdown_table(["a", "b"], [[1, 0.123456]]) == "| a | b |\n|---|---|\n| 1 | 0.1235 |"
