"""The library's architecture, read from its source with ``ast``: layers that only import
downwards, no import cycle (function-level imports included), ``__all__`` in every module, no
private name imported across modules, no law importing another law's module for a constant,
and no study code inside the library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "src" / "diffhypergeom"
STUDIES = ROOT / "studies" / "src" / "diffhypergeom_studies"
# the floor of each part of the library: a module may import only from its own floor or below
FLOORS = {"numerics": 0, "laws": 1, "subsets": 2, "estimators": 2, "pyro": 2, "stats": 2,
          "moved": 3,
          "": 3}


def _module_name(path: Path, package_root: Path) -> str:
    parts = list(path.relative_to(package_root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(package_root: Path) -> dict[str, ast.Module]:
    return {_module_name(p, package_root): ast.parse(p.read_text(), str(p))
            for p in sorted(package_root.rglob("*.py"))}


def _imports(tree: ast.Module, known: set[str]) -> list[tuple[str, list[str]]]:
    """Every import anywhere in the module (inside functions too): the module it reaches and
    the names it takes from it."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [alias.name for alias in node.names]
            submodules = [n for n in names if f"{node.module}.{n}" in known]
            found += [(f"{node.module}.{n}", []) for n in submodules]
            rest = [n for n in names if n not in submodules]
            if rest:
                found.append((node.module, rest))
    return found


def _floor(module: str) -> int:
    part = module.split(".")[1] if module.count(".") else ""
    return FLOORS[part]


LIBRARY_MODULES = _modules(LIBRARY)
KNOWN = set(LIBRARY_MODULES)


def _graph() -> dict[str, set[str]]:
    return {name: {target for target, _ in _imports(tree, KNOWN) if target in KNOWN}
            for name, tree in LIBRARY_MODULES.items()}


def test_the_import_graph_has_no_cycle():
    graph, state, path = _graph(), {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycle = path[path.index(target):] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_layers_import_only_downwards():
    wrong = [f"{name} (floor {_floor(name)}) imports {target} (floor {_floor(target)})"
             for name, targets in _graph().items() for target in targets
             if _floor(target) > _floor(name)]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("root", [LIBRARY, STUDIES], ids=["library", "studies"])
def test_every_module_has_all(root):
    def has_all(tree: ast.Module) -> bool:
        for node in tree.body:
            targets = (node.targets if isinstance(node, ast.Assign)
                       else [node.target] if isinstance(node, ast.AnnAssign) else [])
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                return True
        return False

    missing = [name for name, tree in _modules(root).items() if not has_all(tree)]
    assert not missing


@pytest.mark.parametrize("root", [LIBRARY, STUDIES], ids=["library", "studies"])
def test_no_private_name_is_imported_across_modules(root):
    modules = _modules(root)
    wrong = [f"{name}: from {source} import {taken}"
             for name, tree in modules.items()
             for source, names in _imports(tree, set(modules) | KNOWN)
             for taken in names if taken.startswith("_") and source != "__future__"]
    assert not wrong, "\n".join(wrong)


def test_a_law_takes_only_law_classes_from_another_law():
    laws = {f"diffhypergeom.laws.{name}"
            for name in ("fisher", "ksubset", "wallenius", "topk", "merged", "relaxed",
                         "partition")}
    assert laws <= KNOWN
    wrong = [f"{name}: from {source} import {taken}"
             for name in sorted(laws)
             for source, names in _imports(LIBRARY_MODULES[name], KNOWN)
             if source in laws - {name}
             for taken in names if not taken.endswith(("NCHypergeometric", "Partition"))]
    assert not wrong, "\n".join(wrong)


def test_the_library_holds_no_study_code():
    assert not any(target.startswith("diffhypergeom_studies")
                   for tree in LIBRARY_MODULES.values() for target, _ in _imports(tree, KNOWN))
    for folder in ("weak", "cluster", "validation", "commands"):
        assert not (LIBRARY / folder).exists()
    for module in ("cli", "runs", "annealing", "benchmarking"):
        assert not (LIBRARY / f"{module}.py").exists()
