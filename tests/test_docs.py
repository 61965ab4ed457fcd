"""The documentation site builds and its code runs: the doctest builder over ``docs/`` (the
index page's example, and every page read with warnings as errors), and each gallery script of
``examples/`` in quick mode (``DIFFHYPERGEOM_DOCS_QUICK=1``), each drawing its figure.

Skipped unless the ``docs`` extra is installed (``pip install -e '.[docs]'``)."""

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("sphinx_gallery")
pytest.importorskip("myst_parser")
pytest.importorskip("matplotlib")
pytest.importorskip("pyro")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))

# Runs every script in one interpreter (one torch import), saving the figures each leaves open.
DRIVER = textwrap.dedent("""
    import runpy, sys, traceback
    from pathlib import Path
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out, failed = Path(sys.argv[1]), []
    for script in sys.argv[2:]:
        stem = Path(script).stem
        try:
            runpy.run_path(script, run_name="__main__")
        except BaseException:
            traceback.print_exc()
            failed.append(stem)
        for number in plt.get_fignums():
            plt.figure(number).savefig(out / f"{stem}-{number}.png", dpi=50)
        plt.close("all")
    sys.exit(f"failed: {failed}" if failed else 0)
""")


def _environment() -> dict[str, str]:
    env = dict(os.environ, MPLBACKEND="Agg", DIFFHYPERGEOM_DOCS_QUICK="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                      env.get("PYTHONPATH")]))
    return env


def test_examples_run_and_draw(tmp_path):
    assert len(EXAMPLES) == 7, EXAMPLES
    done = subprocess.run([sys.executable, "-c", DRIVER, str(tmp_path), *map(str, EXAMPLES)],
                          capture_output=True, text=True, env=_environment(), cwd=tmp_path,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    for script in EXAMPLES:
        figures = list(tmp_path.glob(f"{script.stem}-*.png"))
        assert figures, f"{script.name} drew no figure"
        assert all(f.stat().st_size > 1000 for f in figures)


def test_doctest_builder(tmp_path):
    """``sphinx-build -W -b doctest`` on a copy of the site's sources (the gallery is not run:
    ``plot_gallery=0``; sphinx-gallery writes its pages next to the sources, so the copy keeps
    the checkout's generated pages untouched)."""
    source = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", source,
                    ignore=shutil.ignore_patterns("_build", "examples", "sg_execution_times.rst"))
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    shutil.copy(ROOT / "CHANGELOG.md", tmp_path / "CHANGELOG.md")  # docs/changelog.md includes it
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "doctest",
         "-D", "plot_gallery=0", "-d", str(tmp_path / "doctrees"), str(source),
         str(tmp_path / "out")],
        capture_output=True, text=True, env=_environment(), timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    report = (tmp_path / "out" / "output.txt").read_text()
    assert "0 failures in tests" in report and " tests" in report, report


def test_html_site_is_offline_and_shows_each_name_once(tmp_path):
    """``sphinx-build -W -b html`` (gallery not run): no warning; no page loads a script or a
    style sheet from the network (sphinx-gallery's execution-times page did); ``support_size``
    is described once (the Pyro page documented it a second time, a duplicate anchor); the law
    pages do not repeat their formula as plain text under the rendered one; names public only
    across the library's modules (``gumbel_settings``) are not on the site; the copy button
    is there; the guide's names link to the API."""
    source = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", source,
                    ignore=shutil.ignore_patterns("_build", "examples", "sg_execution_times.rst"))
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    shutil.copy(ROOT / "CHANGELOG.md", tmp_path / "CHANGELOG.md")
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-D", "plot_gallery=0", "-d", str(tmp_path / "doctrees"), str(source), str(out)],
        capture_output=True, text=True, env=_environment(), timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    pages = {page: page.read_text() for page in out.rglob("*.html")}
    for page, html in pages.items():
        assert not re.search(r'(src|href)="https?://[^"]+\.(js|css)', html), page
    described = sum(html.count('id="diffhypergeom.numerics.support.support_size"')
                    + html.count('id="diffhypergeom.pyro.support_size"') for html in pages.values())
    assert described == 1
    fisher = (out / "api" / "fisher.html").read_text()
    assert "exp(logits_i)" not in fisher  # the module docstring's plain-text formula
    assert all("gumbel_settings" not in html for page, html in pages.items()
               if page.parent.name == "api")
    assert (out / "_static" / "copybutton.js").exists()
    # names written as code in the guide link to their API entries; members stay plain
    guide = (out / "guide" / "index.html").read_text()
    assert re.search(r'href="\.\./api/[a-z]+\.html#diffhypergeom\.[\w.]*k_subset"', guide)
    assert 'title="sample"><code' not in guide
