"""The release artefacts: a wheel and an sdist build from the checkout, and the wheel installed
into a fresh virtual environment that holds torch and numpy (with torch's own requirements)
and nothing else imports the core, computes with it, and pulls in none of the extras."""

from __future__ import annotations

import importlib.metadata as metadata
import os
import re
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("scipy", "pyro", "matplotlib", "sklearn", "lightning", "tqdm")


def _requirements(name: str, seen: set[str]) -> set[str]:
    """``name`` and the distributions it needs, transitively (markers for extras skipped)."""
    key = name.lower().replace("_", "-")
    if key in seen:
        return seen
    seen.add(key)
    for requirement in metadata.requires(name) or []:
        if "extra ==" in requirement:
            continue
        dependency = re.split(r"[ ;<>=!~\[(]", requirement, maxsplit=1)[0]
        try:
            metadata.distribution(dependency)
        except metadata.PackageNotFoundError:
            continue  # a platform requirement not installed here
        _requirements(dependency, seen)
    return seen


def _top_level_paths(names: set[str]) -> set[Path]:
    """The files and folders that make up the installed distributions ``names``."""
    paths = set()
    for name in names:
        dist = metadata.distribution(name)
        for file in dist.files or []:
            top = Path(str(file)).parts[0]
            if top in ("..", "__pycache__"):  # scripts outside site-packages, bytecode
                continue
            located = Path(str(dist.locate_file(top)))
            if located.exists():
                paths.add(located)
    return paths


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                           "--no-build-isolation", "-w", str(out)], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    build = pytest.importorskip("build", reason="the sdist needs the 'build' package")
    del build
    done = subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation",
                           "--outdir", str(out), str(ROOT)], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def test_wheel_and_sdist_carry_the_package(artefacts):
    (wheel,) = artefacts.glob("diffhypergeom-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "diffhypergeom/py.typed" in names
    assert "diffhypergeom/numerics/tree.py" in names
    # the library alone: the studies are the sibling package diffhypergeom-studies
    assert not [n for n in names if n.startswith("diffhypergeom_studies")
                or n.split("/")[1:2] in (["weak"], ["cluster"], ["validation"], ["commands"])
                or n in ("diffhypergeom/cli.py", "diffhypergeom/runs.py")]
    wheel_file = zipfile.ZipFile(wheel)
    assert not any("diffhypergeom_studies" in wheel_file.read(n).decode()
                   for n in names if n.endswith("entry_points.txt"))
    assert any(n.endswith("licenses/LICENSE") or n.endswith("/LICENSE") for n in names)
    (sdist,) = artefacts.glob("diffhypergeom-*.tar.gz")
    members = tarfile.open(sdist).getnames()
    assert any(m.endswith("src/diffhypergeom/laws/fisher.py") for m in members)
    assert not any("diffhypergeom_studies" in m for m in members)
    assert any(m.endswith("README.md") for m in members)


def test_wheel_in_a_fresh_venv_imports_with_torch_and_numpy_alone(artefacts, tmp_path):
    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env)
    python = env / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # torch and numpy with what they need, linked from this environment: nothing else
    shared = tmp_path / "shared"
    shared.mkdir()
    for path in _top_level_paths(_requirements("torch", set()) | _requirements("numpy", set())):
        if not (shared / path.name).exists():
            (shared / path.name).symlink_to(path)
    (site / "torch_and_numpy.pth").write_text(str(shared) + "\n")
    (wheel,) = artefacts.glob("diffhypergeom-*.whl")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target",
                           str(site), str(wheel)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    modules = sorted(n[:-3].replace("/", ".").removesuffix(".__init__")
                     for n in zipfile.ZipFile(wheel).namelist()
                     if n.endswith(".py") and n != "diffhypergeom/pyro.py")
    script = (
        "import importlib, sys, torch, diffhypergeom\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "from diffhypergeom import MultivariateFisherNCHypergeometric as F\n"
        "d = F(torch.tensor([200, 200, 200]), 180, weights=torch.tensor([1.0, 10.0, 1.0]))\n"
        "print(round(float(d.mean[1]), 4), diffhypergeom.__version__, diffhypergeom.__file__)\n"
        f"print(sorted(m for m in {EXTRAS!r} if m in sys.modules))\n"
    )
    done = subprocess.run([str(python), "-c", script], capture_output=True, text=True,
                          check=False, cwd=tmp_path,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert done.returncode == 0, done.stderr[-2000:]
    mean, version, location = done.stdout.splitlines()[0].split()
    assert mean == "124.0665" and version == metadata.version("diffhypergeom")
    assert location.startswith(str(site))
    assert done.stdout.splitlines()[1] == "[]"
    for extra in ("scipy", "pyro"):  # and the extras are really absent from the venv
        done = subprocess.run([str(python), "-c", f"import {extra}"], capture_output=True,
                              text=True, check=False, cwd=tmp_path)
        assert done.returncode != 0
