"""Sphinx configuration of the diffhypergeom documentation.

Build (warnings are errors):

    sphinx-build -W --keep-going -b html docs docs/_build/html
    sphinx-build -W --keep-going -b doctest docs docs/_build/doctest

or ``make docs``. The build needs no network: MathJax is served from ``_static/mathjax`` and
there is no intersphinx. The gallery runs ``examples/plot_*.py`` (sphinx-gallery); set
``DIFFHYPERGEOM_DOCS_QUICK=1`` for short runs of the examples, or pass ``-D plot_gallery=0``
to build the gallery pages without running them.
"""

from __future__ import annotations

import doctest
import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT / "src"))  # the checkout, also when the package is not installed

import diffhypergeom  # noqa: E402

project = "diffhypergeom"
author = "diffhypergeom contributors"
copyright = "diffhypergeom contributors"  # noqa: A001
release = diffhypergeom.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.doctest",
    "sphinx.ext.viewcode",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "sphinx_copybutton",
]
# the copy button leaves out the prompts and the output of ``>>>`` and shell examples
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = True
# No sphinx.ext.intersphinx: it fetches the inventories of other projects over the network.

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    "design.md",  # the old design notes, being moved to design/index.md
    "sg_execution_times.rst",
    "examples/*.ipynb",
    "examples/*.py",
    "examples/*.md5",
    "examples/*.zip",
    "examples/*.codeobj.json",
    "_static",
]
templates_path: list[str] = []

# -- autodoc / napoleon ----------------------------------------------------------------------
autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
    "member-order": "bysource",
}
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_custom_sections = [("Members", "notes_style")]
# The docstrings name code in ``double backquotes``, not in roles: nothing to resolve.
nitpicky = False

# -- doctest ---------------------------------------------------------------------------------
# The explicit ``.. doctest::`` blocks (the index page's example) and every ``>>>`` block of
# the docstrings the API pages show run as doctests.
doctest_test_doctest_blocks = "default"
# Sphinx's default flags include IGNORE_EXCEPTION_DETAIL; without it the examples' error
# messages (each names its parameter and constraint) are checked too.
doctest_default_flags = doctest.ELLIPSIS | doctest.DONT_ACCEPT_TRUE_FOR_1
doctest_global_setup = """
import torch
torch.manual_seed(0)
"""

# -- MyST (the markdown pages: results/, design/) ---------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# -- math: MathJax 3 from the site itself, so formulas render offline --------------------------
mathjax_path = "mathjax/tex-mml-chtml.js"

# -- sphinx-gallery --------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": str(DOCS / "examples"),
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "show_memory": False,
    "min_reported_time": 1,
    "abort_on_example_error": True,
    # its execution-times page loads jQuery and DataTables from CDNs: the docs stay offline
    "write_computation_times": False,
    # the names of the library in the examples' code link to their API entries (local docs)
    "doc_module": ("diffhypergeom",),
    "reference_url": {"diffhypergeom": None},
    "backreferences_dir": "gen_modules/backreferences",
}

# -- HTML ------------------------------------------------------------------------------------
try:
    import furo  # noqa: F401

    html_theme = "furo"
except ImportError:  # pragma: no cover - the docs extra installs furo
    html_theme = "alabaster"


def _commit() -> str | None:
    """The checkout's commit, so that the title says which source the pages (and the
    highlighted source viewcode links to) were built from; ``None`` outside a git checkout."""
    import subprocess

    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


commit = _commit()
html_title = f"diffhypergeom {release}" + (f" ({commit})" if commit else "")
html_static_path = ["_static"]
html_show_sourcelink = False

# The gallery runs its scripts with a non-interactive backend.
os.environ.setdefault("MPLBACKEND", "Agg")


# -- the command line's help texts (api/cli.rst) ----------------------------------------------
def _cli_help_nodes() -> list:
    """A rubric and a literal block of ``--help`` for the parser and every (nested) command."""
    import argparse

    from docutils import nodes

    from diffhypergeom_studies.cli import build_parser

    def walk(parser: argparse.ArgumentParser, name: str) -> list:
        block = nodes.literal_block(text=parser.format_help())
        block["language"] = "text"
        out = [nodes.rubric(text=name), block]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    out += walk(sub, f"{name} {sub_name}")
        return out

    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "88"
    try:
        return walk(build_parser(), "diffhypergeom")
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns


def _skip_tuple_fields(app, what, name, obj, skip, options):
    """Leave out the fields of ``NamedTuple`` classes as autodoc lists them ("Alias for field
    number 0"): their docstrings' ``Attributes:`` sections document them already."""
    if (getattr(obj, "__doc__", None) or "").startswith("Alias for field number"):
        return True
    return None


def _link_design_notes(app, what, name, obj, options, lines):
    """The docstrings cite the design notes by their path in the checkout; on the site the path
    becomes a link to the page."""
    for index, line in enumerate(lines):
        lines[index] = line.replace("``docs/design/index.md``",
                                    ":doc:`docs/design/index.md </design/index>`")


# modules whose API page renders the law itself (its formula in LaTeX, above the automodule):
# their docstrings say the same in plain text, which the page would show a second time
RENDERED_ON_THE_PAGE = {
    "diffhypergeom.laws.fisher", "diffhypergeom.laws.wallenius", "diffhypergeom.laws.merged",
    "diffhypergeom.laws.partition", "diffhypergeom.laws.relaxed",
}
# public across the library's modules (so not underscored) but not for users: left off the site
NOT_FOR_USERS = {"gumbel_settings"}


def _drop_rendered_docstrings(app, what, name, obj, options, lines):
    if what == "module" and name in RENDERED_ON_THE_PAGE:
        lines.clear()


def _skip_internal(app, what, name, obj, skip, options):
    return True if name in NOT_FOR_USERS else None


# pages whose inline code names are linked to the API (they name the library's objects as code)
LINKED_PAGES = ("getting-started", "guide/", "results/", "design/", "examples/")


def _link_names(app, doctree, docname):
    """On the HTML pages of ``LINKED_PAGES``, inline code that names a documented object of the
    library's classes and functions (``k_subset``, ``MultivariateFisherNCHypergeometric``,
    ``surrogate_loss()``, or a dotted name) becomes a link to its API entry; a short name two
    of them share stays plain, and so do members and arguments (``mean``, ``draws``)."""
    from docutils import nodes

    if app.builder.format != "html" or not docname.startswith(LINKED_PAGES):
        return
    targets: dict[str, tuple[str, str] | None] = {}
    objects = app.env.get_domain("py").objects
    members = {name.rsplit(".", 1)[-1] for name, entry in objects.items()
               if entry.objtype in ("method", "property", "attribute")}
    for name, entry in objects.items():
        if (not name.startswith("diffhypergeom.") or entry.aliased
                or entry.objtype not in ("class", "function")):
            continue
        found = (entry.docname, entry.node_id)
        targets[name] = found
        short = name.rsplit(".", 1)[-1]
        # `sample` in prose is the law's method, not a function; a bare class name is the
        # library's law, not its Pyro wrapper of the same name
        if short not in members and not name.startswith("diffhypergeom.pyro."):
            targets[short] = found if targets.get(short, found) == found else None
    for node in list(doctree.findall(nodes.literal)):
        if isinstance(node.parent, nodes.reference):
            continue
        text = node.astext()
        key = text[:-2] if text.endswith("()") else text
        found = targets.get(key)
        if found is None:
            continue
        uri = app.builder.get_relative_uri(docname, found[0]) + "#" + found[1]
        reference = nodes.reference("", "", internal=True, refuri=uri, reftitle=key)
        node.replace_self(reference)
        reference.append(node)


def setup(app):
    from docutils.parsers.rst import Directive

    app.connect("doctree-resolved", _link_names)
    app.connect("autodoc-skip-member", _skip_tuple_fields)
    app.connect("autodoc-skip-member", _skip_internal)
    app.connect("autodoc-process-docstring", _drop_rendered_docstrings)
    app.connect("autodoc-process-docstring", _link_design_notes)

    class CliHelp(Directive):
        has_content = False

        def run(self):
            return _cli_help_nodes()

    app.add_directive("diffhypergeom-cli-help", CliHelp)
    return {"parallel_read_safe": True}
