"""The import paths that moved: every old core path imports with a ``DeprecationWarning``
naming its new module and gives the same objects; every old study path fails naming its place
in ``diffhypergeom-studies``."""

import importlib
import sys

import pytest

from diffhypergeom.moved import MOVED, STUDIES


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_core_path_forwards_with_a_deprecation_warning(old):
    sys.modules.pop(old, None)
    new = MOVED[old] if isinstance(MOVED[old], str) else MOVED[old][0]
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {new}"):
        module = importlib.import_module(old)
    target = importlib.import_module(new)
    for name in target.__all__:
        assert getattr(module, name) is getattr(target, name)
    with pytest.raises(AttributeError, match="has no attribute 'nothing_here'"):
        module.nothing_here  # noqa: B018


def test_names_that_left_a_module_are_found_where_they_went():
    sys.modules.pop("diffhypergeom.distribution", None)
    with pytest.warns(DeprecationWarning):
        old = importlib.import_module("diffhypergeom.distribution")
    from diffhypergeom.laws.base import MAX_DENSE
    from diffhypergeom.laws.gradients import gumbel_settings
    assert old.gumbel_settings is gumbel_settings and old.MAX_DENSE == MAX_DENSE


@pytest.mark.parametrize("old", sorted(STUDIES) + ["diffhypergeom.weak.selector"])
def test_an_old_study_path_names_the_studies_package(old):
    # a submodule's import fails at its package, which is named
    new = ".".join(old.replace("diffhypergeom.", "diffhypergeom_studies.", 1).split(".")[:2])
    with pytest.raises(ModuleNotFoundError, match=f"it is {new} in the diffhypergeom-studies"):
        importlib.import_module(old)
