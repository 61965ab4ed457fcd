"""Subcommands of the ``diffhypergeom`` CLI (see ``diffhypergeom.cli``)."""
