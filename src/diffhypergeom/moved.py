"""The import paths of release 0.1.0 that moved when the library was laid out by layer.

An old core path still imports, for one release, as a stand-in module that forwards every
attribute to the new module and warns with a ``DeprecationWarning`` naming it; an old path of
the studies (which left the library for the ``diffhypergeom-studies`` package) raises a
``ModuleNotFoundError`` naming the new one. ``MOVED`` and ``STUDIES`` are the migration table
of the CHANGELOG.

Example:
    >>> import importlib, warnings
    >>> import diffhypergeom
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     old = importlib.import_module("diffhypergeom.distribution")
    >>> old.MultivariateFisherNCHypergeometric is diffhypergeom.MultivariateFisherNCHypergeometric
    True
    >>> print(caught[0].message)  # doctest: +ELLIPSIS
    diffhypergeom.distribution moved to diffhypergeom.laws.fisher and ...
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings

__all__ = ["MOVED", "STUDIES", "install"]

# old core module -> the new module (or the modules its names went to, in turn)
MOVED: dict[str, str | tuple[str, ...]] = {
    "diffhypergeom.distribution": ("diffhypergeom.laws.fisher", "diffhypergeom.laws.gradients",
                                   "diffhypergeom.laws.base"),
    "diffhypergeom.base": "diffhypergeom.laws.base",
    "diffhypergeom.checks": "diffhypergeom.laws.checks",
    "diffhypergeom.merged": "diffhypergeom.laws.merged",
    "diffhypergeom.relaxed": "diffhypergeom.laws.relaxed",
    "diffhypergeom.wallenius": "diffhypergeom.laws.wallenius",
    "diffhypergeom.partition": "diffhypergeom.laws.partition",
    "diffhypergeom.special": "diffhypergeom.numerics.special",
    "diffhypergeom.support": "diffhypergeom.numerics.support",
    "diffhypergeom.sort": "diffhypergeom.numerics.sort",
    "diffhypergeom.sampling": "diffhypergeom.numerics.sampling",
    "diffhypergeom.engines": "diffhypergeom.numerics.engines",
    "diffhypergeom.engines.base": ("diffhypergeom.numerics.base", "diffhypergeom.numerics.engines"),
    "diffhypergeom.engines.logspace": "diffhypergeom.numerics.logspace",
    "diffhypergeom.engines.fft": "diffhypergeom.numerics.fft",
    "diffhypergeom.engines.tree": "diffhypergeom.numerics.tree",
    "diffhypergeom.engines.wallenius": "diffhypergeom.numerics.wallenius",
}
# old study module (and the packages below it) -> its place in diffhypergeom-studies
STUDIES = {
    "diffhypergeom.cli": "diffhypergeom_studies.cli",
    "diffhypergeom.runs": "diffhypergeom_studies.runs",
    "diffhypergeom.annealing": "diffhypergeom_studies.annealing",
    "diffhypergeom.benchmarking": "diffhypergeom_studies.benchmarking",
    "diffhypergeom.commands": "diffhypergeom_studies.commands",
    "diffhypergeom.validation": "diffhypergeom_studies.validation",
    "diffhypergeom.weak": "diffhypergeom_studies.weak",
    "diffhypergeom.cluster": "diffhypergeom_studies.cluster",
}


def _study_target(name: str) -> str | None:
    for old, new in STUDIES.items():
        if name == old or name.startswith(old + "."):
            return new + name[len(old):]
    return None


class _Forward(importlib.abc.Loader):
    """Makes the stand-in module of an old path: attributes forward to the new module."""

    def __init__(self, new: str | tuple[str, ...]):
        self.new = (new,) if isinstance(new, str) else new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        warnings.warn(f"{spec.name} moved to {' and '.join(self.new)}; import it from there "
                      f"(the old path goes in the next release)", DeprecationWarning,
                      stacklevel=3)
        targets = [importlib.import_module(name) for name in self.new]

        def forward(attribute: str):
            for target in targets:
                if hasattr(target, attribute):
                    return getattr(target, attribute)
            raise AttributeError(f"module {spec.name!r} (moved to {self.new[0]}) has no "
                                 f"attribute {attribute!r}")

        module = types.ModuleType(spec.name, targets[0].__doc__)
        module.__path__ = []  # lets old subpackage paths (diffhypergeom.engines.fft) resolve
        module.__getattr__ = forward
        module.__all__ = [name for target in targets for name in getattr(target, "__all__", [])]
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: the stand-in forwards to a module that is already imported."""


class _Finder(importlib.abc.MetaPathFinder):
    """Finds the old paths of ``MOVED`` and ``STUDIES`` (and nothing else)."""

    def find_spec(self, fullname, path, target=None):
        if fullname in MOVED:
            return importlib.machinery.ModuleSpec(fullname, _Forward(MOVED[fullname]))
        new = _study_target(fullname)
        if new is not None:
            raise ModuleNotFoundError(
                f"{fullname} left the library: it is {new} in the diffhypergeom-studies "
                f"package (pip install -e ./studies from the repository)", name=fullname)
        return None


def install() -> None:
    """Put the finder of old paths on ``sys.meta_path`` (once; ``import diffhypergeom`` does)."""
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.append(_Finder())
