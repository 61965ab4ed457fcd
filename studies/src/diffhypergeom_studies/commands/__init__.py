"""Subcommands of the ``diffhypergeom`` CLI (see ``diffhypergeom_studies.cli``)."""

__all__: list[str] = []
