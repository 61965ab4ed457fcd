"""The CLI: --help for every command, and the demo end to end."""

import subprocess
import sys

import pytest

from diffhypergeom_studies.cli import COMMANDS, build_parser, main


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    assert "usage" in capsys.readouterr().out


def test_parser_builds_without_heavy_imports():
    code = ("import sys; from diffhypergeom_studies.cli import build_parser; build_parser(); "
            "heavy = [m for m in ('sklearn', 'lightning', 'matplotlib', 'scipy') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_demo_prints_table_with_merge_error(capsys):
    assert main(["demo", "--samples", "20000", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "| class | exact mean" in out
    assert "merge baseline vs exact: 0.582" in out
    assert "exact mean 27.97, merge mean 21.31" in out


def test_demo_rejects_mismatched_weights():
    with pytest.raises(SystemExit, match="--weights has 2 values"):
        main(["demo", "--population", "3", "4", "5", "--weights", "1", "2"])


def test_unknown_command_exits_with_usage(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["nope"])
    assert "invalid choice" in capsys.readouterr().err
