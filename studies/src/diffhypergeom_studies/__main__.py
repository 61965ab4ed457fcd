import sys

from diffhypergeom_studies.cli import main

__all__: list[str] = []

sys.exit(main())
