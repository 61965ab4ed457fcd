"""The docs' markdown as a newcomer reads it, without building the site: tables keep their
columns, relative links reach a file and a heading that exist, the guide's command table names
every subcommand, and the changelog matches the package's version (issue "Never surprised":
each check failed on the pages it was written for)."""

import re
from pathlib import Path

import pytest

import diffhypergeom

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("**/*.md")) + [ROOT / "README.md", ROOT / "CHANGELOG.md"]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """MyST's anchor of a heading (``myst_heading_anchors``): lower case, punctuation dropped,
    spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {_slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def _cells(row: str) -> int:
    return len(re.split(r"(?<!\\)\|", row.strip().strip("|")))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_table_rows_keep_their_columns(page):
    """A row with more cells than its header swallowed the text after the table (a missing
    blank line)."""
    lines = page.read_text().splitlines()
    for number, line in enumerate(lines):
        if line.startswith("|---") and number > 0:
            width = _cells(lines[number - 1])
            for row in lines[number + 1:]:
                if not row.startswith("|"):
                    break
                assert _cells(row) == width, f"{page.name}:{lines.index(row) + 1}: {row[:80]}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_reach_a_page_and_a_heading(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#") and not target[1:]:
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if path and not linked.suffix:  # a Sphinx document name: a page, or the gallery
            found = [linked.with_suffix(suffix) for suffix in (".md", ".rst")
                     if linked.with_suffix(suffix).exists()]
            generated = linked.parent == (ROOT / "docs" / "examples") and (
                ROOT / "examples").is_dir()
            assert found or generated, f"{page.name}: {target} (no such page)"
            continue
        assert linked.exists(), f"{page.name}: {target} (no such file)"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(linked), f"{page.name}: {target} (no such heading)"


def test_the_guide_lists_every_command():
    from diffhypergeom_studies.cli import COMMANDS

    guide = (ROOT / "docs" / "guide" / "index.md").read_text()
    table = guide[guide.index("## Command line"):]
    for name in COMMANDS:
        assert f"| `{name}" in table, f"the guide's command table omits {name!r}"


def test_the_changelog_names_the_version_and_no_missing_table():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    first = next(line for line in changelog.splitlines() if line.startswith("## "))
    assert diffhypergeom.__version__ in first
    assert "README's migration table" not in changelog
    assert "changelog" in (ROOT / "docs" / "index.rst").read_text()


def test_the_envelope_table_quotes_the_constants_the_code_uses():
    from diffhypergeom.laws import base, checks, wallenius
    from diffhypergeom.numerics import engines, fft, race
    from diffhypergeom.numerics import wallenius as quadrature

    guide = (ROOT / "docs" / "guide" / "index.md").read_text()
    section = guide[guide.index("## Where each law is exact"):guide.index("## Engines")]
    quoted = {"MAX_TOTAL = 2^53": checks.MAX_TOTAL == 2**53,
              "MAX_MAGNITUDE = 1e290": engines.MAX_MAGNITUDE == 1e290,
              "fft.MAX_TRANSFORM_WORK = 5e8": fft.MAX_TRANSFORM_WORK == 5e8,
              "MAX_SPREAD = 1e6": wallenius.MAX_SPREAD == 1e6,
              "GAP = 200": wallenius.GAP == 200,
              "CLOCK_SPREAD = 650": quadrature.CLOCK_SPREAD == 650,
              "MAX_DENSE = 2^26": base.MAX_DENSE == 2**26,
              "race.MAX_SPREAD = 2,000": race.MAX_SPREAD == 2000}
    for text, holds in quoted.items():
        assert text in section and holds, text


def test_the_results_page_is_not_a_lab_diary():
    """Tables, figures and commands; dates, commits and 'today' belong in the changelog."""
    results = (ROOT / "docs" / "results" / "index.md").read_text()
    for phrase in ("Today", "today", "previous commit", "Rerun on", "earlier run",
                   "quieter day"):
        assert phrase not in results, phrase
    assert not re.search(r"20\d\d-\d\d-\d\d", results)


def test_the_getting_started_page_is_on_the_site_and_the_readme_does_not_overstate():
    assert "getting-started" in (ROOT / "docs" / "index.rst").read_text()
    page = (ROOT / "docs" / "getting-started.md").read_text()
    assert page.count("```{doctest}") == 3  # the three recipes run as doctests
    readme = (ROOT / "README.md").read_text()
    assert "as cheap as `[4, 4]`)" not in readme  # true only for n near 0 or N
